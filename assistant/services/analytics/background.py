"""The analytics rollup in the background: a task of every gateway process that, in
the one replica holding the deployment's lease (``storage/leases.py``, renewed each
pass, taken over once a dead holder's lease expired), brings the last
``window_days`` local days of ``analytics_turns`` up to date every
``BANSHI_ANALYTICS_ROLLUP_MINUTES`` — so that a dashboard request finds them
computed and only refreshes today (and a day never computed) itself.

A pass reads at most ``days_per_pass`` days, newest first; while stale days remain
(a backfill after deployment, a long outage) the next pass follows after
``catch_up_seconds``. ``store_day`` still guards each day (a lease can end while its
holder is in the middle of a pass).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Optional
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DBAPIError

from assistant.config.settings import Settings
from assistant.services.analytics.config import TUNABLES
from assistant.services.analytics.rollup import RefreshResult, local_day, refresh
from assistant.services.live import stop_task
from assistant.services.progress.loop import holder_id
from assistant.storage import leases
from assistant.storage.database import utcnow

logger = logging.getLogger(__name__)

LEASE_NAME = "analytics-rollup"
MIN_LEASE_S = 60.0


def runs_in_background(settings: Settings) -> bool:
    """Whether the gateway keeps the rollup up to date (not on a kiosk, not without a
    SQL tracker store, not when BANSHI_ANALYTICS_ROLLUP_MINUTES is 0)."""
    return settings.analytics_rollup_minutes > 0 and settings.tracker_store == "sql" and not settings.kiosk_mode


def lease_for(interval_s: float) -> dt.timedelta:
    """Three missed passes and another replica takes over."""
    return dt.timedelta(seconds=max(3 * interval_s, MIN_LEASE_S))


def rollup_pass(settings: Settings, holder: str, now: Optional[dt.datetime] = None) -> Optional[RefreshResult]:
    """One pass (blocking): None when another process holds the lease, else what was
    refreshed of the last ``window_days`` days. ``now`` is the rollup's clock (tests);
    the lease always runs on the real one."""
    interval_s = settings.analytics_rollup_minutes * 60
    if not leases.acquire(settings.db_url, LEASE_NAME, holder, lease_for(interval_s)):
        return None
    now = now or utcnow()
    today = local_day(now, ZoneInfo(settings.timezone))
    first = today - dt.timedelta(days=TUNABLES.window_days - 1)
    return refresh(settings, first, today, now=now, limit=TUNABLES.days_per_pass)


class RollupLoop:
    """The background task (``start``/``stop`` with the app's lifespan)."""

    def __init__(self, settings: Settings, holder: Optional[str] = None) -> None:
        self.settings = settings
        self.interval_s = settings.analytics_rollup_minutes * 60
        self.holder = holder or holder_id()
        self.leader = False
        self.attempts = 0  # passes tried (the lease asked for)
        self.passes = 0  # passes made as the leader
        self._task: Optional[asyncio.Task] = None

    def start(self) -> None:
        if runs_in_background(self.settings) and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="banshi-analytics-rollup")

    async def stop(self) -> None:
        self._task = await stop_task(self._task)
        if self.leader:
            with contextlib.suppress(Exception):  # another replica takes over at once
                await asyncio.to_thread(leases.release, self.settings.db_url, LEASE_NAME, self.holder)
            self.leader = False

    async def _run(self) -> None:
        while True:
            delay = self.interval_s
            try:
                done = await asyncio.to_thread(rollup_pass, self.settings, self.holder)
                self.attempts += 1
                self.leader = done is not None
                if done is not None:
                    self.passes += 1
                    if done.remaining:
                        delay = min(delay, TUNABLES.catch_up_seconds)
            except DBAPIError as exc:  # the database or the tracker store is unreachable: next time
                logger.warning("analytics.rollup.pass_failed error=%s", type(exc).__name__)
            except Exception:
                logger.exception("analytics.rollup.pass_failed")
            await asyncio.sleep(delay)
