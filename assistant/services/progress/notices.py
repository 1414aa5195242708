"""What a status notice says and when it may be sent: the masked number and the new
status only (no names, no materials), never between 21:00 and 08:00 local time unless
urgent, and at most ``MAX_PER_DAY`` per recipient a day; the rest wait (``deferred``)
or are dropped (``capped``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from assistant.security.audit import record_audit
from assistant.storage.database import session_factory
from assistant.storage.tables import STATUS_LABELS, ProgressNotice, ProgressSubscription, Reminder

QUIET_FROM = dt.time(21, 0)
QUIET_UNTIL = dt.time(8, 0)
MAX_PER_DAY = 3
URGENT_STATUSES = frozenset()  # none: reminders may be marked urgent in reminders.yml
AUDIT_QUEUED = "progress.notice.queued"
SEND = "send"
DEFERRED = "deferred"
CAPPED = "capped"
NOTICE = "您的办件{number}有新进展：{status}。可在“办事助手”里输入办件编号查看详情。"


def masked_number(number: str) -> str:
    """ZW20251102002 → ZW2025****002: enough to tell one's applications apart."""
    if len(number) <= 9:
        return number[:2] + "****"
    return number[:6] + "****" + number[-3:]


def notice_text(number: str, status: str) -> str:
    return NOTICE.format(number=masked_number(number), status=STATUS_LABELS.get(status, status))


def in_quiet_hours(moment: dt.datetime, timezone: str) -> bool:
    local = moment.astimezone(ZoneInfo(timezone)).time()
    return local >= QUIET_FROM or local < QUIET_UNTIL


def quiet_hours_end(moment: dt.datetime, timezone: str) -> dt.datetime:
    """The next 08:00 local time at or after ``moment`` (aware, in UTC)."""
    zone = ZoneInfo(timezone)
    local = moment.astimezone(zone)
    day = local.date() if local.time() < QUIET_UNTIL else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, QUIET_UNTIL, tzinfo=zone).astimezone(dt.timezone.utc)


@dataclass(frozen=True)
class Decision:
    action: str  # SEND, DEFERRED (send at ``at``) or CAPPED
    at: Optional[dt.datetime] = None


def decide(moment: dt.datetime, timezone: str, sent_today: int, urgent: bool = False) -> Decision:
    """Whether a notice may go now (``moment`` aware)."""
    if sent_today >= MAX_PER_DAY and not urgent:
        return Decision(CAPPED)
    if in_quiet_hours(moment, timezone) and not urgent:
        return Decision(DEFERRED, quiet_hours_end(moment, timezone))
    return Decision(SEND, moment)


def enqueue(db_url: str, number: str, status: str, timezone: str, now: Optional[dt.datetime] = None) -> int:
    """Queue a notice for every active subscriber of ``number`` who has not been told of
    ``status`` yet (one per change), due now or after the quiet hours; capped past the
    daily limit. Returns how many were queued (capped ones included, as ``capped``)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    naive_now = now.astimezone(dt.timezone.utc).replace(tzinfo=None)
    queued = []
    with session_factory(db_url)() as session:
        rows = session.execute(
            select(ProgressSubscription).where(
                ProgressSubscription.number == number, ProgressSubscription.cancelled_at.is_(None)
            ).with_for_update()
        ).scalars().all()
        for row in rows:
            if row.last_status == status:
                continue
            row.last_status = status
            sent_today = session.execute(
                select(func.count(ProgressNotice.id))
                .join(ProgressSubscription, ProgressSubscription.id == ProgressNotice.subscription_id)
                .where(ProgressSubscription.recipient_hash == row.recipient_hash,
                       ProgressNotice.created_at >= naive_now - dt.timedelta(days=1),
                       ProgressNotice.state != CAPPED)
            ).scalar_one() + session.execute(  # reminders count against the same cap
                select(func.count(Reminder.id))
                .where(Reminder.recipient_hash == row.recipient_hash, Reminder.status == "sent",
                       Reminder.sent_at >= naive_now - dt.timedelta(days=1))
            ).scalar_one()
            decision = decide(now, timezone, sent_today, urgent=status in URGENT_STATUSES)
            due = (decision.at or now).astimezone(dt.timezone.utc).replace(tzinfo=None)
            notice = ProgressNotice(
                subscription_id=row.id, number=number, channel=row.channel, status=status,
                text=notice_text(number, status), due_at=due, created_at=naive_now,
                state=CAPPED if decision.action == CAPPED else "pending", attempts=0,
            )
            session.add(notice)
            queued.append((row.channel, decision.action))
        session.commit()
    for channel, action in queued:
        record_audit(db_url, actor="system:progress", action=AUDIT_QUEUED, subject=number, channel=channel,
                     result=action)
    return len(queued)
