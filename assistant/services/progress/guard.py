"""The verification guard: three wrong phone checks lock an application number for a
while, whoever tries (``verification_guards``)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Optional, Tuple

from sqlalchemy import delete, select
from sqlalchemy.orm.attributes import flag_modified

from assistant.services.progress.records import normalize_number
from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import VerificationGuard

logger = logging.getLogger("banshi.progress")


MAX_FAILURES = 3
LOCK_MINUTES = 15


def _guard_key(number: str) -> str:
    """One guard per application, however the number was typed."""
    return normalize_number(number) or number


def locked_until(db_url: str, number: str, now: Optional[dt.datetime] = None) -> Optional[dt.datetime]:
    """When the lock of ``number`` ends (naive UTC), None when not locked or expired."""
    number, now = _guard_key(number), now or utcnow()
    with session_factory(db_url)() as session:
        guard = session.get(VerificationGuard, number)
        if guard is None or guard.locked_until is None or guard.locked_until <= now:
            return None
        return guard.locked_until


def record_failure(
    db_url: str, number: str, now: Optional[dt.datetime] = None
) -> Tuple[int, Optional[dt.datetime]]:
    """Count a wrong phone verification: (failures so far, lock end if now locked).

    The ``MAX_FAILURES``-th failure locks the number for ``LOCK_MINUTES``. An expired
    lock, or failures older than ``LOCK_MINUTES``, start the count again.
    """
    number, now = _guard_key(number), now or utcnow()
    window = dt.timedelta(minutes=LOCK_MINUTES)
    with session_factory(db_url)() as session, session.begin():
        guard = session.execute(
            select(VerificationGuard).where(VerificationGuard.number == number).with_for_update()
        ).scalar_one_or_none()
        if guard is None:
            guard = VerificationGuard(number=number, failures=0)
            session.add(guard)
        elif guard.locked_until is not None and guard.locked_until > now:
            return guard.failures, guard.locked_until  # already locked: unchanged
        elif guard.locked_until is not None or (guard.updated_at and guard.updated_at <= now - window):
            guard.failures, guard.locked_until = 0, None
        guard.failures = (guard.failures or 0) + 1
        guard.updated_at = now
        # Even when unchanged: otherwise the column's onupdate (the wall clock) wins.
        flag_modified(guard, "updated_at")
        if guard.failures >= MAX_FAILURES:
            guard.locked_until = now + window
        failures, until = guard.failures, guard.locked_until
    if until is not None:
        logger.warning("progress.guard.locked number=%s minutes=%d", number, LOCK_MINUTES)
    return failures, until


def record_success(db_url: str, number: str) -> None:
    """A correct verification: forget the failures of ``number``."""
    number = _guard_key(number)
    with session_factory(db_url)() as session, session.begin():
        session.execute(delete(VerificationGuard).where(VerificationGuard.number == number))
