"""POST /api/v1/chat, POST /api/v1/parse, and the web chat's session and live stream.

While a handoff ticket holds a conversation, the citizen's messages go to the
operator (the bot stays quiet) and the operator's replies arrive on
``GET /api/v1/chat/events`` (server-sent events), for any channel.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, AsyncIterator, Dict, List, Optional

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.requests import HTTPConnection

from assistant.security import chat_session
from assistant import handoff
from assistant.deps import RuntimeDep, SettingsDep, get_runtime
from assistant.live import HEARTBEAT_SECONDS, RETRY_MS, SSE_HEADERS, STREAM_SECONDS, sse
from assistant.security.pii import hash_id
from assistant.schemas import (
    BotMessage,
    ChatRequest,
    ChatResponse,
    ChatSession,
    ErrorResponse,
    ItemScore,
    ParseRequest,
    ParseResponse,
    SENDER_ID_RE,
)
from assistant.config.settings import Settings

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["conversation"])

TOP_ITEMS = 5
# Said when the dialogue produced no reply (e.g. the action server failed).
NO_REPLY = "抱歉，系统暂时有点忙，请稍后再试，或拨打12345政务服务便民热线。"
BAD_TOKEN = "会话已失效，请刷新页面后重试"
ERRORS = {
    400: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
    503: {"model": ErrorResponse},
}
HANDOFF_KEY = "handoff"
REPLY_KEY = "reply"
ANSWER_HANDOFF = "handoff"


def items_of(parse_data: Dict[str, Any]) -> List[ItemScore]:
    return [ItemScore(**item) for item in (parse_data.get("service_items") or [])[:TOP_ITEMS]]


def parse_response(parse_data: Dict[str, Any]) -> ParseResponse:
    intent = parse_data.get("intent") or {}
    entities = [
        {k: e.get(k) for k in ("entity", "value", "start", "end", "confidence_entity", "extractor")}
        for e in parse_data.get("entities") or []
    ]
    for entity in entities:
        entity["confidence"] = entity.pop("confidence_entity")
    return ParseResponse(
        intent={"name": intent.get("name"), "confidence": float(intent.get("confidence") or 0.0)},
        items=items_of(parse_data),
        entities=entities,
    )


def bot_messages(raw: List[Dict[str, Any]]) -> List[BotMessage]:
    messages = []
    for message in raw:
        buttons = message.get("buttons") or None
        if message.get("text") or buttons:
            messages.append(BotMessage(text=message.get("text"), buttons=buttons))
    return messages


def handoff_of(raw: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The ticket an action opened during this turn (sent as a custom message)."""
    for message in raw:
        custom = message.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get(HANDOFF_KEY), dict):
            return custom[HANDOFF_KEY]
    return None


def reply_of(raw: List[Dict[str, Any]]) -> Dict[str, Any]:
    """What the turn's replies were about: ``{"item", "answer"}`` from the dialogue's
    custom messages (the last one wins); a ticket opened makes it a handoff."""
    found: Dict[str, Any] = {"item": None, "answer": None}
    for message in raw:
        custom = message.get("custom")
        if not isinstance(custom, dict):
            continue
        if isinstance(custom.get(REPLY_KEY), dict):
            found = {"item": custom[REPLY_KEY].get("item"), "answer": custom[REPLY_KEY].get("answer")}
        elif isinstance(custom.get(HANDOFF_KEY), dict):
            found = {"item": found["item"], "answer": ANSWER_HANDOFF}
    return found


def check_token(settings: Settings, sender_id: str, token: Optional[str]) -> None:
    if chat_session.needs_token(sender_id) and not chat_session.verify(settings.secret(), sender_id, token):
        raise HTTPException(status_code=403, detail=BAD_TOKEN)


async def relay_to_operator(
    conn: HTTPConnection, settings: Settings, sender_id: str, text: str, ticket: handoff.TicketInfo
) -> Optional[Dict[str, Any]]:
    """The conversation is with a person: store the message for them, the bot stays quiet."""
    db_url = settings.db_url
    if ticket.status == handoff.TICKET_WAITING and handoff.is_cancel_request(text):
        # The notice goes in this reply only (not also on the event stream).
        notice = await asyncio.to_thread(
            handoff.finish_ticket, db_url, ticket.id, status=handoff.TICKET_CANCELLED, operator=None, notify=False
        )
        await conn.app.state.live.bump()
        logger.info("gateway.handoff.cancelled ticket=%s", ticket.id)
        return {"messages": [{"text": notice["text"]}], "intent": None, "items": [], "item": None, "answer": ANSWER_HANDOFF}
    try:
        await asyncio.to_thread(handoff.add_citizen_message, db_url, ticket.id, text)
    except handoff.TicketClosed:  # closed a moment ago: the bot answers again
        return None
    await conn.app.state.live.bump()
    logger.info("gateway.handoff.relayed ticket=%s sender=%s", ticket.id, hash_id(sender_id))
    return {
        "messages": [], "intent": None, "items": [], "item": None, "answer": ANSWER_HANDOFF,
        HANDOFF_KEY: ticket.public(),
    }


async def conversation_turn(
    conn: HTTPConnection, settings: Settings, sender_id: str, text: str, channel: str
) -> Dict[str, Any]:
    """One turn of any channel (chat, voice): relayed to the person holding the
    conversation, or answered by the assistant. The caller checked the token."""
    ticket = await asyncio.to_thread(handoff.relaying_ticket, settings.db_url, sender_id)
    if ticket is not None:
        relayed = await relay_to_operator(conn, settings, sender_id, text, ticket)
        if relayed is not None:
            return relayed
    # Relaying needs no model; answering does (503 while it loads).
    runtime = get_runtime(conn)  # type: ignore[arg-type]
    result = await runtime.chat(sender_id, text, channel)
    intent = (result.parse_data.get("intent") or {}).get("name")
    logger.info(
        "gateway.chat.turn sender=%s channel=%s intent=%s",
        hash_id(sender_id),
        channel,
        intent,
    )
    messages = bot_messages(result.messages)
    if not messages:
        logger.warning("gateway.chat.no_reply sender=%s intent=%s", hash_id(sender_id), intent)
        messages = [BotMessage(text=NO_REPLY)]
    response: Dict[str, Any] = {
        "messages": [m.dict(exclude_none=True) for m in messages],
        "intent": intent,
        "items": [i.dict() for i in items_of(result.parse_data)],
        **reply_of(result.messages),
    }
    opened = handoff_of(result.messages)
    if opened is not None:
        response[HANDOFF_KEY] = opened
        await conn.app.state.live.bump()
    return response


@router.post("/chat", response_model=ChatResponse, responses=ERRORS)
async def chat(body: ChatRequest, request: Request, settings: SettingsDep) -> JSONResponse:
    """One conversation turn: the assistant's replies, the intent and the linked items.

    While a human helper holds the conversation, ``messages`` is empty and
    ``handoff`` says so; the helper's replies arrive on ``/api/v1/chat/events``.
    """
    check_token(settings, body.sender_id, body.token)
    response = await conversation_turn(request, settings, body.sender_id, body.text, body.channel)
    # Built from typed models: skip FastAPI's second validation pass (hot path).
    return JSONResponse(response)


@router.post("/parse", response_model=ParseResponse, responses=ERRORS)
async def parse(body: ParseRequest, runtime: RuntimeDep) -> JSONResponse:
    """Intent, top-5 service items and entities of one message (no conversation state)."""
    return JSONResponse(parse_response(await runtime.parse(body.text)).dict())


@router.post("/chat/sessions", response_model=ChatSession, status_code=201)
async def new_session(settings: SettingsDep) -> ChatSession:
    """A new web-chat conversation: its id and the token that must come with it."""
    sender_id = chat_session.new_sender_id()
    return ChatSession(sender_id=sender_id, token=chat_session.sign(settings.secret(), sender_id))


@router.get("/chat/events", responses={403: {"model": ErrorResponse}, 422: {"model": ErrorResponse}})
async def chat_events(
    request: Request,
    settings: SettingsDep,
    sender_id: str = Query(..., min_length=1, max_length=128),
    token: str = Query(..., min_length=1, max_length=128),
    after: int = Query(0, ge=0),
    last_event_id: Optional[str] = Header(None, max_length=20),
) -> StreamingResponse:
    """Server-sent events: the helper's messages (``message``) and ticket notices, in order.

    ``after``/``Last-Event-ID``: the id of the last message already shown.
    """
    if not SENDER_ID_RE.match(sender_id) or not chat_session.verify(settings.secret(), sender_id, token):
        raise HTTPException(status_code=403, detail=BAD_TOKEN)
    start = max(after, int(last_event_id) if (last_event_id or "").isdigit() else 0)
    feed = request.app.state.live
    db_url = settings.db_url

    async def stream() -> AsyncIterator[str]:
        last = start
        seen = None  # read once at the start, then only when something changed
        began = time.monotonic()
        yield f"retry: {RETRY_MS}\n\n"
        while time.monotonic() - began < STREAM_SECONDS:
            if seen != feed.version:
                seen = feed.version
                rows = await asyncio.to_thread(handoff.messages_for_citizen, db_url, sender_id, last)
                for row in rows:
                    last = row["id"]
                    yield sse("message", row, event_id=row["id"])
            if await request.is_disconnected():
                return
            if await feed.wait(seen, timeout=HEARTBEAT_SECONDS) == seen:
                yield ": keep-alive\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)
