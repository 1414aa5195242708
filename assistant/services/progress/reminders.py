"""Reminders that find people (服务找人): a citizen opts in to a reminder tied to a
date, and it is sent once, on its day, through the channel they use. The kinds, what
each needs and says and when it goes: ``reminder_rules.py``, ``reminders.yml``.

Stored: the kind, the application number (for an application's reminders), the due
date (an expiry month as its first day: the citizen tells only the month) and the
recipient (web-chat conversation id, ``wx-<openid>``, phone number), sealed at rest
and found by a keyed hash; nothing else. Every change and sending is audited.

For the dialogue (to be wired) and the gateway's API
----------------------------------------------------
* :func:`remind` — create (idempotent: the same reminder twice is one); raises
  :class:`ReminderError`, whose text is a polite sentence in Chinese to show as is;
* :func:`list_reminders` — a recipient's reminders (:class:`ReminderView`);
* :func:`cancel_reminder` — one by id, or all of the recipient's;
* :func:`send_due_reminders` — the scheduler's step (``services/progress/loop.py``):
  claims what is due with a compare-and-set (several processes never send one
  twice), honours quiet hours and the daily cap (:func:`notices.decide`, counted
  together with status notices), sends through the same senders as status notices.

All but the last are synchronous (call them with ``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Union

from cryptography.exceptions import InvalidTag
from sqlalchemy import delete, func, select, update

from assistant.security.audit import record_audit
from assistant.security.pii import is_application_number
from assistant.security.sealed import seal, unseal
from assistant.services.progress import notices
from assistant.services.progress.dispatch import NoticeDetail, NoticeError, Sender
from assistant.services.progress.reminder_rules import (  # noqa: F401 (the rules are part of this API)
    BAD_DATE,
    BAD_MONTH,
    BAD_RECIPIENT,
    NEED_DATE,
    NEED_MONTH,
    NEED_NUMBER,
    TOO_MANY,
    UNKNOWN_CHANNEL,
    UNKNOWN_KIND,
    ReminderError,
    _actor,
    _aware,
    _due_date,
    _naive,
    add_months,
    config,
    parse_month,
    recipient_hash,
    reminder_text,
    send_moment,
)
from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import (
    STATUS_COMPLETED,
    STATUS_SUPPLEMENT,
    Application,
    ProgressNotice,
    ProgressSubscription,
    Reminder,
)

logger = logging.getLogger(__name__)

SEAL_PURPOSE = "reminder"
# Channels a reminder can be pushed to (a kiosk is not one: nothing is pushed there).
CHANNELS = frozenset({"web", "wechat", "sms"})
PENDING, SENT, FAILED, CANCELLED, OBSOLETE = "pending", "sent", "failed", "cancelled", "obsolete"
KIND_REMINDER = "reminder"
AUDIT_CREATE = "reminder.create"
AUDIT_CANCEL = "reminder.cancel"
AUDIT_SENT = "reminder.sent"
SYSTEM_ACTOR = "system:reminders"
BATCH = 100
SEND_CONCURRENCY = 8
CLAIM_FOR = dt.timedelta(minutes=1)
MAX_RECIPIENT_CHARS = 128


# ------------------------------------------------------------------ create, list, cancel
@dataclass(frozen=True)
class Reminded:
    id: int
    created: bool  # False: the same reminder was already set
    send_at: dt.datetime  # naive UTC


@dataclass(frozen=True)
class ReminderView:
    id: int
    kind: str
    title: str
    number: Optional[str]  # masked
    due_on: str  # ISO date (expiry kinds: the month, YYYY-MM)
    send_at: str  # ISO, UTC
    status: str

    def as_dict(self) -> Dict:
        return asdict(self)


def _view(row: Reminder) -> ReminderView:
    kind = config().kinds.get(row.kind)
    month_only = kind is not None and "month" in kind.needs
    return ReminderView(
        id=row.id, kind=row.kind, title=kind.title if kind else row.kind,
        number=notices.masked_number(row.number) if row.number else None,
        due_on=row.due_on.strftime("%Y-%m") if month_only else row.due_on.isoformat(),
        send_at=row.send_at.replace(tzinfo=dt.timezone.utc).isoformat(), status=row.status,
    )


def remind(
    db_url: str,
    secret: bytes,
    *,
    kind: str,
    channel: str,
    recipient: str,
    timezone: str = "Asia/Shanghai",
    number: Optional[str] = None,
    due_on: Optional[dt.date] = None,
    expiry_month: Union[str, dt.date, None] = None,
    now: Optional[dt.datetime] = None,
) -> Reminded:
    """Set a reminder for ``recipient`` on ``channel`` (web: the conversation id;
    wechat: ``wx-<openid>``; sms: the phone number).

    ``number``: the application (supplement_deadline, ready_for_pickup); ``due_on``:
    the deadline or day; ``expiry_month``: ``"2027-03"`` for id_card_expiry and
    passport_expiry. Raises :class:`ReminderError` (a Chinese sentence for the citizen).
    """
    cfg = config()
    kind_cfg = cfg.kinds.get(kind)
    if kind_cfg is None:
        raise ReminderError(UNKNOWN_KIND)
    if channel not in CHANNELS:
        raise ReminderError(UNKNOWN_CHANNEL)
    if not recipient or len(recipient) > MAX_RECIPIENT_CHARS:
        raise ReminderError(BAD_RECIPIENT)
    if "number" in kind_cfg.needs:
        number = (number or "").strip().upper()
        if not is_application_number(number):
            raise ReminderError(NEED_NUMBER)
    else:
        number = None
    now = _aware(now)
    due = _due_date(kind_cfg, timezone, now, due_on, expiry_month)
    send_at = send_moment(kind_cfg, due, timezone, now)
    rhash = recipient_hash(secret, channel, recipient)
    with session_factory(db_url)() as session:
        active = session.execute(
            select(Reminder).where(Reminder.recipient_hash == rhash, Reminder.channel == channel,
                                   Reminder.status == PENDING)
        ).scalars().all()
        for row in active:
            if row.kind == kind and row.number == number and row.due_on == due:
                return Reminded(row.id, created=False, send_at=row.send_at)
        if len(active) >= cfg.max_per_recipient:
            raise ReminderError(TOO_MANY.format(count=len(active)))
        row = Reminder(
            kind=kind, number=number, due_on=due, channel=channel,
            recipient_sealed=seal(secret, SEAL_PURPOSE, recipient), recipient_hash=rhash,
            send_at=send_at, status=PENDING, attempts=0, created_at=_naive(now),
        )
        session.add(row)
        session.commit()
        made = Reminded(row.id, created=True, send_at=send_at)
    record_audit(db_url, actor=_actor(channel, recipient), action=AUDIT_CREATE, subject=number or kind,
                 channel=channel, result="ok")
    logger.info("progress.reminder.created kind=%s channel=%s", kind, channel)
    return made


def list_reminders(db_url: str, secret: bytes, channel: str, recipient: str, include_done: bool = False
                   ) -> List[ReminderView]:
    """The recipient's pending reminders (``include_done``: also sent, failed and
    cancelled ones), soonest first."""
    rhash = recipient_hash(secret, channel, recipient)
    query = select(Reminder).where(Reminder.recipient_hash == rhash, Reminder.channel == channel)
    if not include_done:
        query = query.where(Reminder.status == PENDING)
    with session_factory(db_url)() as session:
        rows = session.execute(query.order_by(Reminder.send_at, Reminder.id).limit(100)).scalars().all()
        return [_view(row) for row in rows]


def cancel_reminder(db_url: str, secret: bytes, channel: str, recipient: str, reminder_id: Optional[int] = None
                    ) -> int:
    """Cancel one of the recipient's pending reminders (by id), or all of them; how
    many ended (0: none of theirs has that id)."""
    rhash = recipient_hash(secret, channel, recipient)
    with session_factory(db_url)() as session:
        query = select(Reminder).where(Reminder.recipient_hash == rhash, Reminder.channel == channel,
                                       Reminder.status == PENDING)
        if reminder_id is not None:
            query = query.where(Reminder.id == reminder_id)
        rows = session.execute(query).scalars().all()
        now = utcnow()
        ended = []
        for row in rows:
            if session.execute(
                update(Reminder).where(Reminder.id == row.id, Reminder.status == PENDING)
                .values(status=CANCELLED, cancelled_at=now)
            ).rowcount == 1:
                ended.append(row.number or row.kind)
        session.commit()
    for subject in ended:
        record_audit(db_url, actor=_actor(channel, recipient), action=AUDIT_CANCEL, subject=subject,
                     channel=channel, result="ok")
    return len(ended)


# ------------------------------------------------------------------ sending
@dataclass(frozen=True)
class _Due:
    id: int
    kind: str
    number: Optional[str]
    due_on: dt.date
    channel: str
    recipient: Optional[str]  # None: cannot be opened (another secret key)
    recipient_hash: str
    attempts: int


def _claim(db_url: str, secret: bytes, channels, now: dt.datetime) -> List[_Due]:
    """Take the due reminders: each is pushed ``CLAIM_FOR`` ahead by a compare-and-set,
    so that of several schedulers exactly one takes it."""
    with session_factory(db_url)() as session:
        query = (
            select(Reminder.id, Reminder.send_at)
            .where(Reminder.status == PENDING, Reminder.send_at <= now, Reminder.channel.in_(list(channels)))
            .order_by(Reminder.send_at).limit(BATCH)
        )
        if session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        claimed = []
        for reminder_id, send_at in session.execute(query).all():
            if session.execute(
                update(Reminder).where(Reminder.id == reminder_id, Reminder.send_at == send_at,
                                       Reminder.status == PENDING)
                .values(send_at=now + CLAIM_FOR)
            ).rowcount == 1:
                claimed.append(reminder_id)
        session.commit()
        if not claimed:
            return []
        rows = session.execute(select(Reminder).where(Reminder.id.in_(claimed)).order_by(Reminder.id)).scalars().all()
        due = []
        for row in rows:
            try:
                recipient: Optional[str] = unseal(secret, SEAL_PURPOSE, row.recipient_sealed)
            except (InvalidTag, ValueError):
                recipient = None
            due.append(_Due(row.id, row.kind, row.number, row.due_on, row.channel, recipient, row.recipient_hash,
                            row.attempts))
        return due


def sent_today(session, rhash: str, now: dt.datetime) -> int:
    """Notices and reminders a recipient got (or has queued) in the last 24 hours."""
    since = now - dt.timedelta(days=1)
    queued_notices = session.execute(
        select(func.count(ProgressNotice.id))
        .join(ProgressSubscription, ProgressSubscription.id == ProgressNotice.subscription_id)
        .where(ProgressSubscription.recipient_hash == rhash, ProgressNotice.created_at >= since,
               ProgressNotice.state != notices.CAPPED)
    ).scalar_one()
    reminders = session.execute(
        select(func.count(Reminder.id)).where(Reminder.recipient_hash == rhash, Reminder.status == SENT,
                                              Reminder.sent_at >= since)
    ).scalar_one()
    return int(queued_notices) + int(reminders)


@dataclass(frozen=True)
class _Plan:
    action: str  # send, defer, obsolete
    at: Optional[dt.datetime] = None  # defer: until (naive UTC)
    reason: str = ""


def _plan(db_url: str, due: _Due, timezone: str, now: dt.datetime) -> _Plan:
    """Whether the reminder goes now: still true (the application's status, when it is
    known here), within the daily cap, outside quiet hours."""
    cfg = config()
    kind = cfg.kinds[due.kind]
    naive_now = _naive(now)
    with session_factory(db_url)() as session:
        if due.number:
            application = session.get(Application, due.number)
            status = application.status if application is not None else None
            if due.kind == "supplement_deadline" and status is not None and status != STATUS_SUPPLEMENT:
                return _Plan("obsolete", reason="no_longer_supplement")
            if due.kind == "ready_for_pickup" and status is not None and status != STATUS_COMPLETED:
                if naive_now.date() > due.due_on + dt.timedelta(days=cfg.pickup_wait_days):
                    return _Plan("obsolete", reason="never_completed")
                return _Plan("defer", naive_now + dt.timedelta(days=1), "not_completed_yet")
        count = sent_today(session, due.recipient_hash, naive_now)
    decision = notices.decide(now, timezone, count, urgent=kind.urgent)
    if decision.action == notices.CAPPED:  # a reminder is not dropped: it waits for the next morning
        return _Plan("defer", _naive(notices.quiet_hours_end(now, timezone)), "daily_cap")
    if decision.action == notices.DEFERRED:
        return _Plan("defer", _naive(decision.at), "quiet_hours")
    return _Plan("send")


def _finish(db_url: str, due: _Due, outcome: str, now: dt.datetime, timezone: str, at: Optional[dt.datetime] = None,
            final: bool = False) -> str:
    """Record what became of a claimed reminder; the state it is left in."""
    cfg = config()
    naive_now = _naive(now)
    with session_factory(db_url)() as session:
        row = session.get(Reminder, due.id)
        if outcome == "sent":
            row.status, row.sent_at, row.attempts = SENT, naive_now, row.attempts + 1
            kind = cfg.kinds[row.kind]
            if kind.yearly:  # next year's, to the same recipient
                next_due = add_months(row.due_on, 12)
                session.add(Reminder(
                    kind=row.kind, number=row.number, due_on=next_due, channel=row.channel,
                    recipient_sealed=row.recipient_sealed, recipient_hash=row.recipient_hash,
                    send_at=send_moment(kind, next_due, timezone, now), status=PENDING, attempts=0,
                    created_at=naive_now,
                ))
        elif outcome == "retry":
            row.attempts += 1
            if final or row.attempts >= cfg.max_attempts:
                row.status = FAILED
            else:
                row.send_at = naive_now + dt.timedelta(minutes=2 ** (row.attempts - 1))
        elif outcome == "defer":
            row.send_at = at
        elif outcome == "obsolete":
            row.status = OBSOLETE
        session.commit()
        return row.status


async def send_due_reminders(db_url: str, secret: bytes, senders: Dict[str, Sender], timezone: str,
                             now: Optional[dt.datetime] = None) -> Dict[str, int]:
    """The scheduler's step: send the reminders that are due through ``senders``
    (channel → :class:`Sender`); counts by outcome (sent, deferred, retry, failed,
    obsolete). One batch (``BATCH``); a recipient's reminders go one after another."""
    now = _aware(now)
    counts = {"sent": 0, "deferred": 0, "retry": 0, "failed": 0, "obsolete": 0}
    channels = [channel for channel in senders if channel in CHANNELS]
    if not channels:
        return counts
    claimed = await asyncio.to_thread(_claim, db_url, secret, channels, _naive(now))
    by_recipient: Dict[str, List[_Due]] = defaultdict(list)
    for due in claimed:
        by_recipient[due.recipient_hash].append(due)
    limit = asyncio.Semaphore(SEND_CONCURRENCY)
    cfg = config()

    async def one(due: _Due) -> None:
        plan = await asyncio.to_thread(_plan, db_url, due, timezone, now)
        if plan.action == "defer":
            await asyncio.to_thread(_finish, db_url, due, "defer", now, timezone, plan.at)
            counts["deferred"] += 1
            result = f"deferred:{plan.reason}"[:32]
        elif plan.action == "obsolete":
            await asyncio.to_thread(_finish, db_url, due, "obsolete", now, timezone)
            counts["obsolete"] += 1
            result = OBSOLETE
        else:
            kind = cfg.kinds[due.kind]
            ok, final = False, due.recipient is None
            if not final:
                text = reminder_text(kind, due.channel, due.number, due.due_on)
                detail = NoticeDetail(KIND_REMINDER, kind.title,
                                      notices.masked_number(due.number) if due.number else "", kind.status,
                                      _naive(now))
                try:
                    await senders[due.channel].send(due.recipient, text, detail)
                    ok = True
                except NoticeError as exc:
                    final = exc.final
                    logger.warning("progress.reminder.failed channel=%s error=%s", due.channel, exc)
                except Exception:
                    logger.exception("progress.reminder.error channel=%s", due.channel)
            state = await asyncio.to_thread(_finish, db_url, due, "sent" if ok else "retry", now, timezone,
                                            None, final)
            result = "sent" if ok else ("failed" if state == FAILED else "retry")
            counts[result] += 1
        await asyncio.to_thread(record_audit, db_url, actor=SYSTEM_ACTOR, action=AUDIT_SENT,
                                subject=due.number or due.kind, channel=due.channel, result=result)

    async def recipient_queue(items: List[_Due]) -> None:
        async with limit:
            for due in items:
                await one(due)

    await asyncio.gather(*(recipient_queue(items) for items in by_recipient.values()))
    if claimed:
        logger.info("progress.reminders.step %s", " ".join(f"{k}={v}" for k, v in counts.items() if v))
    return counts


def purge(db_url: str, now: Optional[dt.datetime] = None) -> int:
    """Delete reminders finished (sent, failed, cancelled, obsolete) more than
    ``retention_days`` ago — their sealed recipients with them; how many."""
    before = _naive(_aware(now)) - dt.timedelta(days=config().retention_days)
    finished = Reminder.status.in_([SENT, FAILED, CANCELLED, OBSOLETE])
    with session_factory(db_url)() as session:
        gone = session.execute(delete(Reminder).where(
            finished, func.coalesce(Reminder.sent_at, Reminder.cancelled_at, Reminder.send_at) < before,
        ).execution_options(synchronize_session=False)).rowcount
        session.commit()
        return int(gone or 0)


def status(db_url: str, now: Optional[dt.datetime] = None) -> Dict:
    """Reminders by status and kind, how many are due now, the next one's time."""
    naive_now = _naive(_aware(now))
    with session_factory(db_url)() as session:
        rows = session.execute(
            select(Reminder.status, Reminder.kind, func.count(Reminder.id)).group_by(Reminder.status, Reminder.kind)
        ).all()
        due_now = session.execute(
            select(func.count(Reminder.id)).where(Reminder.status == PENDING, Reminder.send_at <= naive_now)
        ).scalar_one()
        next_at = session.execute(
            select(func.min(Reminder.send_at)).where(Reminder.status == PENDING, Reminder.send_at > naive_now)
        ).scalar()
    by_status: Dict[str, Dict[str, int]] = {}
    for state, kind, count in rows:
        by_status.setdefault(state, {})[kind] = int(count)
    return {"by_status": by_status, "due_now": int(due_now), "next_at": next_at.isoformat() if next_at else None}
