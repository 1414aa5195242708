"""Delivery by WeChat's customer-service API: a persistent queue (``wechat_outgoing``)
sent within WeChat's window, with retries on WeChat's transient errors, by an
asyncio task of the gateway. What became of a send is kept through the storage
spool (``wechat_kept``) if the database is unreachable just then, and nothing is
claimed while such a change waits, so a message is not sent twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from typing import TYPE_CHECKING, Optional

from assistant.channels import wechat_kept as kept
from assistant.channels import wechat_store as store
from assistant.channels.wechat_api import WeChatApiError
from assistant.channels.wechat_format import openid_of
from assistant.security.pii import hash_id

if TYPE_CHECKING:
    from assistant.channels.wechat import WeChatChannel

logger = logging.getLogger(__name__)

POLL_S = 5.0
LEASE = dt.timedelta(seconds=30)
RETRY_BASE_S = 1.0
RETRY_CAP_S = 60.0
MAX_ATTEMPTS = 8
HOUSEKEEPING_S = 30.0
SEND_CONCURRENCY = 8


class DeliveryWorker:
    """Sends queued messages by the customer-service API (an asyncio task)."""

    def __init__(self, channel: "WeChatChannel") -> None:
        self.channel = channel
        self.db_url = channel.settings.db_url
        self._wake = asyncio.Event()
        self._task: Optional[asyncio.Task] = None
        self._last_housekeeping = 0.0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="wechat-delivery")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
                await self._housekeeping()
                pause = POLL_S
                due = await asyncio.to_thread(store.next_due_at, self.db_url)
                if due is not None:
                    pause = min(POLL_S, max(0.0, (due - store.utcnow()).total_seconds()))
                self._wake.clear()
                if pause > 0:
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=pause)
                    except asyncio.TimeoutError:
                        pass
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("wechat.delivery.loop_failed")
                await asyncio.sleep(1.0)

    async def _housekeeping(self) -> None:
        if time.monotonic() - self._last_housekeeping < HOUSEKEEPING_S:
            return
        self._last_housekeeping = time.monotonic()
        texts = self.channel.texts
        if not await asyncio.to_thread(kept.drained, self.db_url):
            return  # a reply may wait in the spool: it is not an orphan
        recovered = await asyncio.to_thread(
            store.recover_orphans, self.db_url, dt.timedelta(seconds=texts.orphan_seconds), texts.apology
        )
        if recovered:
            logger.warning("wechat.recovered_orphans count=%d", recovered)
            self.wake()
        await asyncio.to_thread(store.purge, self.db_url)

    async def run_once(self) -> int:
        """Send what is due now; returns how many were claimed."""
        if not await asyncio.to_thread(kept.drained, self.db_url):
            return 0  # e.g. a "sent" mark still waits: its message must not be claimed again
        claimed = await asyncio.to_thread(store.claim_due, self.db_url, LEASE)
        if not claimed:
            return 0
        limit = asyncio.Semaphore(SEND_CONCURRENCY)

        async def one(message: store.Outgoing) -> None:
            async with limit:
                await self._send(message)

        await asyncio.gather(*(one(m) for m in claimed))
        self.wake()  # the next message of these users may be due now
        return len(claimed)

    async def _send(self, message: store.Outgoing) -> None:
        user = hash_id(message.sender_id)
        refusal = await asyncio.to_thread(store.use_window, self.db_url, message.sender_id)
        if refusal is not None:
            await asyncio.to_thread(kept.mark, self.db_url, message, kept.MARK_FAILED, refusal)
            logger.warning("wechat.delivery.not_sent user=%s id=%d reason=%s", user, message.id, refusal)
            return
        try:
            await self.channel.api.send_text(openid_of(message.sender_id), message.content)
        except WeChatApiError as exc:
            await asyncio.to_thread(kept.give_back_window, self.db_url, message.sender_id)
            if exc.retryable and message.attempts < MAX_ATTEMPTS:
                delay = min(RETRY_CAP_S, RETRY_BASE_S * 2 ** (message.attempts - 1)) * random.uniform(0.8, 1.0)
                await asyncio.to_thread(kept.mark, self.db_url, message, kept.MARK_RETRY, str(exc), delay)
                logger.warning("wechat.delivery.retry user=%s id=%d errcode=%s in_s=%.1f",
                               user, message.id, exc.errcode, delay)
            else:
                await asyncio.to_thread(kept.mark, self.db_url, message, kept.MARK_FAILED, str(exc))
                logger.error("wechat.delivery.failed user=%s id=%d errcode=%s", user, message.id, exc.errcode)
            return
        except Exception:
            await asyncio.to_thread(kept.give_back_window, self.db_url, message.sender_id)
            await asyncio.to_thread(kept.mark, self.db_url, message, kept.MARK_RETRY, "unexpected error", RETRY_CAP_S)
            logger.exception("wechat.delivery.error user=%s id=%d", user, message.id)
            return
        await asyncio.to_thread(kept.mark, self.db_url, message, kept.MARK_SENT)
        logger.info("wechat.delivery.sent user=%s id=%d attempts=%d", user, message.id, message.attempts)
