"""POST /api/v1/chat, POST /api/v1/parse, and the web chat's session and live stream.

While a handoff ticket holds a conversation, the citizen's messages go to the
operator (the bot stays quiet; ``assistant.services.conversation``) and the
operator's replies arrive on ``GET /api/v1/chat/events`` (server-sent events), for
any channel. The same stream brings the conversation's notices (a subscribed
application's status changed, a reminder is due: event ``notice``), each once:
live while the chat is open, or when the page opens the stream again on return.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Dict, Optional

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from assistant.api.deps import BAD_TOKEN, MAX_ROW_ID, RuntimeDep, SettingsDep, admit_conversation
from assistant.api.schemas import (
    SENDER_ID_RE,
    ChatRequest,
    ChatResponse,
    ChatSession,
    ErrorResponse,
    ParseRequest,
    ParseResponse,
)
from assistant.security import chat_session
from assistant.services.conversation import conversation_turn, items_of
from assistant.services.handoff import relay
from assistant.services.progress import webchat
from assistant.services.live import HEARTBEAT_SECONDS, RETRY_MS, SSE_HEADERS, STREAM_SECONDS, sse

router = APIRouter(prefix="/api/v1", tags=["conversation"])

ERRORS = {
    400: {"model": ErrorResponse},
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
    503: {"model": ErrorResponse},
}


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


@router.post("/chat", response_model=ChatResponse, responses=ERRORS)
async def chat(body: ChatRequest, request: Request, settings: SettingsDep) -> JSONResponse:
    """One conversation turn: the assistant's replies, the intent and the linked items.

    While a human helper holds the conversation, ``messages`` is empty and
    ``handoff`` says so; the helper's replies arrive on ``/api/v1/chat/events``.
    """
    await admit_conversation(request, settings, body.sender_id, body.token)
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
    after: int = Query(0, ge=0, le=MAX_ROW_ID),
    last_event_id: Optional[str] = Header(None, max_length=20),
) -> StreamingResponse:
    """Server-sent events: the helper's messages (``message``) and ticket notices, in
    order, and the conversation's status notices and reminders (``notice``, once each).

    ``after``/``Last-Event-ID``: the id of the last message already shown.
    """
    if not SENDER_ID_RE.match(sender_id) or not chat_session.verify(settings.secret(), sender_id, token):
        raise HTTPException(status_code=403, detail=BAD_TOKEN)
    start = max(after, min(int(last_event_id), MAX_ROW_ID) if (last_event_id or "").isdigit() else 0)
    feed = request.app.state.live
    db_url = settings.db_url
    key = webchat.conversation_key(settings.secret(), sender_id)

    async def stream() -> AsyncIterator[str]:
        last = start
        seen = None  # read once at the start, then only when something changed
        seen_notice = None
        began = time.monotonic()
        yield f"retry: {RETRY_MS}\n\n"
        while time.monotonic() - began < STREAM_SECONDS:
            if seen != feed.version:
                seen = feed.version
                rows = await asyncio.to_thread(relay.messages_for_citizen, db_url, sender_id, last)
                for row in rows:
                    last = row["id"]
                    yield sse("message", row, event_id=row["id"])
            if await request.is_disconnected():
                return
            if seen_notice != feed.notice_version(key):
                seen_notice = feed.notice_version(key)
                for notice in await asyncio.to_thread(webchat.take_pending, db_url, key):
                    yield sse("notice", notice)
            if not await feed.wait_any(seen, key, seen_notice, timeout=HEARTBEAT_SECONDS):
                yield ": keep-alive\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)
