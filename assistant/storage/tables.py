"""Tables of the gateway: applications and their progress, audit records, handoff
tickets and their messages, operator accounts and sessions, suggestion marks.

They share ``assistant.storage.database.Base`` with the catalog tables
(``knowledge.db``), so one Alembic history (``migrations/``) covers the whole database. No raw personal data is stored:
names are masked, phone and ID numbers are salted hashes plus their last 4 digits.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)

from assistant.storage.database import Base, utcnow

# ------------------------------------------------------------- applications
# Status codes of an application, in the order they usually happen.
STATUS_ACCEPTED = "accepted"  # 受理
STATUS_REVIEWING = "reviewing"  # 审核中
STATUS_SUPPLEMENT = "supplement"  # 需补正
STATUS_COMPLETED = "completed"  # 办结
STATUS_REJECTED = "rejected"  # 不予受理
APPLICATION_STATUSES = (
    STATUS_ACCEPTED,
    STATUS_REVIEWING,
    STATUS_SUPPLEMENT,
    STATUS_COMPLETED,
    STATUS_REJECTED,
)
STATUS_LABELS = {
    STATUS_ACCEPTED: "已受理",
    STATUS_REVIEWING: "审核中",
    STATUS_SUPPLEMENT: "需补正材料",
    STATUS_COMPLETED: "已办结",
    STATUS_REJECTED: "不予受理",
}


class Application(Base):
    """An application (办件) as the local progress provider stores it."""

    __tablename__ = "applications"
    number = Column(String(32), primary_key=True)  # e.g. ZW20250318007
    item_id = Column(String(64), nullable=False)
    applicant_masked = Column(String(64), nullable=False)  # 张*
    salt = Column(String(32), nullable=False)  # per-record salt of the hashes below
    phone_hash = Column(String(64), nullable=False)
    phone_last4 = Column(String(4), nullable=False)
    id_hash = Column(String(64))
    id_last4 = Column(String(4))
    status = Column(String(16), nullable=False)
    promised_date = Column(Date)
    pickup_method = Column(String(64))
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)


class ApplicationEvent(Base):
    """One step of an application's status timeline."""

    __tablename__ = "application_events"
    id = Column(Integer, primary_key=True, autoincrement=True)
    number = Column(String(32), ForeignKey("applications.number", ondelete="CASCADE"), nullable=False)
    status = Column(String(16), nullable=False)
    at = Column(DateTime, nullable=False)
    note = Column(Text, nullable=False, default="")
    # 需补正: JSON list of the missing materials' names (as in the catalog when possible).
    missing_materials = Column(Text)
    # The case-management system's id of a pushed event (POST …/events): once only.
    event_id = Column(String(64), unique=True)
    __table_args__ = (Index("ix_application_events_number_at", "number", "at"),)


class VerificationGuard(Base):
    """Failed phone verifications of an application number, and its lock."""

    __tablename__ = "verification_guards"
    number = Column(String(32), primary_key=True)
    failures = Column(Integer, nullable=False, default=0)
    locked_until = Column(DateTime)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)


# -------------------------------------------------------------------- audit
class AuditRecord(Base):
    """Who looked up or changed personal data, when, through which channel, with what result.

    ``actor`` is ``citizen:<hash of the conversation id>`` or ``operator:<username>``;
    never a raw phone or ID number.
    """

    __tablename__ = "audit_log"
    id = Column(Integer, primary_key=True, autoincrement=True)
    at = Column(DateTime, nullable=False, default=utcnow, index=True)
    actor = Column(String(128), nullable=False)
    action = Column(String(64), nullable=False)  # e.g. progress.lookup, desk.ticket.view
    subject = Column(String(64))  # application number, ticket id, username
    channel = Column(String(32))
    result = Column(String(32), nullable=False)  # ok, not_found, wrong_code, locked, ...


# ------------------------------------------------------------------ handoff
TICKET_WAITING = "waiting"  # in the queue, no operator yet
TICKET_ACTIVE = "active"  # an operator has replied
TICKET_CLOSED = "closed"  # the operator closed it
TICKET_HANDED_BACK = "handed_back"  # the operator handed the conversation back to the bot
TICKET_CANCELLED = "cancelled"  # the citizen went back to the bot before anyone answered
OPEN_TICKET_STATUSES = (TICKET_WAITING, TICKET_ACTIVE)

ROLE_CITIZEN = "citizen"
ROLE_OPERATOR = "operator"
ROLE_SYSTEM = "system"  # notices to the citizen (queue position, ticket closed, ...)


class HandoffTicket(Base):
    __tablename__ = "handoff_tickets"
    id = Column(Integer, primary_key=True, autoincrement=True)
    conversation_id = Column(String(128), nullable=False)
    channel = Column(String(32))
    reason = Column(String(32), nullable=False)  # request_human | complaint | fallback
    status = Column(String(16), nullable=False, default=TICKET_WAITING)
    # Opened outside service hours: the bot keeps answering until an operator replies.
    deferred = Column(Boolean, nullable=False, default=False)
    item_id = Column(String(64))
    summary = Column(Text, nullable=False, default="{}")  # JSON, no raw personal data
    operator = Column(String(64))
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)
    closed_at = Column(DateTime)
    __table_args__ = (
        Index("ix_handoff_tickets_conversation_status", "conversation_id", "status"),
        Index("ix_handoff_tickets_status_created", "status", "created_at"),
    )


class HandoffMessage(Base):
    """What was said while a ticket was open (both ways), in order."""

    __tablename__ = "handoff_messages"
    id = Column(Integer, primary_key=True, autoincrement=True)
    ticket_id = Column(Integer, ForeignKey("handoff_tickets.id", ondelete="CASCADE"), nullable=False)
    conversation_id = Column(String(128), nullable=False)
    role = Column(String(16), nullable=False)  # citizen | operator | system
    text = Column(Text, nullable=False)
    author = Column(String(64))  # operator username for operator messages
    created_at = Column(DateTime, nullable=False, default=utcnow)
    __table_args__ = (
        Index("ix_handoff_messages_conversation_id", "conversation_id", "id"),
        Index("ix_handoff_messages_ticket_id", "ticket_id", "id"),
    )


# ----------------------------------------------------------------- operators
ROLE_NAMES = ("operator", "admin")


class Operator(Base):
    __tablename__ = "operators"
    id = Column(Integer, primary_key=True, autoincrement=True)
    username = Column(String(64), nullable=False, unique=True)
    display_name = Column(String(64), nullable=False)
    password_hash = Column(String(256), nullable=False)  # argon2id
    role = Column(String(16), nullable=False, default="operator")
    active = Column(Boolean, nullable=False, default=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)


class OperatorSession(Base):
    """A desk login. Only the SHA-256 of the session token is stored."""

    __tablename__ = "operator_sessions"
    token_hash = Column(String(64), primary_key=True)
    operator_id = Column(Integer, ForeignKey("operators.id", ondelete="CASCADE"), nullable=False)
    csrf_token = Column(String(64), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False)
    last_seen = Column(DateTime, nullable=False, default=utcnow)


MARKS = ("used", "edited", "wrong")


class SuggestionMark(Base):
    """An operator's verdict on one suggested answer, for later analysis."""

    __tablename__ = "suggestion_marks"
    id = Column(Integer, primary_key=True, autoincrement=True)
    operator = Column(String(64), nullable=False)
    ticket_id = Column(Integer)
    query = Column(Text, nullable=False)  # personal data masked
    rank = Column(Integer, nullable=False)
    item_id = Column(String(64))
    question_type = Column(String(32))
    confidence = Column(Float)
    mark = Column(String(16), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)


# -------------------------------------------------------- kiosk outbox/inbox
# What a kiosk sends to the central server (assistant/services/outbox.py, api/routers/inbox.py).
OUTBOX_KIND_REVIEW = "review"  # a kiosk turn worth a review, for the central queue
OUTBOX_KINDS = ("handoff", "rating", "appointment", "preapplication", "material", OUTBOX_KIND_REVIEW)


class OutboxMessage(Base):
    """Kiosk side: a message waiting for (or done with) delivery to the central server.

    ``id`` (a UUID4) is the idempotency key: the central server applies each id once.
    Pending = neither delivered nor failed; failed = refused for good (4xx), kept for
    ``banshi outbox status``. ``payload`` is JSON without raw personal data.
    """

    __tablename__ = "outbox_messages"
    id = Column(String(36), primary_key=True)
    kind = Column(String(16), nullable=False)  # one of OUTBOX_KINDS
    payload = Column(Text, nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(DateTime, nullable=False, default=utcnow)
    delivered_at = Column(DateTime)
    failed_at = Column(DateTime)  # given up (the central refused it with a 4xx)
    last_error = Column(String(200))  # short, no personal data
    __table_args__ = (Index("ix_outbox_messages_pending", "delivered_at", "failed_at", "next_attempt_at"),)


class InboxMessage(Base):
    """Central side: every kiosk message applied once (the primary key deduplicates)."""

    __tablename__ = "inbox_messages"
    id = Column(String(36), primary_key=True)  # the sender's UUID
    kiosk_id = Column(String(64), nullable=False)
    kind = Column(String(16), nullable=False)
    payload = Column(Text, nullable=False)
    sent_at = Column(DateTime)  # the kiosk's created_at
    received_at = Column(DateTime, nullable=False, default=utcnow)
    result_ref = Column(String(64))  # what it produced: ticket:<id>, feedback:<id>, stored
    __table_args__ = (Index("ix_inbox_messages_kiosk_received", "kiosk_id", "received_at"),)


# ------------------------------------------------------------------ WeChat
# Processing of one inbound WeChat message (see assistant/channels/wechat.py).
WX_PROCESSING = "processing"
WX_REPLIED = "replied"
WX_FAILED = "failed"
# How its reply leaves: still undecided, in the HTTP answer, or by the customer-service API.
WX_PENDING = "pending"
WX_PASSIVE = "passive"
WX_ASYNC = "async"
WX_QUEUED = "queued"


class WeChatInbound(Base):
    """One inbound WeChat message, by its deduplication key (``msg:<MsgId>`` or, for
    events, ``evt:<FromUserName>:<CreateTime>:<Event>``): WeChat's retries of it are
    answered from here, without a second turn, also after a restart. No user text
    is stored; ``reply`` is the assistant's answer (JSON list of message texts)."""

    __tablename__ = "wechat_inbound"
    key = Column(String(200), primary_key=True)
    sender_id = Column(String(80), nullable=False)
    status = Column(String(12), nullable=False, default=WX_PROCESSING)
    delivery = Column(String(12), nullable=False, default=WX_PENDING)
    reply = Column(Text)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False)
    __table_args__ = (Index("ix_wechat_inbound_expires", "expires_at"),)


class WeChatOutgoing(Base):
    """A message for the customer-service API (``message/custom/send``), stored before
    it is sent so that a restart does not lose it; sent oldest first per user."""

    __tablename__ = "wechat_outgoing"
    id = Column(Integer, primary_key=True, autoincrement=True)
    sender_id = Column(String(80), nullable=False)
    content = Column(Text, nullable=False)
    source = Column(String(16), nullable=False)  # turn | desk | recovery
    created_at = Column(DateTime, nullable=False, default=utcnow)
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(DateTime, nullable=False, default=utcnow)
    sent_at = Column(DateTime)
    failed_at = Column(DateTime)
    last_error = Column(String(200))
    __table_args__ = (Index("ix_wechat_outgoing_due", "sent_at", "failed_at", "next_attempt_at"),)


class WeChatUser(Base):
    """Per WeChat user: the customer-service window (48 h and 5 messages after each
    of their messages) and the numbered options of the last reply ("回复 1 …")."""

    __tablename__ = "wechat_users"
    sender_id = Column(String(80), primary_key=True)
    last_inbound_at = Column(DateTime, nullable=False, default=utcnow)
    sends_since_inbound = Column(Integer, nullable=False, default=0)
    options = Column(Text)  # JSON [[title, payload], ...]


# ------------------------------------------------------- public API limits
class ConversationClient(Base):
    """The client a conversation was last used from, so that the action server can
    count progress lookups per client IP. Both are keyed hashes
    (``assistant.security.client``), never a raw conversation id or address."""

    __tablename__ = "conversation_clients"
    conversation = Column(String(32), primary_key=True)
    client = Column(String(32), nullable=False)
    seen_at = Column(DateTime, nullable=False, default=utcnow, index=True)


class RateLimitHit(Base):
    """One counted hit of a moving-window rate limit (``key``: limit name and client
    hash) when no Redis is configured; rows older than the window are deleted."""

    __tablename__ = "rate_limit_hits"
    id = Column(Integer, primary_key=True, autoincrement=True)
    key = Column(String(96), nullable=False)
    at = Column(DateTime, nullable=False)
    __table_args__ = (Index("ix_rate_limit_hits_key_at", "key", "at"), Index("ix_rate_limit_hits_at", "at"))


# ------------------------------------------------------------- spooled writes
class AppliedWrite(Base):
    """The key of a write that must happen once (``assistant.storage.spool``), stored in
    the write's own transaction: replaying a spooled write whose first attempt did
    commit (the answer was lost with the connection) finds its key and does nothing."""

    __tablename__ = "applied_writes"
    key = Column(String(32), primary_key=True)  # uuid4 hex
    kind = Column(String(32), nullable=False)  # feedback, audit, handoff.ticket, ...
    applied_at = Column(DateTime, nullable=False, default=utcnow, index=True)


# The follow-through's tables live in their own module (re-exported here).
from assistant.storage.followup_tables import (  # noqa: E402,F401
    ChatNotice,
    MaterialUpload,
    Preapplication,
    PreapplicationMaterial,
    ProgressNotice,
    ProgressSubscription,
    REMINDER_KINDS,
    Reminder,
    SchedulerLease,
    UPLOAD_DOUBTFUL,
    UPLOAD_OK,
    VerificationGrant,
)
