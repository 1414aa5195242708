"""The materials service of a gateway process (``app.state.materials``): the progress
provider and case-management system uploads use, and the background sweep that
forwards uploads whose forwarding failed and deletes files past their retention.

Several replicas may run the sweep at once: forwarding claims each upload with a
compare-and-set update (``uploads.forward_due``), and deleting is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Dict, Optional, Tuple

from assistant.config.settings import Settings
from assistant.security.client_limits import ClientLimiter
from assistant.services.materials import forwarding, uploads
from assistant.services.materials.forward import CaseSystem, get_case_system
from assistant.services.progress.providers import ProgressProvider, get_provider
from assistant.storage.spool import is_outage

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 60.0
PURGE_SECONDS = 3600.0


class Materials:
    def __init__(self, settings: Settings, provider: Optional[ProgressProvider] = None,
                 case_system: Optional[CaseSystem] = None) -> None:
        self.settings = settings
        self.provider = provider or get_provider(settings)
        self.case_system = case_system or get_case_system(settings)
        self._task: Optional[asyncio.Task] = None
        self._wake = asyncio.Event()
        self._last_purge = float("-inf")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    def wake(self) -> None:
        self._wake.set()

    async def sweep(self) -> None:
        """Forward what is due; delete what is past its retention (at most hourly)."""
        counts = await forwarding.forward_due(self.settings, self.case_system)
        if counts["ok"] or counts["failed"]:
            logger.info("materials.sweep.forwarded ok=%d failed=%d", counts["ok"], counts["failed"])
        if time.monotonic() - self._last_purge >= PURGE_SECONDS:
            self._last_purge = time.monotonic()
            await asyncio.to_thread(uploads.purge, self.settings)

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_outage(exc):
                    logger.warning("materials.sweep.db_unavailable")
                else:
                    logger.exception("materials.sweep.failed")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=SWEEP_SECONDS)
            except asyncio.TimeoutError:
                pass

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.case_system.aclose()
        await self.provider.aclose()


PHOTO_SCOPE = "photo"
_limiters: Dict[Tuple[str, str, Optional[str]], ClientLimiter] = {}
_limiters_lock = threading.Lock()


def photo_limit_wait(settings: Settings, client: str) -> Optional[int]:
    """Count one photo read for ``client`` (a keyed hash: the web client's address, a
    WeChat user); None when allowed, else the seconds to wait. Blocking."""
    key = (settings.photo_rate_limit, settings.db_url, settings.redis_url)
    with _limiters_lock:
        if key not in _limiters:
            _limiters[key] = ClientLimiter(settings.photo_rate_limit, settings.db_url, settings.redis_url,
                                           scope=PHOTO_SCOPE)
        limiter = _limiters[key]
    wait = limiter.hit(client)
    if wait is not None:
        logger.warning("materials.photo.limited client=%s wait_s=%d", client[:12], wait)
    return wait


def materials_of(app: Any) -> Materials:
    """The app's materials service (created on first use when the app has none yet)."""
    found = getattr(app.state, "materials", None)
    if found is None:
        found = Materials(app.state.settings)
        app.state.materials = found
    return found
