"""The audit log: who looked up or changed personal data, when, how, with what result.

Rows never hold raw phone or ID numbers: citizens appear as ``citizen:<hash of the
conversation id>``, operators as ``operator:<username>``, and a value that
:func:`assistant.security.pii.mask_pii` would mask is refused with ``ValueError``.
Rows are written through the storage spool: while the database is unreachable they
wait there (in order, with their own time) and none is lost.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from typing import Any, Dict, List, Optional

from sqlalchemy import select

from assistant.security.pii import hash_id, mask_pii
from assistant.storage import spool
from assistant.storage.database import session_factory
from assistant.storage.tables import AuditRecord

logger = logging.getLogger(__name__)

# Column sizes of ``audit_log``.
_LIMITS = {"actor": 128, "action": 64, "subject": 64, "channel": 32, "result": 32}
MAX_LIST = 1000
KIND_AUDIT = "audit"  # the spool's kind of audit rows
# What citizen_actor returns: a hash may, rarely, hold 11 digits in a row.
_CITIZEN_ACTOR_RE = re.compile(r"citizen:[0-9a-f]{12}")


def citizen_actor(conversation_id: str) -> str:
    """The actor of a citizen's conversation, without the conversation id itself."""
    return f"citizen:{hash_id(conversation_id)}"


def operator_actor(username: str) -> str:
    return f"operator:{username}"


def _holds_pii(name: str, value: str) -> bool:
    if name == "actor" and _CITIZEN_ACTOR_RE.fullmatch(value):
        return False
    # mask_pii keeps application and kiosk receipt numbers (no personal data, even when
    # their digits look like a mobile number).
    return mask_pii(value) != value


def _check(**fields: Optional[str]) -> None:
    for name, value in fields.items():
        if value is None:
            if name in ("actor", "action", "result"):
                raise ValueError(f"audit {name} is required")
            continue
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"audit {name} must be a non-empty string")
        if len(value) > _LIMITS[name]:
            raise ValueError(f"audit {name} longer than {_LIMITS[name]} characters")
        if _holds_pii(name, value):
            raise ValueError(f"audit {name} must not contain personal data (phone or ID number, name)")


def record_audit(
    db_url: str,
    *,
    actor: str,
    action: str,
    subject: Optional[str] = None,
    channel: Optional[str] = None,
    result: str,
) -> Optional[int]:
    """Store one audit record and return its id, or None while the database is
    unreachable (the row waits in the spool and is written once it is back).
    ValueError for personal data or bad sizes (never spooled)."""
    _check(actor=actor, action=action, subject=subject, channel=channel, result=result)
    fields = {"actor": actor, "action": action, "subject": subject, "channel": channel, "result": result}
    return spool.keep(db_url, KIND_AUDIT, {**fields, "at": spool.now_iso()}).result


def _insert_audit(session, payload: Dict[str, Any], replaying: bool) -> int:
    row = AuditRecord(
        at=spool.at_of(payload),
        **{name: payload[name] for name in ("actor", "action", "subject", "channel", "result")},
    )
    session.add(row)
    session.flush()
    return row.id


spool.register(KIND_AUDIT, _insert_audit)


async def record_audit_async(db_url: str, **fields: Any) -> Optional[int]:
    """:func:`record_audit` (same keyword fields) in a worker thread, for async code."""
    return await asyncio.to_thread(functools.partial(record_audit, db_url, **fields))


def record_audit_safely(db_url: str, **fields: Any) -> None:
    """:func:`record_audit` (same keyword fields); a failure is logged, never shown to the caller."""
    try:
        record_audit(db_url, **fields)
    except Exception:
        logger.exception("desk.audit.failed action=%s", fields.get("action"))


def list_audit(db_url: str, limit: int = 100, action: Optional[str] = None) -> List[Dict]:
    """The newest audit records first (at most ``limit``, up to 1000), optionally of one action."""
    limit = max(1, min(int(limit), MAX_LIST))
    query = select(AuditRecord).order_by(AuditRecord.at.desc(), AuditRecord.id.desc()).limit(limit)
    if action is not None:
        query = query.where(AuditRecord.action == action)
    with session_factory(db_url)() as session:
        rows = session.execute(query).scalars().all()
    return [
        {
            "id": r.id,
            "at": r.at,
            "actor": r.actor,
            "action": r.action,
            "subject": r.subject,
            "channel": r.channel,
            "result": r.result,
        }
        for r in rows
    ]
