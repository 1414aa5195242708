"""Tables of the analytics (``assistant/services/analytics``, migration 0013): conversation
turns reduced from the tracker store, and the days they were computed for. Apart from
``assistant.storage.tables`` so that each module stays small; import them from here."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, DateTime, Index, Integer, String

from assistant.storage.database import Base


class AnalyticsTurn(Base):
    """One conversation turn of the tracker store, reduced for the analytics
    (``assistant/services/analytics``): the day, channel, intent, item, kind of reply,
    whether it was understood and how fast it was answered. No raw text and no
    conversation id: ``conversation`` is a keyed hash (for counting conversations),
    ``topic`` the masked, shortened text of a turn that was not understood."""

    __tablename__ = "analytics_turns"
    id = Column(Integer, primary_key=True, autoincrement=True)
    day = Column(Date, nullable=False)  # local date (BANSHI_TIMEZONE) of the citizen's message
    at = Column(DateTime, nullable=False)  # UTC
    conversation = Column(String(32), nullable=False)
    channel = Column(String(16), nullable=False)
    intent = Column(String(64))
    item_id = Column(String(64))
    answer = Column(String(32))
    understood = Column(Boolean, nullable=False)
    response_ms = Column(Integer)  # citizen's message → the first reply
    topic = Column(String(100))
    __table_args__ = (
        Index("ix_analytics_turns_day_channel", "day", "channel"),
        Index("ix_analytics_turns_day_item", "day", "item_id"),
    )


class AnalyticsDay(Base):
    """A day of ``analytics_turns``: when it was computed from the tracker store, and
    whether it is complete (computed after the day ended and settled: never again)."""

    __tablename__ = "analytics_days"
    day = Column(Date, primary_key=True)
    computed_at = Column(DateTime, nullable=False)
    complete = Column(Boolean, nullable=False, default=False)
    turns = Column(Integer, nullable=False, default=0)
