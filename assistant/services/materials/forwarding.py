"""Forwarding stored uploads to the case-management system (``forward.py``): a just-stored
upload at once (:func:`forward_one`), and those whose forwarding failed again later with
back-off (:func:`forward_due`, the gateway's sweep: ``runner.py``). Each upload is
claimed with a compare-and-set update on ``next_forward_at``, so of several processes
(replicas) exactly one sends it; every outcome is audited. A refusal (4xx) or
``MAX_FORWARD_ATTEMPTS`` failures end the forwarding (the upload stays for the desk)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from typing import Dict, List, Optional, Tuple

from cryptography.exceptions import InvalidTag
from sqlalchemy import select, update

from assistant.config.settings import Settings
from assistant.security.audit import record_audit
from assistant.services.materials import vault
from assistant.services.materials.forward import CaseSystem, ForwardFailed, Material
from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import MaterialUpload

logger = logging.getLogger(__name__)

FORWARD_BATCH = 20
FORWARD_LEASE = dt.timedelta(minutes=5)
MAX_FORWARD_ATTEMPTS = 8
AUDIT_FORWARD = "materials.upload.forward"
FORWARD_ACTOR = "system:forward"


def _audit(settings: Settings, number: str, channel: Optional[str], result: str) -> None:
    record_audit(settings.db_url, actor=FORWARD_ACTOR, action=AUDIT_FORWARD, subject=number, channel=channel,
                 result=result)


def _claim(db_url: str, upload_id: str, due: Optional[dt.datetime], now: dt.datetime) -> Optional[MaterialUpload]:
    """Take one upload for forwarding (compare-and-set on next_forward_at)."""
    with session_factory(db_url)() as session:
        query = update(MaterialUpload).where(
            MaterialUpload.id == upload_id, MaterialUpload.deleted_at.is_(None),
            MaterialUpload.forwarded_at.is_(None), MaterialUpload.next_forward_at.is_not(None),
            MaterialUpload.next_forward_at <= now,
        )
        if due is not None:
            query = query.where(MaterialUpload.next_forward_at == due)
        taken = session.execute(query.values(next_forward_at=now + FORWARD_LEASE)).rowcount
        session.commit()
        if taken != 1:
            return None
        row = session.get(MaterialUpload, upload_id)
        session.expunge(row)
        return row


def _finish_forward(db_url: str, upload_id: str, reference: Optional[str], error: Optional[ForwardFailed],
                    now: dt.datetime) -> str:
    with session_factory(db_url)() as session:
        row = session.get(MaterialUpload, upload_id)
        row.forward_attempts = (row.forward_attempts or 0) + 1
        if error is None:
            row.forwarded_at, row.forward_ref, row.next_forward_at = now, reference, None
            outcome = "ok"
        elif not error.retryable or row.forward_attempts >= MAX_FORWARD_ATTEMPTS:
            row.next_forward_at = None
            outcome = "given_up"
        else:
            row.next_forward_at = now + dt.timedelta(minutes=2 ** (row.forward_attempts - 1))
            outcome = "retry"
        session.commit()
    return outcome


async def _forward(settings: Settings, case_system: CaseSystem, row: MaterialUpload, data: bytes) -> bool:
    material = Material(
        upload_id=row.id, number=row.number, material=row.material, mime=row.mime, data=data,
        pages=row.pages, doc_type=row.doc_type, verdict=row.verdict, reasons=json.loads(row.reasons or "[]"),
    )
    reference, error = None, None
    try:
        reference = await case_system.forward_material(material)
    except ForwardFailed as exc:
        error = exc
    except Exception as exc:  # a broken case system must not lose the upload: retried later
        logger.exception("materials.forward.failed id=%s", row.id)
        error = ForwardFailed(type(exc).__name__, retryable=True)
    outcome = await asyncio.to_thread(_finish_forward, settings.db_url, row.id, reference, error, utcnow())
    await asyncio.to_thread(_audit, settings, row.number, row.channel, outcome)
    if error is not None:
        logger.warning("materials.forward.%s id=%s reason=%s", outcome, row.id, error.reason)
    return error is None


async def forward_one(settings: Settings, case_system: CaseSystem, upload_id: str, data: bytes) -> bool:
    """Forward a just-stored upload (False: left for :func:`forward_due`)."""
    row = await asyncio.to_thread(_claim, settings.db_url, upload_id, None, utcnow())
    if row is None:
        return False
    return await _forward(settings, case_system, row, data)


def _due_ids(db_url: str, now: dt.datetime) -> List[Tuple[str, dt.datetime]]:
    with session_factory(db_url)() as session:
        return [tuple(r) for r in session.execute(
            select(MaterialUpload.id, MaterialUpload.next_forward_at)
            .where(MaterialUpload.next_forward_at <= now, MaterialUpload.forwarded_at.is_(None),
                   MaterialUpload.deleted_at.is_(None))
            .order_by(MaterialUpload.next_forward_at).limit(FORWARD_BATCH)
        ).all()]


async def forward_due(settings: Settings, case_system: CaseSystem) -> Dict[str, int]:
    """Forward the uploads whose forwarding failed before and is due again."""
    counts = {"ok": 0, "failed": 0}
    now = utcnow()
    for upload_id, due in await asyncio.to_thread(_due_ids, settings.db_url, now):
        row = await asyncio.to_thread(_claim, settings.db_url, upload_id, due, now)
        if row is None:
            continue  # another process took it
        try:
            data = await asyncio.to_thread(vault.read_file, settings, upload_id)
        except (OSError, ValueError, InvalidTag):
            logger.error("materials.forward.unreadable id=%s", upload_id)
            await asyncio.to_thread(_finish_forward, settings.db_url, upload_id, None,
                                    ForwardFailed("unreadable", retryable=False), now)
            counts["failed"] += 1
            continue
        counts["ok" if await _forward(settings, case_system, row, data) else "failed"] += 1
    return counts
