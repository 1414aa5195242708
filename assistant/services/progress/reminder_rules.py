"""The rules of reminders (服务找人): the kinds and their tunables (``reminders.yml``
beside this file), what the citizen is told when a reminder cannot be set, when a
reminder goes out (its lead time before the due date, at the configured time of
day) and what it says. No database here; ``reminders.py`` stores and sends.

==========================  ====================================  ===========================
kind                        what the citizen gives                sent
==========================  ====================================  ===========================
``supplement_deadline``     application number, the deadline      ``lead_days`` before it
``ready_for_pickup``        application number (a day, optional)  that day, once finished
``pension_certification``   this year's deadline                  ``lead_days`` before, yearly
``id_card_expiry``          the expiry month only ("2027-03")     ``lead_months`` before
``passport_expiry``         the expiry month only                 ``lead_months`` before
==========================  ====================================  ===========================
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, FrozenSet, Optional, Union
from zoneinfo import ZoneInfo

import yaml

from assistant.security.pii import hash_id
from assistant.security.sealed import keyed_hash
from assistant.services.progress import notices
from assistant.services.progress.subscriptions import PURPOSE as SUBSCRIPTION_PURPOSE
from assistant.storage.tables import REMINDER_KINDS

CONFIG_PATH = Path(__file__).with_name("reminders.yml")
NEEDS = frozenset({"number", "date", "month"})

# What the citizen is told when a reminder cannot be set (shown as is).
UNKNOWN_KIND = "暂时不支持这种提醒。"
UNKNOWN_CHANNEL = "这里不能发送提醒，请在微信公众号或网页上设置。"
NEED_NUMBER = "请提供正确的办件编号（ZW开头，后面是11位数字）。"
NEED_DATE = "请告诉我日期，例如 2027-03-15。"
BAD_DATE = "这个日期不对，请换一个从今天起{days}天以内的日期。"
NEED_MONTH = "请告诉我到期的年份和月份，例如 2027-03。"
BAD_MONTH = "这个月份不对，请告诉我从本月起{years}年以内的年月，例如 2027-03。"
TOO_MANY = "您已经设置了{count}条提醒，请先取消不需要的，再设置新的。"
BAD_RECIPIENT = "没有找到可以接收提醒的地方，请稍后再试。"

MONTH_RE = re.compile(r"^\s*(\d{4})\s*(?:-|/|\.|年)\s*(\d{1,2})\s*月?\s*$")


class ReminderError(ValueError):
    """A reminder that cannot be set; ``str(error)`` is a polite sentence in Chinese."""


# ------------------------------------------------------------------ tunables
@dataclass(frozen=True)
class KindConfig:
    name: str
    needs: FrozenSet[str]
    lead_days: int
    lead_months: int
    yearly: bool
    urgent: bool
    title: str
    status: str
    text: str
    keyword: str
    what: str


@dataclass(frozen=True)
class ReminderConfig:
    send_time: dt.time
    max_per_recipient: int
    max_days_ahead: int
    max_expiry_years: int
    max_attempts: int
    pickup_wait_days: int
    retention_days: int
    kinds: Dict[str, KindConfig]

    @classmethod
    def load(cls, path: Path = CONFIG_PATH) -> "ReminderConfig":
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        kinds = {}
        for name, raw in (data.get("kinds") or {}).items():
            needs = frozenset(raw.get("needs") or ())
            if not needs <= NEEDS:
                raise ValueError(f"{path.name}: kinds.{name}.needs: unknown {sorted(needs - NEEDS)}")
            kinds[name] = KindConfig(
                name=name, needs=needs, lead_days=int(raw.get("lead_days", 0)),
                lead_months=int(raw.get("lead_months", 0)), yearly=bool(raw.get("yearly", False)),
                urgent=bool(raw.get("urgent", False)), title=str(raw["title"]), status=str(raw["status"]),
                text=str(raw["text"]), keyword=str(raw["keyword"]), what=str(raw["what"]),
            )
        if set(kinds) != set(REMINDER_KINDS):
            raise ValueError(f"{path.name}: kinds must be exactly {list(REMINDER_KINDS)}")
        hour, minute = (int(part) for part in str(data.get("send_time", "09:00")).split(":"))
        return cls(
            send_time=dt.time(hour, minute), max_per_recipient=int(data.get("max_per_recipient", 10)),
            max_days_ahead=int(data.get("max_days_ahead", 400)),
            max_expiry_years=int(data.get("max_expiry_years", 20)), max_attempts=int(data.get("max_attempts", 5)),
            pickup_wait_days=int(data.get("pickup_wait_days", 60)),
            retention_days=int(data.get("retention_days", 90)), kinds=kinds,
        )


@lru_cache(maxsize=1)
def config() -> ReminderConfig:
    return ReminderConfig.load()


# ------------------------------------------------------------------ helpers
def recipient_hash(secret: bytes, channel: str, recipient: str) -> str:
    """The same keyed hash as a progress subscription's: the daily cap counts a
    recipient's notices and reminders together."""
    return keyed_hash(secret, SUBSCRIPTION_PURPOSE, f"{channel}:{recipient}")


def _actor(channel: str, recipient: str) -> str:
    return f"citizen:{hash_id(f'{channel}:{recipient}')}"


def _aware(now: Optional[dt.datetime]) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.timezone.utc)
    return now if now.tzinfo is not None else now.replace(tzinfo=dt.timezone.utc)


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for last in (31, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise ValueError(day)


def parse_month(text: Union[str, dt.date, None]) -> dt.date:
    """``2027-03``, ``2027-3``, ``2027/03``, ``2027年3月`` → 2027-03-01."""
    if isinstance(text, dt.date):
        return text.replace(day=1)
    match = MONTH_RE.match(str(text or "")[:20])
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ReminderError(NEED_MONTH)
    return dt.date(int(match.group(1)), int(match.group(2)), 1)


def send_moment(kind: KindConfig, due_on: dt.date, timezone: str, now: dt.datetime) -> dt.datetime:
    """When a reminder due on ``due_on`` goes out (naive UTC): its lead time before,
    at ``send_time`` local time, and never before ``now``."""
    day = add_months(due_on - dt.timedelta(days=kind.lead_days), -kind.lead_months)
    local = dt.datetime.combine(day, config().send_time, tzinfo=ZoneInfo(timezone))
    return max(_naive(local), _naive(_aware(now)))


def reminder_text(kind: KindConfig, channel: str, number: Optional[str], due_on: dt.date) -> str:
    if channel == "sms":  # an SMS cannot be answered: say where to ask
        ask = f"可以在“办事助手”里问“{kind.keyword}”{kind.what}。"
    else:
        ask = f"回复“{kind.keyword}”{kind.what}。"
    return kind.text.format(
        number=notices.masked_number(number) if number else "", date=f"{due_on.year}年{due_on.month}月{due_on.day}日",
        year=due_on.year, month=due_on.month, ask=ask,
    )


def _due_date(kind: KindConfig, timezone: str, now: dt.datetime, due_on: Optional[dt.date],
              expiry_month: Union[str, dt.date, None]) -> dt.date:
    cfg = config()
    today = _aware(now).astimezone(ZoneInfo(timezone)).date()
    if "month" in kind.needs:
        if expiry_month is None or expiry_month == "":
            raise ReminderError(NEED_MONTH)
        month = parse_month(expiry_month)
        if not today.replace(day=1) <= month <= add_months(today, 12 * cfg.max_expiry_years):
            raise ReminderError(BAD_MONTH.format(years=cfg.max_expiry_years))
        return month
    if due_on is None:
        if "date" in kind.needs:
            raise ReminderError(NEED_DATE)
        return today
    if not isinstance(due_on, dt.date) or isinstance(due_on, dt.datetime):
        raise ReminderError(NEED_DATE)
    if not today <= due_on <= today + dt.timedelta(days=cfg.max_days_ahead):
        raise ReminderError(BAD_DATE.format(days=cfg.max_days_ahead))
    return due_on
