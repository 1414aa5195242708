"""Personal data deleted after its retention time, by every gateway: kiosk
pre-applications (after delivery at a kiosk, after ``prefill_retention_days`` at the
centre) and the personal data of saved call tickets (``call_retention_days``). Each
purge is idempotent, so several replicas running it at once is harmless."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable, Sequence

from assistant.config.settings import Settings
from assistant.services.callmode import store as call_tickets
from assistant.services.prefill import central as preapplications

logger = logging.getLogger(__name__)

INTERVAL_S = 3600.0
PURGES: Sequence[Callable[[Settings], object]] = (preapplications.purge, call_tickets.purge)


async def purge_periodically(settings: Settings, interval_s: float = INTERVAL_S) -> None:
    """Every purge now, then every ``interval_s`` (a gateway's background task)."""
    while True:
        for purge in PURGES:
            try:
                await asyncio.to_thread(purge, settings)
            except Exception:  # the database is unreachable: next time
                logger.exception("retention.purge.failed purge=%s", purge.__module__)
        await asyncio.sleep(interval_s)
