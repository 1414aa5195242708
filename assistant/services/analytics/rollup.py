"""Conversation turns, reduced from Rasa's tracker store into ``analytics_turns``, one
local day (``BANSHI_TIMEZONE``) at a time.

The tracker store holds every event of every conversation (a turn is ten or more
rows, each with its JSON); reading it for every report would not scale. A day is
read once — its citizen messages (``user`` events) and the replies that follow each
one (``bot`` events, only the JSON of those that carry what the reply was about) —
and reduced to one row per turn: channel, intent, item, kind of reply, understood or
not, time to the first reply, and for a turn not understood its masked text.

A day is *complete* once it is computed ``settle_minutes`` after it ended: it is
never read again. Today (and any day not complete) is recomputed when its rows are
older than ``fresh_seconds`` — by the gateway's background pass (``background.py``,
one replica at a time) and, for today and days never computed, by a report asking
for it; the day's rows are replaced in
one transaction, the day's row locked (``FOR UPDATE`` on PostgreSQL), so that two
gateway replicas refreshing the same day at once leave one copy.

The tracker store may be another database than ours (``BANSHI_TRACKER_DB_URL``):
it is read through its own engine. The first read adds an index on the events'
timestamp to Rasa's table (``CREATE INDEX CONCURRENTLY`` on PostgreSQL: writes go
on meanwhile); without it a day's read would scan the whole table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Dict, Iterable, List, Optional, Tuple
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from assistant.config.settings import Settings
from assistant.security.pii import mask_pii
from assistant.services.analytics.config import TUNABLES
from assistant.services.analytics.labels import CHANNELS, OTHER_CHANNEL
from assistant.storage.database import PG_CONNECT_TIMEOUT_S, PG_POOL_TIMEOUT_S, session_factory, utcnow
from assistant.storage.analytics_tables import AnalyticsDay, AnalyticsTurn

logger = logging.getLogger(__name__)

# A turn is not understood when the NLU found no intent it is sure of, the message is
# outside government services, or the service asked for is not in the catalog.
NOT_UNDERSTOOD_INTENTS = frozenset({"nlu_fallback", "out_of_scope"})
NOT_UNDERSTOOD_ANSWERS = frozenset({"not_covered", "out_of_scope"})
ANSWER_HANDOFF = "handoff"
TIMESTAMP_INDEX = "ix_events_timestamp"
READ_BATCH = 2000

# Rasa's SQL tracker store table (rasa.core.tracker_store.SQLTrackerStore.SQLEvent).
EVENTS = sa.table(
    "events",
    sa.column("id", sa.Integer),
    sa.column("sender_id", sa.String),
    sa.column("type_name", sa.String),
    sa.column("timestamp", sa.Float),
    sa.column("intent_name", sa.String),
    sa.column("data", sa.Text),
)

_PUNCTUATION = re.compile(r"[\s\u3000，。！？、；：,.!?;:~～…\"'“”‘’()（）【】\[\]<>《》]+")
# No personal datum (mask_pii has masked those): any other number, folded so topics group.
_LONG_DIGITS = re.compile(r"\d{5,}")


def topic_of(text: Optional[str], chars: int = TUNABLES.topic_chars) -> Optional[str]:
    """The masked, shortened form of a message for the not-understood list: personal
    data masked (``mask_pii``), any other run of 5+ digits replaced, punctuation
    folded, ASCII lower-cased."""
    masked = _LONG_DIGITS.sub("#", mask_pii(text or ""))
    folded = _PUNCTUATION.sub(" ", masked).strip().lower()
    return folded[:chars] or None


def conversation_key(secret: bytes, sender_id: str) -> str:
    """A keyed hash of a conversation id: counts conversations, reveals none."""
    return hmac.new(secret, f"analytics:{sender_id}".encode(), hashlib.sha256).hexdigest()[:24]


def channel_of(value: Any) -> str:
    return value if isinstance(value, str) and value in CHANNELS else OTHER_CHANNEL


def day_bounds(day: dt.date, zone: ZoneInfo) -> Tuple[dt.datetime, dt.datetime]:
    """The local day as naive UTC datetimes [start, end)."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.timezone.utc)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone).astimezone(dt.timezone.utc)
    return start.replace(tzinfo=None), end.replace(tzinfo=None)


def local_day(moment: dt.datetime, zone: ZoneInfo) -> dt.date:
    """The local date of a naive UTC datetime."""
    return moment.replace(tzinfo=dt.timezone.utc).astimezone(zone).date()


def _epoch(naive_utc: dt.datetime) -> float:
    return naive_utc.replace(tzinfo=dt.timezone.utc).timestamp()


# ------------------------------------------------------------ tracker store
@lru_cache(maxsize=4)
def tracker_engine(url: str) -> Engine:
    """A read engine on the tracker store (not ``storage.database.get_engine``: that
    one migrates our schema into the database it opens)."""
    parsed = make_url(url)
    kwargs: Dict[str, Any] = {"future": True, "pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 15}
    elif parsed.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
        kwargs["pool_timeout"] = PG_POOL_TIMEOUT_S
    return sa.create_engine(url, **kwargs)


_indexed: set = set()
_index_lock = threading.Lock()


def has_events(engine: Engine) -> bool:
    return sa.inspect(engine).has_table("events")


def ensure_timestamp_index(engine: Engine) -> None:
    """Index Rasa's events by timestamp, once per process and database (best effort:
    a failure is logged and the read goes on without it)."""
    key = str(engine.url)
    with _index_lock:
        if key in _indexed:
            return
        try:
            if engine.dialect.name == "postgresql":
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.exec_driver_sql(
                        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {TIMESTAMP_INDEX} ON events (timestamp)"
                    )
            else:
                with engine.begin() as conn:
                    conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {TIMESTAMP_INDEX} ON events (timestamp)")
            logger.info("analytics.tracker.indexed index=%s", TIMESTAMP_INDEX)
        except Exception as exc:  # another replica builds it now, or no right to: read anyway
            logger.warning("analytics.tracker.index_failed error=%s", type(exc).__name__)
        _indexed.add(key)


@dataclass
class _Turn:
    at: float
    conversation: str
    channel: str
    intent: Optional[str]
    text: str
    first_reply: Optional[float] = None
    answer: Optional[str] = None
    item_id: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    def reply(self, at: float, data: Optional[str]) -> None:
        if self.first_reply is None:
            self.first_reply = at
        if not data:
            return
        try:
            custom = (json.loads(data).get("data") or {}).get("custom")
        except (ValueError, AttributeError):
            return
        if not isinstance(custom, dict):
            return
        # As the gateway reads a turn's replies (assistant.services.conversation.reply_of).
        if isinstance(custom.get("reply"), dict):
            self.answer = custom["reply"].get("answer")
            self.item_id = custom["reply"].get("item")
        elif isinstance(custom.get("handoff"), dict):
            self.answer = ANSWER_HANDOFF

    def row(self, day: dt.date) -> Dict[str, Any]:
        understood = self.intent not in NOT_UNDERSTOOD_INTENTS and self.answer not in NOT_UNDERSTOOD_ANSWERS
        response_ms = None
        if self.first_reply is not None:
            response_ms = max(0, int(round((self.first_reply - self.at) * 1000)))
        return {
            "day": day,
            "at": dt.datetime.fromtimestamp(self.at, dt.timezone.utc).replace(tzinfo=None),
            "conversation": self.conversation,
            "channel": self.channel,
            "intent": self.intent[:64] if self.intent else None,
            "item_id": self.item_id[:64] if isinstance(self.item_id, str) else None,
            "answer": self.answer[:32] if isinstance(self.answer, str) else None,
            "understood": understood,
            "response_ms": response_ms,
            "topic": None if understood else topic_of(self.text),
        }


def _user_turn(sender: str, at: float, intent_name: Optional[str], data: Optional[str], secret: bytes) -> _Turn:
    try:
        event = json.loads(data or "{}")
    except ValueError:
        event = {}
    parse = event.get("parse_data") or {}
    intent = intent_name or (parse.get("intent") or {}).get("name")
    return _Turn(
        at=at,
        conversation=conversation_key(secret, sender),
        channel=channel_of(event.get("input_channel")),
        intent=intent,
        text=str(event.get("text") or ""),
    )


def reduce_events(rows: Iterable[Tuple], start: float, end: float, day: dt.date, secret: bytes) -> List[Dict[str, Any]]:
    """Turns of ``rows`` (sender_id, type_name, timestamp, intent_name, data), ordered
    by conversation and event id: each citizen message from ``start`` to ``end`` with
    the replies after it (until the conversation's next message)."""
    turns: List[Dict[str, Any]] = []
    sender: Optional[str] = None
    turn: Optional[_Turn] = None
    for sender_id, type_name, at, intent_name, data in rows:
        if sender_id != sender:
            if turn is not None:
                turns.append(turn.row(day))
            sender, turn = sender_id, None
        if type_name == "user":
            if turn is not None:
                turns.append(turn.row(day))
            turn = _user_turn(sender_id, at, intent_name, data, secret) if at is not None and start <= at < end else None
        elif turn is not None and at is not None:
            turn.reply(at, data)
    if turn is not None:
        turns.append(turn.row(day))
    return turns


def read_day(engine: Engine, day: dt.date, zone: ZoneInfo, secret: bytes) -> List[Dict[str, Any]]:
    """The turns of one local day, read from the tracker store."""
    start, end = (_epoch(moment) for moment in day_bounds(day, zone))
    e = EVENTS.c
    # Only the JSON that is needed: every citizen message's, and a reply's only when it
    # carries what it was about (the dialogue's custom message).
    data = sa.case((sa.or_(e.type_name == "user", e.data.like('%"custom"%')), e.data), else_=sa.null())
    query = (
        select(e.sender_id, e.type_name, e.timestamp, e.intent_name, data)
        .where(e.type_name.in_(("user", "bot")))
        .where(e.timestamp >= start, e.timestamp < end + TUNABLES.reply_grace_seconds)
        .order_by(e.sender_id, e.id)
    )
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=READ_BATCH).execute(query)
        return reduce_events(result, start, end, day, secret)


# ------------------------------------------------------------------ refresh
def _needs_refresh(known: Optional[Tuple[dt.datetime, bool]], now: dt.datetime) -> bool:
    if known is None:
        return True
    computed_at, complete = known
    return not complete and (now - computed_at).total_seconds() >= TUNABLES.fresh_seconds


def store_day(db_url: str, day: dt.date, turns: List[Dict[str, Any]], computed_at: dt.datetime, complete: bool) -> bool:
    """Replace the day's turns (one transaction, the day's row locked); False when
    another process stored a complete or newer computation of it meanwhile."""
    factory = session_factory(db_url)
    for _ in range(3):
        with factory() as db:
            try:
                row = db.get(AnalyticsDay, day, with_for_update=True, populate_existing=True)
                if row is None:
                    row = AnalyticsDay(day=day, computed_at=computed_at, complete=complete, turns=len(turns))
                    db.add(row)
                    db.flush()  # a concurrent first computation of the day fails here, then retries
                elif row.complete or row.computed_at > computed_at:
                    db.rollback()
                    return False
                db.execute(delete(AnalyticsTurn).where(AnalyticsTurn.day == day))
                if turns:
                    db.execute(insert(AnalyticsTurn), turns)
                row.computed_at, row.complete, row.turns = computed_at, complete, len(turns)
                db.commit()
                return True
            except (IntegrityError, OperationalError) as exc:
                db.rollback()
                if isinstance(exc, OperationalError) and "locked" not in str(exc.orig).lower():
                    raise
    return False


@dataclass
class RefreshResult:
    days: List[dt.date] = field(default_factory=list)
    turns: int = 0
    remaining: int = 0  # stale days left for a later pass (``limit``)


def computed_days(db_url: str, first: dt.date, last: dt.date) -> Dict[dt.date, Tuple[dt.datetime, bool]]:
    """The bookkeeping of the days ``first``..``last``: day → (computed_at, complete)."""
    with session_factory(db_url)() as db:
        return {
            row.day: (row.computed_at, row.complete)
            for row in db.execute(
                select(AnalyticsDay).where(AnalyticsDay.day >= first, AnalyticsDay.day <= last)
            ).scalars()
        }


def refresh(
    settings: Settings,
    first: dt.date,
    last: dt.date,
    now: Optional[dt.datetime] = None,
    *,
    cheap_only: bool = False,
    limit: Optional[int] = None,
) -> RefreshResult:
    """Bring ``analytics_turns`` up to date for the local days ``first``..``last``
    (days after today are skipped). ``cheap_only`` (a dashboard request while the
    background rollup runs): only today and days never computed — a past day computed
    before it ended is left to the background pass. ``limit``: at most that many days,
    newest first (a background pass). Blocking: call it in a worker thread."""
    zone = ZoneInfo(settings.timezone)
    now = now or utcnow()
    today = local_day(now, zone)
    last = min(last, today)
    done = RefreshResult()
    if first > last or settings.tracker_store != "sql":
        return done
    known = computed_days(settings.db_url, first, last)
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    stale = [day for day in days if _needs_refresh(known.get(day), now)]
    if cheap_only:
        stale = [day for day in stale if day == today or day not in known]
    if limit is not None:
        stale.sort(reverse=True)
        stale, done.remaining = stale[:limit], max(0, len(stale) - limit)
    if not stale:
        return done
    engine = tracker_engine(settings.trackers_url)
    events = has_events(engine)
    if events:
        ensure_timestamp_index(engine)
    secret = settings.secret()
    settle = dt.timedelta(minutes=TUNABLES.settle_minutes)
    for day in stale:
        turns = read_day(engine, day, zone, secret) if events else []
        complete = now >= day_bounds(day, zone)[1] + settle
        if store_day(settings.db_url, day, turns, now, complete):
            done.days.append(day)
            done.turns += len(turns)
    logger.info("analytics.rollup.refreshed days=%d turns=%d remaining=%d", len(done.days), done.turns, done.remaining)
    return done
