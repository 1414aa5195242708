"""Shared state of the action server: settings, tunables and the cached catalog."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import List, Optional, Tuple

from rasa_sdk import Tracker

from assistant.config.settings import get_settings
from assistant.config.tunables import TUNABLES
from assistant.storage import database
from knowledge import db
from knowledge.catalog import Catalog

logger = logging.getLogger(__name__)

SLOT_ITEM = "service_item"
SLOT_QUESTION = "question_type"
SLOT_PENDING = "pending_question"
ENTITY_ITEM = "service_item"
SERVICE_ITEMS = "service_items"
SERVICE_SCOPE = "service_scope"
# The custom message that tells the gateway what a reply was about (never shown).
REPLY_KEY = "reply"


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


def named_items(tracker: Tracker) -> set:
    """Items whose alias is in the latest message (named, not only inferred)."""
    items = (tracker.latest_message or {}).get(SERVICE_ITEMS) or []
    return {str(i["id"]) for i in items if i.get("named")}


def scope_of(parse_data: Optional[dict]) -> dict:
    """The linker's ``{"none": p, "uncovered": p}`` for a message (empty when absent)."""
    return dict((parse_data or {}).get(SERVICE_SCOPE) or {})


def clear_item(parse_data: Optional[dict]) -> Optional[str]:
    """The one item a message names clearly: strong, with no close competitor."""
    items = [
        (str(i["id"]), float(i["score"]))
        for i in (parse_data or {}).get(SERVICE_ITEMS) or []
        if "id" in i and "score" in i
    ]
    strong = [(i, s) for i, s in items if s >= TUNABLES.item_min_score]
    if not strong:
        return None
    if len(strong) > 1 and strong[0][1] - strong[1][1] <= TUNABLES.ambiguity_margin:
        return None
    return strong[0][0]


def context_item(tracker: Tracker) -> Optional[str]:
    """The item the conversation is about before the latest message: the newest of an
    answer's item slot and an earlier message that named an item clearly, whatever its
    intent (a complaint about 社保卡 makes 社保卡 the topic too)."""
    skipped_latest = False
    for event in reversed(tracker.events or []):
        kind = event.get("event")
        if kind == "user":
            if not skipped_latest:
                skipped_latest = True
                continue
            if (event.get("text") or "").startswith("/"):
                continue  # a button: the answer's slot says what it was about
            item = clear_item(event.get("parse_data"))
            if item:
                return item
        elif kind == "slot" and event.get("name") == SLOT_ITEM and event.get("value"):
            return str(event["value"])
        elif kind == "restart":
            return None
    return tracker.get_slot(SLOT_ITEM)


def reply_info(item_id: Optional[str], answer: str) -> dict:
    """The custom message describing a reply: the item it is about and the kind of answer."""
    return {REPLY_KEY: {"item": item_id, "answer": answer}}


def explicit_item(tracker: Tracker) -> Optional[str]:
    """An item chosen explicitly (quick-reply payload entity)."""
    return next(tracker.get_latest_entity_values(ENTITY_ITEM), None)


def channel_of(tracker: Tracker) -> Optional[str]:
    return tracker.get_latest_input_channel()


def conversation_item(tracker: Tracker) -> Optional[str]:
    return tracker.get_slot(SLOT_ITEM)


def intent_of(tracker: Tracker) -> Optional[str]:
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")

