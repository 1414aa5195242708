"""Notices for the web chat (a status change, a reminder): stored for the
conversation, shown live when its chat is open (the chat's event stream,
``GET /api/v1/chat/events``, event ``notice``) and otherwise when the citizen comes
back (the page opens the same stream); each is delivered once.

Sending (:class:`WebChatSender`) is storing a row of ``chat_notices`` under a keyed
hash of the conversation id and waking the live feed (in this process at once,
other replicas within their poll interval). The stream takes each row with a
compare-and-set on ``delivered_at``: of several open streams of one conversation
(two tabs, two replicas) exactly one shows it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Awaitable, Callable, Dict, List, Optional, Tuple

from sqlalchemy import delete, func, select, update

from assistant.security.sealed import keyed_hash
from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import ChatNotice

PURPOSE = "chat-notice"
KIND_PROGRESS = "progress"
KIND_REMINDER = "reminder"
MAX_TEXT_CHARS = 500
# Undelivered notices of a conversation shown at most, newest last; older ones wait.
MAX_PER_READ = 20
# Kept this long: shown ones (for support questions), and ones nobody came back for.
KEEP_DELIVERED = dt.timedelta(days=7)
KEEP_UNDELIVERED = dt.timedelta(days=30)


def conversation_key(secret: bytes, conversation_id: str) -> str:
    return keyed_hash(secret, PURPOSE, conversation_id)


def store(db_url: str, secret: bytes, conversation_id: str, text: str, kind: str = KIND_PROGRESS) -> Tuple[int, str]:
    """Keep a notice for the conversation; its id and the conversation's key."""
    key = conversation_key(secret, conversation_id)
    with session_factory(db_url)() as session:
        row = ChatNotice(conversation_hash=key, kind=kind, text=text[:MAX_TEXT_CHARS], created_at=utcnow())
        session.add(row)
        session.commit()
        return row.id, key


def take_pending(db_url: str, key: str, now: Optional[dt.datetime] = None) -> List[Dict]:
    """The conversation's undelivered notices, oldest first, each marked delivered by a
    compare-and-set: a notice another stream took meanwhile is left out."""
    now = now or utcnow()
    with session_factory(db_url)() as session:
        rows = session.execute(
            select(ChatNotice.id, ChatNotice.kind, ChatNotice.text, ChatNotice.created_at)
            .where(ChatNotice.conversation_hash == key, ChatNotice.delivered_at.is_(None))
            .order_by(ChatNotice.id).limit(MAX_PER_READ)
        ).all()
        taken = []
        for notice_id, kind, text, created_at in rows:
            won = session.execute(
                update(ChatNotice).where(ChatNotice.id == notice_id, ChatNotice.delivered_at.is_(None))
                .values(delivered_at=now)
            ).rowcount
            if won == 1:
                taken.append({"id": notice_id, "kind": kind, "text": text,
                              "at": created_at.replace(tzinfo=dt.timezone.utc).isoformat()})
        session.commit()
        return taken


def last_id(db_url: str) -> int:
    with session_factory(db_url)() as session:
        return int(session.execute(select(func.max(ChatNotice.id))).scalar() or 0)


def keys_after(db_url: str, after_id: int, limit: int = 1000) -> Tuple[int, List[str]]:
    """Conversations with notices stored after ``after_id`` (by any process): the newest
    id seen and their keys (the live feed wakes only those conversations' streams)."""
    with session_factory(db_url)() as session:
        rows = session.execute(
            select(ChatNotice.id, ChatNotice.conversation_hash).where(ChatNotice.id > after_id)
            .order_by(ChatNotice.id).limit(limit)
        ).all()
    if not rows:
        return after_id, []
    return rows[-1][0], sorted({key for _, key in rows})


def purge(db_url: str, now: Optional[dt.datetime] = None) -> int:
    """Delete notices shown more than ``KEEP_DELIVERED`` ago, and those nobody came
    back for within ``KEEP_UNDELIVERED``; how many."""
    now = now or utcnow()
    with session_factory(db_url)() as session:
        gone = session.execute(delete(ChatNotice).where(
            (ChatNotice.delivered_at < now - KEEP_DELIVERED)
            | (ChatNotice.delivered_at.is_(None) & (ChatNotice.created_at < now - KEEP_UNDELIVERED))
        ).execution_options(synchronize_session=False)).rowcount
        session.commit()
        return int(gone or 0)


class WebChatSender:
    """A :class:`~assistant.services.progress.dispatch.Sender` for the web chat: the
    recipient is the conversation id; ``wake(key)`` is told of each stored notice."""

    def __init__(self, db_url: str, secret: bytes, wake: Optional[Callable[[str], Awaitable[None]]] = None,
                 kind: str = KIND_PROGRESS) -> None:
        self.db_url = db_url
        self.secret = secret
        self.wake = wake
        self.kind = kind

    async def send(self, recipient: str, text: str, detail=None) -> None:
        kind = getattr(detail, "kind", None) or self.kind
        _, key = await asyncio.to_thread(store, self.db_url, self.secret, recipient, text, kind)
        if self.wake is not None:
            await self.wake(key)
