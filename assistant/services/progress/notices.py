"""What a status notice says and when it may be sent: the masked number and the new
status only (no names, no materials), never between 21:00 and 08:00 local time unless
urgent, and at most ``MAX_PER_DAY`` per recipient a day; the rest wait (``deferred``)
or are dropped (``capped``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional
from zoneinfo import ZoneInfo

from assistant.storage.tables import STATUS_LABELS

QUIET_FROM = dt.time(21, 0)
QUIET_UNTIL = dt.time(8, 0)
MAX_PER_DAY = 3
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
