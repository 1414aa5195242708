"""Answer questions about service items from the catalog, keeping context across turns.

The logic (which item, which question, what to say) is ``knowledge.guidance``, shared
with the gateway, which answers the same way while this server is unreachable.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import CATALOG, intent_of
from knowledge import guidance
from knowledge.guidance import (  # noqa: F401  (re-exported for the actions' callers)
    ANSWER_CLARIFY,
    ANSWER_NOT_COVERED,
    ANSWER_OUT_OF_SCOPE,
    Outcome,
    Resolution,
    question_for,
    resolve_item,
)

logger = logging.getLogger(__name__)


def log_outcome(outcome: Outcome) -> None:
    """The action server's log line of an answer (``actions.answer.*``)."""
    resolution = outcome.resolution
    if outcome.kind == ANSWER_CLARIFY and resolution.choices:
        logger.info("actions.answer.disambiguate choices=%s", [i for i, _ in resolution.choices])
    elif outcome.kind == ANSWER_NOT_COVERED:
        logger.info(
            "actions.answer.not_covered related=%s department=%s", resolution.related, bool(outcome.department)
        )
    elif outcome.item is not None:
        logger.info(
            "actions.answer.done item=%s question=%s context=%s others=%s",
            outcome.item, outcome.kind, resolution.from_context, resolution.others,
        )


def slot_events(outcome: Outcome) -> List[EventType]:
    return [SlotSet(name, value) for name, value in outcome.slots.items()]


async def answer_turn(
    dispatcher: CollectingDispatcher, tracker: Tracker, intent: Optional[str]
) -> List[EventType]:
    outcome = guidance.answer_turn(dispatcher, tracker, intent, await CATALOG.get())
    log_outcome(outcome)
    return slot_events(outcome)


class ActionAnswer(Action):
    """Answer ask_service / ask_materials / ... for the current item."""

    def name(self) -> Text:
        return "action_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        return await answer_turn(dispatcher, tracker, intent_of(tracker))


class ActionOutOfScope(Action):
    """Decline politely, unless the message clearly names a service item after all, or is a
    government-service question that the catalog does not cover (then say so)."""

    def name(self) -> Text:
        return "action_out_of_scope"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        outcome = guidance.out_of_scope_turn(dispatcher, tracker, await CATALOG.get())
        log_outcome(outcome)
        return slot_events(outcome)
