"""Progress subscriptions ("状态有变化时提醒我"): subscribe after a verified lookup, list
and cancel ("退订提醒"); who is told of a status change is decided by
``notices.enqueue``. Every change is audited; recipients are sealed at rest and never
logged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from sqlalchemy import select

from assistant.security.audit import record_audit
from assistant.security.pii import hash_id
from assistant.security.sealed import keyed_hash, seal
from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import ProgressSubscription

PURPOSE = "progress-subscription"
CHANNELS = frozenset({"web", "wechat", "kiosk", "sms", "api"})
MAX_PER_RECIPIENT = 10
AUDIT_SUBSCRIBE = "progress.subscribe"
AUDIT_CANCEL = "progress.unsubscribe"


@dataclass(frozen=True)
class Subscribed:
    id: int
    created: bool  # False: the recipient was already subscribed to this number


def _actor(channel: str, recipient: str) -> str:
    return f"citizen:{hash_id(f'{channel}:{recipient}')}"


def _active(session, secret: bytes, channel: str, recipient: str):
    return select(ProgressSubscription).where(
        ProgressSubscription.recipient_hash == keyed_hash(secret, PURPOSE, f"{channel}:{recipient}"),
        ProgressSubscription.channel == channel,
        ProgressSubscription.cancelled_at.is_(None),
    ).order_by(ProgressSubscription.id)


def subscribe(db_url: str, secret: bytes, number: str, channel: str, recipient: str, status: str) -> Subscribed:
    """Subscribe (once per recipient and number). ValueError for an unknown channel or
    too many subscriptions of one recipient."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    with session_factory(db_url)() as session:
        active = session.execute(_active(session, secret, channel, recipient)).scalars().all()
        for row in active:
            if row.number == number:
                return Subscribed(row.id, created=False)
        if len(active) >= MAX_PER_RECIPIENT:
            raise ValueError("too many subscriptions")
        row = ProgressSubscription(
            number=number, channel=channel, last_status=status,
            recipient_sealed=seal(secret, PURPOSE, recipient),
            recipient_hash=keyed_hash(secret, PURPOSE, f"{channel}:{recipient}"),
        )
        session.add(row)
        session.commit()
        created = Subscribed(row.id, created=True)
    record_audit(db_url, actor=_actor(channel, recipient), action=AUDIT_SUBSCRIBE, subject=number,
                 channel=channel, result="ok")
    return created


def numbers_of(db_url: str, secret: bytes, channel: str, recipient: str) -> List[str]:
    with session_factory(db_url)() as session:
        return [row.number for row in session.execute(_active(session, secret, channel, recipient)).scalars()]


def active(db_url: str, secret: bytes, channel: str, recipient: str) -> List[Tuple[int, str]]:
    """The recipient's subscriptions as (id, number), oldest first."""
    with session_factory(db_url)() as session:
        return [(row.id, row.number) for row in session.execute(_active(session, secret, channel, recipient)).scalars()]


def cancel(db_url: str, secret: bytes, channel: str, recipient: str, number: Optional[str] = None,
           subscription_id: Optional[int] = None) -> int:
    """Cancel one number's subscription (or the one with this id), or all of the
    recipient's; how many ended."""
    with session_factory(db_url)() as session:
        rows = [r for r in session.execute(_active(session, secret, channel, recipient)).scalars()
                if (number is None or r.number == number) and (subscription_id is None or r.id == subscription_id)]
        for row in rows:
            row.cancelled_at = utcnow()
        session.commit()
    for row in rows:
        record_audit(db_url, actor=_actor(channel, recipient), action=AUDIT_CANCEL, subject=row.number,
                     channel=channel, result="ok")
    return len(rows)
