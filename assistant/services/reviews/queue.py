"""The review queue as admins work it: list with filters, counts, the trend of open
reviews per day, and the two steps of a review — assign the right catalog item and
intent (or "not covered"), then accept it into the data (or dismiss it). All
functions are blocking: async callers wrap them in ``asyncio.to_thread``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Dict, FrozenSet, List, Optional
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, func, or_, select, update

from assistant.services.analytics import labels
from assistant.services.analytics.rollup import day_bounds, local_day
from assistant.services.reviews.config import TUNABLES
from assistant.storage.database import session_factory, utcnow
from assistant.storage.review_tables import (
    OUTCOME_ACCEPTED,
    OUTCOME_DISMISSED,
    REVIEW_ASSIGNED,
    REVIEW_DONE,
    REVIEW_OPEN,
    REVIEW_REASONS,
    ReviewItem,
)
from knowledge.catalog import Catalog, load_intent_names

# The ``state`` filter: not done yet (open or assigned), one status, or everything.
STATE_PENDING = "pending"
STATE_ALL = "all"
STATES = (STATE_PENDING, REVIEW_OPEN, REVIEW_ASSIGNED, REVIEW_DONE, STATE_ALL)
REASON_LABELS: Dict[str, str] = {
    "not_understood": "未能理解",
    "not_covered": "目录未收录",
    "low_confidence": "把握不大",
    "handoff": "转人工",
    "bad_rating": "差评或投诉",
    "wrong_mark": "坐席标记建议有误",
}
STATUS_LABELS = {REVIEW_OPEN: "待处理", REVIEW_ASSIGNED: "待审核", REVIEW_DONE: "已完成"}
# Intents an assignment may not name: the NLU's own "no intent".
NOT_ASSIGNABLE_INTENTS = frozenset({"nlu_fallback"})

BAD_STATE = "状态只能是 pending、open、assigned、done 或 all"
BAD_REASON = "原因只能是 " + "、".join(REVIEW_REASONS) + " 之一"
NOT_FOUND = "没有找到这条待审核的消息"
UNKNOWN_ITEM = "目录里没有这个事项编号，请从列表中选择"
UNKNOWN_INTENT = "没有这个意图名称，请从列表中选择"
EMPTY_ASSIGNMENT = "请选择正确的事项或意图，或者标记为“目录未收录”"
NOT_COVERED_WITH_ITEM = "标记为“目录未收录”时不能再选择事项"
ALREADY_DONE = "这条消息已经处理完毕，不能再修改"
NOT_ASSIGNED = "请先指定正确的事项或意图，再审核通过"


class ReviewError(Exception):
    """A refused request: ``status`` is the HTTP status, the message is for people."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


@lru_cache(maxsize=1)
def intent_names() -> FrozenSet[str]:
    """The domain's intents (knowledge/spec/intents.tsv, the names of domain.yml)."""
    return frozenset(load_intent_names()) - NOT_ASSIGNABLE_INTENTS


def _iso(value: Optional[dt.datetime]) -> Optional[str]:
    return value.replace(tzinfo=dt.timezone.utc).isoformat() if value else None


def as_dict(row: ReviewItem, catalog: Optional[Catalog] = None) -> Dict[str, Any]:
    def name(item_id: Optional[str]) -> Optional[str]:
        record = catalog.get(item_id) if (catalog is not None and item_id) else None
        return record.name if record is not None else None

    return {
        "id": row.id,
        "reason": row.reason,
        "reason_label": REASON_LABELS.get(row.reason, row.reason),
        "status": row.status,
        "status_label": STATUS_LABELS.get(row.status, row.status),
        "channel": row.channel,
        "channel_label": labels.label(labels.CHANNELS, row.channel),
        "text": row.text,
        "seen": row.seen,
        "source": row.source,
        "intent": row.intent,
        "confidence": row.confidence,
        "item_id": row.item_id,
        "item_name": name(row.item_id),
        "answer": row.answer,
        "detail": row.detail,
        "assigned_item": row.assigned_item,
        "assigned_item_name": name(row.assigned_item),
        "assigned_intent": row.assigned_intent,
        "not_covered": bool(row.not_covered),
        "note": row.note,
        "assigned_by": row.assigned_by,
        "assigned_at": _iso(row.assigned_at),
        "outcome": row.outcome,
        "done_by": row.done_by,
        "done_at": _iso(row.done_at),
        "created_at": _iso(row.created_at),
        "last_seen_at": _iso(row.last_seen_at),
    }


@dataclass(frozen=True)
class ListFilters:
    state: str = STATE_PENDING
    reason: Optional[str] = None
    channel: Optional[str] = None

    def check(self) -> "ListFilters":
        if self.state not in STATES:
            raise ReviewError(BAD_STATE)
        if self.reason is not None and self.reason not in REVIEW_REASONS:
            raise ReviewError(BAD_REASON)
        if self.channel is not None and self.channel not in labels.CHANNELS:
            raise ReviewError("渠道只能是 " + "、".join(labels.CHANNELS) + " 之一")
        return self

    def where(self) -> List[Any]:
        r = ReviewItem
        found: List[Any] = []
        if self.state == STATE_PENDING:
            found.append(r.status != REVIEW_DONE)
        elif self.state != STATE_ALL:
            found.append(r.status == self.state)
        if self.reason:
            found.append(r.reason == self.reason)
        if self.channel == labels.OTHER_CHANNEL:
            found.append(or_(r.channel.is_(None), r.channel.notin_([c for c in labels.CHANNELS if c != labels.OTHER_CHANNEL])))
        elif self.channel:
            found.append(r.channel == self.channel)
        return found


def list_items(db_url: str, catalog: Catalog, filters: ListFilters, limit: int, offset: int = 0) -> Dict[str, Any]:
    """One page of reviews (newest sighting first) and how many match."""
    where = filters.check().where()
    r = ReviewItem
    with session_factory(db_url)() as db:
        total = db.execute(select(func.count()).select_from(r).where(*where)).scalar_one()
        rows = db.execute(
            select(r).where(*where).order_by(r.last_seen_at.desc(), r.id.desc()).limit(limit).offset(offset)
        ).scalars().all()
    return {"total": int(total), "items": [as_dict(row, catalog) for row in rows]}


def counts(db_url: str) -> Dict[str, Any]:
    """Reviews per status, and the not-done ones per reason."""
    r = ReviewItem
    with session_factory(db_url)() as db:
        by_status = dict(db.execute(select(r.status, func.count()).group_by(r.status)).all())
        by_reason = dict(
            db.execute(select(r.reason, func.count()).where(r.status != REVIEW_DONE).group_by(r.reason)).all()
        )
    statuses = {status: int(by_status.get(status, 0)) for status in (REVIEW_OPEN, REVIEW_ASSIGNED, REVIEW_DONE)}
    return {
        **statuses,
        "pending": statuses[REVIEW_OPEN] + statuses[REVIEW_ASSIGNED],
        "by_reason": [
            {"reason": reason, "label": REASON_LABELS[reason], "count": int(by_reason.get(reason, 0))}
            for reason in REVIEW_REASONS
        ],
    }


def trend(db_url: str, timezone: str, days: int, now: Optional[dt.datetime] = None) -> List[Dict[str, Any]]:
    """Reviews not done at the end of each of the last ``days`` local days (today: now),
    and how many came in that day."""
    zone = ZoneInfo(timezone)
    now = now or utcnow()
    today = local_day(now, zone)
    r = ReviewItem
    out: List[Dict[str, Any]] = []
    with session_factory(db_url)() as db:
        for back in range(days - 1, -1, -1):
            day = today - dt.timedelta(days=back)
            start, end = day_bounds(day, zone)
            moment = min(end, now)
            pending = db.execute(
                select(func.count()).select_from(r).where(
                    r.created_at < moment, or_(r.done_at.is_(None), r.done_at >= moment)
                )
            ).scalar_one()
            new = db.execute(
                select(func.count()).select_from(r).where(and_(r.created_at >= start, r.created_at < end))
            ).scalar_one()
            out.append({"day": day.isoformat(), "open": int(pending), "new": int(new)})
    return out


def _get(db, review_id: int) -> ReviewItem:
    row = db.get(ReviewItem, review_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise ReviewError(NOT_FOUND, 404)
    if row.status == REVIEW_DONE:
        raise ReviewError(ALREADY_DONE, 409)
    return row


def check_assignment(catalog: Catalog, item_id: Optional[str], intent: Optional[str], not_covered: bool) -> None:
    if not_covered and item_id:
        raise ReviewError(NOT_COVERED_WITH_ITEM)
    if not not_covered and not item_id and not intent:
        raise ReviewError(EMPTY_ASSIGNMENT)
    if item_id and catalog.get(item_id) is None:
        raise ReviewError(UNKNOWN_ITEM)
    if intent and intent not in intent_names():
        raise ReviewError(UNKNOWN_INTENT)


def assign(db_url: str, catalog: Catalog, review_id: int, who: str, *, item_id: Optional[str],
           intent: Optional[str], not_covered: bool, note: Optional[str]) -> Dict[str, Any]:
    """The first step: the right item and intent (or "not covered"); again until accepted."""
    check_assignment(catalog, item_id, intent, not_covered)
    with session_factory(db_url)() as db, db.begin():
        row = _get(db, review_id)
        row.assigned_item, row.assigned_intent = item_id or None, intent or None
        row.not_covered, row.note = bool(not_covered), note or None
        row.assigned_by, row.assigned_at, row.status = who, utcnow(), REVIEW_ASSIGNED
        db.flush()
        return as_dict(row, catalog)


def _acceptable(catalog: Catalog, row: ReviewItem) -> None:
    if row.status != REVIEW_ASSIGNED:
        raise ReviewError(NOT_ASSIGNED, 409)
    # The assignment may have been made against an older catalog.
    check_assignment(catalog, row.assigned_item, row.assigned_intent, bool(row.not_covered))


def acceptable(db_url: str, catalog: Catalog, review_id: int) -> Dict[str, Any]:
    """The review about to be accepted, refused as :func:`finish` would refuse it."""
    with session_factory(db_url)() as db:
        row = _get(db, review_id)
        _acceptable(catalog, row)
        return as_dict(row, catalog)


def finish(db_url: str, catalog: Catalog, review_id: int, who: str, outcome: str, note: Optional[str] = None) -> Dict[str, Any]:
    """The second step: accepted (into the data: ``adopt``) or dismissed."""
    with session_factory(db_url)() as db, db.begin():
        row = _get(db, review_id)
        if outcome == OUTCOME_ACCEPTED:
            _acceptable(catalog, row)
        values: Dict[str, Any] = {"status": REVIEW_DONE, "outcome": outcome, "done_by": who, "done_at": utcnow()}
        if outcome != OUTCOME_ACCEPTED and note:
            values["note"] = note
        # Only from the state just read: of two admins finishing it at once, one gets 409
        # (SQLite reads take no lock; this write waits for the other's commit).
        claimed = db.execute(
            update(ReviewItem).where(ReviewItem.id == review_id, ReviewItem.status == row.status).values(**values)
        ).rowcount
        if not claimed:
            raise ReviewError(ALREADY_DONE, 409)
        db.refresh(row)
        return as_dict(row, catalog)


def reopen(db_url: str, review_id: int) -> bool:
    """An acceptance whose data could not be made (the catalog refused the situation)
    taken back: the review is assigned again; whether it was."""
    r = ReviewItem
    with session_factory(db_url)() as db, db.begin():
        changed = db.execute(
            update(r).where(r.id == review_id, r.status == REVIEW_DONE, r.outcome == OUTCOME_ACCEPTED)
            .values(status=REVIEW_ASSIGNED, outcome=None, done_by=None, done_at=None)
        ).rowcount
    return bool(changed)


def dismiss(db_url: str, catalog: Catalog, review_id: int, who: str, note: Optional[str]) -> Dict[str, Any]:
    return finish(db_url, catalog, review_id, who, OUTCOME_DISMISSED, note)


def accepted(db_url: str) -> List[ReviewItem]:
    """Every accepted review, oldest first (what the data files are made of)."""
    r = ReviewItem
    with session_factory(db_url)() as db:
        return list(db.execute(
            select(r).where(r.status == REVIEW_DONE, r.outcome == OUTCOME_ACCEPTED).order_by(r.id)
        ).scalars().all())


def purge(db_url: str, now: Optional[dt.datetime] = None) -> int:
    """Delete reviews past their retention (``reviews.yml``): not taken up, or dismissed;
    how many. Accepted reviews stay (the training data is made of them)."""
    now = now or utcnow()
    r = ReviewItem
    stale = or_(
        and_(r.status != REVIEW_DONE, r.last_seen_at < now - dt.timedelta(days=TUNABLES.open_days)),
        and_(r.status == REVIEW_DONE, r.outcome == OUTCOME_DISMISSED,
             r.done_at < now - dt.timedelta(days=TUNABLES.dismissed_days)),
    )
    with session_factory(db_url)() as db:
        gone = db.execute(delete(r).where(stale).execution_options(synchronize_session=False)).rowcount
        db.commit()
        return int(gone or 0)
