"""Filling the review queue (``review_items``). Text is masked (``mask_pii``) and cut
before it is stored; no conversation id is kept.

- A chat turn of any channel that was not understood, not covered by the catalog, or
  understood with low confidence is noted by the gateway as it is answered
  (:func:`note_turn`, called from ``assistant.services.conversation``); a kiosk sends
  it to the central server's queue through its outbox (:func:`forward_turn`, kind
  ``review``, stored by the central inbox with :func:`add_turn_review`).
- Handoff tickets, bad ratings and complaints (``feedback``) and operators' "wrong"
  marks (``suggestion_marks``) are written by other processes (the action server,
  the kiosks' inbox, the desk): :func:`collect` reads their new rows since its cursor
  (``review_cursors``) and is run before the queue is shown. For a bad rating the
  question it rated is read from the tracker store (the conversation's message
  before the rating).

A message seen again while its review is not done counts on the same row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from typing import Any, Callable, Dict, Optional, Tuple

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from assistant.config.settings import Settings
from assistant.security.pii import mask_pii
from assistant.services import outbox
from assistant.services.analytics import rollup
from assistant.services.reviews.config import TUNABLES
from assistant.storage.database import session_factory, utcnow
from assistant.storage.review_tables import (
    REASON_BAD_RATING,
    REASON_HANDOFF,
    REASON_LOW_CONFIDENCE,
    REASON_NOT_COVERED,
    REASON_NOT_UNDERSTOOD,
    REASON_WRONG_MARK,
    REVIEW_DONE,
    ReviewCursor,
    ReviewItem,
)
from assistant.storage.tables import OUTBOX_KIND_REVIEW, HandoffTicket, SuggestionMark
from knowledge.answers import QUESTION_LABELS
from knowledge.db import Feedback

logger = logging.getLogger(__name__)

NOT_UNDERSTOOD_INTENTS = rollup.NOT_UNDERSTOOD_INTENTS
ANSWER_NOT_COVERED = "not_covered"
ANSWER_OUT_OF_SCOPE = "out_of_scope"
MARK_WRONG = "wrong"
RATING_BAD = "bad"
KIND_FEEDBACK, KIND_COMPLAINT = "feedback", "complaint"
# Citizen messages that are the rating itself, not the question rated.
RATING_INTENTS = frozenset({"feedback", "complain", "thank", "goodbye", "affirm", "deny"})
NO_TEXT = "（没有记录到群众的问题）"
DETAIL_CHARS = 300
# Cursors of the tables read by :func:`collect`.
CURSOR_TICKETS, CURSOR_FEEDBACK, CURSOR_MARKS = "handoff_tickets", "feedback", "suggestion_marks"


def clip(text: Optional[str], chars: int = TUNABLES.text_chars) -> str:
    """Masked, whitespace-trimmed, at most ``chars`` characters."""
    masked = " ".join(mask_pii(text or "").split())
    return masked[:chars]


def text_key(reason: str, text: str) -> str:
    """Same reason and the same words (punctuation, case and digits folded): same row."""
    folded = rollup.topic_of(text, chars=TUNABLES.text_chars) or ""
    return hashlib.sha256(f"{reason}\n{folded}".encode()).hexdigest()[:32]


def add_item(session: Session, reason: str, text: str, **fields: Any) -> Tuple[ReviewItem, bool]:
    """Add a review (or count one more sighting on the open row of the same text);
    returns the row and whether it is new. ``text`` must be masked already."""
    key = text_key(reason, text)
    existing = session.execute(
        select(ReviewItem).where(ReviewItem.text_key == key, ReviewItem.status != REVIEW_DONE)
        .order_by(ReviewItem.id).limit(1)
    ).scalar_one_or_none()
    now = utcnow()
    if existing is not None:
        existing.seen = (existing.seen or 1) + 1
        existing.last_seen_at = now
        return existing, False
    row = ReviewItem(reason=reason, text=text, text_key=key, seen=1, not_covered=False,
                     created_at=now, last_seen_at=now, **fields)
    session.add(row)
    session.flush()
    return row, True


# ------------------------------------------------------------------ turns
def turn_reason(intent: Optional[str], confidence: Optional[float], answer: Optional[str]) -> Optional[str]:
    """Why a turn answered by the assistant is worth a review, or None."""
    if intent in NOT_UNDERSTOOD_INTENTS or answer == ANSWER_OUT_OF_SCOPE:
        return REASON_NOT_UNDERSTOOD
    if answer == ANSWER_NOT_COVERED:
        return REASON_NOT_COVERED
    if intent and confidence is not None and confidence < TUNABLES.low_confidence:
        return REASON_LOW_CONFIDENCE
    return None


def turn_review(text: str, channel: str, parse_data: Dict[str, Any], reply: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The review a turn is worth, as the fields of its row (text masked and cut), or
    None when the turn was fine (or was a button's payload). Pure: a kiosk sends it to
    the central server's queue (outbox kind ``review``), a gateway stores it."""
    if not text or text.lstrip().startswith("/"):
        return None
    intent_data = parse_data.get("intent") or {}
    intent = intent_data.get("name")
    confidence = intent_data.get("confidence")
    confidence = float(confidence) if isinstance(confidence, (int, float)) else None
    reason = turn_reason(intent, confidence, reply.get("answer"))
    if reason is None:
        return None
    masked = clip(text)
    if not masked:
        return None
    item = reply.get("item")
    return {
        "reason": reason, "text": masked, "channel": channel[:16], "intent": (intent or None) and intent[:64],
        "confidence": confidence, "item_id": item[:64] if isinstance(item, str) else None,
        "answer": (reply.get("answer") or None) and str(reply["answer"])[:32],
    }


TURN_REASONS = frozenset({REASON_NOT_UNDERSTOOD, REASON_NOT_COVERED, REASON_LOW_CONFIDENCE})
_TURN_FIELDS = {"channel": 16, "intent": 64, "item_id": 64, "answer": 32}


def check_turn_review(payload: Dict[str, Any]) -> None:
    """A turn review sent by a kiosk is well formed (ValueError in Chinese if not)."""
    if payload.get("reason") not in TURN_REASONS:
        raise ValueError(f"payload.reason 只能是 {', '.join(sorted(TURN_REASONS))} 之一")
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > TUNABLES.text_chars:
        raise ValueError(f"payload.text 须为不超过 {TUNABLES.text_chars} 字的文字")
    for field, chars in _TURN_FIELDS.items():
        value = payload.get(field)
        if value is not None and (not isinstance(value, str) or len(value) > chars):
            raise ValueError(f"payload.{field} 格式不正确")
    confidence = payload.get("confidence")
    if confidence is not None and (isinstance(confidence, bool) or not isinstance(confidence, (int, float))
                                   or not 0.0 <= confidence <= 1.0):
        raise ValueError("payload.confidence 须为 0 到 1 之间的数")


def add_turn_review(session: Session, review: Dict[str, Any]) -> Tuple[ReviewItem, bool]:
    """Store a turn review (from :func:`turn_review`, or a kiosk's after
    :func:`check_turn_review`) in ``session``'s transaction; masked once more."""
    fields = {field: review.get(field) for field in (*_TURN_FIELDS, "confidence")}
    return add_item(session, review["reason"], clip(review["text"]), **fields)


def note_turn(db_url: str, text: str, channel: str, parse_data: Dict[str, Any], reply: Dict[str, Any]) -> Optional[int]:
    """Store a turn worth a review (blocking: run it in a worker thread); the row's
    id, or None when the turn was fine (or was a button's payload)."""
    review = turn_review(text, channel, parse_data, reply)
    if review is None:
        return None
    with session_factory(db_url)() as session, session.begin():
        row, created = add_turn_review(session, review)
        row_id = row.id
    logger.info("reviews.turn.noted id=%s reason=%s new=%s channel=%s", row_id, review["reason"], created, channel)
    return row_id


def forward_turn(db_url: str, text: str, channel: str, parse_data: Dict[str, Any], reply: Dict[str, Any]) -> Optional[str]:
    """A kiosk's turn worth a review goes to the central server's queue through the
    kiosk outbox (delivered once, also after a time offline); the message id or None."""
    review = turn_review(text, channel, parse_data, reply)
    if review is None:
        return None
    return outbox.enqueue(db_url, OUTBOX_KIND_REVIEW, review)


# ------------------------------------------------------- other tables
def _cursor(session: Session, name: str) -> ReviewCursor:
    row = session.get(ReviewCursor, name, with_for_update=True, populate_existing=True)
    if row is None:
        row = ReviewCursor(name=name, last_id=0, updated_at=utcnow())
        session.add(row)
        session.flush()  # a concurrent first round fails here and is retried
    return row


def _read_rounds(db_url: str, name: str, model: Any, wanted: Optional[Callable[[Any], bool]],
                 add: Callable[[Session, Any], bool]) -> int:
    """Read ``model``'s rows after the cursor ``name`` (``wanted`` picks the ones to
    review), add each with ``add``, move the cursor: one transaction per batch."""
    factory = session_factory(db_url)
    added = 0
    for _ in range(100):  # batches; bounded so that one request cannot loop forever
        try:
            with factory() as session, session.begin():
                cursor = _cursor(session, name)
                rows = session.execute(
                    select(model).where(model.id > cursor.last_id).order_by(model.id).limit(TUNABLES.batch)
                ).scalars().all()
                if not rows:
                    return added
                for row in rows:
                    if wanted is None or wanted(row):
                        added += int(add(session, row))
                cursor.last_id, cursor.updated_at = rows[-1].id, utcnow()
        except (IntegrityError, OperationalError) as exc:
            # Another replica read the same rows at the same moment: it stored them.
            logger.info("reviews.collect.concurrent cursor=%s error=%s", name, type(exc).__name__)
            return added
    return added


def _add_ticket(session: Session, ticket: HandoffTicket) -> bool:
    try:
        summary = json.loads(ticket.summary or "{}")
    except ValueError:
        summary = {}
    summary = summary if isinstance(summary, dict) else {}
    text = clip(summary.get("question")) or NO_TEXT
    _, created = add_item(
        session, REASON_HANDOFF, text, channel=(ticket.channel or None) and ticket.channel[:16],
        source=f"ticket:{ticket.id}", intent=_short(summary.get("intent"), 64),
        item_id=_short(ticket.item_id or summary.get("item_id"), 64), answer="handoff",
        detail=_short(ticket.reason, DETAIL_CHARS),
    )
    return created


def _short(value: Any, chars: int) -> Optional[str]:
    return value[:chars] if isinstance(value, str) and value else None


class _RatedQuestion:
    """The question a rating was about: the conversation's last citizen message before
    it that is not the rating itself, read from the tracker store (if it is ours)."""

    def __init__(self, settings: Settings):
        self.engine = None
        if settings.tracker_store == "sql":
            engine = rollup.tracker_engine(settings.trackers_url)
            if rollup.has_events(engine):
                self.engine = engine

    def __call__(self, feedback: Feedback) -> Optional[str]:
        if self.engine is None:
            return None
        e = rollup.EVENTS.c
        until = feedback.created_at.replace(tzinfo=dt.timezone.utc).timestamp() + 5
        query = (
            select(e.intent_name, e.data).where(e.sender_id == feedback.conversation_id, e.type_name == "user",
                                                e.timestamp <= until)
            .order_by(e.id.desc()).limit(8)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        for intent, data in rows:
            try:
                text = str(json.loads(data or "{}").get("text") or "").strip()
            except ValueError:
                continue
            if not text or text.startswith("/") or intent in RATING_INTENTS or clip(text, 1000) == feedback.text:
                continue
            return text
        return None


def _rating_adder(settings: Settings) -> Callable[[Session, Feedback], bool]:
    question_of = _RatedQuestion(settings)

    def add(session: Session, feedback: Feedback) -> bool:
        asked = question_of(feedback)
        kind = "投诉" if feedback.kind == KIND_COMPLAINT else "差评"
        _, created = add_item(
            session, REASON_BAD_RATING, clip(asked) if asked else clip(feedback.text) or NO_TEXT,
            channel=_short(feedback.channel, 16), source=f"feedback:{feedback.id}",
            item_id=_short(feedback.item_id, 64), answer=feedback.kind,
            detail=f"{kind}：{clip(feedback.text, DETAIL_CHARS - 4)}",
        )
        return created

    return add


def _add_mark(session: Session, mark: SuggestionMark) -> bool:
    channel = None
    if mark.ticket_id:
        ticket = session.get(HandoffTicket, mark.ticket_id)
        channel = ticket.channel[:16] if ticket is not None and ticket.channel else None
    detail = f"坐席 {mark.operator} 标记第{mark.rank}条建议有误"
    if mark.question_type:
        detail += f"（建议回答：{QUESTION_LABELS.get(mark.question_type, mark.question_type)}）"
    _, created = add_item(
        session, REASON_WRONG_MARK, clip(mark.query) or NO_TEXT, channel=channel, source=f"mark:{mark.id}",
        item_id=_short(mark.item_id, 64), confidence=mark.confidence, answer=_short(mark.question_type, 32),
        detail=detail[:DETAIL_CHARS],
    )
    return created


def collect(settings: Settings) -> Dict[str, int]:
    """Read new handoff tickets, bad ratings and complaints, and "wrong" marks into the
    queue (blocking: run it in a worker thread); how many reviews each added."""
    db_url = settings.db_url
    added = {
        REASON_HANDOFF: _read_rounds(db_url, CURSOR_TICKETS, HandoffTicket, None, _add_ticket),
        REASON_BAD_RATING: _read_rounds(
            db_url, CURSOR_FEEDBACK, Feedback,
            lambda f: f.kind == KIND_COMPLAINT or (f.kind == KIND_FEEDBACK and f.rating == RATING_BAD),
            _rating_adder(settings),
        ),
        REASON_WRONG_MARK: _read_rounds(
            db_url, CURSOR_MARKS, SuggestionMark, lambda m: m.mark == MARK_WRONG, _add_mark
        ),
    }
    if any(added.values()):
        logger.info("reviews.collect.added handoff=%d rating=%d mark=%d",
                    added[REASON_HANDOFF], added[REASON_BAD_RATING], added[REASON_WRONG_MARK])
    return added


def collect_safely(settings: Settings) -> Dict[str, int]:
    """:func:`collect`; a failure is logged and the queue shows what it has."""
    try:
        return collect(settings)
    except Exception:
        logger.exception("reviews.collect.failed")
        return {}

