"""One turn of a conversation at a time, across gateway processes.

Rasa 3.6's ``RedisLockStore`` hands out tickets by reading the lock's JSON from Redis,
adding a ticket and writing it back: two processes doing that at once both get
ticket 0 and run the same conversation's turns together (measured here: four
messages of one conversation sent at once to two replicas stored three user
messages). :class:`RedisMutexLockStore` takes an atomic Redis lock instead
(``SET key token NX PX lifetime`` through redis-py's ``Lock``): a turn waits until the
conversation is free; a crashed holder's lock expires after its lifetime. A waiting
turn polls without holding a worker thread (threads are shared by every request).
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator, Optional, Text

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, LockStore

logger = logging.getLogger(__name__)

KEY_PREFIX = "banshi:turn-lock:"
# How long a turn may wait for the conversation (a turn takes well under a second).
WAIT_S = 90.0
POLL_S = 0.05
# Longer than the slowest turn (an action call may take 10 s plus the case-management
# system's retries); a crashed holder's lock expires after this.
LIFETIME_S = 120.0


class RedisMutexLockStore(LockStore):
    """A conversation lock in Redis that is atomic across processes."""

    def __init__(self, url: str, lifetime_s: float = LIFETIME_S, wait_s: float = WAIT_S):
        self.red = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)
        self.lifetime_s = lifetime_s
        self.wait_s = wait_s

    # The ticket API of Rasa's LockStore is not used: there are no tickets.
    def get_lock(self, conversation_id: Text) -> Optional[TicketLock]:
        return None

    def delete_lock(self, conversation_id: Text) -> None:
        self.red.delete(KEY_PREFIX + conversation_id)

    def save_lock(self, lock: TicketLock) -> None:
        raise NotImplementedError("RedisMutexLockStore has no tickets")

    @asynccontextmanager
    async def lock(  # type: ignore[override]
        self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME, wait_time_in_seconds: float = POLL_S
    ) -> AsyncIterator[None]:
        mutex = self.red.lock(
            KEY_PREFIX + conversation_id,
            timeout=self.lifetime_s,
            thread_local=False,  # acquired and released in different worker threads
        )
        deadline = time.monotonic() + self.wait_s
        acquired = await asyncio.to_thread(mutex.acquire, blocking=False)
        while not acquired and time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
            acquired = await asyncio.to_thread(mutex.acquire, blocking=False)
        if not acquired:
            logger.warning("dialogue.lock.timeout wait_s=%.0f", self.wait_s)
            raise LockError(f"conversation busy for more than {self.wait_s:.0f} s")
        try:
            yield
        finally:
            try:
                await asyncio.to_thread(mutex.release)
            except redis.exceptions.LockError:
                # Expired (a turn longer than the lifetime) and maybe taken by another.
                logger.warning("dialogue.lock.expired_before_release")
