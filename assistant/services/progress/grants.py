"""Verification grants: a conversation that has just verified an application (its
number and the phone tail, ``actions/progress.py``) may hand in that application's
missing materials for ``upload_grant_minutes`` (补交材料, ``services/materials``).

One grant per conversation (the newest verification wins), keyed by a keyed hash of
the conversation id: the id itself is never stored. Expired grants are deleted by
:func:`purge_expired`.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Optional

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from assistant.config.settings import Settings
from assistant.security.pii import hash_id
from assistant.security.sealed import keyed_hash
from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import VerificationGrant

logger = logging.getLogger(__name__)

PURPOSE = "verification-grant"


def sender_key(settings: Settings, sender_id: str) -> str:
    """The keyed hash a conversation's grant (and its uploads) are found by."""
    return keyed_hash(settings.secret(), PURPOSE, sender_id)


def grant(settings: Settings, sender_id: str, number: str, minutes: Optional[int] = None) -> dt.datetime:
    """Record that ``sender_id`` verified ``number`` now; returns when the grant ends."""
    key = sender_key(settings, sender_id)
    now = utcnow()
    expires = now + dt.timedelta(minutes=minutes if minutes is not None else settings.upload_grant_minutes)
    factory = session_factory(settings.db_url)
    for _ in range(2):  # two verifications of one conversation at once: the second updates
        with factory() as session:
            changed = session.execute(
                update(VerificationGrant)
                .where(VerificationGrant.sender_hash == key)
                .values(number=number, granted_at=now, expires_at=expires)
            ).rowcount
            if not changed:
                session.add(VerificationGrant(sender_hash=key, number=number, granted_at=now, expires_at=expires))
            try:
                session.commit()
                break
            except IntegrityError:
                session.rollback()
    logger.info("progress.grant.recorded sender=%s", hash_id(sender_id))
    return expires


def granted(settings: Settings, sender_id: str) -> Optional[str]:
    """The application number this conversation verified within the grant's time, or None."""
    with session_factory(settings.db_url)() as session:
        row = session.get(VerificationGrant, sender_key(settings, sender_id))
        if row is None or row.expires_at <= utcnow():
            return None
        return row.number


def revoke(settings: Settings, sender_id: str) -> None:
    with session_factory(settings.db_url)() as session:
        session.execute(delete(VerificationGrant).where(VerificationGrant.sender_hash == sender_key(settings, sender_id)))
        session.commit()


def purge_expired(db_url: str) -> int:
    """Delete expired grants; how many."""
    with session_factory(db_url)() as session:
        count = session.execute(delete(VerificationGrant).where(VerificationGrant.expires_at <= utcnow())).rowcount
        session.commit()
    return int(count or 0)
