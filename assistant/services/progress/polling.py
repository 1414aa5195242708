"""Polling a case-management system that cannot push status events.

With the HTTP progress provider and ``BANSHI_PROGRESS_POLL_SECONDS`` set, the notice
scheduler's leader (one process per deployment, ``loop.NoticeLoop``) asks the provider
for every number someone is subscribed to, at most once per that many seconds, and a
status that differs from what a subscriber last heard queues their notice exactly as a
pushed event does (``notices.enqueue``: one notice per change, quiet hours, daily cap).
Numbers are polled oldest-checked first, a bounded batch per round, a few at a time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Dict, List, Optional

from sqlalchemy import select

from assistant.services.progress import notices
from assistant.services.progress.providers import ProgressProvider, ProgressUnavailable, get_provider
from assistant.storage.database import session_factory
from assistant.storage.tables import ProgressSubscription

logger = logging.getLogger(__name__)

BATCH = 200  # numbers per round at most
CONCURRENCY = 4  # lookups in flight at once


def subscribed_numbers(db_url: str) -> List[str]:
    """The numbers with at least one active subscription."""
    with session_factory(db_url)() as session:
        return sorted(session.execute(
            select(ProgressSubscription.number).where(ProgressSubscription.cancelled_at.is_(None)).distinct()
        ).scalars())


class Poller:
    """Ask the provider about subscribed numbers; queue notices for changed statuses."""

    def __init__(self, db_url: str, provider: ProgressProvider, timezone: str, every_s: float) -> None:
        self.db_url = db_url
        self.provider = provider
        self.timezone = timezone
        self.every_s = every_s
        self._checked: Dict[str, float] = {}  # number → monotonic time of the last lookup

    def _due(self, numbers: List[str], now: float) -> List[str]:
        known = set(numbers)
        for number in list(self._checked):
            if number not in known:
                del self._checked[number]
        due = [n for n in numbers if now - self._checked.get(n, -1e18) >= self.every_s]
        return sorted(due, key=lambda n: self._checked.get(n, -1e18))[:BATCH]

    async def poll(self, now: Optional[dt.datetime] = None) -> Dict[str, int]:
        numbers = await asyncio.to_thread(subscribed_numbers, self.db_url)
        due = self._due(numbers, time.monotonic())
        counts = {"polled": 0, "changed": 0, "unavailable": 0}
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(number: str) -> None:
            async with gate:
                try:
                    view = await self.provider.lookup(number)
                except ProgressUnavailable:
                    counts["unavailable"] += 1
                    return
                finally:
                    self._checked[number] = time.monotonic()
            counts["polled"] += 1
            if view is None:
                return
            queued = await asyncio.to_thread(notices.enqueue, self.db_url, number, view.status, self.timezone, now)
            if queued:
                counts["changed"] += 1
                logger.info("progress.poll.changed status=%s notices=%d", view.status, queued)

        await asyncio.gather(*(one(n) for n in due))
        return counts


def poller_for(settings) -> Optional[Poller]:
    """The poller the settings ask for: only with the HTTP provider and a poll interval."""
    if settings.progress_provider != "http" or not settings.progress_poll_seconds:
        return None
    return Poller(settings.db_url, get_provider(settings), settings.timezone, settings.progress_poll_seconds)
