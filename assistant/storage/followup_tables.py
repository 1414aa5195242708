"""Tables of the follow-through (issue 15): progress subscriptions and notices,
reminders, web-chat notices, scheduler leases, verification grants and material
uploads, kiosk pre-applications. Re-exported by ``assistant.storage.tables``, so
callers import every table from there."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)

from assistant.storage.database import Base, utcnow

# ------------------------------------------------- progress subscriptions, notices, reminders
class ProgressSubscription(Base):
    """A citizen's wish to hear when an application's status changes ("状态有变化时提醒我").

    The recipient (a conversation id, a WeChat openid, a phone number) is sealed at rest
    (``assistant/security/sealed.py``) and found by its keyed hash.
    """

    __tablename__ = "progress_subscriptions"
    id = Column(Integer, primary_key=True, autoincrement=True)
    number = Column(String(32), nullable=False, index=True)
    channel = Column(String(16), nullable=False)
    recipient_sealed = Column(Text, nullable=False)
    recipient_hash = Column(String(64), nullable=False, index=True)
    last_status = Column(String(16))  # the status the subscriber last knew
    created_at = Column(DateTime, nullable=False, default=utcnow)
    cancelled_at = Column(DateTime)


class ProgressNotice(Base):
    """A status notice waiting to be sent to a subscriber (or sent, capped, failed)."""

    __tablename__ = "progress_notices"
    id = Column(Integer, primary_key=True, autoincrement=True)
    subscription_id = Column(Integer, ForeignKey("progress_subscriptions.id", ondelete="CASCADE"), nullable=False)
    number = Column(String(32), nullable=False)
    channel = Column(String(16), nullable=False)
    status = Column(String(16), nullable=False)  # the application's new status
    text = Column(Text, nullable=False)  # masked number and status only
    due_at = Column(DateTime, nullable=False, index=True)
    state = Column(String(16), nullable=False, default="pending")  # pending, sent, capped, failed
    attempts = Column(Integer, nullable=False, default=0)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    sent_at = Column(DateTime)


# Kinds of reminder ("服务找人"); what each needs and says: services/progress/reminders.yml.
REMINDER_KINDS = (
    "supplement_deadline",  # 需补正: the deadline to hand in the missing materials
    "ready_for_pickup",  # 已办结: ready to pick up
    "pension_certification",  # 养老金领取资格认证, yearly
    "id_card_expiry",  # 居民身份证到期 (the citizen tells the month only)
    "passport_expiry",  # 护照到期 (the month only)
)


class Reminder(Base):
    """A reminder tied to a date, sent once through the citizen's channel.

    Only what the reminder needs is stored: the kind, the application number for
    the application's reminders, the due date (for ID card and passport: the first
    day of the expiry month the citizen told, nothing else), and the recipient,
    sealed at rest and found by its keyed hash (as for progress subscriptions).
    """

    __tablename__ = "reminders"
    id = Column(Integer, primary_key=True, autoincrement=True)
    kind = Column(String(32), nullable=False)
    number = Column(String(32))  # application number (supplement_deadline, ready_for_pickup)
    due_on = Column(Date, nullable=False)  # deadline, pickup day, yearly check, expiry month (its 1st)
    channel = Column(String(16), nullable=False)
    recipient_sealed = Column(Text, nullable=False)
    recipient_hash = Column(String(64), nullable=False, index=True)
    send_at = Column(DateTime, nullable=False)  # UTC; pushed ahead while claimed, deferred by quiet hours
    status = Column(String(16), nullable=False, default="pending")  # pending, sent, failed, cancelled
    attempts = Column(Integer, nullable=False, default=0)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    sent_at = Column(DateTime)
    cancelled_at = Column(DateTime)
    __table_args__ = (Index("ix_reminders_status_send_at", "status", "send_at"),)


class ChatNotice(Base):
    """A notice (status change, reminder) for a web-chat conversation: shown live in
    an open chat, else when the citizen comes back; delivered once (``delivered_at``).
    The conversation is found by a keyed hash; the text holds a masked number only."""

    __tablename__ = "chat_notices"
    id = Column(Integer, primary_key=True, autoincrement=True)
    conversation_hash = Column(String(64), nullable=False)
    kind = Column(String(16), nullable=False)  # progress | reminder
    text = Column(Text, nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    delivered_at = Column(DateTime)
    __table_args__ = (Index("ix_chat_notices_conversation", "conversation_hash", "delivered_at"),)


class SchedulerLease(Base):
    """Which process runs a deployment-wide periodic job (e.g. the notice scheduler)
    until when: taken or renewed by a compare-and-set update (``storage/leases.py``)."""

    __tablename__ = "scheduler_leases"
    name = Column(String(64), primary_key=True)
    holder = Column(String(64), nullable=False)
    expires_at = Column(DateTime, nullable=False)


# --------------------------------------------------------- missing materials
class VerificationGrant(Base):
    """A conversation that verified an application (number + phone tail) a moment ago:
    it may hand in that application's missing materials until ``expires_at``. Keyed
    by a keyed hash of the conversation id (never the id itself)."""

    __tablename__ = "verification_grants"
    sender_hash = Column(String(64), primary_key=True)
    number = Column(String(32), nullable=False)
    granted_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False, index=True)


UPLOAD_OK = "ok"  # the pre-check found the requested document, readable, valid
UPLOAD_DOUBTFUL = "doubtful"  # accepted, flagged for the operator (``reasons``)


class MaterialUpload(Base):
    """A photo or PDF of a missing material (补交材料). The file itself is encrypted at
    rest under ``data_dir/uploads/<id>.bin`` (``assistant/services/materials/uploads.py``);
    this row holds what the pre-check found, with the OCR text masked and sealed.
    ``deleted_at``: the file was deleted (retention or an operator), the row stays."""

    __tablename__ = "material_uploads"
    id = Column(String(36), primary_key=True)  # uuid4
    number = Column(String(32), nullable=False)
    material = Column(String(100), nullable=False)
    mime = Column(String(64), nullable=False)
    size = Column(Integer, nullable=False)
    pages = Column(Integer, nullable=False, default=1)
    width = Column(Integer)
    height = Column(Integer)
    doc_type = Column(String(32))  # what the pre-check read it as (None: not recognised)
    verdict = Column(String(16), nullable=False)  # ok | doubtful
    reasons = Column(Text, nullable=False, default="[]")  # JSON list of short Chinese flags
    readable = Column(Boolean)
    expired = Column(Boolean)
    expiry = Column(Date)
    name_matches = Column(Boolean)
    text_sealed = Column(Text)  # the OCR text, personal numbers masked, then sealed
    channel = Column(String(16), nullable=False)
    sender_hash = Column(String(64), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    # Forwarding to the case-management system: due at next_forward_at (None: nothing
    # to do: forwarded, given up or deleted).
    forwarded_at = Column(DateTime)
    forward_ref = Column(String(64))
    forward_attempts = Column(Integer, nullable=False, default=0)
    next_forward_at = Column(DateTime)
    deleted_at = Column(DateTime)
    __table_args__ = (
        Index("ix_material_uploads_number_created", "number", "created_at"),
        Index("ix_material_uploads_next_forward", "next_forward_at"),
        Index("ix_material_uploads_created", "created_at"),
    )


# ------------------------------------------------- kiosk pre-applications
class Preapplication(Base):
    """A pre-application (预填) entered at a kiosk, known by its receipt number
    (``assistant/services/prefill/``). The same table on both sides: at the kiosk
    ``received_at`` stays NULL (the outbox message ``message_id`` says whether it was
    delivered); at the central server it is the time it arrived. The fields are sealed
    at rest (NULL once purged: at the kiosk after delivery, at the central server after
    the retention period); the row itself stays, without personal data, so that the
    receipt can still be looked up and its number is never given out again."""

    __tablename__ = "preapplications"
    receipt = Column(String(32), primary_key=True)  # KSHALL3-20261205-0001
    kiosk_id = Column(String(64), nullable=False)
    day = Column(String(8), nullable=False)  # the kiosk's local date, YYYYMMDD
    seq = Column(Integer, nullable=False)  # the kiosk's sequence that day
    item_id = Column(String(64), nullable=False)
    fields_sealed = Column(Text)  # JSON {field id: value}, sealed; NULL once purged
    applicant_masked = Column(String(64))  # 张* (no other personal data in clear)
    materials = Column(Integer, nullable=False, default=0)  # photos handed in with it
    message_id = Column(String(36))  # the outbox (kiosk) or inbox (central) message
    created_at = Column(DateTime, nullable=False, default=utcnow)  # submitted at the kiosk
    received_at = Column(DateTime)  # arrived at the central server
    purged_at = Column(DateTime)  # personal data deleted
    __table_args__ = (
        Index("ix_preapplications_kiosk_day", "kiosk_id", "day"),
        Index("ix_preapplications_received", "received_at"),
    )


class PreapplicationMaterial(Base):
    """A photo of a material handed in with a pre-application: a sealed file under the
    data directory (``path``, relative to it; NULL once purged). ``id`` is the kiosk's
    outbox message id, on both sides (the central server applies it once)."""

    __tablename__ = "preapplication_materials"
    id = Column(String(36), primary_key=True)
    receipt = Column(String(32), nullable=False, index=True)
    material = Column(String(64), nullable=False)  # the catalog's material name
    content_type = Column(String(32), nullable=False)
    size = Column(Integer, nullable=False)
    width = Column(Integer)
    height = Column(Integer)
    sha256 = Column(String(64), nullable=False)  # of the photo, to check the transfer
    path = Column(String(200))
    created_at = Column(DateTime, nullable=False, default=utcnow)
    received_at = Column(DateTime)
    purged_at = Column(DateTime)


