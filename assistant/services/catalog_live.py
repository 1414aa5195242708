"""Catalog versions published on the admin page, taken up by this gateway process.

One background task polls the catalog version row (``catalog_meta.fingerprint``,
written in the publish's own transaction) every ``catalog_poll_seconds``; on a new
version it reads the catalog in effect from the database, derives the item linker on
it (``knowledge.live``: aliases, situations, embeddings of the new texts) and swaps
both in: ``app.state.catalog`` is replaced by one assignment, the linkers by one.
No retraining: the Rasa model's intent classifier is untouched. Works on SQLite and
PostgreSQL alike; the publishing process swaps at once (:func:`CatalogWatcher.refresh`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Optional, Set

from assistant.config.settings import Settings
from assistant.services import metrics
from assistant.services.live import stop_task
from knowledge import db, live, revisions
from knowledge.catalog import Catalog

logger = logging.getLogger(__name__)


class CatalogWatcher:
    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.version = ""
        self.swaps = 0
        self.last_swap_seconds = 0.0
        self._task: Optional[asyncio.Task] = None
        self._lock = threading.Lock()
        self._voice_tasks: Set["asyncio.Task[None]"] = set()

    def _load(self) -> Catalog:
        """The catalog in effect (the database's rows), the linker derived on it."""
        started = time.perf_counter()
        files = revisions.files_catalog(self.settings.catalog_dir, self.settings.region_override)
        catalog = db.read_catalog(self.settings.db_url, spec=files.spec)
        live.install(catalog, files)
        self.last_swap_seconds = time.perf_counter() - started
        return catalog

    def _refresh_sync(self, force: bool) -> Optional[Catalog]:
        """Read the version and, if it is new, load and swap in its catalog; the catalog
        swapped in or None. One refresh at a time, whichever thread or event loop asks
        (a thread lock: the publishing request and the poll may run on different loops)."""
        with self._lock:
            version = revisions.read_version(self.settings.db_url)
            if version == self.version and not force:
                return None
            catalog = self._load()
            self.app.state.catalog = catalog  # one assignment: a turn sees the old or the new
            self.version = catalog.fingerprint
            self.swaps += 1
            return catalog

    async def refresh(self, force: bool = False) -> bool:
        """Swap in the catalog version in the database if it is new; whether it was."""
        catalog = await asyncio.to_thread(self._refresh_sync, force)
        if catalog is None:
            return False
        metrics.record_catalog_swap()
        logger.info("catalog.live.swapped version=%s seconds=%.3f", self.version, self.last_swap_seconds)
        self._follow_in_voice(catalog)
        return True

    def _follow_in_voice(self, catalog: Catalog) -> None:
        """Speech in use on this gateway learns the new version's words in the background."""
        voice = getattr(self.app.state, "voice", None)
        if voice is None:  # no speech used yet: it starts from app.state.catalog
            return
        task = asyncio.get_running_loop().create_task(voice.follow_catalog(catalog), name="banshi-voice-follow")
        self._voice_tasks.add(task)
        task.add_done_callback(self._voice_followed)

    def _voice_followed(self, task: "asyncio.Task[None]") -> None:
        self._voice_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("catalog.live.voice_follow_failed error=%s", type(task.exception()).__name__)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.catalog_poll_seconds)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database restarting: keep the catalog in use, try again
                logger.warning("catalog.live.poll_failed", exc_info=True)

    async def start(self, catalog: Catalog) -> None:
        """Start from ``catalog`` (loaded at startup) and follow the versions after it."""
        self.version = catalog.fingerprint
        files = revisions.files_catalog(self.settings.catalog_dir, self.settings.region_override)
        await asyncio.to_thread(live.install, catalog, files)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="banshi-catalog-watch")

    async def stop(self) -> None:
        self._task = await stop_task(self._task)
