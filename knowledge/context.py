"""What a conversation says about the catalog: the items the NLU linked to the latest
message, the item the conversation is about, and the custom message that describes a
reply. Pure functions over a tracker as the action server sees it (a
``rasa_sdk.Tracker``, or anything with the same attributes), shared by the actions
and by the gateway when it answers without them (``assistant.services.degraded``)."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Protocol, Set, Tuple

from assistant.config.tunables import TUNABLES

SLOT_ITEM = "service_item"
SLOT_QUESTION = "question_type"
SLOT_PENDING = "pending_question"
ENTITY_ITEM = "service_item"
SERVICE_ITEMS = "service_items"
SERVICE_SCOPE = "service_scope"
# The custom message that tells the gateway what a reply was about (never shown).
REPLY_KEY = "reply"
# The quick reply that asks for a person (intent request_human).
HUMAN_BUTTON = {"title": "转人工", "payload": "/request_human"}


class ConversationView(Protocol):
    """The parts of a ``rasa_sdk.Tracker`` these helpers read."""

    sender_id: str
    latest_message: Dict[str, Any]
    events: List[Dict[str, Any]]

    def get_slot(self, key: str) -> Any: ...

    def get_latest_entity_values(
        self, entity_type: str, entity_role: Optional[str] = None, entity_group: Optional[str] = None
    ) -> Iterator[str]: ...


class Dispatcher(Protocol):
    """The part of a ``rasa_sdk`` dispatcher the answers use."""

    def utter_message(
        self,
        text: Optional[str] = None,
        json_message: Optional[Dict[str, Any]] = None,
        response: Optional[str] = None,
        buttons: Optional[List[Dict[str, Any]]] = None,
    ) -> None: ...


def linked_items(tracker: ConversationView) -> List[Tuple[str, float]]:
    """``(id, score)`` pairs the NLU linked to the latest message, best first."""
    items = (tracker.latest_message or {}).get(SERVICE_ITEMS) or []
    return [(str(i["id"]), float(i["score"])) for i in items if "id" in i and "score" in i]


def named_items(tracker: ConversationView) -> Set[str]:
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


def context_item(tracker: ConversationView) -> Optional[str]:
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


def explicit_item(tracker: ConversationView) -> Optional[str]:
    """An item chosen explicitly (quick-reply payload entity)."""
    return next(tracker.get_latest_entity_values(ENTITY_ITEM), None)


def intent_of(tracker: ConversationView) -> Optional[str]:
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


def latest_text(tracker: ConversationView) -> str:
    return ((tracker.latest_message or {}).get("text") or "").strip()
