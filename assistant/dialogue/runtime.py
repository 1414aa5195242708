"""The Rasa agent, loaded in-process, and what the gateway needs from it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import aiohttp
from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.lock_store import InMemoryLockStore, LockStore, RedisLockStore
from rasa.core.tracker_store import InMemoryTrackerStore, TrackerStore
from rasa.utils.endpoints import EndpointConfig
from rasa.utils.log_utils import configure_structlog
from sqlalchemy.engine import make_url

from assistant.config.settings import Settings
from assistant.dialogue import tuning
from assistant.dialogue.tracker_store import RollingSQLTrackerStore

logger = logging.getLogger(__name__)

MODEL_GLOB = "banshi-*.tar.gz"
SERVICE_ITEMS = "service_items"
ACTION_TIMEOUT_S = 10


class ModelNotFound(RuntimeError):
    pass


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


class _SharedSession:
    """Async context manager yielding one long-lived aiohttp session (keep-alive)."""

    def __init__(self, owner: "PooledEndpointConfig") -> None:
        self._owner = owner

    async def __aenter__(self) -> aiohttp.ClientSession:
        return await self._owner.shared_session()

    async def __aexit__(self, *exc: Any) -> None:
        return None


class PooledEndpointConfig(EndpointConfig):
    """Rasa opens a new HTTP session for every action call; reuse one instead."""

    _session: Optional[aiohttp.ClientSession] = None

    async def shared_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=32, keepalive_timeout=60),
                timeout=aiohttp.ClientTimeout(total=ACTION_TIMEOUT_S),
            )
        return self._session

    def session(self) -> _SharedSession:  # type: ignore[override]
        return _SharedSession(self)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


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
        url = make_url(settings.redis_url)
        return RedisLockStore(
            host=url.host or "localhost",
            port=url.port or 6379,
            db=int(url.database or 0),
            password=url.password,
        )
    return InMemoryLockStore()


@dataclass
class ChatResult:
    messages: List[Dict[str, Any]]
    parse_data: Dict[str, Any]


class AssistantRuntime:
    """Owns the Rasa agent; parse and chat turns run on the caller's event loop."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.agent: Optional[Agent] = None
        self.model_path: Optional[Path] = None
        self.load_seconds: float = 0.0
        self._endpoint = PooledEndpointConfig(url=settings.action_endpoint)

    def load(self) -> None:
        started = time.perf_counter()
        # Rasa's structured logs default to DEBUG when nothing configures them (as
        # `rasa run` does): every turn would print and format the whole tracker.
        configure_structlog(logging.getLevelName(self.settings.rasa_log_level))
        tuning.install()
        self.model_path = newest_model(self.settings)
        self.agent = Agent.load(
            str(self.model_path),
            tracker_store=build_tracker_store(self.settings),
            lock_store=build_lock_store(self.settings),
            action_endpoint=self._endpoint,
        )
        self.load_seconds = time.perf_counter() - started
        logger.info("gateway.model.loaded path=%s seconds=%.1f", self.model_path.name, self.load_seconds)

    @property
    def ready(self) -> bool:
        return self.agent is not None and self.agent.is_ready()

    async def parse(self, text: str) -> Dict[str, Any]:
        assert self.agent is not None
        return await self.agent.parse_message(text)

    async def chat(self, sender_id: str, text: str, channel: str) -> ChatResult:
        assert self.agent is not None
        parse_data = await self.parse(text)
        output = CollectingOutputChannel()
        message = UserMessage(
            text,
            output,
            sender_id,
            parse_data=parse_data,
            input_channel=channel,
        )
        await self.agent.handle_message(message)
        return ChatResult(messages=output.messages, parse_data=parse_data)

    async def close(self) -> None:
        await self._endpoint.close()
