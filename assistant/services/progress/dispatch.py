"""Sending the queued status notices (``progress_notices``) through their channels.

``dispatch_due`` takes the notices that are due (``FOR UPDATE SKIP LOCKED`` on PostgreSQL:
several replicas never send one twice), opens each recipient (sealed at rest), and hands
the text to the channel's :class:`Sender`. A failure is retried with back-off (1, 2, 4 …
minutes) and given up after ``MAX_ATTEMPTS``; every outcome is audited. A channel
without a sender here (the kiosk: notices are shown when the citizen looks the number
up) is left pending for the process that has one.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Dict, Optional, Protocol

import httpx
from sqlalchemy import select, update

from assistant.security.audit import record_audit
from assistant.security.sealed import unseal
from assistant.services.progress.subscriptions import PURPOSE
from assistant.storage.database import session_factory
from assistant.storage.tables import ProgressNotice, ProgressSubscription

logger = logging.getLogger(__name__)

BATCH = 100
MAX_ATTEMPTS = 5
PENDING, SENT, FAILED = "pending", "sent", "failed"
AUDIT_SENT = "progress.notice.sent"
SMS_TIMEOUT_S = 5.0


class NoticeError(Exception):
    """The channel did not take the notice (retried later)."""


class Sender(Protocol):
    async def send(self, recipient: str, text: str) -> None: ...


class HttpSmsSender:
    """An SMS gateway over HTTP: ``POST url`` ``{"phone", "text"}`` with a bearer token;
    any 2xx is accepted."""

    def __init__(self, url: str, token: Optional[str] = None, client: Optional[httpx.AsyncClient] = None):
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = client or httpx.AsyncClient(timeout=SMS_TIMEOUT_S)

    async def send(self, recipient: str, text: str) -> None:
        try:
            reply = await self.client.post(self.url, json={"phone": recipient, "text": text}, headers=self.headers)
        except httpx.HTTPError as exc:
            raise NoticeError(type(exc).__name__) from exc
        if not 200 <= reply.status_code < 300:
            raise NoticeError(f"status {reply.status_code}")


def _due(db_url: str, secret: bytes, channels, now: dt.datetime):
    """Claim the due notices: each is pushed a minute ahead by a compare-and-set update,
    so that of several dispatchers (replicas, processes) exactly one takes it."""
    with session_factory(db_url)() as session:
        query = (
            select(ProgressNotice.id, ProgressNotice.due_at)
            .where(ProgressNotice.state == PENDING, ProgressNotice.due_at <= now,
                   ProgressNotice.channel.in_(list(channels)))
            .order_by(ProgressNotice.due_at).limit(BATCH)
        )
        if session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        candidates = session.execute(query).all()
        claimed = []
        for notice_id, due_at in candidates:
            taken = session.execute(
                update(ProgressNotice)
                .where(ProgressNotice.id == notice_id, ProgressNotice.due_at == due_at,
                       ProgressNotice.state == PENDING)
                .values(due_at=now + dt.timedelta(minutes=1))
            ).rowcount
            if taken == 1:
                claimed.append(notice_id)
        session.commit()
        if not claimed:
            return []
        rows = session.execute(
            select(ProgressNotice, ProgressSubscription.recipient_sealed)
            .join(ProgressSubscription, ProgressSubscription.id == ProgressNotice.subscription_id)
            .where(ProgressNotice.id.in_(claimed))
        ).all()
        return [(n.id, n.number, n.channel, n.text, unseal(secret, PURPOSE, sealed), n.attempts) for n, sealed in rows]


def _finish(db_url: str, notice_id: int, ok: bool, attempts: int, now: dt.datetime) -> str:
    with session_factory(db_url)() as session:
        notice = session.get(ProgressNotice, notice_id)
        notice.attempts = attempts + 1
        if ok:
            notice.state, notice.sent_at = SENT, now
        elif notice.attempts >= MAX_ATTEMPTS:
            notice.state = FAILED
        else:
            notice.due_at = now + dt.timedelta(minutes=2 ** attempts)
        session.commit()
        return notice.state


async def dispatch_due(db_url: str, secret: bytes, senders: Dict[str, Sender], now: Optional[dt.datetime] = None
                       ) -> Dict[str, int]:
    """Send what is due; counts by outcome (sent, retry, failed)."""
    import asyncio

    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    counts = {"sent": 0, "retry": 0, "failed": 0}
    due = await asyncio.to_thread(_due, db_url, secret, senders.keys(), now)
    for notice_id, number, channel, text, recipient, attempts in due:
        try:
            await senders[channel].send(recipient, text)
            ok = True
        except NoticeError as exc:
            ok = False
            logger.warning("progress.notice.failed channel=%s error=%s", channel, exc)
        state = await asyncio.to_thread(_finish, db_url, notice_id, ok, attempts, now)
        outcome = "sent" if ok else ("failed" if state == FAILED else "retry")
        counts[outcome] += 1
        await asyncio.to_thread(record_audit, db_url, actor="system:progress", action=AUDIT_SENT, subject=number,
                                channel=channel, result=outcome)
    return counts
