"""Database state of the WeChat channel (synchronous; async callers use ``asyncio.to_thread``).

Every state change that decides who delivers a reply is a conditional UPDATE
(compare-and-set on ``delivery``), so the request handler, the turn that
produces the reply and another replica can race without a reply being sent
twice or not at all:

* the turn stores its reply (``status`` replied) and, if the handler has already
  given up waiting (``delivery`` async), moves it to ``queued`` and queues it for
  the customer-service API in the same transaction;
* the handler, when the reply is ready in time, moves ``pending`` → ``passive``
  and answers in the HTTP response; when it is not, ``pending`` → ``async``, then
  ``async`` → ``queued`` itself if the reply was stored in between.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import (
    WX_ASYNC,
    WX_FAILED,
    WX_PASSIVE,
    WX_PENDING,
    WX_PROCESSING,
    WX_QUEUED,
    WX_REPLIED,
    WeChatInbound,
    WeChatOutgoing,
    WeChatUser,
)

# WeChat's customer-service window: after each user message, at most this many
# messages within this time.
WINDOW = dt.timedelta(hours=48)
WINDOW_MESSAGES = 5
MAX_ERROR_CHARS = 200


@dataclass(frozen=True)
class InboundState:
    status: str
    delivery: str
    reply: List[str]
    created_at: dt.datetime


def _state(row: WeChatInbound) -> InboundState:
    return InboundState(row.status, row.delivery, json.loads(row.reply) if row.reply else [], row.created_at)


# ------------------------------------------------------------------ inbound
def begin(db_url: str, key: str, sender_id: str, ttl_hours: float) -> Optional[InboundState]:
    """Record a new inbound message and return None, or return the state of the
    earlier delivery of the same message (a retry): nothing new is recorded."""
    now = utcnow()
    with session_factory(db_url)() as session:
        session.add(WeChatInbound(key=key, sender_id=sender_id, status=WX_PROCESSING, delivery=WX_PENDING,
                                  created_at=now, expires_at=now + dt.timedelta(hours=ttl_hours)))
        try:
            session.commit()
            return None
        except IntegrityError:
            session.rollback()
        row = session.get(WeChatInbound, key)
        return _state(row) if row is not None else None


def state(db_url: str, key: str) -> Optional[InboundState]:
    with session_factory(db_url)() as session:
        row = session.get(WeChatInbound, key)
        return _state(row) if row is not None else None


# The rest of a passive reply waits this long, so that WeChat shows the passive
# first part before the customer-service messages that continue it.
AFTER_PASSIVE = dt.timedelta(seconds=1)


def _queue(session, sender_id: str, parts: Sequence[str], source: str, now: dt.datetime,
           not_before: Optional[dt.datetime] = None) -> None:
    for part in parts:
        session.add(WeChatOutgoing(sender_id=sender_id, content=part, source=source, created_at=now,
                                   attempts=0, next_attempt_at=not_before or now))


def store_reply(db_url: str, key: str, sender_id: str, parts: List[str], failed: bool = False) -> bool:
    """The turn's reply is ready. Returns True when it was queued for the
    customer-service API (the handler had already answered "success")."""
    with session_factory(db_url)() as session:
        claimed = store_reply_in(session, key, sender_id, parts, failed)
        session.commit()
        return claimed


def store_reply_in(session, key: str, sender_id: str, parts: List[str], failed: bool) -> bool:
    """:func:`store_reply` in the caller's transaction (idempotent: the claim is a compare-and-set)."""
    session.execute(
        update(WeChatInbound).where(WeChatInbound.key == key)
        .values(status=WX_FAILED if failed else WX_REPLIED, reply=json.dumps(parts, ensure_ascii=False))
    )
    claimed = session.execute(
        update(WeChatInbound).where(WeChatInbound.key == key, WeChatInbound.delivery == WX_ASYNC)
        .values(delivery=WX_QUEUED)
    ).rowcount
    if claimed and parts:
        _queue(session, sender_id, parts, "turn", utcnow())
    return bool(claimed)


def _claim_reply(session, key: str, from_delivery: str, to_delivery: str) -> Optional[List[str]]:
    """Move a stored reply's delivery from one state to another (compare-and-set);
    its parts if this call won, else None."""
    claimed = session.execute(
        update(WeChatInbound)
        .where(WeChatInbound.key == key, WeChatInbound.delivery == from_delivery,
               WeChatInbound.status.in_((WX_REPLIED, WX_FAILED)))
        .values(delivery=to_delivery)
    ).rowcount
    if not claimed:
        return None
    row = session.get(WeChatInbound, key)
    return json.loads(row.reply) if row.reply else []


def claim_passive(db_url: str, key: str, sender_id: str) -> Optional[List[str]]:
    """The reply is ready in time: answer it in the HTTP response. Returns the reply
    (its first part goes passively, the rest is queued), or None if not ready."""
    with session_factory(db_url)() as session:
        parts = claim_passive_in(session, key, sender_id)
        session.commit()
        return parts


def claim_passive_in(session, key: str, sender_id: str) -> Optional[List[str]]:
    """:func:`claim_passive` in the caller's transaction (a compare-and-set)."""
    now = utcnow()
    parts = _claim_reply(session, key, WX_PENDING, WX_PASSIVE)
    if parts is not None:
        _queue(session, sender_id, parts[1:], "turn", now, not_before=now + AFTER_PASSIVE)
    return parts


def give_up_waiting(db_url: str, key: str, sender_id: str) -> Tuple[str, List[str]]:
    """The reply is late: the handler answers "success". Returns ("async", []) when
    the turn will queue its reply, ("queued", parts) when the turn finished in the
    meantime and this call queued it, or ("passive", parts) when it can still go
    in the HTTP response (stored just now, nobody claimed it)."""
    parts = claim_passive(db_url, key, sender_id)
    if parts is not None:
        return WX_PASSIVE, parts
    with session_factory(db_url)() as session:
        outcome = stop_waiting_in(session, key, sender_id)
        session.commit()
        return outcome


def stop_waiting_in(session, key: str, sender_id: str) -> Tuple[str, List[str]]:
    """The second half of :func:`give_up_waiting` (no passive answer any more), in the
    caller's transaction: ``pending`` → ``async``, then the reply queued if it is stored."""
    session.execute(
        update(WeChatInbound).where(WeChatInbound.key == key, WeChatInbound.delivery == WX_PENDING)
        .values(delivery=WX_ASYNC)
    )
    queued = _claim_reply(session, key, WX_ASYNC, WX_QUEUED)
    if queued is not None:
        _queue(session, sender_id, queued, "turn", utcnow())
    return (WX_QUEUED, queued) if queued is not None else (WX_ASYNC, [])


def recover_orphans(db_url: str, older_than: dt.timedelta, apology: str) -> int:
    """Messages whose turn never finished (the process stopped mid-turn): tell the
    user to send again, once. Returns how many."""
    cutoff = utcnow() - older_than
    now = utcnow()
    count = 0
    with session_factory(db_url)() as session:
        rows = session.execute(
            select(WeChatInbound.key, WeChatInbound.sender_id)
            .where(WeChatInbound.status == WX_PROCESSING, WeChatInbound.created_at < cutoff)
        ).all()
        for key, sender_id in rows:
            claimed = session.execute(
                update(WeChatInbound).where(WeChatInbound.key == key, WeChatInbound.status == WX_PROCESSING)
                .values(status=WX_FAILED, delivery=WX_QUEUED, reply=json.dumps([apology], ensure_ascii=False))
            ).rowcount
            if claimed:
                _queue(session, sender_id, [apology], "recovery", now)
                count += 1
        session.commit()
    return count


def purge(db_url: str, sent_older_than: dt.timedelta = dt.timedelta(days=2)) -> Tuple[int, int]:
    """Forget expired message ids and old sent or failed messages."""
    now = utcnow()
    with session_factory(db_url)() as session:
        inbound = session.execute(delete(WeChatInbound).where(WeChatInbound.expires_at < now)).rowcount
        cutoff = now - sent_older_than
        outgoing = session.execute(
            delete(WeChatOutgoing).where(
                ((WeChatOutgoing.sent_at.isnot(None)) & (WeChatOutgoing.sent_at < cutoff))
                | ((WeChatOutgoing.failed_at.isnot(None)) & (WeChatOutgoing.failed_at < cutoff))
            )
        ).rowcount
        session.commit()
        return inbound, outgoing


# ------------------------------------------------------------------ users
def note_inbound(db_url: str, sender_id: str) -> None:
    """The user wrote: the customer-service window starts again."""
    now = utcnow()
    with session_factory(db_url)() as session:
        updated = session.execute(
            update(WeChatUser).where(WeChatUser.sender_id == sender_id)
            .values(last_inbound_at=now, sends_since_inbound=0)
        ).rowcount
        if not updated:
            session.add(WeChatUser(sender_id=sender_id, last_inbound_at=now, sends_since_inbound=0))
            try:
                session.commit()
                return
            except IntegrityError:  # a concurrent first message of the same user
                session.rollback()
                session.execute(
                    update(WeChatUser).where(WeChatUser.sender_id == sender_id)
                    .values(last_inbound_at=now, sends_since_inbound=0)
                )
        session.commit()


def set_options(db_url: str, sender_id: str, options: Optional[List[Tuple[str, str]]]) -> None:
    with session_factory(db_url)() as session:
        set_options_in(session, sender_id, options)
        session.commit()


def set_options_in(session, sender_id: str, options: Optional[List[Tuple[str, str]]]) -> None:
    session.execute(
        update(WeChatUser).where(WeChatUser.sender_id == sender_id)
        .values(options=json.dumps(options, ensure_ascii=False) if options else None)
    )


def get_options(db_url: str, sender_id: str) -> List[Tuple[str, str]]:
    with session_factory(db_url)() as session:
        row = session.get(WeChatUser, sender_id)
        return [tuple(o) for o in json.loads(row.options)] if row is not None and row.options else []


def use_window(db_url: str, sender_id: str, now: Optional[dt.datetime] = None) -> Optional[str]:
    """Count one customer-service message against the user's window. Returns None
    if it may be sent, else why not ("window_expired", "window_full", "no_inbound")."""
    now = now or utcnow()
    with session_factory(db_url)() as session:
        row = session.get(WeChatUser, sender_id)
        if row is None:
            return "no_inbound"
        if now - row.last_inbound_at > WINDOW:
            return "window_expired"
        used = session.execute(
            update(WeChatUser)
            .where(WeChatUser.sender_id == sender_id, WeChatUser.sends_since_inbound < WINDOW_MESSAGES)
            .values(sends_since_inbound=WeChatUser.sends_since_inbound + 1)
        ).rowcount
        session.commit()
        return None if used else "window_full"


def give_back_window(db_url: str, sender_id: str) -> None:
    """A counted message was not sent after all (a transient error): uncount it."""
    with session_factory(db_url)() as session:
        give_back_window_in(session, sender_id)
        session.commit()


def give_back_window_in(session, sender_id: str) -> None:
    session.execute(
        update(WeChatUser).where(WeChatUser.sender_id == sender_id, WeChatUser.sends_since_inbound > 0)
        .values(sends_since_inbound=WeChatUser.sends_since_inbound - 1)
    )


# ------------------------------------------------------------------ outgoing
@dataclass(frozen=True)
class Outgoing:
    id: int
    sender_id: str
    content: str
    attempts: int


def queue_messages(db_url: str, sender_id: str, parts: Sequence[str], source: str) -> None:
    with session_factory(db_url)() as session:
        queue_in(session, sender_id, parts, source)
        session.commit()


def queue_in(session, sender_id: str, parts: Sequence[str], source: str) -> None:
    _queue(session, sender_id, parts, source, utcnow())


def _heads():
    """The id of each user's oldest unsent message: the only one of theirs that may
    be sent now (the next one waits until it is done, keeping their order)."""
    return (
        select(func.min(WeChatOutgoing.id))
        .where(WeChatOutgoing.sent_at.is_(None), WeChatOutgoing.failed_at.is_(None))
        .group_by(WeChatOutgoing.sender_id)
    )


def claim_due(db_url: str, lease: dt.timedelta, limit: int = 50) -> List[Outgoing]:
    """Unsent messages that are due, oldest first, at most one per user (the next
    one of a user waits until this one is done, keeping their order); each is
    leased (its next attempt moved ``lease`` ahead) so another replica skips it."""
    now = utcnow()
    with session_factory(db_url)() as session:
        rows = session.execute(
            select(WeChatOutgoing.id, WeChatOutgoing.sender_id, WeChatOutgoing.content, WeChatOutgoing.attempts)
            .where(WeChatOutgoing.id.in_(_heads()), WeChatOutgoing.next_attempt_at <= now)
            .order_by(WeChatOutgoing.id)
            .limit(limit)
        ).all()
        claimed: List[Outgoing] = []
        for message_id, sender_id, content, attempts in rows:
            got = session.execute(
                update(WeChatOutgoing)
                .where(WeChatOutgoing.id == message_id, WeChatOutgoing.sent_at.is_(None),
                       WeChatOutgoing.failed_at.is_(None), WeChatOutgoing.next_attempt_at <= now)
                .values(next_attempt_at=now + lease, attempts=WeChatOutgoing.attempts + 1)
            ).rowcount
            if got:
                claimed.append(Outgoing(message_id, sender_id, content, attempts + 1))
        session.commit()
        return claimed


def next_due_at(db_url: str) -> Optional[dt.datetime]:
    """When the next message may be claimed (a user's later messages wait for their
    oldest one, so only those count)."""
    with session_factory(db_url)() as session:
        return session.execute(
            select(func.min(WeChatOutgoing.next_attempt_at)).where(WeChatOutgoing.id.in_(_heads()))
        ).scalar()


def mark_sent(db_url: str, message_id: int) -> None:
    with session_factory(db_url)() as session:
        mark_in(session, message_id, sent_at=utcnow(), last_error=None)
        session.commit()


def mark_retry(db_url: str, message_id: int, delay_s: float, error: str) -> None:
    with session_factory(db_url)() as session:
        mark_in(session, message_id, next_attempt_at=utcnow() + dt.timedelta(seconds=delay_s),
                last_error=error[:MAX_ERROR_CHARS])
        session.commit()


def mark_failed(db_url: str, message_id: int, error: str) -> None:
    with session_factory(db_url)() as session:
        mark_in(session, message_id, failed_at=utcnow(), last_error=error[:MAX_ERROR_CHARS])
        session.commit()


def mark_in(session, message_id: int, **values) -> None:
    """Record what became of a sent (or refused) message, in the caller's transaction."""
    session.execute(update(WeChatOutgoing).where(WeChatOutgoing.id == message_id).values(**values))


def outgoing_counts(db_url: str) -> Dict[str, int]:
    with session_factory(db_url)() as session:
        rows = session.execute(select(WeChatOutgoing.sent_at, WeChatOutgoing.failed_at)).all()
    counts = {"pending": 0, "sent": 0, "failed": 0}
    for sent_at, failed_at in rows:
        counts["sent" if sent_at else "failed" if failed_at else "pending"] += 1
    return counts
