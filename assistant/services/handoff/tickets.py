"""Human handoff tickets: opened for a conversation, queued, taken, finished.

Channel-agnostic: a ticket belongs to a conversation id; what the citizen says
while a ticket holds the conversation is stored here instead of reaching the
bot, and what the operator says is stored here and pushed to the citizen's
channel (the web chat streams it; other channels register a pusher).

The action server opens tickets (it has the conversation for the summary); the
gateway relays and serves the desk. Both share the database, so everything is
stored before it is announced, and nothing is lost when a process restarts; while
the database restarts, tickets and messages wait in the storage spool, in order.
All functions here are synchronous: async callers wrap them in ``asyncio.to_thread``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from sqlalchemy import func, select

from assistant.config.hours import ServiceHours
from assistant.storage import spool
from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import (
    OPEN_TICKET_STATUSES,
    ROLE_SYSTEM,
    TICKET_CANCELLED,
    TICKET_CLOSED,
    TICKET_HANDED_BACK,
    TICKET_WAITING,
    HandoffMessage,
    HandoffTicket,
)

CLOSED_NOTICE = "本次人工服务已结束，感谢您的耐心。您可以继续向我提问。"
HANDED_BACK_NOTICE = "工作人员已把对话转回智能助手。您可以继续向我提问。"
CANCELLED_NOTICE = "已取消人工服务。您可以继续向我提问。"
FINAL_NOTICES = {
    TICKET_CLOSED: CLOSED_NOTICE,
    TICKET_HANDED_BACK: HANDED_BACK_NOTICE,
    TICKET_CANCELLED: CANCELLED_NOTICE,
}
# Kinds of the storage spool (tickets opened, finished) and their order keys.
KIND_TICKET = "handoff.ticket"
KIND_FINISH = "handoff.finish"


def conversation_order(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


def ticket_order(ticket_id: int) -> str:
    return f"ticket:{ticket_id}"


class TicketNotFound(LookupError):
    pass


class TicketClosed(RuntimeError):
    """The ticket is no longer open (someone closed or handed it back)."""


# -------------------------------------------------------------------- views
# A complaint, or a message the assistant could not understand twice, is followed up by
# a person, but the ticket does not hold the conversation (the assistant keeps answering)
# until an operator replies or the citizen asks for one.
REASON_COMPLAINT = "complaint"
REASON_FALLBACK = "fallback"
REASON_REQUEST = "request_human"
FOLLOW_UP_REASONS = (REASON_COMPLAINT, REASON_FALLBACK)


@dataclass(frozen=True)
class TicketInfo:
    id: int
    conversation_id: str
    channel: Optional[str]
    status: str
    deferred: bool
    position: Optional[int]  # place in the queue while waiting (1 = next)
    created: bool  # False when the conversation already had an open ticket
    reason: Optional[str] = None

    @property
    def follow_up(self) -> bool:
        """A complaint waiting for a person: it does not hold the conversation."""
        return self.status == TICKET_WAITING and self.reason in FOLLOW_UP_REASONS

    def public(self) -> Dict[str, Any]:
        """What a citizen's channel may see about the ticket."""
        return {
            "ticket_id": self.id,
            "status": self.status,
            "deferred": self.deferred,
            "position": self.position,
            "follow_up": self.follow_up,
        }


def _iso(value: Optional[dt.datetime]) -> Optional[str]:
    return value.replace(tzinfo=dt.timezone.utc).isoformat() if value else None


def message_dict(row: HandoffMessage) -> Dict[str, Any]:
    return {
        "id": row.id,
        "ticket_id": row.ticket_id,
        "role": row.role,
        "text": row.text,
        "author": row.author,
        "at": _iso(row.created_at),
    }


def _position(session, ticket: HandoffTicket) -> Optional[int]:
    if ticket.status != TICKET_WAITING:
        return None
    ahead = session.execute(
        select(func.count(HandoffTicket.id)).where(
            HandoffTicket.status == TICKET_WAITING,
            HandoffTicket.id < ticket.id,
        )
    ).scalar_one()
    return int(ahead) + 1


def _info(session, ticket: HandoffTicket, created: bool) -> TicketInfo:
    return TicketInfo(
        id=ticket.id,
        conversation_id=ticket.conversation_id,
        channel=ticket.channel,
        status=ticket.status,
        deferred=bool(ticket.deferred),
        position=_position(session, ticket),
        created=created,
        reason=ticket.reason,
    )


def _open_ticket_row(session, conversation_id: str) -> Optional[HandoffTicket]:
    return (
        session.execute(
            select(HandoffTicket)
            .where(
                HandoffTicket.conversation_id == conversation_id,
                HandoffTicket.status.in_(OPEN_TICKET_STATUSES),
            )
            .order_by(HandoffTicket.id.desc())
            .limit(1)
        )
        .scalars()
        .first()
    )


# ------------------------------------------------------------------ tickets
def open_ticket_by_id(session, ticket_id: int) -> HandoffTicket:
    """The ticket ``ticket_id`` while it is open; TicketNotFound or TicketClosed otherwise."""
    ticket = session.get(HandoffTicket, ticket_id)
    if ticket is None:
        raise TicketNotFound(ticket_id)
    if ticket.status not in OPEN_TICKET_STATUSES:
        raise TicketClosed(ticket_id)
    return ticket


def open_ticket_in(
    session,
    *,
    conversation_id: str,
    channel: Optional[str],
    reason: str,
    item_id: Optional[str],
    summary: Dict[str, Any],
    deferred: bool,
) -> Tuple[HandoffTicket, bool]:
    """The conversation's open ticket (its summary refreshed), or a new one, inside the
    caller's transaction: ``(ticket, created)``. The caller commits."""
    summary_text = json.dumps(summary, ensure_ascii=False)
    existing = _open_ticket_row(session, conversation_id)
    if existing is not None:
        existing.summary = summary_text
        if reason == REASON_REQUEST and existing.reason in FOLLOW_UP_REASONS:
            existing.reason = REASON_REQUEST  # now the citizen wants a person: it holds
        return existing, False
    ticket = HandoffTicket(
        conversation_id=conversation_id,
        channel=channel,
        reason=reason,
        status=TICKET_WAITING,
        deferred=deferred,
        item_id=item_id,
        summary=summary_text,
    )
    session.add(ticket)
    session.flush()
    return ticket, True


def open_ticket(
    db_url: str,
    *,
    conversation_id: str,
    channel: Optional[str],
    reason: str,
    item_id: Optional[str],
    summary: Dict[str, Any],
    hours: ServiceHours,
    now: Optional[dt.datetime] = None,
) -> Optional[TicketInfo]:
    """Open a ticket for the conversation, or return the one already open. None while
    the database is unreachable: the request waits in the spool (in order with the
    conversation's other requests) and the ticket opens once the database is back."""
    payload = {
        "conversation_id": conversation_id, "channel": channel, "reason": reason, "item_id": item_id,
        "summary": summary, "deferred": not hours.is_open(now), "at": spool.now_iso(),
    }
    return spool.keep(db_url, KIND_TICKET, payload, order_key=conversation_order(conversation_id)).result


def _open_kept(session, payload: Dict[str, Any], replaying: bool) -> TicketInfo:
    ticket, created = open_ticket_in(
        session,
        conversation_id=payload["conversation_id"],
        channel=payload["channel"],
        reason=payload["reason"],
        item_id=payload["item_id"],
        summary=payload["summary"],
        deferred=payload["deferred"],
    )
    if created and replaying:  # queued by the time it was asked for
        ticket.created_at = spool.at_of(payload)
        session.flush()
    return _info(session, ticket, created=created)


def relaying_ticket(db_url: str, conversation_id: str) -> Optional[TicketInfo]:
    """The ticket that holds the conversation (the bot stays quiet), if any.

    A deferred ticket (opened outside service hours) and a complaint do not hold the
    conversation until an operator replies to it.
    """
    with session_factory(db_url)() as session:
        ticket = _open_ticket_row(session, conversation_id)
        if ticket is None:
            return None
        info = _info(session, ticket, created=False)
        if info.status == TICKET_WAITING and (info.deferred or info.follow_up):
            return None
        return info


def open_ticket_of(db_url: str, conversation_id: str) -> Optional[TicketInfo]:
    """The conversation's open ticket, deferred or not."""
    with session_factory(db_url)() as session:
        ticket = _open_ticket_row(session, conversation_id)
        return _info(session, ticket, created=False) if ticket else None


def finish_ticket(
    db_url: str, ticket_id: int, *, status: str, operator: Optional[str], notify: bool = True
) -> Dict[str, Any]:
    """Close, hand back or cancel a ticket; the notice to the citizen is returned and,
    with ``notify``, stored as a system message for the citizen's channel. While the
    database is unreachable the change waits in the spool (the notice's ``id`` is None)."""
    if status not in FINAL_NOTICES:
        raise ValueError(f"not a final status: {status}")
    payload = {"ticket_id": ticket_id, "status": status, "operator": operator, "notify": notify,
               "at": spool.now_iso()}
    kept = spool.keep(db_url, KIND_FINISH, payload, order_key=ticket_order(ticket_id))
    if kept.spooled:
        return {"id": None, "ticket_id": ticket_id, "text": FINAL_NOTICES[status], "role": ROLE_SYSTEM}
    return kept.result


def _finish_kept(session, payload: Dict[str, Any], replaying: bool) -> Optional[Dict[str, Any]]:
    status, operator = payload["status"], payload["operator"]
    if replaying:  # finished (or gone) in the meantime: nothing left to do
        ticket = session.get(HandoffTicket, payload["ticket_id"])
        if ticket is None or ticket.status not in OPEN_TICKET_STATUSES:
            return None
    ticket = open_ticket_by_id(session, payload["ticket_id"])
    now = utcnow()
    row = HandoffMessage(
        ticket_id=ticket.id,
        conversation_id=ticket.conversation_id,
        role=ROLE_SYSTEM,
        text=FINAL_NOTICES[status],
        author=operator,
        created_at=spool.at_of(payload),
    )
    if payload["notify"]:
        session.add(row)
    ticket.status = status
    ticket.operator = operator or ticket.operator
    ticket.closed_at = now
    ticket.updated_at = now
    session.flush()
    return message_dict(row) if payload["notify"] else {"id": None, "text": row.text, "role": ROLE_SYSTEM}


spool.register(KIND_TICKET, _open_kept)
spool.register(KIND_FINISH, _finish_kept)


# ------------------------------------------------------------------ reading
def ticket_dict(session, ticket: HandoffTicket, now: Optional[dt.datetime] = None) -> Dict[str, Any]:
    now = now or utcnow()
    try:
        summary = json.loads(ticket.summary or "{}")
    except ValueError:
        summary = {}
    return {
        "id": ticket.id,
        "conversation_id": ticket.conversation_id,
        "channel": ticket.channel,
        "reason": ticket.reason,
        "status": ticket.status,
        "deferred": bool(ticket.deferred),
        "item_id": ticket.item_id,
        "summary": summary,
        "operator": ticket.operator,
        "created_at": _iso(ticket.created_at),
        "updated_at": _iso(ticket.updated_at),
        "waiting_seconds": int((now - ticket.created_at).total_seconds()),
        "position": _position(session, ticket),
    }


def list_queue(db_url: str) -> List[Dict[str, Any]]:
    """Open tickets, the newest first, with the last message of each."""
    with session_factory(db_url)() as session:
        tickets = (
            session.execute(
                select(HandoffTicket)
                .where(HandoffTicket.status.in_(OPEN_TICKET_STATUSES))
                .order_by(HandoffTicket.created_at.desc(), HandoffTicket.id.desc())
            )
            .scalars()
            .all()
        )
        now = utcnow()
        rows = []
        for ticket in tickets:
            last = (
                session.execute(
                    select(HandoffMessage)
                    .where(HandoffMessage.ticket_id == ticket.id)
                    .order_by(HandoffMessage.id.desc())
                    .limit(1)
                )
                .scalars()
                .first()
            )
            row = ticket_dict(session, ticket, now)
            row["last_message"] = message_dict(last) if last else None
            rows.append(row)
        return rows


def get_ticket(db_url: str, ticket_id: int) -> Dict[str, Any]:
    """A ticket with its summary and every message."""
    with session_factory(db_url)() as session:
        ticket = session.get(HandoffTicket, ticket_id)
        if ticket is None:
            raise TicketNotFound(ticket_id)
        result = ticket_dict(session, ticket)
        messages = (
            session.execute(
                select(HandoffMessage)
                .where(HandoffMessage.ticket_id == ticket_id)
                .order_by(HandoffMessage.id)
            )
            .scalars()
            .all()
        )
        result["messages"] = [message_dict(m) for m in messages]
        return result


def change_marker(db_url: str) -> Tuple[int, str, int]:
    """Changes whenever a message is added or a ticket opens or changes state.

    Cheap enough to poll every second; it sees changes made by other processes
    (the action server opens tickets) and other gateway replicas.
    """
    with session_factory(db_url)() as session:
        last_message = session.execute(select(func.max(HandoffMessage.id))).scalar() or 0
        last_update, count = session.execute(
            select(func.max(HandoffTicket.updated_at), func.count(HandoffTicket.id))
        ).one()
        return int(last_message), str(last_update or ""), int(count)
