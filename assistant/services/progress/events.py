"""Status events pushed by the case-management system: signed, applied once, stored on
the application's timeline (``application_events``) and reflected in its status.

The sender signs ``<timestamp>.<body>`` with HMAC-SHA256 under the shared secret
(``BANSHI_CMS_WEBHOOK_SECRET``) and sends ``X-Banshi-Timestamp`` (Unix seconds) and
``X-Banshi-Signature: sha256=<hex>``; a timestamp outside the window is refused (a
replayed request), and an event id seen before is answered as a duplicate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
from typing import List, Optional

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import Application, ApplicationEvent

logger = logging.getLogger(__name__)

SIGNATURE_PREFIX = "sha256="
STORED = "stored"
DUPLICATE = "duplicate"


class UnknownApplication(LookupError):
    """No application with this number."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def signature_ok(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body).encode(), (signature or "").encode())


def fresh(timestamp: str, window_s: int, now: Optional[float] = None) -> bool:
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    now = dt.datetime.now(dt.timezone.utc).timestamp() if now is None else now
    return abs(now - sent) <= window_s


def record_event(
    db_url: str,
    number: str,
    event_id: str,
    status: str,
    at: dt.datetime,
    note: str = "",
    missing_materials: Optional[List[str]] = None,
) -> str:
    """Store one event (``stored``) or recognise it (``duplicate``); the application's
    status follows its newest event. Raises :class:`UnknownApplication`."""
    with session_factory(db_url)() as session:
        application = session.get(Application, number)
        if application is None:
            raise UnknownApplication(number)
        if session.execute(select(ApplicationEvent.id).where(ApplicationEvent.event_id == event_id)).first():
            return DUPLICATE
        session.add(ApplicationEvent(
            number=number, status=status, at=at, note=note, event_id=event_id,
            missing_materials=json.dumps(missing_materials, ensure_ascii=False) if missing_materials else None,
        ))
        newest = session.execute(
            select(ApplicationEvent.at).where(ApplicationEvent.number == number).order_by(ApplicationEvent.at.desc())
        ).scalars().first()
        if newest is None or at >= newest:
            application.status = status
            application.updated_at = utcnow()
        try:
            session.commit()
        except IntegrityError:  # the same event id, delivered twice at once
            session.rollback()
            return DUPLICATE
    logger.info("progress.event.stored status=%s", status)
    return STORED


def current_status(db_url: str, number: str) -> str:
    with session_factory(db_url)() as session:
        application = session.get(Application, number)
        if application is None:
            raise UnknownApplication(number)
        return application.status
