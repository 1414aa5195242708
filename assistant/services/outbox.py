"""The kiosk outbox: what must leave a kiosk reaches the central server exactly once.

A kiosk runs the whole stack offline-first. Handoff requests, ratings and
appointment requests are stored here first (``enqueue`` commits before it
returns, so nothing is lost), then the ``OutboxWorker`` (an asyncio task in the
kiosk's gateway) posts them, oldest first, to ``POST {central_url}/api/v1/kiosk/inbox``.

Exactly-once effect = at-least-once transport + an idempotent receiver:

- a message is marked delivered only when the central server confirms it
  (201 ``accepted`` or 200 ``duplicate``);
- network errors, timeouts, 408, 429 and 5xx schedule another attempt with
  exponential backoff and jitter (1 s doubling up to 5 minutes);
- any other 4xx is recorded and given up (``banshi outbox status`` shows it;
  ``banshi outbox flush --retry-failed`` tries again after the cause is fixed);
- the central server applies each message id (a UUID4) once (``inbox_messages``
  primary key), so a message whose answer was lost is sent again and answered
  "duplicate" without a second effect.

Most kinds are posted as JSON to the inbox. A kind may register how its request is
built (``register_kind``): pre-applications (``assistant/services/prefill/kiosk.py``)
keep their personal data sealed beside the outbox and open it only to send it, and a
photo of a material goes as its bytes to ``POST /api/v1/kiosk/inbox/material``, also
applied once by message id. A message whose data cannot be built any more (its sealed
data cannot be opened) is given up like a final 4xx. A kind may also register what to
do once the central confirmed a message (the kiosk then deletes the personal data).

All state lives in the database: a restarted kiosk resumes where it stopped.
The database functions are synchronous (async callers use ``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from assistant.config.settings import Settings, get_settings
from assistant.security.pii import mask_pii
from assistant.services.outbox_kinds import (
    AFTER_DELIVERY,
    BUILDERS,
    NotYet,
    Outbound,
    Unsendable,
    load_kinds,
    register_kind,
)
from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import OUTBOX_KINDS, OutboxMessage

logger = logging.getLogger(__name__)

INBOX_PATH = "/api/v1/kiosk/inbox"
# Largest payload (UTF-8 JSON); the central server refuses bigger ones (422).
MAX_PAYLOAD_BYTES = 16 * 1024
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 300.0
# Each delay is drawn from [(1 - JITTER) * d, d]: kiosks that lost the network
# together do not all come back at the same instant, and the cap still holds.
BACKOFF_JITTER = 0.2
RETRYABLE_STATUSES = {408, 429}
MAX_ERROR_CHARS = 200
BATCH = 100

STATE_PENDING = "pending"
STATE_DELIVERED = "delivered"
STATE_FAILED = "failed"


# ------------------------------------------------------------------ storing
def _encode(payload: Dict[str, Any]) -> str:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
    if len(text.encode("utf-8")) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"outbox payload over {MAX_PAYLOAD_BYTES} bytes")
    return text


def enqueue_in(
    session: Session,
    kind: str,
    payload: Dict[str, Any],
    now: Optional[dt.datetime] = None,
    message_id: Optional[str] = None,
) -> str:
    """Add a message to ``session`` (the caller commits it with its own rows). Returns its id.

    ``payload`` must hold no raw personal data (summaries are masked by their builders).
    """
    if kind not in OUTBOX_KINDS:
        raise ValueError(f"unknown outbox kind: {kind!r}")
    if not isinstance(payload, dict):
        raise TypeError("outbox payload must be a dict")
    text = _encode(payload)
    now = now or utcnow()
    message_id = message_id or str(uuid.uuid4())
    session.add(
        OutboxMessage(
            id=message_id,
            kind=kind,
            payload=text,
            created_at=now,
            attempts=0,
            next_attempt_at=now,
        )
    )
    return message_id


def enqueue(db_url: str, kind: str, payload: Dict[str, Any], now: Optional[dt.datetime] = None) -> str:
    """Store a message for the central server; committed when this returns. Returns its id.

    ``payload`` must hold no raw personal data (summaries are masked by their builders).
    """
    with session_factory(db_url)() as session:
        message_id = enqueue_in(session, kind, payload, now)
        session.commit()
    logger.info("kiosk.outbox.enqueued id=%s kind=%s", message_id, kind)
    return message_id


def backoff_seconds(attempts: int, rng: Callable[[], float] = random.random) -> float:
    """Delay before the next try after ``attempts`` failed ones: 1, 2, 4, … s, at most 5 minutes."""
    exponent = min(max(attempts, 1) - 1, 30)
    delay = min(BACKOFF_CAP_S, BACKOFF_BASE_S * (2**exponent))
    return delay * (1.0 - BACKOFF_JITTER * rng())


@dataclass(frozen=True)
class Pending:
    """A snapshot of one message to send."""

    id: str
    kind: str
    payload: Dict[str, Any]
    created_at: dt.datetime
    attempts: int


def due_messages(db_url: str, now: Optional[dt.datetime] = None, limit: int = BATCH) -> List[Pending]:
    """Pending messages whose next attempt is due, oldest first."""
    now = now or utcnow()
    with session_factory(db_url)() as session:
        rows = (
            session.execute(
                select(OutboxMessage)
                .where(
                    OutboxMessage.delivered_at.is_(None),
                    OutboxMessage.failed_at.is_(None),
                    OutboxMessage.next_attempt_at <= now,
                )
                .order_by(OutboxMessage.created_at, OutboxMessage.id)
                .limit(limit)
            )
            .scalars()
            .all()
        )
        return [Pending(r.id, r.kind, json.loads(r.payload), r.created_at, r.attempts) for r in rows]


def next_due_at(db_url: str) -> Optional[dt.datetime]:
    """When the next pending message is due (None when nothing is pending)."""
    with session_factory(db_url)() as session:
        return session.execute(
            select(func.min(OutboxMessage.next_attempt_at)).where(
                OutboxMessage.delivered_at.is_(None), OutboxMessage.failed_at.is_(None)
            )
        ).scalar()


def _record(db_url: str, message_id: str, **values: Any) -> None:
    with session_factory(db_url)() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.delivered_at.is_(None))
            .values(attempts=OutboxMessage.attempts + 1, **values)
        )
        session.commit()


def make_due(db_url: str, include_failed: bool = False, now: Optional[dt.datetime] = None) -> int:
    """Make every pending message (and with ``include_failed`` every given-up one) due now."""
    now = now or utcnow()
    condition = [OutboxMessage.delivered_at.is_(None)]
    if not include_failed:
        condition.append(OutboxMessage.failed_at.is_(None))
    with session_factory(db_url)() as session:
        result = session.execute(
            update(OutboxMessage).where(*condition).values(next_attempt_at=now, failed_at=None)
        )
        session.commit()
        return int(result.rowcount or 0)


def _iso(value: Optional[dt.datetime]) -> Optional[str]:
    return value.replace(tzinfo=dt.timezone.utc).isoformat() if value else None


def state_of(row: OutboxMessage) -> str:
    if row.delivered_at is not None:
        return STATE_DELIVERED
    return STATE_FAILED if row.failed_at is not None else STATE_PENDING


def status(db_url: str, limit: int = 20) -> Dict[str, Any]:
    """Counts per state, and the pending and failed messages (oldest first, no payloads)."""
    with session_factory(db_url)() as session:
        counts = {STATE_PENDING: 0, STATE_DELIVERED: 0, STATE_FAILED: 0}
        for delivered, failed, count in session.execute(
            select(
                OutboxMessage.delivered_at.is_not(None),
                OutboxMessage.failed_at.is_not(None),
                func.count(),
            ).group_by(OutboxMessage.delivered_at.is_not(None), OutboxMessage.failed_at.is_not(None))
        ):
            key = STATE_DELIVERED if delivered else (STATE_FAILED if failed else STATE_PENDING)
            counts[key] += int(count)
        rows = (
            session.execute(
                select(OutboxMessage)
                .where(OutboxMessage.delivered_at.is_(None))
                .order_by(OutboxMessage.created_at, OutboxMessage.id)
                .limit(limit)
            )
            .scalars()
            .all()
        )
        messages = [
            {
                "id": r.id,
                "kind": r.kind,
                "state": state_of(r),
                "created_at": _iso(r.created_at),
                "attempts": r.attempts,
                "next_attempt_at": _iso(r.next_attempt_at) if r.failed_at is None else None,
                "failed_at": _iso(r.failed_at),
                "last_error": r.last_error,
            }
            for r in rows
        ]
    return {"counts": counts, "messages": messages}


# ----------------------------------------------------------------- delivery
@dataclass(frozen=True)
class Outcome:
    result: str  # delivered | retry | failed
    error: Optional[str] = None
    retry_after: Optional[float] = None  # seconds the server asked us to wait


def _short(text: str) -> str:
    text = mask_pii(" ".join(text.split()))
    return text[:MAX_ERROR_CHARS]


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) else ""


def _retry_after(response: httpx.Response) -> Optional[float]:
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


def body_of(message: Pending, kiosk_id: str) -> Dict[str, Any]:
    return {
        "id": message.id,
        "kiosk_id": kiosk_id,
        "kind": message.kind,
        "payload": message.payload,
        "created_at": _iso(message.created_at),
    }


def request_of(settings: Settings, message: Pending, kiosk_id: str) -> Outbound:
    """How ``message`` is delivered: its kind's own request, else JSON to the inbox."""
    load_kinds()
    build = BUILDERS.get(message.kind)
    if build is None:
        return Outbound(INBOX_PATH, json=body_of(message, kiosk_id))
    return build(settings, message, kiosk_id)


async def send(
    client: httpx.AsyncClient, message: Pending, kiosk_id: str, settings: Optional[Settings] = None
) -> Outcome:
    """Post one message; what to do with it depends only on the answer."""
    try:
        outbound = await asyncio.to_thread(request_of, settings or get_settings(), message, kiosk_id)
    except Unsendable as exc:
        return Outcome(STATE_FAILED, f"unsendable: {exc}")
    except NotYet as exc:
        return Outcome("retry", f"waiting: {exc}")
    extra: Dict[str, Any] = {}
    if outbound.timeout_s is not None:
        extra["timeout"] = outbound.timeout_s
    try:
        response = await client.post(
            outbound.path,
            json=outbound.json,
            content=outbound.content,
            params=outbound.params,
            headers=outbound.headers,
            **extra,
        )
    except httpx.TimeoutException as exc:
        return Outcome("retry", f"timeout ({type(exc).__name__})")
    except httpx.HTTPError as exc:  # connection refused, reset, response lost, bad URL...
        return Outcome("retry", f"network error ({type(exc).__name__})")
    code = response.status_code
    if code in (200, 201):
        try:
            answer = response.json()
        except ValueError:
            answer = None
        # Only the central inbox's own confirmation counts (not a proxy's or portal's 200).
        if (
            isinstance(answer, dict)
            and answer.get("status") in ("accepted", "duplicate")
            and answer.get("id", message.id) == message.id
        ):
            return Outcome(STATE_DELIVERED)
        return Outcome("retry", f"HTTP {code} without the inbox's confirmation")
    error = f"HTTP {code} {_detail(response)}".strip()
    if code >= 500 or code in RETRYABLE_STATUSES:
        return Outcome("retry", error, _retry_after(response))
    return Outcome(STATE_FAILED, error)


async def deliver_due(
    db_url: str,
    client: httpx.AsyncClient,
    now: Optional[dt.datetime] = None,
    *,
    kiosk_id: Optional[str] = None,
    limit: int = BATCH,
    rng: Callable[[], float] = random.random,
    settings: Optional[Settings] = None,
) -> Tuple[int, int]:
    """Send the messages due at ``now`` (default: the current time), oldest first.

    ``client`` has the central server as ``base_url`` and the kiosk's token;
    ``settings`` are the kiosk's (its secret key opens sealed data; default: the process's).
    Returns (delivered, failed attempts); a failed attempt is retried later or,
    for a final 4xx, given up.
    """
    settings = settings or get_settings()
    kiosk_id = kiosk_id or settings.kiosk_id
    messages = await asyncio.to_thread(due_messages, db_url, now, limit)
    delivered = failed = 0
    for message in messages:
        outcome = await send(client, message, kiosk_id, settings)
        at = now or utcnow()
        attempts = message.attempts + 1
        if outcome.result == STATE_DELIVERED:
            await asyncio.to_thread(_record, db_url, message.id, delivered_at=at, last_error=None)
            delivered += 1
            logger.info("kiosk.outbox.delivered id=%s kind=%s attempts=%s", message.id, message.kind, attempts)
            after = AFTER_DELIVERY.get(message.kind)
            if after is not None:
                try:
                    await asyncio.to_thread(after, settings, message)
                except Exception:  # the periodic purge catches up
                    logger.exception("kiosk.outbox.after_delivery_failed id=%s kind=%s", message.id, message.kind)
            continue
        failed += 1
        error = _short(outcome.error or "")
        if outcome.result == STATE_FAILED:
            await asyncio.to_thread(_record, db_url, message.id, failed_at=at, last_error=error)
            logger.error(
                "kiosk.outbox.gave_up id=%s kind=%s attempts=%s error=%s", message.id, message.kind, attempts, error
            )
            continue
        delay = backoff_seconds(attempts, rng)
        if outcome.retry_after:
            delay = max(delay, min(outcome.retry_after, BACKOFF_CAP_S))
        await asyncio.to_thread(
            _record, db_url, message.id, next_attempt_at=at + dt.timedelta(seconds=delay), last_error=error
        )
        logger.warning(
            "kiosk.outbox.retry id=%s kind=%s attempts=%s delay_s=%.1f error=%s",
            message.id,
            message.kind,
            attempts,
            delay,
            error,
        )
    return delivered, failed


def central_client(settings: Settings, timeout_s: float = 10.0) -> httpx.AsyncClient:
    """An HTTP client for the central server: its base URL and the kiosk's token."""
    if not settings.central_url:
        raise ValueError("BANSHI_CENTRAL_URL is not set")
    headers = {"Authorization": f"Bearer {settings.central_token}"} if settings.central_token else {}
    return httpx.AsyncClient(base_url=settings.central_url, headers=headers, timeout=timeout_s)


__all__ = ["NotYet", "Outbound", "Unsendable", "register_kind"]  # re-exported: the kinds' own requests
