"""Shared state of the action server: settings, tunables and the cached catalog."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import yaml
from rasa_sdk import Tracker

from assistant.settings import get_settings
from knowledge import db
from knowledge.catalog import Catalog

logger = logging.getLogger(__name__)

CONFIG_PATH = Path(__file__).with_name("config.yml")

SLOT_ITEM = "service_item"
SLOT_QUESTION = "question_type"
SLOT_PENDING = "pending_question"
ENTITY_ITEM = "service_item"
SERVICE_ITEMS = "service_items"


@dataclass(frozen=True)
class Tunables:
    item_min_score: float
    ambiguity_margin: float
    max_choices: int
    out_of_scope_item_override: float
    ellipsis_pattern: str
    catalog_refresh_seconds: float

    @classmethod
    def load(cls, path: Path = CONFIG_PATH) -> "Tunables":
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(
            item_min_score=float(data["item"]["min_score"]),
            ambiguity_margin=float(data["item"]["ambiguity_margin"]),
            max_choices=int(data["item"]["max_choices"]),
            out_of_scope_item_override=float(data["out_of_scope"]["item_override_score"]),
            ellipsis_pattern=str(data["ellipsis"]["pattern"]),
            catalog_refresh_seconds=float(data["catalog"]["refresh_seconds"]),
        )


TUNABLES = Tunables.load()


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
        with db.session_factory(get_settings().db_url)() as session:
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
                fingerprint = await asyncio.to_thread(self._fingerprint_sync)
                if fingerprint != self._catalog.fingerprint:
                    self._catalog = await asyncio.to_thread(self._load_sync)
                    logger.info("actions.catalog.reloaded fingerprint=%s", fingerprint)
            self._checked = time.monotonic()
        return self._catalog


CATALOG = CatalogCache()


def linked_items(tracker: Tracker) -> List[Tuple[str, float]]:
    """``(id, score)`` pairs the NLU linked to the latest message, best first."""
    items = (tracker.latest_message or {}).get(SERVICE_ITEMS) or []
    return [(str(i["id"]), float(i["score"])) for i in items if "id" in i and "score" in i]


def explicit_item(tracker: Tracker) -> Optional[str]:
    """An item chosen explicitly (quick-reply payload entity)."""
    return next(tracker.get_latest_entity_values(ENTITY_ITEM), None)


def channel_of(tracker: Tracker) -> Optional[str]:
    return tracker.get_latest_input_channel()


def conversation_item(tracker: Tracker) -> Optional[str]:
    return tracker.get_slot(SLOT_ITEM)


def intent_of(tracker: Tracker) -> Optional[str]:
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")

