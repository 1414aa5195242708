"""Tables of the improvement loop (``assistant/services/reviews``, migration 0015): the
review queue and where its collection from the other tables stands. Apart from
``assistant.storage.tables`` so that each module stays small; import them from here."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Float, Index, Integer, String, Text

from assistant.storage.database import Base, utcnow

# What made a message worth a look.
REASON_NOT_UNDERSTOOD = "not_understood"  # nlu_fallback / out_of_scope intent
REASON_NOT_COVERED = "not_covered"  # understood, but no catalog item answers it
REASON_LOW_CONFIDENCE = "low_confidence"
REASON_HANDOFF = "handoff"
REASON_BAD_RATING = "bad_rating"  # 差评 or a complaint
REASON_WRONG_MARK = "wrong_mark"  # an operator marked a suggestion "wrong"
REVIEW_REASONS = (
    REASON_NOT_UNDERSTOOD,
    REASON_NOT_COVERED,
    REASON_LOW_CONFIDENCE,
    REASON_HANDOFF,
    REASON_BAD_RATING,
    REASON_WRONG_MARK,
)

# Where an item stands: waiting for an assignment, assigned (waiting for a second
# look), done (accepted into the data, or dismissed).
REVIEW_OPEN = "open"
REVIEW_ASSIGNED = "assigned"
REVIEW_DONE = "done"
REVIEW_STATUSES = (REVIEW_OPEN, REVIEW_ASSIGNED, REVIEW_DONE)
OUTCOME_ACCEPTED = "accepted"
OUTCOME_DISMISSED = "dismissed"


class ReviewItem(Base):
    """One message to review. ``text`` is masked (``mask_pii``) and shortened; no
    conversation id is kept. A message seen again while its item is not done counts
    on the same row (``text_key``: a hash of its folded text and reason)."""

    __tablename__ = "review_items"
    id = Column(Integer, primary_key=True, autoincrement=True)
    reason = Column(String(16), nullable=False)  # one of REVIEW_REASONS
    status = Column(String(12), nullable=False, default=REVIEW_OPEN)
    channel = Column(String(16))
    text = Column(Text, nullable=False)  # masked
    text_key = Column(String(32), nullable=False)
    # The row it came from (ticket:<id>, feedback:<id>, mark:<id>); once only.
    source = Column(String(40), unique=True)
    seen = Column(Integer, nullable=False, default=1)
    # What the assistant (or the suggestion marked wrong) made of it.
    intent = Column(String(64))
    confidence = Column(Float)
    item_id = Column(String(64))
    answer = Column(String(32))
    detail = Column(String(300))  # e.g. the rating's words, the suggestion's question type
    # The admin's assignment (the second step, accept, turns it into data).
    assigned_item = Column(String(64))
    assigned_intent = Column(String(64))
    not_covered = Column(Boolean, nullable=False, default=False)
    note = Column(String(200))
    assigned_by = Column(String(64))
    assigned_at = Column(DateTime)
    outcome = Column(String(12))  # accepted | dismissed
    done_by = Column(String(64))
    done_at = Column(DateTime)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    last_seen_at = Column(DateTime, nullable=False, default=utcnow)
    __table_args__ = (
        Index("ix_review_items_status_created", "status", "created_at"),
        Index("ix_review_items_key_status", "text_key", "status"),
    )


class ReviewCursor(Base):
    """How far the queue has read another table (handoff_tickets, feedback,
    suggestion_marks): the last row id looked at."""

    __tablename__ = "review_cursors"
    name = Column(String(32), primary_key=True)
    last_id = Column(Integer, nullable=False, default=0)
    updated_at = Column(DateTime, nullable=False, default=utcnow)
