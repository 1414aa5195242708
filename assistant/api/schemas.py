"""Request and response models of the public API (simplified-Chinese error texts)."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from pydantic import BaseModel, Field, StrictStr, validator

from assistant.config.settings import get_settings
from assistant.services.conversation import BotMessage, ItemScore

SENDER_ID_RE = re.compile(r"^[A-Za-z0-9_.:@\-]+$")
CHANNELS = ("web", "kiosk", "wechat", "hotline", "api", "cli")


def _clean_text(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("消息不能为空")
    limit = get_settings().max_text_chars
    if len(value) > limit:
        raise ValueError(f"消息太长，请不超过{limit}字")
    return value


class ChatRequest(BaseModel):
    # pattern, enum, minLength, maxLength: documented in the schema (the validators check them).
    sender_id: StrictStr = Field(
        ..., description="Conversation id chosen by the client", example="web-3f2a",
        pattern=SENDER_ID_RE.pattern, minLength=1, maxLength=128,
    )
    text: StrictStr = Field(..., description="What the person said", example="我想办社保卡要带什么", minLength=1, maxLength=500)
    channel: StrictStr = Field("api", description="web | kiosk | wechat | hotline | api | cli", enum=list(CHANNELS))
    token: Optional[StrictStr] = Field(
        None, max_length=128, description="Conversation token from POST /api/v1/chat/sessions (web-… ids)"
    )

    class Config:
        extra = "forbid"

    @validator("sender_id")
    def _sender(cls, value: str) -> str:
        limit = get_settings().max_sender_id_chars
        if not value or len(value) > limit or not SENDER_ID_RE.match(value):
            raise ValueError(f"sender_id 只能包含字母、数字和 _.:@-，长度1到{limit}")
        return value

    _text = validator("text", allow_reuse=True)(_clean_text)

    @validator("channel")
    def _channel(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError(f"channel 只能是 {', '.join(CHANNELS)} 之一")
        return value


class HandoffState(BaseModel):
    ticket_id: int
    status: str  # waiting | active
    deferred: bool  # opened outside service hours: the bot answers until an operator replies
    position: Optional[int]  # place in the queue while waiting (1 = next)
    # A complaint waiting for a person: the assistant keeps answering meanwhile.
    follow_up: bool = False


class ChatResponse(BaseModel):
    messages: List[BotMessage]
    intent: Optional[str]
    items: List[ItemScore]
    # The catalog id the reply is about (null when it is about none), and the kind of
    # answer: overview, materials, conditions, process, fee, time_limit, location,
    # clarify, not_covered, out_of_scope, progress, handoff, smalltalk, feedback.
    item: Optional[str] = None
    answer: Optional[str] = None
    # Set while a human helper holds (or has been asked to take) the conversation.
    handoff: Optional[HandoffState] = None


class ChatSession(BaseModel):
    sender_id: str
    token: str


class ParseRequest(BaseModel):
    text: StrictStr = Field(..., example="身份证丢了怎么补办", minLength=1, maxLength=500)

    class Config:
        extra = "forbid"

    _text = validator("text", allow_reuse=True)(_clean_text)


class IntentScore(BaseModel):
    name: Optional[str]
    confidence: float


class Entity(BaseModel):
    entity: str
    value: Any
    start: Optional[int] = None
    end: Optional[int] = None
    confidence: Optional[float] = None
    extractor: Optional[str] = None


class ParseResponse(BaseModel):
    intent: IntentScore
    items: List[ItemScore]
    entities: List[Entity]


class ItemSummary(BaseModel):
    id: str
    kind: str
    name: str
    department: str
    verified: str


class ProcessStatus(BaseModel):
    role: str
    state: str  # running, restarting, stopped
    pid: Optional[int] = None
    port: Optional[int] = None
    restarts: int = 0
    last_exit: Optional[int] = None
    up_seconds: float = 0.0
    restart_in: Optional[float] = None


class HealthResponse(BaseModel):
    status: str
    model_loaded: bool
    model: Optional[str]
    action_server_reachable: bool
    # Seconds since that probe answered (one probe per BANSHI_HEALTH_PROBE_TTL_S, shared).
    action_server_checked_s_ago: Optional[float] = None
    database_reachable: bool
    catalog_items: int
    # The processes `banshi run` supervises (absent when nothing supervises this gateway).
    processes: Optional[Dict[str, ProcessStatus]] = None
    # The gateway's view of its action server: breaker state and the turns answered
    # without it (``fallback_answers`` from the catalog, ``unavailable_answers``).
    actions: Optional[Dict[str, Any]] = None
    # Writes kept on this machine while the database was unreachable (``waiting``,
    # ``dead``: set aside, ``oldest_seconds``), delivered when it answers again.
    spool: Optional[Dict[str, Any]] = None


class LivenessResponse(BaseModel):
    status: str


class ReadinessResponse(BaseModel):
    status: str
    model_loaded: bool
    database_reachable: bool


class ErrorResponse(BaseModel):
    detail: str
    errors: Optional[List[Dict[str, Any]]] = None
