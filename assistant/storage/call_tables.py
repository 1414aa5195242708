"""Tables of the desk's call mode (``assistant/services/callmode``, migration 0014):
the tickets (工单) operators save from a call. Apart from ``assistant.storage.tables``
so that each module stays small; import them from here."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, String, Text

from assistant.storage.database import Base, utcnow


class CallTicket(Base):
    """A hotline call's ticket. Personal data (name, phone, address, summary, answer and
    the transcript) is sealed (``assistant.security.sealed``, purpose ``call-ticket``)
    and deleted after ``call_retention_days`` (the sealed columns set to NULL,
    ``purged_at`` set); what stays is who saved it, when, the item and the category."""

    __tablename__ = "call_tickets"
    id = Column(Integer, primary_key=True, autoincrement=True)
    operator = Column(String(64), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    call_seconds = Column(Integer, nullable=False, default=0)
    item_id = Column(String(64))
    question_type = Column(String(32))
    category = Column(String(8), nullable=False)
    phone_masked = Column(String(32))
    name_masked = Column(String(32))
    fields_sealed = Column(Text)  # JSON: caller_name, phone, address, summary, answer
    transcript_sealed = Column(Text)  # JSON: [{seq, speaker, text, at_s}]
    purged_at = Column(DateTime)
    __table_args__ = (Index("ix_call_tickets_created_at", "created_at"),)
