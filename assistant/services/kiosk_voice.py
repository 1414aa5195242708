"""Spoken dialogue for the kiosk, around the assistant's own turn (elderly people):

* **Commands at any time**, by voice: "再说一遍 / 没听清" repeats the last spoken
  answer, "慢一点" repeats it at the elderly rate (and keeps that rate), "大声点"
  repeats it louder. Matched on toneless pinyin (``kiosk_voice.yml``), so that
  homophones from the recogniser count.
* **Long answers in parts**: the spoken text is cut into parts of about
  ``part_chars`` characters; after each the kiosk asks "还要听下一条吗"; "要 / 下一条"
  speaks the next part, "不要" stops. The screen shows the whole answer at once.
* **Confirm-back when unsure**: when the best item of what was heard scores
  between ``confirm_min_score`` and the dialogue's threshold, the kiosk asks
  "您是想问社保卡补办吗？"; "对" answers the question about that item, "不是" asks
  the person to say it again.

The state is per kiosk conversation, in this process (a kiosk talks to one
gateway), bounded in entries and time; it holds the last spoken texts, never audio.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import yaml
from pypinyin import lazy_pinyin

from assistant.services.conversation import conversation_turn
from knowledge.schema import short_name


CONFIG_FILE = Path(__file__).with_name("kiosk_voice.yml")
logger = logging.getLogger(__name__)
REPEAT, SLOWER, LOUDER, YES, NO = "repeat", "slower", "louder", "yes", "no"
_FILLERS = re.compile(r"嗯|啊|吧|呢|呀|那个|请|您|你|麻烦")
_NOT_HAN = re.compile(r"[^\u3400-\u4dbf\u4e00-\u9fff]")
_SENTENCE_END = re.compile(r"(?<=[。！？；\n])")
ASKING_INTENTS = ("ask_service", "ask_materials", "ask_conditions", "ask_process",
                  "ask_fee", "ask_time_limit", "ask_location")


def _sound(text: str) -> str:
    return " ".join(lazy_pinyin(text))


@dataclass(frozen=True)
class KioskVoiceConfig:
    max_command_chars: int
    commands: Dict[str, List[str]]
    part_chars: int
    ask_next: str
    confirm_min_score: float
    confirm_below: float
    confirm_question: str
    confirm_rejected: str
    nothing_to_repeat: str
    no_more: str
    state_ttl_seconds: float
    max_states: int

    @classmethod
    def load(cls, path: Path = CONFIG_FILE) -> "KioskVoiceConfig":
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(**data)


CONFIG = KioskVoiceConfig.load()
_COMMAND_SOUNDS = {
    kind: {_sound(phrase) for phrase in phrases} for kind, phrases in CONFIG.commands.items()
}


def command_of(text: str) -> Optional[str]:
    """The spoken command a short utterance is (``repeat``, ``slower``, ``louder``,
    ``yes``, ``no``), or None. "No" is checked before "yes" (不对 holds 对)."""
    core = _NOT_HAN.sub("", _FILLERS.sub("", text or ""))
    if not core or len(core) > CONFIG.max_command_chars:
        return None
    sound = _sound(core)
    for kind in (NO, REPEAT, SLOWER, LOUDER, YES):
        if sound in _COMMAND_SOUNDS.get(kind, ()):
            return kind
    for kind in (REPEAT, SLOWER, LOUDER):  # "请您再说一遍好吗": the command inside
        if any(len(s) > 4 and s in sound for s in _COMMAND_SOUNDS.get(kind, ())):
            return kind
    return None


def split_parts(text: str, part_chars: int) -> List[str]:
    """``text`` in parts of about ``part_chars`` characters, cut after sentences or lines."""
    parts: List[str] = []
    current = ""
    for piece in _SENTENCE_END.split(text):
        if not piece.strip():
            continue
        if current and len(current) + len(piece) > part_chars:
            parts.append(current.strip())
            current = ""
        current += piece
    if current.strip():
        parts.append(current.strip())
    return parts


@dataclass
class SpokenState:
    """What the kiosk said last in one conversation, and what it waits for."""

    last_spoken: str = ""
    last_reply: Optional[Dict[str, Any]] = None
    remaining: List[str] = field(default_factory=list)
    pending_item: Optional[str] = None
    pending_text: str = ""
    slow: bool = False
    touched: float = field(default_factory=time.monotonic)


class SpokenStates:
    """Bounded per-conversation states (LRU by entries, expired by time), in this
    process; :class:`SharedSpokenStates` keeps them in Redis for several replicas."""

    def __init__(self, max_entries: int = CONFIG.max_states, ttl: float = CONFIG.state_ttl_seconds):
        self.max_entries = max_entries
        self.ttl = ttl
        self._items: "OrderedDict[str, SpokenState]" = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sender_id: str) -> SpokenState:
        now = time.monotonic()
        with self._lock:
            state = self._items.pop(sender_id, None)
            if state is None or now - state.touched > self.ttl:
                state = SpokenState()
            state.touched = now
            self._items[sender_id] = state
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
            return state

    def put(self, sender_id: str, state: SpokenState) -> None:
        """Keep a changed state (the object from :meth:`get` already is)."""

    def drop(self, sender_id: str) -> None:
        with self._lock:
            self._items.pop(sender_id, None)


class SharedSpokenStates(SpokenStates):
    """The states in Redis (JSON, expiring after the TTL): a kiosk's next utterance may
    reach another gateway replica ("再说一遍" must still find what was said)."""

    KEY = "banshi:kiosk-spoken:"

    def __init__(self, redis_url: str, ttl: float = CONFIG.state_ttl_seconds):
        import redis

        super().__init__(ttl=ttl)
        self.red = redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=5)
        self.redis_errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

    def get(self, sender_id: str) -> SpokenState:
        try:
            raw = self.red.get(self.KEY + sender_id)
        except self.redis_errors as exc:  # Redis away: this process's own memory meanwhile
            logger.warning("kiosk.spoken_state.redis_unavailable error=%s", type(exc).__name__)
            return super().get(sender_id)
        if not raw:
            return SpokenState()
        data = json.loads(raw)
        return SpokenState(**{k: v for k, v in data.items() if k in SpokenState.__dataclass_fields__})

    def put(self, sender_id: str, state: SpokenState) -> None:
        body = json.dumps(asdict(state), ensure_ascii=False)
        try:
            self.red.set(self.KEY + sender_id, body, ex=max(1, int(self.ttl)))
        except self.redis_errors as exc:
            logger.warning("kiosk.spoken_state.redis_unavailable error=%s", type(exc).__name__)

    def drop(self, sender_id: str) -> None:
        try:
            self.red.delete(self.KEY + sender_id)
        except self.redis_errors:
            super().drop(sender_id)


@dataclass
class Plan:
    """What the kiosk does with an utterance: speak ``spoken`` for ``reply`` (the
    dialogue's turn, or the kiosk's own), and how."""

    reply: Dict[str, Any]
    spoken: str
    slow: bool = False
    louder: bool = False


def kiosk_reply(text: str, item: Optional[str] = None, answer: Optional[str] = None) -> Dict[str, Any]:
    """A reply made by the kiosk itself (not the dialogue), in the turn's shape."""
    return {"messages": [{"text": text}], "intent": None, "items": [], "item": item, "answer": answer}


def speak_in_parts(state: SpokenState, reply: Dict[str, Any], spoken: str) -> Plan:
    """Remember the reply; speak its first part (and ask about the next)."""
    parts = split_parts(spoken, CONFIG.part_chars) or [spoken]
    state.last_reply = reply
    state.remaining = parts[1:]
    first = parts[0] + (CONFIG.ask_next if state.remaining else "")
    state.last_spoken = first
    return Plan(reply=reply, spoken=first, slow=state.slow)


def unsure_item(parse_data: Dict[str, Any], threshold: float = CONFIG.confirm_below) -> Optional[str]:
    """The item to confirm back: a service question whose best item scores from
    ``confirm_min_score`` up to ``threshold``."""
    intent = (parse_data.get("intent") or {}).get("name")
    items = parse_data.get("service_items") or []
    if intent not in ASKING_INTENTS or not items:
        return None
    score = float(items[0].get("score") or 0.0)
    if CONFIG.confirm_min_score <= score < threshold:
        return str(items[0]["id"])
    return None


def states_of(app: Any) -> SpokenStates:
    states = getattr(app.state, "spoken_states", None)
    if states is None:
        redis_url = getattr(getattr(app.state, "settings", None), "redis_url", None)
        states = app.state.spoken_states = SharedSpokenStates(redis_url) if redis_url else SpokenStates()
    return states


async def plan_turn(
    conn: Any,
    settings: Any,
    sender_id: str,
    corrected: str,
    channel: str,
    spoken_of: Callable[[Dict[str, Any]], str],
) -> Plan:
    """The kiosk's answer to what was heard: a spoken command, the answer to a
    confirm-back or a "next part" question, a confirm-back, or the dialogue's turn
    (``spoken_of`` makes a reply's text fit to be spoken)."""
    states = states_of(conn.app)
    state = await asyncio.to_thread(states.get, sender_id)
    try:
        return await _plan(conn, settings, sender_id, corrected, channel, spoken_of, state)
    finally:
        await asyncio.to_thread(states.put, sender_id, state)


async def _plan(
    conn: Any,
    settings: Any,
    sender_id: str,
    corrected: str,
    channel: str,
    spoken_of: Callable[[Dict[str, Any]], str],
    state: SpokenState,
) -> Plan:
    command = command_of(corrected)
    if state.pending_item and command in (YES, NO):
        item, original = state.pending_item, state.pending_text
        state.pending_item, state.pending_text = None, ""
        if command == NO:
            return speak_in_parts(state, kiosk_reply(CONFIG.confirm_rejected), CONFIG.confirm_rejected)
        record = conn.app.state.catalog.get(item)
        text = f"{short_name(record.name)}，{original}" if record is not None else original
        reply = await conversation_turn(conn, settings, sender_id, text, channel)
        return speak_in_parts(state, reply, spoken_of(reply))
    if command in (REPEAT, SLOWER, LOUDER):
        if command == SLOWER:
            state.slow = True
        if not state.last_spoken:
            return Plan(kiosk_reply(CONFIG.nothing_to_repeat), CONFIG.nothing_to_repeat, slow=state.slow)
        reply = dict(state.last_reply or kiosk_reply(state.last_spoken))
        reply["answer"] = "repeat"
        return Plan(reply, state.last_spoken, slow=state.slow, louder=command == LOUDER)
    if state.remaining and command in (YES, NO):
        last_item = (state.last_reply or {}).get("item")
        if command == NO:
            state.remaining = []
            state.last_spoken = CONFIG.no_more
            return Plan(kiosk_reply(CONFIG.no_more, item=last_item), CONFIG.no_more, slow=state.slow)
        part = state.remaining.pop(0)
        spoken = part + (CONFIG.ask_next if state.remaining else "")
        state.last_spoken = spoken
        return Plan(kiosk_reply(part, item=last_item, answer="next"), spoken, slow=state.slow)
    runtime = getattr(conn.app.state, "runtime", None)
    if corrected and command is None and runtime is not None and runtime.ready:
        item = unsure_item(await runtime.parse(corrected))
        record = conn.app.state.catalog.get(item) if item else None
        if record is not None:
            question = CONFIG.confirm_question.format(name=short_name(record.name))
            state.pending_item, state.pending_text = item, corrected
            state.last_reply, state.remaining, state.last_spoken = None, [], question
            return Plan(kiosk_reply(question, item=item, answer="confirm"), question, slow=state.slow)
    reply = await conversation_turn(conn, settings, sender_id, corrected, channel)
    return speak_in_parts(state, reply, spoken_of(reply))
