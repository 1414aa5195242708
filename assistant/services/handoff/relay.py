"""The relay of a handoff: what the citizen says while a ticket holds the conversation
(instead of reaching the bot), and what the operator answers, stored in order for the
citizen's channel and the desk (through the storage spool while the database is
unreachable). Synchronous, like ``tickets``."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence

from sqlalchemy import func, select

from assistant.services.handoff.tickets import TicketClosed, TicketNotFound, message_dict, ticket_order
from assistant.storage import spool
from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import (
    OPEN_TICKET_STATUSES,
    ROLE_CITIZEN,
    ROLE_OPERATOR,
    ROLE_SYSTEM,
    TICKET_ACTIVE,
    HandoffMessage,
    HandoffTicket,
)

MAX_MESSAGE_CHARS = 2000
KIND_MESSAGE = "handoff.message"  # the storage spool's kind of handoff messages
# What a citizen says to leave the queue and talk to the bot again.
CANCEL_RE = re.compile(r"^\s*(取消人工|不用人工了?|不要人工了?|返回(智能)?助手|回到(智能)?助手|取消转人工)\s*[。.!！]?\s*$")


def is_cancel_request(text: str) -> bool:
    return bool(CANCEL_RE.match(text))


def add_citizen_message(db_url: str, ticket_id: int, text: str) -> Dict[str, Any]:
    return _add_message(db_url, ticket_id, ROLE_CITIZEN, text, author=None)


def _add_message(db_url: str, ticket_id: int, role: str, text: str, author: Optional[str]) -> Dict[str, Any]:
    """Store a message of the ticket (TicketClosed once it is finished). While the
    database is unreachable it waits in the spool, in order: its ``id`` is None."""
    payload = {"ticket_id": ticket_id, "role": role, "text": text.strip()[:MAX_MESSAGE_CHARS], "author": author,
               "at": spool.now_iso()}
    kept = spool.keep(db_url, KIND_MESSAGE, payload, order_key=ticket_order(ticket_id))
    if kept.spooled:
        return {"id": None, "ticket_id": ticket_id, "role": role, "text": payload["text"], "author": author,
                "at": f"{payload['at']}+00:00"}
    return kept.result


def _store_message(session, payload: Dict[str, Any], replaying: bool) -> Dict[str, Any]:
    ticket = session.get(HandoffTicket, payload["ticket_id"])
    if ticket is None:
        raise TicketNotFound(payload["ticket_id"])
    is_open = ticket.status in OPEN_TICKET_STATUSES
    if not is_open and not replaying:
        raise TicketClosed(ticket.id)
    row = HandoffMessage(
        ticket_id=ticket.id,
        conversation_id=ticket.conversation_id,
        role=payload["role"],
        text=payload["text"],
        author=payload["author"],
        created_at=spool.at_of(payload),
    )
    session.add(row)
    if is_open:  # said while it was open, replayed after it closed: stored, nothing else changes
        if payload["role"] == ROLE_OPERATOR:
            ticket.status = TICKET_ACTIVE
            ticket.deferred = False
            ticket.operator = payload["author"]
        ticket.updated_at = utcnow()
    session.flush()
    return message_dict(row)


spool.register(KIND_MESSAGE, _store_message)


def operator_reply(db_url: str, ticket_id: int, operator: str, text: str) -> Dict[str, Any]:
    """Store the operator's message; the ticket becomes active and holds the conversation."""
    return _add_message(db_url, ticket_id, ROLE_OPERATOR, text, author=operator)


def messages_for_citizen(
    db_url: str, conversation_id: str, after_id: int = 0, limit: int = 100
) -> List[Dict[str, Any]]:
    """Operator and system messages to the conversation after ``after_id``."""
    with session_factory(db_url)() as session:
        rows = (
            session.execute(
                select(HandoffMessage)
                .where(
                    HandoffMessage.conversation_id == conversation_id,
                    HandoffMessage.role.in_((ROLE_OPERATOR, ROLE_SYSTEM)),
                    HandoffMessage.id > after_id,
                )
                .order_by(HandoffMessage.id)
                .limit(limit)
            )
            .scalars()
            .all()
        )
        return [message_dict(m) for m in rows]


def messages_after(db_url: str, after_id: int, limit: int = 200) -> List[Dict[str, Any]]:
    """Every handoff message after ``after_id`` (the desk's live feed)."""
    with session_factory(db_url)() as session:
        rows = (
            session.execute(
                select(HandoffMessage)
                .where(HandoffMessage.id > after_id)
                .order_by(HandoffMessage.id)
                .limit(limit)
            )
            .scalars()
            .all()
        )
        return [message_dict(m) for m in rows]


def last_message_id(db_url: str) -> int:
    with session_factory(db_url)() as session:
        return int(session.execute(select(func.max(HandoffMessage.id))).scalar() or 0)


def conversation_last_id(db_url: str, conversation_id: str, roles: Sequence[str]) -> int:
    with session_factory(db_url)() as session:
        value = session.execute(
            select(func.max(HandoffMessage.id)).where(
                HandoffMessage.conversation_id == conversation_id, HandoffMessage.role.in_(roles)
            )
        ).scalar()
        return int(value or 0)
