"""The analytics report: for local days ``start``..``end`` (inclusive) and optionally
one channel and one catalog item, every table of the dashboard, aggregated in SQL
(SQLite and PostgreSQL alike):

- ``conversations_daily``: conversations and turns per day and channel;
- ``understood_daily``: the share of turns understood (not ``nlu_fallback`` /
  ``out_of_scope`` intents, not a ``not_covered`` / ``out_of_scope`` reply);
- ``handoffs_daily`` and ``handoff_reasons``: handoff tickets opened (per day, rate
  per conversation) and why;
- ``ratings_by_item``, ``ratings_by_channel``: 好差评 and complaints;
- ``top_items``, ``top_questions``: what turns were about, by item and by intent;
- ``not_covered``: the most frequent not-understood messages (masked, folded);
- ``response_times``: time from a message to the first reply, exact nearest-rank
  percentiles per channel (the database counts each distinct millisecond value);
- ``notifications``: status notices and WeChat customer-service messages by state.

Turns come from ``analytics_turns`` (kept up to date by the gateway's background
rollup, ``background``; a request refreshes only today and days never computed, and
says how fresh the turns are: ``range.rolled_up_at``); tickets, ratings and notices
from their own tables. Days are local days of ``BANSHI_TIMEZONE``. The item filter
applies to turns, tickets and ratings (a notice is about an application, not an
item: notices are never filtered by item).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.sql import ColumnElement

from assistant.config.settings import Settings
from assistant.services.analytics import labels
from assistant.services.analytics.background import runs_in_background
from assistant.services.analytics.config import TUNABLES
from assistant.services.analytics.rollup import computed_days, day_bounds, local_day, refresh
from assistant.storage.database import session_factory, utcnow
from assistant.storage.analytics_tables import AnalyticsTurn
from assistant.storage.tables import HandoffTicket, ProgressNotice, WeChatOutgoing
from knowledge.catalog import Catalog
from knowledge.db import Feedback

PERCENTILES = (50, 90, 95, 99)
ALL = "all"
NOTICE_STATES = ("pending", "sent", "failed", "capped")
# Dates a report may ask for (beyond them a day's UTC bounds could overflow).
FIRST_DAY = dt.date(2000, 1, 1)
LAST_DAY = dt.date(2099, 12, 31)


class BadFilters(ValueError):
    """A report that cannot be made as asked (the message is for people, in Chinese)."""


@dataclass(frozen=True)
class Filters:
    start: dt.date
    end: dt.date  # inclusive
    channel: Optional[str] = None
    item: Optional[str] = None

    def check(self, catalog: Optional[Catalog] = None) -> "Filters":
        if not (FIRST_DAY <= self.start <= LAST_DAY and FIRST_DAY <= self.end <= LAST_DAY):
            raise BadFilters(f"日期须在{FIRST_DAY.year}年到{LAST_DAY.year}年之间")
        if self.end < self.start:
            raise BadFilters("结束日期不能早于开始日期")
        if (self.end - self.start).days + 1 > TUNABLES.max_days:
            raise BadFilters(f"统计范围最长{TUNABLES.max_days}天，请缩短日期范围")
        if self.channel is not None and self.channel not in labels.CHANNELS:
            raise BadFilters("没有这个渠道")
        if self.item is not None and catalog is not None and self.item not in catalog:
            raise BadFilters("没有这个事项")
        return self

    @property
    def days(self) -> List[dt.date]:
        return [self.start + dt.timedelta(days=n) for n in range((self.end - self.start).days + 1)]


@dataclass
class Table:
    name: str
    title: str
    columns: List[Tuple[str, str]]  # (key, Chinese header)
    rows: List[Dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "columns": [{"key": key, "label": label} for key, label in self.columns],
            "rows": self.rows,
        }


# (name, title, columns) of every table, in the dashboard's order.
TABLES: Tuple[Tuple[str, str, List[Tuple[str, str]]], ...] = (
    ("conversations_daily", "每日会话量（按渠道）",
     [("day", "日期"), ("channel", "渠道代码"), ("channel_label", "渠道"), ("conversations", "会话数"), ("turns", "对话轮次")]),
    ("understood_daily", "每日理解率",
     [("day", "日期"), ("turns", "对话轮次"), ("understood", "理解的轮次"), ("rate", "理解率")]),
    ("handoffs_daily", "每日转人工率",
     [("day", "日期"), ("conversations", "会话数"), ("handoffs", "转人工次数"), ("rate", "转人工率")]),
    ("handoff_reasons", "转人工原因",
     [("reason", "原因代码"), ("reason_label", "原因"), ("count", "次数"), ("share", "占比")]),
    ("ratings_by_item", "好差评（按事项）",
     [("item_id", "事项代码"), ("item_name", "事项"), ("good", "好评"), ("bad", "差评"), ("neutral", "未表态"),
      ("complaints", "投诉"), ("satisfaction", "好评率")]),
    ("ratings_by_channel", "好差评（按渠道）",
     [("channel", "渠道代码"), ("channel_label", "渠道"), ("good", "好评"), ("bad", "差评"), ("neutral", "未表态"),
      ("complaints", "投诉"), ("satisfaction", "好评率")]),
    ("top_items", "咨询最多的事项",
     [("item_id", "事项代码"), ("item_name", "事项"), ("turns", "对话轮次"), ("conversations", "会话数")]),
    ("top_questions", "咨询最多的问题类型",
     [("intent", "意图代码"), ("intent_label", "问题类型"), ("turns", "对话轮次")]),
    ("not_covered", "未能回答的问题（已脱敏）",
     [("topic", "群众的说法"), ("count", "次数"), ("last_day", "最近一次")]),
    ("response_times", "响应时间（毫秒）",
     [("channel", "渠道代码"), ("channel_label", "渠道"), ("turns", "对话轮次")]
     + [(f"p{p}_ms", f"P{p}") for p in PERCENTILES]),
    ("notifications", "通知发送情况",
     [("kind", "类别代码"), ("kind_label", "类别"), ("channel", "渠道代码"), ("channel_label", "渠道")]
     + [(state, label) for state, label in (("pending", "待发送"), ("sent", "已发送"), ("failed", "发送失败"),
                                             ("capped", "超出每日上限"))]),
)
TABLE_NAMES = tuple(name for name, _, _ in TABLES)


def _rate(part: int, whole: int) -> Optional[float]:
    return round(part / whole, 4) if whole else None


def _hour_bucket(dialect: str, column: Any) -> ColumnElement:
    """A UTC hour as text 'YYYY-MM-DD HH' (mapped to local days in Python: exact for
    every time zone whose offset is a whole number of hours)."""
    if dialect == "postgresql":
        return func.to_char(func.date_trunc("hour", column), "YYYY-MM-DD HH24")
    return func.strftime("%Y-%m-%d %H", column)


def _local_day_of_bucket(bucket: str, zone: ZoneInfo) -> dt.date:
    return local_day(dt.datetime.strptime(bucket, "%Y-%m-%d %H"), zone)


class Report:
    """One report's queries, on one database session."""

    def __init__(self, settings: Settings, catalog: Optional[Catalog], filters: Filters) -> None:
        self.settings = settings
        self.catalog = catalog
        self.filters = filters
        self.zone = ZoneInfo(settings.timezone)
        self.utc_start = day_bounds(filters.start, self.zone)[0]
        self.utc_end = day_bounds(filters.end, self.zone)[1]

    # ------------------------------------------------------------ filters
    def turn_filter(self) -> List[ColumnElement]:
        t = AnalyticsTurn
        where = [t.day >= self.filters.start, t.day <= self.filters.end]
        if self.filters.channel:
            where.append(t.channel == self.filters.channel)
        if self.filters.item:
            where.append(t.item_id == self.filters.item)
        return where

    def dated(self, model: Any, created: Any, item: bool = True) -> List[ColumnElement]:
        where = [created >= self.utc_start, created < self.utc_end]
        if self.filters.channel:
            where.append(model.channel == self.filters.channel)
        if item and self.filters.item:
            where.append(model.item_id == self.filters.item)
        return where

    def item_name(self, item_id: Optional[str]) -> str:
        record = self.catalog.get(item_id) if (self.catalog is not None and item_id) else None
        return record.name if record is not None else (item_id or "（无）")

    # ------------------------------------------------------------ queries
    def run(self, db) -> Dict[str, Any]:
        t = AnalyticsTurn
        f = self.turn_filter()
        understood = func.sum(case((t.understood.is_(True), 1), else_=0))
        per_channel = db.execute(
            select(t.day, t.channel, func.count(func.distinct(t.conversation)), func.count(), understood)
            .where(*f).group_by(t.day, t.channel).order_by(t.day, t.channel)
        ).all()
        per_day = {
            row[0]: row[1:]
            for row in db.execute(
                select(t.day, func.count(func.distinct(t.conversation)), func.count(), understood)
                .where(*f).group_by(t.day)
            ).all()
        }
        total_conversations, total_turns, total_understood = db.execute(
            select(func.count(func.distinct(t.conversation)), func.count(), understood).where(*f)
        ).one()
        total_turns, total_understood = int(total_turns or 0), int(total_understood or 0)
        total_conversations = int(total_conversations or 0)

        tables: Dict[str, Table] = {name: Table(name, title, columns) for name, title, columns in TABLES}
        tables["conversations_daily"].rows = [
            {"day": day.isoformat(), "channel": channel, "channel_label": labels.label(labels.CHANNELS, channel),
             "conversations": int(conversations), "turns": int(turns)}
            for day, channel, conversations, turns, _ in per_channel
        ]
        for day in self.filters.days:
            conversations, turns, good = per_day.get(day, (0, 0, 0))
            tables["understood_daily"].rows.append(
                {"day": day.isoformat(), "turns": int(turns), "understood": int(good or 0),
                 "rate": _rate(int(good or 0), int(turns))}
            )

        handoffs_by_day, reasons, total_handoffs = self.handoffs(db)
        for day in self.filters.days:
            conversations = int(per_day.get(day, (0, 0, 0))[0])
            count = handoffs_by_day.get(day, 0)
            tables["handoffs_daily"].rows.append(
                {"day": day.isoformat(), "conversations": conversations, "handoffs": count,
                 "rate": _rate(count, conversations)}
            )
        tables["handoff_reasons"].rows = [
            {"reason": reason, "reason_label": labels.label(labels.REASONS, reason), "count": count,
             "share": _rate(count, total_handoffs)}
            for reason, count in reasons
        ]

        by_item, by_channel, rating_totals = self.ratings(db)
        tables["ratings_by_item"].rows = [
            {"item_id": key, "item_name": self.item_name(key), **counts} for key, counts in by_item
        ]
        tables["ratings_by_channel"].rows = [
            {"channel": key, "channel_label": labels.label(labels.CHANNELS, key), **counts} for key, counts in by_channel
        ]

        tables["top_items"].rows = [
            {"item_id": item_id, "item_name": self.item_name(item_id), "turns": int(turns),
             "conversations": int(conversations)}
            for item_id, turns, conversations in db.execute(
                select(t.item_id, func.count(), func.count(func.distinct(t.conversation)))
                .where(*f, t.item_id.isnot(None))
                .group_by(t.item_id).order_by(func.count().desc(), t.item_id).limit(TUNABLES.top)
            ).all()
        ]
        tables["top_questions"].rows = [
            {"intent": intent, "intent_label": labels.label(labels.INTENTS, intent), "turns": int(turns)}
            for intent, turns in db.execute(
                select(t.intent, func.count()).where(*f, t.intent.isnot(None))
                .group_by(t.intent).order_by(func.count().desc(), t.intent).limit(TUNABLES.top)
            ).all()
        ]
        tables["not_covered"].rows = [
            {"topic": topic, "count": int(count), "last_day": last.isoformat() if last else None}
            for topic, count, last in db.execute(
                select(t.topic, func.count(), func.max(t.day))
                .where(*f, t.understood.is_(False), t.topic.isnot(None))
                .group_by(t.topic).order_by(func.count().desc(), t.topic).limit(TUNABLES.top_topics)
            ).all()
        ]
        tables["response_times"].rows = self.response_times(db)
        tables["notifications"].rows, notice_totals = self.notifications(db)

        overall = next((row for row in tables["response_times"].rows if row["channel"] == ALL), None)
        totals = {
            "conversations": total_conversations,
            "turns": total_turns,
            "understood": total_understood,
            "understood_rate": _rate(total_understood, total_turns),
            "handoffs": total_handoffs,
            "handoff_rate": _rate(total_handoffs, total_conversations),
            **rating_totals,
            "response_p50_ms": overall["p50_ms"] if overall else None,
            "response_p90_ms": overall["p90_ms"] if overall else None,
            **notice_totals,
        }
        return {"totals": totals, "tables": {name: table.as_dict() for name, table in tables.items()}}

    def handoffs(self, db) -> Tuple[Dict[dt.date, int], List[Tuple[str, int]], int]:
        h = HandoffTicket
        where = self.dated(h, h.created_at)
        bucket = _hour_bucket(db.bind.dialect.name, h.created_at)
        by_day: Dict[dt.date, int] = {}
        for hour, count in db.execute(select(bucket, func.count()).where(*where).group_by(bucket)).all():
            day = _local_day_of_bucket(hour, self.zone)
            by_day[day] = by_day.get(day, 0) + int(count)
        reasons = [
            (reason, int(count))
            for reason, count in db.execute(
                select(h.reason, func.count()).where(*where).group_by(h.reason).order_by(func.count().desc(), h.reason)
            ).all()
        ]
        return by_day, reasons, sum(count for _, count in reasons)

    def ratings(self, db) -> Tuple[List[Tuple[str, Dict[str, Any]]], List[Tuple[str, Dict[str, Any]]], Dict[str, Any]]:
        fb = Feedback
        where = self.dated(fb, fb.created_at)
        is_feedback = fb.kind == "feedback"
        columns = (
            func.sum(case((and_(is_feedback, fb.rating == "good"), 1), else_=0)),
            func.sum(case((and_(is_feedback, fb.rating == "bad"), 1), else_=0)),
            func.sum(case((and_(is_feedback, fb.rating.is_(None)), 1), else_=0)),
            func.sum(case((fb.kind == "complaint", 1), else_=0)),
        )

        def counts(good: Any, bad: Any, neutral: Any, complaints: Any) -> Dict[str, Any]:
            good, bad = int(good or 0), int(bad or 0)
            return {"good": good, "bad": bad, "neutral": int(neutral or 0), "complaints": int(complaints or 0),
                    "satisfaction": _rate(good, good + bad)}

        def grouped(key: Any) -> List[Tuple[str, Dict[str, Any]]]:
            rows = db.execute(select(key, *columns).where(*where).group_by(key)).all()
            found = [(row[0], counts(*row[1:])) for row in rows]
            return sorted(found, key=lambda kv: (-(kv[1]["good"] + kv[1]["bad"] + kv[1]["complaints"]), kv[0] or ""))

        by_item = grouped(fb.item_id)
        by_channel = grouped(fb.channel)
        total = counts(*db.execute(select(*columns).where(*where)).one())
        totals = {"good": total["good"], "bad": total["bad"], "complaints": total["complaints"],
                  "satisfaction": total["satisfaction"]}
        return by_item, by_channel, totals

    def response_times(self, db) -> List[Dict[str, Any]]:
        """Nearest-rank percentiles (the ceil(p/100·n)-th fastest reply) per channel and
        over all channels, exact: the database counts each distinct time in
        milliseconds per channel (a few thousand rows at most), the ranks are found
        by walking those counts in order."""
        t = AnalyticsTurn
        counted = db.execute(
            select(t.channel, t.response_ms, func.count())
            .where(*self.turn_filter(), t.response_ms.isnot(None))
            .group_by(t.channel, t.response_ms)
        ).all()
        by_channel: Dict[str, Dict[int, int]] = {}
        for channel, ms, count in counted:
            for key in (channel, ALL):
                values = by_channel.setdefault(key, {})
                values[int(ms)] = values.get(int(ms), 0) + int(count)
        rows: List[Dict[str, Any]] = []
        for channel in sorted(by_channel, key=lambda key: (key == ALL, key)):
            values = sorted(by_channel[channel].items())
            total = sum(count for _, count in values)
            row: Dict[str, Any] = {
                "channel": channel,
                "channel_label": "全部渠道" if channel == ALL else labels.label(labels.CHANNELS, channel),
                "turns": total,
            }
            for p in PERCENTILES:
                rank, seen = (p * total + 99) // 100, 0
                for ms, count in values:
                    seen += count
                    if seen >= rank:
                        row[f"p{p}_ms"] = ms
                        break
            rows.append(row)
        return rows

    def notifications(self, db) -> Tuple[List[Dict[str, Any]], Dict[str, int]]:
        n = ProgressNotice
        rows: List[Dict[str, Any]] = []
        notices: Dict[str, Dict[str, int]] = {}
        for channel, state, count in db.execute(
            select(n.channel, n.state, func.count()).where(*self.dated(n, n.created_at, item=False))
            .group_by(n.channel, n.state)
        ).all():
            notices.setdefault(channel, {s: 0 for s in NOTICE_STATES})[state if state in NOTICE_STATES else "failed"] += int(count)
        for channel in sorted(notices):
            rows.append({"kind": "progress", "kind_label": labels.NOTICE_KINDS["progress"], "channel": channel,
                         "channel_label": labels.label(labels.CHANNELS, channel), **notices[channel]})
        if self.filters.channel in (None, "wechat"):
            w = WeChatOutgoing
            state = case((w.sent_at.isnot(None), "sent"), (w.failed_at.isnot(None), "failed"), else_="pending")
            counts = {s: 0 for s in NOTICE_STATES}
            for name, count in db.execute(
                select(state, func.count()).where(w.created_at >= self.utc_start, w.created_at < self.utc_end)
                .group_by(state)
            ).all():
                counts[name] += int(count)
            if any(counts.values()):
                rows.append({"kind": "wechat", "kind_label": labels.NOTICE_KINDS["wechat"], "channel": "wechat",
                             "channel_label": labels.CHANNELS["wechat"], **counts})
        totals = {f"notices_{s}": sum(r[s] for r in rows) for s in ("sent", "failed", "pending")}
        return rows, totals


def build_report(
    settings: Settings, catalog: Optional[Catalog], filters: Filters, now: Optional[dt.datetime] = None
) -> Dict[str, Any]:
    """The whole report (blocking: the rollup may read the tracker store first; call it
    in a worker thread)."""
    filters.check(catalog)
    # With the background rollup on, the request only reads what is cheap: today's
    # partial day and days never computed; the rest is read as the last pass left it.
    refreshed = refresh(settings, filters.start, filters.end, now=now,
                        cheap_only=runs_in_background(settings))
    report = Report(settings, catalog, filters)
    with session_factory(settings.db_url)() as db:
        body = report.run(db)
    body["range"] = {
        "start": filters.start.isoformat(),
        "end": filters.end.isoformat(),
        "days": len(filters.days),
        "channel": filters.channel,
        "item": filters.item,
        "timezone": settings.timezone,
        "generated_at": (now or utcnow()).replace(tzinfo=dt.timezone.utc).isoformat(),
        "refreshed_days": len(refreshed.days),
        "rolled_up_at": rolled_up_at(settings, filters),
    }
    return body


def rolled_up_at(settings: Settings, filters: Filters) -> Optional[str]:
    """How fresh the range's turns are (ISO UTC): the oldest computation of a day not
    yet complete, else the newest of a complete day; None when no day was computed."""
    known = computed_days(settings.db_url, filters.start, filters.end)
    open_days = [at for at, complete in known.values() if not complete]
    moments = open_days or [at for at, _ in known.values()]
    moment = min(moments) if open_days else max(moments, default=None)
    return moment.replace(tzinfo=dt.timezone.utc).isoformat() if moment is not None else None


def default_filters(settings: Settings, days: int = 7, now: Optional[dt.datetime] = None) -> Filters:
    """The last ``days`` local days, today included."""
    today = local_day(now or utcnow(), ZoneInfo(settings.timezone))
    return Filters(start=today - dt.timedelta(days=days - 1), end=today)


def table_rows(report: Dict[str, Any], name: str) -> Tuple[List[Tuple[str, str]], List[Dict[str, Any]]]:
    table = report["tables"][name]
    return [(c["key"], c["label"]) for c in table["columns"]], table["rows"]
