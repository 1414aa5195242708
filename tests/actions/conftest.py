"""Tracker and dispatcher factories for action tests (no Rasa server needed)."""

from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

DOMAIN: Dict[str, Any] = {}


def make_tracker(
    text: str = "",
    intent: Optional[str] = None,
    items: Optional[List[tuple]] = None,
    slots: Optional[Dict[str, Any]] = None,
    entities: Optional[List[Dict[str, Any]]] = None,
    sender_id: str = "action-test",
    channel: str = "web",
    intent_ranking: Optional[List[Dict[str, Any]]] = None,
) -> Tracker:
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "entities": entities or [],
        "service_items": [{"id": i, "name": i, "score": s} for i, s in (items or [])],
        "intent_ranking": intent_ranking or [],
    }
    events = [{"event": "user", "text": text, "parse_data": latest, "input_channel": channel}]
    return Tracker(sender_id, slots or {}, latest, events, False, None, {}, "action_listen")


@pytest.fixture
def tracker():
    return make_tracker


@pytest.fixture
def dispatcher():
    return CollectingDispatcher()
