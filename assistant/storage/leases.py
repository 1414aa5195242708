"""Leases: one process of a deployment runs a periodic job at a time (the notice and
reminder scheduler), whichever gateway replica it is.

A lease is a row of ``scheduler_leases`` (name, holder, expires_at) taken or renewed
by a compare-and-set update — "mine, or expired" — so it works alike on SQLite and
PostgreSQL with no lock held between calls; a holder that dies is replaced once its
lease has expired. The job itself must still be safe to run twice (a lease can end
while its holder is in the middle of a run): the scheduler claims each row with its
own compare-and-set.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import SchedulerLease


def acquire(db_url: str, name: str, holder: str, ttl: dt.timedelta, now: Optional[dt.datetime] = None) -> bool:
    """Take or renew the lease ``name`` for ``holder`` until ``now + ttl``; False while
    another holder's lease runs."""
    now = now or utcnow()
    until = now + ttl
    with session_factory(db_url)() as session:
        taken = session.execute(
            update(SchedulerLease)
            .where(SchedulerLease.name == name,
                   or_(SchedulerLease.holder == holder, SchedulerLease.expires_at < now))
            .values(holder=holder, expires_at=until)
        ).rowcount
        if taken == 1:
            session.commit()
            return True
        if session.execute(select(SchedulerLease.name).where(SchedulerLease.name == name)).first():
            session.rollback()
            return False
        session.add(SchedulerLease(name=name, holder=holder, expires_at=until))
        try:
            session.commit()
        except IntegrityError:  # another process created it at the same moment
            session.rollback()
            return False
        return True


def release(db_url: str, name: str, holder: str) -> None:
    """Give the lease up (at shutdown) so that another process takes over at once."""
    with session_factory(db_url)() as session:
        session.execute(delete(SchedulerLease).where(SchedulerLease.name == name, SchedulerLease.holder == holder))
        session.commit()


def holder_of(db_url: str, name: str, now: Optional[dt.datetime] = None) -> Optional[str]:
    """Who holds the lease now (None: nobody, or it has expired)."""
    now = now or utcnow()
    with session_factory(db_url)() as session:
        row = session.get(SchedulerLease, name)
        return row.holder if row is not None and row.expires_at >= now else None
