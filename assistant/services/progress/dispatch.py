"""Sending the queued status notices (``progress_notices``) through their channels.

``dispatch_due`` takes the notices that are due (``FOR UPDATE SKIP LOCKED`` on PostgreSQL:
several replicas never send one twice), opens each recipient (sealed at rest), and hands
the text to the channel's :class:`Sender`. A failure is retried with back-off (1, 2, 4 …
minutes) and given up after ``MAX_ATTEMPTS``; every outcome is audited. A channel
without a sender here (the kiosk: notices are shown when the citizen looks the number
up) is left pending for the process that has one; the kiosk's are closed as ``held``
(nothing is pushed to a kiosk: the citizen sees the new status when they look the
number up there).

Senders get the text and a :class:`NoticeDetail` (what a WeChat template message
needs as separate fields). Sending is at least once: a dispatcher that dies between
sending and recording it leaves the notice to be sent again a minute later.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Protocol, Tuple

import httpx
from cryptography.exceptions import InvalidTag
from sqlalchemy import func, select, update

from assistant.security.audit import record_audit
from assistant.security.sealed import unseal
from assistant.services.progress.subscriptions import PURPOSE
from assistant.storage.database import session_factory
from assistant.storage.tables import STATUS_LABELS, ProgressNotice, ProgressSubscription

logger = logging.getLogger(__name__)

BATCH = 100
MAX_ATTEMPTS = 5
PENDING, SENT, FAILED, HELD = "pending", "sent", "failed", "held"
AUDIT_SENT = "progress.notice.sent"
SMS_TIMEOUT_S = 5.0
SEND_CONCURRENCY = 8
# Channels nothing is pushed to: their notices are closed as HELD (shown on lookup).
NOT_PUSHED = frozenset({"kiosk"})
KIND_PROGRESS = "progress"
PROGRESS_TITLE = "办件进度通知"


class NoticeError(Exception):
    """The channel did not take the notice: retried later, unless ``final`` (it never will)."""

    def __init__(self, reason: str, final: bool = False) -> None:
        super().__init__(reason)
        self.final = final


@dataclass(frozen=True)
class NoticeDetail:
    """The parts of a notice, for channels that show fields rather than a text (a
    WeChat template message). No personal data: the number is masked."""

    kind: str  # progress | reminder
    title: str  # 办件进度通知, 身份证到期提醒, ...
    number: str  # masked application number, "" when there is none
    status: str  # the new status's label, or what the reminder is about
    at: dt.datetime  # when it happened (UTC)


class Sender(Protocol):
    async def send(self, recipient: str, text: str, detail: Optional[NoticeDetail] = None) -> None: ...


class HttpSmsSender:
    """An SMS gateway over HTTP: ``POST url`` ``{"phone", "text"}`` with a bearer token;
    any 2xx is accepted."""

    def __init__(self, url: str, token: Optional[str] = None, client: Optional[httpx.AsyncClient] = None):
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = client or httpx.AsyncClient(timeout=SMS_TIMEOUT_S)

    async def send(self, recipient: str, text: str, detail: Optional[NoticeDetail] = None) -> None:
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
            .order_by(ProgressNotice.due_at, ProgressNotice.id).limit(BATCH)
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
            .order_by(ProgressNotice.created_at, ProgressNotice.id)  # a subscriber hears changes in order
        ).all()
        due = []
        for notice, sealed in rows:
            try:
                recipient = unseal(secret, PURPOSE, sealed)
            except (InvalidTag, ValueError):  # sealed under another secret key: cannot be sent
                recipient = None
            due.append(_Due(notice.id, notice.number, notice.channel, notice.text, recipient, notice.attempts,
                            notice.status, notice.created_at))
        return due


@dataclass(frozen=True)
class _Due:
    id: int
    number: str
    channel: str
    text: str
    recipient: Optional[str]
    attempts: int
    status: str
    created_at: dt.datetime


def _hold(db_url: str, channels, now: dt.datetime) -> List[str]:
    """Close the due notices of channels nothing is pushed to (HELD); their numbers."""
    with session_factory(db_url)() as session:
        rows = session.execute(
            select(ProgressNotice.id, ProgressNotice.number, ProgressNotice.due_at)
            .where(ProgressNotice.state == PENDING, ProgressNotice.due_at <= now,
                   ProgressNotice.channel.in_(list(channels))).limit(BATCH)
        ).all()
        held = []
        for notice_id, number, due_at in rows:
            if session.execute(
                update(ProgressNotice).where(ProgressNotice.id == notice_id, ProgressNotice.state == PENDING,
                                             ProgressNotice.due_at == due_at).values(state=HELD)
            ).rowcount == 1:
                held.append(number)
        session.commit()
        return held


def _finish(db_url: str, notice_id: int, ok: bool, attempts: int, now: dt.datetime, final: bool = False) -> str:
    with session_factory(db_url)() as session:
        notice = session.get(ProgressNotice, notice_id)
        notice.attempts = attempts + 1
        if ok:
            notice.state, notice.sent_at = SENT, now
        elif final or notice.attempts >= MAX_ATTEMPTS:
            notice.state = FAILED
        else:
            notice.due_at = now + dt.timedelta(minutes=2 ** attempts)
        session.commit()
        return notice.state


def detail_of(number: str, status: str, at: dt.datetime) -> NoticeDetail:
    from assistant.services.progress.notices import masked_number

    return NoticeDetail(KIND_PROGRESS, PROGRESS_TITLE, masked_number(number), STATUS_LABELS.get(status, status), at)


async def dispatch_due(db_url: str, secret: bytes, senders: Dict[str, Sender], now: Optional[dt.datetime] = None
                       ) -> Dict[str, int]:
    """Send one batch (``BATCH``) of what is due, a few at a time; counts by outcome
    (sent, retry, failed, held). Call again while ``sent + retry + failed`` is ``BATCH``."""
    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    counts = {"sent": 0, "retry": 0, "failed": 0, "held": 0}
    held = await asyncio.to_thread(_hold, db_url, NOT_PUSHED, now)
    for number in held:
        counts["held"] += 1
        await asyncio.to_thread(record_audit, db_url, actor="system:progress", action=AUDIT_SENT, subject=number,
                                channel="kiosk", result=HELD)
    pushed = [channel for channel in senders if channel not in NOT_PUSHED]
    if not pushed:
        return counts
    due = await asyncio.to_thread(_due, db_url, secret, pushed, now)
    limit = asyncio.Semaphore(SEND_CONCURRENCY)

    async def one(notice: _Due) -> None:
        async with limit:
            ok, final = False, notice.recipient is None
            if not final:
                try:
                    await senders[notice.channel].send(
                        notice.recipient, notice.text, detail_of(notice.number, notice.status, notice.created_at))
                    ok = True
                except NoticeError as exc:
                    final = exc.final
                    logger.warning("progress.notice.failed channel=%s error=%s final=%s", notice.channel, exc, final)
                except Exception:  # a broken sender must not stop the others
                    logger.exception("progress.notice.error channel=%s", notice.channel)
            else:
                logger.error("progress.notice.unreadable id=%d", notice.id)
            state = await asyncio.to_thread(_finish, db_url, notice.id, ok, notice.attempts, now, final)
            outcome = "sent" if ok else ("failed" if state == FAILED else "retry")
            counts[outcome] += 1
            await asyncio.to_thread(record_audit, db_url, actor="system:progress", action=AUDIT_SENT,
                                    subject=notice.number, channel=notice.channel, result=outcome)

    # One recipient's notices go one after another, in the order they were queued.
    by_recipient: Dict[Tuple[str, Optional[str]], List[_Due]] = {}
    for notice in due:
        by_recipient.setdefault((notice.channel, notice.recipient), []).append(notice)

    async def in_order(notices: List[_Due]) -> None:
        for notice in notices:
            await one(notice)

    await asyncio.gather(*(in_order(batch) for batch in by_recipient.values()))
    return counts


async def dispatch_all(db_url: str, secret: bytes, senders: Dict[str, Sender], now: Optional[dt.datetime] = None,
                       max_batches: int = 50) -> Dict[str, int]:
    """:func:`dispatch_due` until nothing more is due (at most ``max_batches`` batches)."""
    total = {"sent": 0, "retry": 0, "failed": 0, "held": 0}
    for _ in range(max_batches):
        counts = await dispatch_due(db_url, secret, senders, now)
        for key, value in counts.items():
            total[key] += value
        if counts["sent"] + counts["retry"] + counts["failed"] < BATCH and counts["held"] < BATCH:
            break
    return total


def status(db_url: str, now: Optional[dt.datetime] = None) -> Dict[str, Any]:
    """Notices by state and channel, how many are due now and the next due time
    (``banshi notices status``)."""
    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    with session_factory(db_url)() as session:
        rows = session.execute(
            select(ProgressNotice.state, ProgressNotice.channel, func.count(ProgressNotice.id))
            .group_by(ProgressNotice.state, ProgressNotice.channel)
        ).all()
        due_now = session.execute(
            select(func.count(ProgressNotice.id)).where(ProgressNotice.state == PENDING, ProgressNotice.due_at <= now)
        ).scalar_one()
        next_due = session.execute(
            select(func.min(ProgressNotice.due_at)).where(ProgressNotice.state == PENDING, ProgressNotice.due_at > now)
        ).scalar()
    by_state: Dict[str, Dict[str, int]] = {}
    for state, channel, count in rows:
        by_state.setdefault(state, {})[channel] = int(count)
    return {"by_state": by_state, "due_now": int(due_now), "next_due": next_due.isoformat() if next_due else None}
