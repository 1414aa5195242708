"""Live updates for the web chat and the desk, across processes and replicas.

One background task per gateway process polls a cheap change marker of the
handoff tables every second (tickets are opened by the action server, replies
may come through another replica) and wakes every waiting stream when it
changes; changes made in this process wake them at once (``bump``). Streams
then read what is new from the database, so nothing is lost on reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any, Dict, Optional

from assistant.services.handoff import tickets

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
# A stream ends after this long; EventSource reconnects at once with Last-Event-ID.
STREAM_SECONDS = 120.0
HEARTBEAT_SECONDS = 15.0
RETRY_MS = 1000


class ChangeFeed:
    def __init__(self, db_url: str, interval: float = POLL_SECONDS) -> None:
        self.db_url = db_url
        self.interval = interval
        self.version = 0
        self._condition: Optional[asyncio.Condition] = None
        self._task: Optional[asyncio.Task] = None

    def _cond(self) -> asyncio.Condition:
        if self._condition is None:
            self._condition = asyncio.Condition()
        return self._condition

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._poll(), name="banshi-change-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        marker = None
        while True:
            try:
                current = await asyncio.to_thread(tickets.change_marker, self.db_url)
                if current != marker:
                    marker = current
                    await self.bump()
            except Exception:  # a database hiccup must not end live updates
                logger.exception("gateway.live.poll_failed")
            await asyncio.sleep(self.interval)

    async def bump(self) -> None:
        cond = self._cond()
        async with cond:
            self.version += 1
            cond.notify_all()

    async def wait(self, seen: int, timeout: float) -> int:
        """Wait until the version differs from ``seen`` (or the timeout); the new version."""
        cond = self._cond()
        async with cond:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(cond.wait_for(lambda: self.version != seen), timeout)
            return self.version


def sse(event: str, data: Dict[str, Any], event_id: Optional[int] = None) -> str:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, ensure_ascii=False))
    return "\n".join(lines) + "\n\n"


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
