"""The kiosk's background delivery of the outbox (``assistant/services/outbox.py``): an
asyncio task in the kiosk's gateway that sends what is due, then sleeps until the next
message is due (at most ``poll_seconds``: the action server enqueues from another process).
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Callable, Optional
from urllib.parse import urlsplit

from assistant.config.settings import Settings
from assistant.services import outbox
from assistant.storage.database import utcnow

logger = logging.getLogger(__name__)


def _is_insecure(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname not in {"127.0.0.1", "localhost", "::1"}


class OutboxWorker:
    """Delivers the outbox in the background (kiosk mode with a central URL).

    Polls the database (the action server enqueues from another process), so
    ``poll_seconds`` bounds how long a new message waits before its first try.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        poll_seconds: float = 1.0,
        timeout_s: float = 10.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.db_url = settings.db_url
        self.poll_seconds = poll_seconds
        self.timeout_s = timeout_s
        self.rng = rng
        self.delivered = 0
        self.failed = 0
        self._task: Optional[asyncio.Task] = None
        self._stopping: Optional[asyncio.Event] = None
        self._wake: Optional[asyncio.Event] = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.running:
            return
        if _is_insecure(self.settings.central_url or ""):
            logger.warning("kiosk.outbox.insecure_url scheme=http (use https for a remote central server)")
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="banshi-outbox")
        logger.info("kiosk.outbox.started kiosk=%s", self.settings.kiosk_id)

    def wake(self) -> None:
        """Look for due messages now (e.g. right after enqueueing in this process)."""
        if self._wake is not None:
            self._wake.set()

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop after the current message; a message cut off mid-send is sent again later."""
        if self._task is None:
            return
        assert self._stopping is not None
        self._stopping.set()
        self.wake()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except asyncio.TimeoutError:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._task = None
        logger.info("kiosk.outbox.stopped delivered=%s failed=%s", self.delivered, self.failed)

    async def _pause(self) -> float:
        due = await asyncio.to_thread(outbox.next_due_at, self.db_url)
        if due is None:
            return self.poll_seconds
        return min(max((due - utcnow()).total_seconds(), 0.0), self.poll_seconds)

    async def _run(self) -> None:
        assert self._stopping is not None and self._wake is not None
        async with outbox.central_client(self.settings, self.timeout_s) as client:
            while not self._stopping.is_set():
                try:
                    delivered, failed = await outbox.deliver_due(
                        self.db_url, client, kiosk_id=self.settings.kiosk_id, rng=self.rng, settings=self.settings
                    )
                    self.delivered += delivered
                    self.failed += failed
                    pause = await self._pause()
                except Exception:  # the database is busy or broken: try again later
                    logger.exception("kiosk.outbox.worker_error")
                    pause = self.poll_seconds
                if pause <= 0:
                    continue
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), pause)
                except asyncio.TimeoutError:
                    pass
