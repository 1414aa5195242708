"""Live updates for the web chat and the desk, across processes and replicas.

One background task per gateway process polls a cheap change marker of the
handoff tables every second (tickets are opened by the action server, replies
may come through another replica) and wakes every waiting stream when it
changes; changes made in this process wake them at once (``bump``). Streams
then read what is new from the database, so nothing is lost on reconnect.

Notices for a web chat (``progress/webchat.py``) wake only their conversation's
streams: each conversation key has its own counter, raised at once in the process
that stored the notice (``notify``) and by the poll in every other one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any, Dict, Optional

from assistant.services.handoff import tickets
from assistant.services.progress import webchat

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
# A stream ends after this long; EventSource reconnects at once with Last-Event-ID.
STREAM_SECONDS = 120.0
HEARTBEAT_SECONDS = 15.0
RETRY_MS = 1000
# Conversation keys remembered with their notice counters; past this the map starts
# afresh (a stream then wakes once for nothing and reads no notice).
MAX_NOTICE_KEYS = 10000


async def stop_task(task: "Optional[asyncio.Task]") -> None:
    """Cancel a background task of the gateway and wait for it to end; None to keep."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return None


class ChangeFeed:
    def __init__(self, db_url: str, interval: float = POLL_SECONDS) -> None:
        self.db_url = db_url
        self.interval = interval
        self.version = 0
        self.notice_versions: Dict[str, int] = {}
        self._last_notice_id: Optional[int] = None
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
        self._task = await stop_task(self._task)

    async def _poll(self) -> None:
        marker = None
        while True:
            try:
                current = await asyncio.to_thread(tickets.change_marker, self.db_url)
                if current != marker:
                    marker = current
                    await self.bump()
                await self._poll_notices()
            except Exception:  # a database hiccup must not end live updates
                logger.exception("gateway.live.poll_failed")
            await asyncio.sleep(self.interval)

    async def _poll_notices(self) -> None:
        """Wake the streams of conversations another process kept a notice for."""
        if self._last_notice_id is None:
            self._last_notice_id = await asyncio.to_thread(webchat.last_id, self.db_url)
            return
        last, keys = await asyncio.to_thread(webchat.keys_after, self.db_url, self._last_notice_id)
        self._last_notice_id = last
        if keys:
            await self.notify(*keys)

    async def notify(self, *keys: str) -> None:
        """Notices were kept for these conversations: wake their streams."""
        cond = self._cond()
        async with cond:
            if len(self.notice_versions) > MAX_NOTICE_KEYS:
                self.notice_versions.clear()
            for key in keys:
                self.notice_versions[key] = self.notice_versions.get(key, 0) + 1
            cond.notify_all()

    def notice_version(self, key: str) -> int:
        return self.notice_versions.get(key, 0)

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

    async def wait_any(self, seen: int, key: str, seen_notice: int, timeout: float) -> bool:
        """Wait until the version differs from ``seen`` or the conversation ``key``'s
        notice counter from ``seen_notice``; False after the timeout."""
        cond = self._cond()
        changed = lambda: self.version != seen or self.notice_versions.get(key, 0) != seen_notice  # noqa: E731
        async with cond:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(cond.wait_for(changed), timeout)
            return changed()


def sse(event: str, data: Dict[str, Any], event_id: Optional[int] = None) -> str:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, ensure_ascii=False))
    return "\n".join(lines) + "\n\n"


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
