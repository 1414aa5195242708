"""Tickets saved from calls: personal data sealed at rest, every read audited, purged
after ``call_retention_days`` (blocking: call from async code with ``asyncio.to_thread``)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from sqlalchemy import select, update

from assistant.config.settings import Settings
from assistant.security.audit import operator_actor, record_audit
from assistant.security.pii import mask_pii
from assistant.security.sealed import seal, unseal
from assistant.services.callmode.draft import mask_name
from assistant.storage.call_tables import CallTicket
from assistant.storage.database import session_factory, utcnow

logger = logging.getLogger(__name__)

PURPOSE = "call-ticket"
AUDIT_SAVE = "desk.call.save"
AUDIT_VIEW = "desk.call.view"
AUDIT_START = "desk.call.start"
AUDIT_PURGE = "desk.call.purge"
RETENTION_ACTOR = "system:retention"
MAX_LIST = 200
SEALED_FIELDS = ("caller_name", "phone", "address", "summary", "answer")


class CallTicketNotFound(LookupError):
    pass


@dataclass
class SavedTicket:
    """What the operator saves (already validated and bounded by the router)."""

    caller_name: Optional[str]
    phone: Optional[str]
    address: Optional[str]
    item_id: Optional[str]
    question_type: Optional[str]
    category: str
    summary: str
    answer: str


def mask_phone(phone: Optional[str]) -> Optional[str]:
    if not phone:
        return phone
    return phone[:3] + "*" * max(0, len(phone) - 7) + phone[-4:] if len(phone) > 7 else "*" * len(phone)


def audit(settings: Settings, username: str, action: str, ticket_id: Optional[int] = None) -> None:
    record_audit(
        settings.db_url,
        actor=operator_actor(username),
        action=action,
        subject=f"call:{ticket_id}" if ticket_id else None,
        channel="desk",
        result="ok",
    )


def save_ticket(
    settings: Settings, username: str, ticket: SavedTicket, transcript: List[Dict[str, Any]], call_seconds: float
) -> int:
    """Seal and store a call's ticket; audited. Returns its id."""
    secret = settings.secret()
    fields = {name: getattr(ticket, name) for name in SEALED_FIELDS}
    with session_factory(settings.db_url)() as session, session.begin():
        row = CallTicket(
            operator=username,
            created_at=utcnow(),
            call_seconds=int(call_seconds),
            item_id=ticket.item_id,
            question_type=ticket.question_type,
            category=ticket.category,
            phone_masked=mask_phone(ticket.phone),
            name_masked=mask_name(ticket.caller_name),
            fields_sealed=seal(secret, PURPOSE, json.dumps(fields, ensure_ascii=False)),
            transcript_sealed=seal(secret, PURPOSE, json.dumps(transcript, ensure_ascii=False)),
        )
        session.add(row)
        session.flush()
        ticket_id = int(row.id)
    audit(settings, username, AUDIT_SAVE, ticket_id)
    logger.info(
        "desk.call.saved id=%s operator=%s item=%s category=%s phrases=%d",
        ticket_id, username, ticket.item_id, ticket.category, len(transcript),
    )
    return ticket_id


def _listed(row: CallTicket) -> Dict[str, Any]:
    return {
        "id": row.id,
        "operator": row.operator,
        "created_at": row.created_at.isoformat() + "Z",
        "call_seconds": row.call_seconds,
        "item_id": row.item_id,
        "question_type": row.question_type,
        "category": row.category,
        "phone": row.phone_masked,
        "caller_name": row.name_masked,
        "purged": row.fields_sealed is None,
    }


def list_tickets(db_url: str, limit: int = 50) -> List[Dict[str, Any]]:
    """The newest saved call tickets, masked (no sealed data is opened)."""
    with session_factory(db_url)() as session:
        rows = session.execute(
            select(CallTicket).order_by(CallTicket.id.desc()).limit(max(1, min(limit, MAX_LIST)))
        ).scalars().all()
        return [_listed(r) for r in rows]


def open_ticket(settings: Settings, username: str, ticket_id: int) -> Dict[str, Any]:
    """A saved ticket with its data and transcript opened (an audited read)."""
    secret = settings.secret()
    with session_factory(settings.db_url)() as session:
        row = session.get(CallTicket, ticket_id)
        if row is None:
            raise CallTicketNotFound(ticket_id)
        body = _listed(row)
        fields = json.loads(unseal(secret, PURPOSE, row.fields_sealed)) if row.fields_sealed else {}
        transcript = json.loads(unseal(secret, PURPOSE, row.transcript_sealed)) if row.transcript_sealed else []
    audit(settings, username, AUDIT_VIEW, ticket_id)
    body.update(fields)
    body["transcript"] = transcript
    return body


def purge(settings: Settings, now: Optional[dt.datetime] = None) -> int:
    """Delete the personal data of tickets older than ``call_retention_days``; how many."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(days=settings.call_retention_days)
    with session_factory(settings.db_url)() as session, session.begin():
        result = session.execute(
            update(CallTicket)
            .where(CallTicket.created_at < cutoff, CallTicket.fields_sealed.is_not(None))
            .values(fields_sealed=None, transcript_sealed=None, phone_masked=None, name_masked=None, purged_at=now)
        )
        count = int(result.rowcount or 0)
    if count:
        record_audit(settings.db_url, actor=RETENTION_ACTOR, action=AUDIT_PURGE, channel="desk", result=str(count))
        logger.info("desk.call.purged count=%d days=%d", count, settings.call_retention_days)
    return count


def masked_line(text: str) -> str:
    """A phrase as it may appear in a log line (personal data masked, one line)."""
    return mask_pii(" ".join(text.split()))
