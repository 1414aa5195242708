"""The notice scheduler of a gateway process: sends queued status notices
(``dispatch``) and due reminders (``reminders``) in the background.

* **Woken** (``wake()``: the events endpoint queued notices in this process) it
  sends the due notices at once, whichever replica it is: each notice is claimed
  by a compare-and-set, so replicas woken together never send one twice.
* **Every** ``interval`` seconds otherwise, but only in the process holding the
  deployment's lease (``storage/leases.py``; renewed each round, taken over by
  another replica once a dead holder's lease has expired), it sends what became
  due since (deferred past quiet hours, retries) and the due reminders — one
  scheduler per deployment; the compare-and-set still guards each row.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import socket
import time
from typing import Any, Dict, Optional

from assistant.services.progress import dispatch, reminders, webchat
from assistant.services.progress.dispatch import Sender
from assistant.services.reviews import queue as review_queue
from assistant.storage import leases

logger = logging.getLogger(__name__)

LEASE_NAME = "progress-notices"
DEFAULT_INTERVAL_S = 10.0
HOUSEKEEPING_S = 3600.0  # the leader deletes old web-chat notices and finished reminders


def holder_id() -> str:
    """This process among the deployment's: host, pid and a random tag."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(3)}"


class NoticeLoop:
    def __init__(self, db_url: str, secret: bytes, senders: Dict[str, Sender], timezone: str,
                 interval: float = DEFAULT_INTERVAL_S, lease_seconds: Optional[float] = None,
                 holder: Optional[str] = None, poller: Optional[Any] = None) -> None:
        self.db_url = db_url
        self.poller = poller  # polling.Poller: for case systems that cannot push events
        self.secret = secret
        self.senders = senders
        self.timezone = timezone
        self.interval = interval
        # Three missed rounds and another replica takes over.
        self.lease = dt.timedelta(seconds=lease_seconds or max(3 * interval, 5.0))
        self.holder = holder or holder_id()
        self.leader = False
        self.rounds = 0
        self._last_housekeeping = 0.0
        self._wake: Optional[asyncio.Event] = None
        self._task: Optional[asyncio.Task] = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="banshi-notices")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        self._task = None
        if self.poller is not None:
            with contextlib.suppress(Exception):
                await self.poller.provider.aclose()
        if self.leader:
            with contextlib.suppress(Exception):  # another replica takes over at once
                await asyncio.to_thread(leases.release, self.db_url, LEASE_NAME, self.holder)
            self.leader = False

    def wake(self) -> None:
        """Send the due notices now (called after notices were queued in this process)."""
        if self._wake is not None:
            self._wake.set()

    # ------------------------------------------------------------ rounds
    async def send_notices(self) -> Dict[str, int]:
        return await dispatch.dispatch_all(self.db_url, self.secret, self.senders)

    async def scheduled_round(self) -> Dict[str, Dict[str, int]]:
        """The periodic round: notices and reminders, if this process holds the lease."""
        self.leader = await asyncio.to_thread(leases.acquire, self.db_url, LEASE_NAME, self.holder, self.lease)
        if not self.leader:
            return {}
        polled = await self.poller.poll() if self.poller is not None else {}
        sent = await self.send_notices()
        reminded = await reminders.send_due_reminders(self.db_url, self.secret, self.senders, self.timezone)
        counts = {"polled": polled, "notices": sent, "reminders": reminded}
        if time.monotonic() - self._last_housekeeping >= HOUSEKEEPING_S:
            self._last_housekeeping = time.monotonic()
            counts["purged"] = {"chat_notices": await asyncio.to_thread(webchat.purge, self.db_url),
                                "reminders": await asyncio.to_thread(reminders.purge, self.db_url),
                                "reviews": await asyncio.to_thread(review_queue.purge, self.db_url)}
        return counts

    async def _run(self) -> None:
        assert self._wake is not None
        woken = False
        while True:
            try:
                if woken:
                    counts = await self.send_notices()
                else:
                    counts = await self.scheduled_round()
                self.rounds += 1
                if counts and any(v for v in _flatten(counts)):
                    logger.info("progress.loop.round woken=%s leader=%s %s", woken, self.leader, counts)
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup must not end the scheduler
                logger.exception("progress.loop.failed")
                await asyncio.sleep(1.0)
            woken = False
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
                woken = True
            except asyncio.TimeoutError:
                pass
            self._wake.clear()


def _flatten(counts):
    for value in counts.values():
        if isinstance(value, dict):
            yield from _flatten(value)
        else:
            yield value
