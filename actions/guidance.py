"""Answer questions about service items from the catalog, keeping context across turns."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (
    CATALOG,
    SLOT_ITEM,
    SLOT_PENDING,
    SLOT_QUESTION,
    TUNABLES,
    conversation_item,
    explicit_item,
    intent_of,
    linked_items,
)
from knowledge.answers import (
    OVERVIEW,
    QUESTION_TYPES,
    answer,
    button_payload,
    follow_up_buttons,
)
from knowledge.catalog import Catalog

logger = logging.getLogger(__name__)

ELLIPSIS_RE = re.compile(TUNABLES.ellipsis_pattern)
ASK_ITEM_TEXT = "请问您想办理哪项业务？比如：社保卡、身份证补办、护照、公积金提取。"
CHOOSE_TEXT = "您想咨询的是哪一项？请点选："


@dataclass
class Resolution:
    """Which item a message is about: one item, a choice between close ones, or none."""

    item: Optional[str] = None
    choices: List[Tuple[str, float]] = field(default_factory=list)
    from_context: bool = False


def resolve_item(tracker: Tracker, catalog: Catalog) -> Resolution:
    chosen = explicit_item(tracker)
    if chosen in catalog:
        return Resolution(item=chosen)
    strong = [(i, s) for i, s in linked_items(tracker) if i in catalog and s >= TUNABLES.item_min_score]
    if strong:
        top_id, top_score = strong[0]
        close = [(i, s) for i, s in strong[1:] if top_score - s <= TUNABLES.ambiguity_margin]
        if close:
            return Resolution(choices=[strong[0], *close][: TUNABLES.max_choices])
        return Resolution(item=top_id)
    current = conversation_item(tracker)
    if current in catalog:
        return Resolution(item=current, from_context=True)
    return Resolution()


def question_for(tracker: Tracker, intent: Optional[str], resolution: Resolution) -> str:
    """The question type; an elliptical "那护照呢" keeps the previous one."""
    question = QUESTION_TYPES.get(intent or "", OVERVIEW)
    if question != OVERVIEW:
        return question
    pending = tracker.get_slot(SLOT_PENDING)
    if pending and resolution.item and not resolution.from_context:
        return pending
    previous = tracker.get_slot(SLOT_QUESTION)
    text = ((tracker.latest_message or {}).get("text") or "").strip()
    if previous and not resolution.from_context and ELLIPSIS_RE.match(text):
        return previous
    return question


async def answer_turn(
    dispatcher: CollectingDispatcher, tracker: Tracker, intent: Optional[str]
) -> List[EventType]:
    catalog = await CATALOG.get()
    resolution = resolve_item(tracker, catalog)
    question = question_for(tracker, intent, resolution)
    events: List[EventType] = []

    if resolution.choices:
        ask_intent = next((k for k, v in QUESTION_TYPES.items() if v == question), "ask_service")
        buttons = [
            {"title": catalog.records[i].name, "payload": button_payload(ask_intent, i)}
            for i, _ in resolution.choices
        ]
        dispatcher.utter_message(text=CHOOSE_TEXT, buttons=buttons)
        logger.info("actions.answer.disambiguate choices=%s", [i for i, _ in resolution.choices])
        return events + [SlotSet(SLOT_QUESTION, question)]

    if resolution.item is None:
        dispatcher.utter_message(text=ASK_ITEM_TEXT)
        return events + [SlotSet(SLOT_PENDING, question if question != OVERVIEW else None)]

    dispatcher.utter_message(
        text=answer(catalog, resolution.item, question),
        buttons=follow_up_buttons(resolution.item, question),
    )
    logger.info("actions.answer.done item=%s question=%s", resolution.item, question)
    return events + [
        SlotSet(SLOT_ITEM, resolution.item),
        SlotSet(SLOT_QUESTION, question),
        SlotSet(SLOT_PENDING, None),
    ]


class ActionAnswer(Action):
    """Answer ask_service / ask_materials / ... for the current item."""

    def name(self) -> Text:
        return "action_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        return await answer_turn(dispatcher, tracker, intent_of(tracker))


class ActionOutOfScope(Action):
    """Decline politely, unless the message clearly names a service item after all."""

    def name(self) -> Text:
        return "action_out_of_scope"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        items = linked_items(tracker)
        if items and items[0][1] >= TUNABLES.out_of_scope_item_override:
            return await answer_turn(dispatcher, tracker, "ask_service")
        dispatcher.utter_message(response="utter_out_of_scope")
        return []
