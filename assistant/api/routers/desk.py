"""The operator desk: the handoff queue, a ticket's conversation, replies, close and
hand back, suggestion marks, and a live event stream. Every route needs a desk
session (``OperatorDep``: unsafe methods also need the CSRF header).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import AsyncIterator, Awaitable, Callable, Dict, Optional

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field, StrictStr, validator

from assistant.api.deps import MAX_ROW_ID, SettingsDep
from assistant.api.paths import STATIC_DIR
from assistant.security.access import NOT_LOGGED_IN, OperatorDep
from assistant.security.audit import record_audit
from assistant.security.pii import mask_pii
from assistant.security.sessions import Principal, principal_from_request
from assistant.services.handoff import relay, tickets
from assistant.services.live import HEARTBEAT_SECONDS, RETRY_MS, SSE_HEADERS, STREAM_SECONDS, sse
from assistant.storage.database import session_factory
from assistant.storage.tables import MARKS, TICKET_CLOSED, TICKET_HANDED_BACK, SuggestionMark

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/desk", tags=["desk"])
page_router = APIRouter(include_in_schema=False)

NO_TICKET = "没有找到该工单"
TICKET_GONE = "该工单已结束"
EMPTY_REPLY = "回复不能为空"

# Channels that cannot read the relay's table themselves (e.g. WeChat) register a
# pusher on ``app.state.pushers[channel]``: ``await push(conversation_id, text)``.
Pusher = Callable[[str, str], Awaitable[None]]
TicketId = Path(..., ge=1, le=MAX_ROW_ID)


class ReplyBody(BaseModel):
    text: StrictStr = Field(..., max_length=relay.MAX_MESSAGE_CHARS)

    class Config:
        extra = "forbid"

    @validator("text")
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(EMPTY_REPLY)
        return value


class MarkBody(BaseModel):
    query: StrictStr = Field(..., min_length=1, max_length=2000)
    rank: int = Field(..., ge=1, le=10)
    mark: StrictStr = Field(..., enum=list(MARKS))
    item_id: Optional[StrictStr] = Field(None, max_length=64)
    question_type: Optional[StrictStr] = Field(None, max_length=32)
    confidence: Optional[float] = Field(None, ge=0, le=1)
    ticket_id: Optional[int] = Field(None, ge=1, le=MAX_ROW_ID)

    class Config:
        extra = "forbid"

    @validator("mark")
    def _mark(cls, value: str) -> str:
        if value not in MARKS:
            raise ValueError(f"mark 只能是 {', '.join(MARKS)} 之一")
        return value


def _audit(settings, principal: Principal, action: str, ticket_id: int, channel: Optional[str], result: str) -> None:
    record_audit(
        settings.db_url,
        actor=principal.actor,
        action=action,
        subject=f"ticket:{ticket_id}",
        channel=channel,
        result=result,
    )


async def _push(request: Request, ticket: Dict, text: str) -> None:
    pusher: Optional[Pusher] = getattr(request.app.state, "pushers", {}).get(ticket.get("channel"))
    if pusher is None:
        return
    try:
        await pusher(ticket["conversation_id"], text)
    except Exception:  # stored already: the citizen can still read it on the channel's next turn
        logger.exception("desk.push.failed channel=%s ticket=%s", ticket.get("channel"), ticket["id"])


def _ticket_or_404(db_url: str, ticket_id: int) -> Dict:
    try:
        return tickets.get_ticket(db_url, ticket_id)
    except tickets.TicketNotFound:
        raise HTTPException(status_code=404, detail=NO_TICKET) from None


@router.get("/queue")
async def queue(principal: OperatorDep, settings: SettingsDep) -> Dict:
    """Open tickets (waiting and active), the newest first."""
    return {"tickets": await asyncio.to_thread(tickets.list_queue, settings.db_url)}


@router.get("/tickets/{ticket_id}")
async def ticket(principal: OperatorDep, settings: SettingsDep, ticket_id: int = TicketId) -> Dict:
    """A ticket: its summary and the whole handoff conversation (an audited read)."""
    found = await asyncio.to_thread(_ticket_or_404, settings.db_url, ticket_id)
    await asyncio.to_thread(_audit, settings, principal, "desk.ticket.view", ticket_id, found["channel"], "ok")
    return found


@router.post("/tickets/{ticket_id}/messages", status_code=201)
async def reply(
    body: ReplyBody, request: Request, principal: OperatorDep, settings: SettingsDep, ticket_id: int = TicketId
) -> Dict:
    """Send a reply to the citizen (stored, then pushed to their channel)."""
    found = await asyncio.to_thread(_ticket_or_404, settings.db_url, ticket_id)
    try:
        message = await asyncio.to_thread(
            relay.operator_reply, settings.db_url, ticket_id, principal.username, body.text
        )
    except tickets.TicketClosed:
        raise HTTPException(status_code=409, detail=TICKET_GONE) from None
    await request.app.state.live.bump()
    await _push(request, found, message["text"])
    logger.info("desk.reply.sent ticket=%s user=%s", ticket_id, principal.username)
    return message


async def _finish(ticket_id: int, status: str, request: Request, principal: Principal, settings) -> Dict:
    found = await asyncio.to_thread(_ticket_or_404, settings.db_url, ticket_id)
    try:
        notice = await asyncio.to_thread(
            tickets.finish_ticket, settings.db_url, ticket_id, status=status, operator=principal.username
        )
    except tickets.TicketClosed:
        raise HTTPException(status_code=409, detail=TICKET_GONE) from None
    await asyncio.to_thread(_audit, settings, principal, f"desk.ticket.{status}", ticket_id, found["channel"], "ok")
    await request.app.state.live.bump()
    await _push(request, found, notice["text"])
    return await asyncio.to_thread(tickets.get_ticket, settings.db_url, ticket_id)


@router.post("/tickets/{ticket_id}/close")
async def close(request: Request, principal: OperatorDep, settings: SettingsDep, ticket_id: int = TicketId) -> Dict:
    """End the human conversation; the bot answers the citizen's next message."""
    return await _finish(ticket_id, TICKET_CLOSED, request, principal, settings)


@router.post("/tickets/{ticket_id}/handback")
async def hand_back(
    request: Request, principal: OperatorDep, settings: SettingsDep, ticket_id: int = TicketId
) -> Dict:
    """Hand the conversation back to the bot."""
    return await _finish(ticket_id, TICKET_HANDED_BACK, request, principal, settings)


def _store_mark(db_url: str, username: str, body: MarkBody) -> int:
    with session_factory(db_url)() as session, session.begin():
        row = SuggestionMark(
            operator=username,
            ticket_id=body.ticket_id,
            query=mask_pii(body.query),
            rank=body.rank,
            item_id=body.item_id,
            question_type=body.question_type,
            confidence=body.confidence,
            mark=body.mark,
        )
        session.add(row)
        session.flush()
        return row.id


@router.post("/marks", status_code=201)
async def mark(body: MarkBody, principal: OperatorDep, settings: SettingsDep) -> Dict:
    """The operator's verdict on a suggested answer: used, edited or wrong."""
    row_id = await asyncio.to_thread(_store_mark, settings.db_url, principal.username, body)
    return {"id": row_id}


@router.get("/events")
async def events(
    request: Request,
    settings: SettingsDep,
    after: Optional[int] = Query(None, ge=0, le=MAX_ROW_ID),
    last_event_id: Optional[str] = Header(None, max_length=20),
) -> StreamingResponse:
    """Server-sent events for the desk: ``queue`` (the open tickets, whenever they
    change) and ``message`` (every handoff message after ``after``/``Last-Event-ID``,
    default: from now on)."""
    principal = await asyncio.to_thread(principal_from_request, request)
    if principal is None:
        raise HTTPException(status_code=401, detail=NOT_LOGGED_IN)
    feed = request.app.state.live
    db_url = settings.db_url

    async def stream() -> AsyncIterator[str]:
        if last_event_id and last_event_id.isdigit():
            last = min(int(last_event_id), MAX_ROW_ID)
        elif after is not None:
            last = after
        else:
            last = await asyncio.to_thread(relay.last_message_id, db_url)
        seen = -1
        began = time.monotonic()
        yield f"retry: {RETRY_MS}\n\n"
        while time.monotonic() - began < STREAM_SECONDS:
            if seen != feed.version or seen == -1:
                seen = feed.version
                queue = await asyncio.to_thread(tickets.list_queue, db_url)
                yield sse("queue", {"tickets": queue})
                for row in await asyncio.to_thread(relay.messages_after, db_url, last):
                    last = row["id"]
                    yield sse("message", row, event_id=row["id"])
            if await request.is_disconnected():
                return
            version = await feed.wait(seen, timeout=HEARTBEAT_SECONDS)
            if version == seen:
                yield ": keep-alive\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)


@page_router.get("/desk")
async def desk_page(request: Request) -> FileResponse:
    return FileResponse(STATIC_DIR / "desk" / "index.html")
