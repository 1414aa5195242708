"""Service hours: when operators answer (``BANSHI_SERVICE_HOURS`` in ``BANSHI_TIMEZONE``),
and how a moment is said in plain words ("明天 09:00")."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Optional, Tuple
from zoneinfo import ZoneInfo

_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_DAY_NAMES = "一二三四五六日"
_HOURS_RE = re.compile(
    r"^(?P<d1>mon|tue|wed|thu|fri|sat|sun)(?:-(?P<d2>mon|tue|wed|thu|fri|sat|sun))?\s+"
    r"(?P<h1>\d{1,2}):(?P<m1>\d{2})-(?P<h2>\d{1,2}):(?P<m2>\d{2})$"
)


@dataclass(frozen=True)
class ServiceHours:
    """When operators answer: ``always``, or days and one daily window in a time zone."""

    always: bool
    days: Tuple[int, ...]
    start: dt.time
    end: dt.time
    tz: str

    @classmethod
    def parse(cls, spec: str, tz: str = "Asia/Shanghai") -> "ServiceHours":
        text = spec.strip().lower()
        if text in {"always", "24/7"}:
            return cls(True, tuple(range(7)), dt.time(0), dt.time(23, 59), tz)
        match = _HOURS_RE.match(text)
        if not match:
            raise ValueError(f"service hours must be 'always' or like 'mon-fri 09:00-17:00': {spec!r}")
        d1 = _DAYS[match["d1"]]
        d2 = _DAYS[match["d2"] or match["d1"]]
        if d2 < d1:
            raise ValueError(f"days must run forwards (mon-fri): {spec!r}")
        start = dt.time(int(match["h1"]), int(match["m1"]))
        end = dt.time(int(match["h2"]), int(match["m2"]))
        if end <= start:
            raise ValueError(f"the service window must end after it starts: {spec!r}")
        return cls(False, tuple(range(d1, d2 + 1)), start, end, tz)

    def _local(self, now: Optional[dt.datetime]) -> dt.datetime:
        now = now or dt.datetime.now(dt.timezone.utc)
        if now.tzinfo is None:  # naive = UTC, as stored in the database
            now = now.replace(tzinfo=dt.timezone.utc)
        return now.astimezone(ZoneInfo(self.tz))

    def is_open(self, now: Optional[dt.datetime] = None) -> bool:
        if self.always:
            return True
        local = self._local(now)
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def next_open(self, now: Optional[dt.datetime] = None) -> dt.datetime:
        """The next time operators are available (local time); now if they are."""
        local = self._local(now)
        if self.is_open(local):
            return local
        for offset in range(8):
            day = (local + dt.timedelta(days=offset)).date()
            if day.weekday() not in self.days:
                continue
            opening = dt.datetime.combine(day, self.start, tzinfo=local.tzinfo)
            if opening > local:
                return opening
        raise AssertionError("service hours without any open day")  # parse() prevents this

    def describe(self) -> str:
        if self.always:
            return "全天"
        first, last = self.days[0], self.days[-1]
        if (first, last) == (0, 4):
            days = "工作日"
        elif first == last:
            days = f"星期{_DAY_NAMES[first]}"
        else:
            days = f"星期{_DAY_NAMES[first]}至星期{_DAY_NAMES[last]}"
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M}"


def describe_when(moment: dt.datetime, now: Optional[dt.datetime] = None) -> str:
    """'明天 09:00', '星期一 09:00' or '今天 13:30' in plain words."""
    if now is not None and now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)
    today = (now.astimezone(moment.tzinfo) if now else dt.datetime.now(moment.tzinfo)).date()
    delta = (moment.date() - today).days
    if delta == 0:
        day = "今天"
    elif delta == 1:
        day = "明天"
    else:
        day = f"星期{_DAY_NAMES[moment.weekday()]}"
    return f"{day} {moment:%H:%M}"
