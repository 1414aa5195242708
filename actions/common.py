"""Shared state of the action server: settings, tunables and the cached catalog."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Optional

from rasa_sdk import Tracker
from sqlalchemy.exc import SQLAlchemyError

from assistant.config.settings import get_settings
from assistant.config.tunables import TUNABLES
from assistant.storage import database
from knowledge import db
from knowledge.catalog import Catalog
# Pure helpers shared with the gateway (knowledge.context), re-exported for the actions.
from knowledge.context import SLOT_ITEM, intent_of, linked_items, reply_info  # noqa: F401

logger = logging.getLogger(__name__)


class CatalogCache:
    """The catalog as loaded in the database, re-read when its fingerprint changes."""

    def __init__(self) -> None:
        self._catalog: Optional[Catalog] = None
        self._checked = 0.0
        self._lock = asyncio.Lock()

    @staticmethod
    def _load_sync() -> Catalog:
        settings = get_settings()
        catalog = db.read_catalog(settings.db_url)
        if not catalog.records:  # an empty database: load the files once
            catalog = db.load_files_into(settings.db_url, settings.catalog_dir, settings.region_override)
        return catalog

    @staticmethod
    def _fingerprint_sync() -> str:
        with database.session_factory(get_settings().db_url)() as session:
            meta = session.get(db.CatalogMeta, "fingerprint")
            return meta.value if meta else ""

    async def get(self) -> Catalog:
        now = time.monotonic()
        if self._catalog is not None and now - self._checked < TUNABLES.catalog_refresh_seconds:
            return self._catalog
        async with self._lock:
            if self._catalog is None:
                self._catalog = await asyncio.to_thread(self._load_sync)
            elif now - self._checked >= TUNABLES.catalog_refresh_seconds:
                try:
                    fingerprint = await asyncio.to_thread(self._fingerprint_sync)
                except SQLAlchemyError as exc:
                    # The database is out of reach: the catalog already loaded still answers;
                    # the check is tried again after the next refresh interval.
                    logger.warning("actions.catalog.check_failed error=%s", type(exc).__name__)
                    fingerprint = self._catalog.fingerprint
                if fingerprint != self._catalog.fingerprint:
                    self._catalog = await asyncio.to_thread(self._load_sync)
                    logger.info("actions.catalog.reloaded fingerprint=%s", fingerprint)
            self._checked = time.monotonic()
        return self._catalog


CATALOG = CatalogCache()


def channel_of(tracker: Tracker) -> Optional[str]:
    return tracker.get_latest_input_channel()


def conversation_item(tracker: Tracker) -> Optional[str]:
    return tracker.get_slot(SLOT_ITEM)
