"""The Rasa agent, loaded in-process, and what the gateway needs from it."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.lock_store import InMemoryLockStore, LockStore
from rasa.core.tracker_store import InMemoryTrackerStore, TrackerStore
from rasa.shared.core.events import SlotSet
from rasa.utils.log_utils import configure_structlog
from sqlalchemy.engine import make_url

from assistant.config.settings import Settings
from assistant.dialogue import tuning
from assistant.dialogue.action_link import (
    ACTION_TIMEOUT_S,
    ActionEndpoint,
    ActionServerLink,
    end_turn,
    quiet_rasa_errors,
    turn_record,
)
from assistant.dialogue.locks import RedisMutexLockStore
from assistant.dialogue.tracker_store import RollingSQLTrackerStore

logger = logging.getLogger(__name__)

MODEL_GLOB = "banshi-*.tar.gz"
SERVICE_ITEMS = "service_items"


def action_timeout_s(settings: Settings) -> float:
    """How long an action call may take: the slowest action, a progress lookup, may ask
    the case-management system 1 + progress_retries times, each within progress_timeout_s."""
    return ACTION_TIMEOUT_S + (1 + settings.progress_retries) * settings.progress_timeout_s


class ModelNotFound(RuntimeError):
    pass


class ModelUnusable(RuntimeError):
    """A model archive that cannot be loaded or does not understand the check sentence."""


# Parsed by every model before it is swapped in: it must give one of the model's intents.
CHECK_TEXT = "你好，我想办理居民身份证，需要带什么材料？"


def newest_model(settings: Settings) -> Path:
    if settings.model_path:
        if not settings.model_path.exists():
            raise ModelNotFound(f"BANSHI_MODEL_PATH does not exist: {settings.model_path}")
        return settings.model_path
    models = sorted(settings.models_dir.glob(MODEL_GLOB), key=lambda p: p.stat().st_mtime)
    if not models:
        raise ModelNotFound(
            f"no trained model in {settings.models_dir}: run `banshi train` (or `make run`)"
        )
    return models[-1]


def build_tracker_store(settings: Settings) -> TrackerStore:
    if settings.tracker_store == "memory":
        return InMemoryTrackerStore(domain=None)
    url = make_url(settings.trackers_url)
    dialect = url.get_backend_name()
    if dialect == "sqlite":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    return RollingSQLTrackerStore(
        roll_after_events=settings.session_roll_events,
        dialect=url.drivername,
        host=url.host,
        port=url.port,
        db=url.database,
        username=url.username,
        password=url.password,
    )


def build_lock_store(settings: Settings) -> LockStore:
    if settings.redis_url:
        return RedisMutexLockStore(settings.redis_url)
    return InMemoryLockStore()


class StrictAgent(Agent):
    """Rasa's agent without ``FailSafeTrackerStore``: that wrapper answers a turn whose
    tracker cannot be read with an empty tracker (the conversation's context lost) and
    keeps it in memory only when it cannot be written (measured: 136 answered turns
    never stored while PostgreSQL restarted under load). Here the error reaches the
    gateway, which answers 503 in Chinese; the citizen sends the message again."""

    @staticmethod
    def _create_tracker_store(store: Optional[TrackerStore], domain: Any) -> TrackerStore:
        if store is None:
            store = InMemoryTrackerStore(domain)
        store.domain = domain
        return store

    @classmethod
    def load(  # type: ignore[override]
        cls,
        model_path: Any,
        tracker_store: Optional[TrackerStore] = None,
        lock_store: Optional[LockStore] = None,
        action_endpoint: Any = None,
    ) -> "StrictAgent":
        # Agent.load builds an Agent, not cls: the same steps with this class.
        agent = cls(tracker_store=tracker_store, lock_store=lock_store, action_endpoint=action_endpoint)
        agent.load_model(model_path=model_path)
        return agent


@dataclass
class ChatResult:
    messages: List[Dict[str, Any]]
    parse_data: Dict[str, Any]
    # Custom actions of the turn answered by the gateway (the action server being
    # unreachable), and those that could not run at all.
    answered_locally: List[str] = field(default_factory=list)
    unavailable: List[str] = field(default_factory=list)


class AssistantRuntime:
    """Owns the Rasa agent; parse and chat turns run on the caller's event loop."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.agent: Optional[Agent] = None
        self.model_path: Optional[Path] = None
        self.load_seconds: float = 0.0
        self.swaps = 0  # models swapped in after the start (assistant.services.model_live)
        self._tracker_store: Optional[TrackerStore] = None
        self._lock_store: Optional[LockStore] = None
        self._endpoint = ActionEndpoint(
            url=settings.action_endpoint,
            timeout_s=action_timeout_s(settings),
        )

    def _stores(self) -> Tuple[TrackerStore, LockStore]:
        """The tracker and lock stores of the first agent; the lock store is shared by
        every agent this runtime loads, the tracker store's database too (a conversation
        goes on across a model swap, see :meth:`load_agent`)."""
        if self._tracker_store is None or self._lock_store is None:
            self._tracker_store = build_tracker_store(self.settings)
            self._lock_store = build_lock_store(self.settings)
        return self._tracker_store, self._lock_store

    def load_agent(self, model_path: Path) -> Agent:
        """A new agent on ``model_path`` sharing this runtime's stores, checked by parsing
        :data:`CHECK_TEXT` (blocking, seconds: call it from a worker thread while the
        current agent keeps answering). :class:`ModelUnusable` when it cannot be used."""
        if not Path(model_path).is_file():
            raise ModelUnusable("missing")
        shared, lock_store = self._stores()
        # Loading sets the store's domain (None first, for seconds): a SQL store of its
        # own on the same database, so turns on the agent in use read their trackers
        # meanwhile. Only an in-memory store (its conversations live in the object; it
        # reads them without a domain) is shared, its domain put back until the swap.
        tracker_store = shared if isinstance(shared, InMemoryTrackerStore) else build_tracker_store(self.settings)
        in_use = shared.domain
        try:
            agent = StrictAgent.load(str(model_path), tracker_store=tracker_store, lock_store=lock_store,
                                     action_endpoint=self._endpoint)
        finally:
            shared.domain = in_use
        if not agent.is_ready():
            raise ModelUnusable("not ready")
        # Parsing also builds the model's graphs, so the first turns after a swap are not slow.
        parsed = asyncio.run(agent.parse_message(CHECK_TEXT))
        intent = (parsed.get("intent") or {}).get("name")
        if not intent or intent not in agent.domain.intents:
            raise ModelUnusable(f"check parse gave intent {intent!r}")
        return agent

    def install(self, agent: Agent, model_path: Path, load_seconds: float) -> None:
        """Swap ``agent`` in (one assignment on the event loop; turns under way end on the
        agent they started with)."""
        agent.tracker_store.domain = agent.domain  # the shared in-memory store; a no-op for its own
        self.agent, self.model_path, self.load_seconds = agent, Path(model_path), load_seconds
        self.swaps += 1

    def prepare(self) -> None:
        """Process-wide Rasa setup, once, before the first agent is loaded."""
        # Rasa's structured logs default to DEBUG when nothing configures them (as
        # `rasa run` does): every turn would print and format the whole tracker.
        configure_structlog(logging.getLevelName(self.settings.rasa_log_level))
        tuning.install()
        quiet_rasa_errors()

    def load(self, model_path: Optional[Path] = None) -> None:
        """Load ``model_path`` (default: :func:`newest_model`) at startup."""
        started = time.perf_counter()
        self.prepare()
        path = Path(model_path) if model_path is not None else newest_model(self.settings)
        tracker_store, lock_store = self._stores()
        agent = StrictAgent.load(str(path), tracker_store=tracker_store, lock_store=lock_store,
                                 action_endpoint=self._endpoint)
        self.agent, self.model_path = agent, path
        self.load_seconds = time.perf_counter() - started
        logger.info("gateway.model.loaded path=%s seconds=%.1f", path.name, self.load_seconds)

    @property
    def action_link(self) -> ActionServerLink:
        """The action server's state and the fallback counts (``snapshot()`` for /healthz)."""
        return self._endpoint.link

    @property
    def ready(self) -> bool:
        return self.agent is not None and self.agent.is_ready()

    async def parse(self, text: str) -> Dict[str, Any]:
        assert self.agent is not None
        return await self.agent.parse_message(text)

    async def chat(self, sender_id: str, text: str, channel: str) -> ChatResult:
        agent = self.agent  # the whole turn on one agent, even if a new model is swapped in meanwhile
        assert agent is not None
        parse_data = await agent.parse_message(text)
        output = CollectingOutputChannel()
        message = UserMessage(
            text,
            output,
            sender_id,
            parse_data=parse_data,
            input_channel=channel,
        )
        record, token = turn_record()
        try:
            await agent.handle_message(message)
        finally:
            end_turn(token)
        return ChatResult(
            messages=output.messages,
            parse_data=parse_data,
            answered_locally=record.answered_locally,
            unavailable=record.unavailable,
        )

    async def slots(self, sender_id: str) -> Dict[str, Any]:
        """The conversation's current slot values ({} for a new conversation); read only."""
        assert self.agent is not None
        tracker = await self.agent.tracker_store.retrieve(sender_id)
        if tracker is None:
            return {}
        return dict(tracker.current_slot_values())

    async def set_slots(self, sender_id: str, values: Dict[str, Any]) -> None:
        """Set slots of the conversation between turns (the gateway answered a turn
        itself, e.g. a question about a reminder it asked), under the turn lock."""
        agent = self.agent  # one agent throughout (a model swap may happen meanwhile)
        assert agent is not None
        processor = agent.processor
        assert processor is not None
        async with agent.lock_store.lock(sender_id):
            tracker = await processor.fetch_tracker_and_update_session(sender_id, CollectingOutputChannel())
            for name, value in values.items():
                tracker.update(SlotSet(name, value))
            await processor.save_tracker(tracker)

    async def close(self) -> None:
        await self._endpoint.shutdown()
