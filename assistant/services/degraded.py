"""Answers while the action server is unreachable (not started, killed, timing out).

Questions about an item (materials, conditions, process, fee, time limit, location,
overview, "which one?", "not covered"), out-of-scope messages and the two-stage
fallback's "您是想问…吗？" are answered in the gateway from the catalog it holds, by the
same logic as ``action_answer``, ``action_out_of_scope`` and
``action_default_ask_affirmation`` (``knowledge.guidance``), run the way the action server runs
it (``rasa_sdk``'s executor on the same tracker JSON): the same text, buttons, slots
and reply kind. Other turns that need the action server (progress lookups, feedback,
complaints, handoff) get :func:`unavailable_message`: the function is briefly
unavailable, with the "转人工" button. Responses Rasa gives without an action
(``utter_*``) are unaffected.

The circuit breaker and the counts /healthz reads are in ``assistant.dialogue.action_link``
(``runtime.action_link.snapshot()``).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher

from assistant.dialogue.action_link import ActionServerLink
from knowledge import guidance
from knowledge.catalog import Catalog
from knowledge.context import HUMAN_BUTTON, intent_of

logger = logging.getLogger(__name__)

# The answer kind of a reply that says a function is briefly unavailable.
ANSWER_UNAVAILABLE = "unavailable"
UNAVAILABLE_TEXT = "抱歉，{function}暂时不可用，请您稍后再试。需要的话，可以点“转人工”请工作人员帮您，或拨打12345政务服务便民热线。"
HANDOFF_UNAVAILABLE_TEXT = "抱歉，人工转接暂时不可用，请您稍后再点“转人工”，或拨打12345政务服务便民热线。"
DEFAULT_FUNCTION = "这项功能"
# What each action does, as the citizen would name it.
FUNCTION_NAMES: Dict[str, str] = {
    "validate_progress_form": "办件进度查询",
    "action_progress_answer": "办件进度查询",
    "action_inform": "办件进度查询",
    "action_record_feedback": "服务评价",
    "action_record_complaint": "投诉登记",
}
# The kind logged for the two-stage fallback's question.
AFFIRM_KIND = "affirm"
HANDOFF_ACTIONS = frozenset({"action_request_human", "action_default_fallback"})

CatalogSource = Callable[[], Catalog]


def unavailable_message(actions: List[str]) -> Dict[str, Any]:
    """The reply for a turn whose actions could not run: what is unavailable, and a person."""
    if any(a in HANDOFF_ACTIONS for a in actions):
        text = HANDOFF_UNAVAILABLE_TEXT
    else:
        function = next((FUNCTION_NAMES[a] for a in actions if a in FUNCTION_NAMES), DEFAULT_FUNCTION)
        text = UNAVAILABLE_TEXT.format(function=function)
    return {"text": text, "buttons": [dict(HUMAN_BUTTON)]}


def _slot_events(outcome: guidance.Outcome) -> List[EventType]:
    return [SlotSet(name, value) for name, value in outcome.slots.items()]


def _log(action: str, outcome: guidance.Outcome) -> None:
    logger.info("gateway.fallback.answered action=%s item=%s kind=%s", action, outcome.item, outcome.kind)


class LocalAnswer(Action):
    """``action_answer``, run in the gateway."""

    def __init__(self, catalog: CatalogSource) -> None:
        self.catalog = catalog

    def name(self) -> Text:
        return "action_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        outcome = guidance.answer_turn(dispatcher, tracker, intent_of(tracker), self.catalog())
        _log(self.name(), outcome)
        return _slot_events(outcome)


class LocalOutOfScope(LocalAnswer):
    """``action_out_of_scope``, run in the gateway."""

    def name(self) -> Text:
        return "action_out_of_scope"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        outcome = guidance.out_of_scope_turn(dispatcher, tracker, self.catalog())
        _log(self.name(), outcome)
        return _slot_events(outcome)


class LocalAskAffirmation(Action):
    """``action_default_ask_affirmation`` (the two-stage fallback's "您是想问…吗？"), run
    in the gateway."""

    def name(self) -> Text:
        return "action_default_ask_affirmation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        guidance.ask_affirmation(dispatcher, tracker)
        logger.info("gateway.fallback.answered action=%s item=None kind=%s", self.name(), AFFIRM_KIND)
        return []


class LocalYesNo(Action):
    """``action_affirm`` / ``action_deny`` run in the gateway: with nothing offered they
    only ask what else (as the action does); an offer cannot be taken up now."""

    SLOT_OFFER = "pending_offer"
    OFFER_UNAVAILABLE_TEXT = "抱歉，提醒暂时设置不了。请您稍后再查一次进度，再设置提醒。"

    def __init__(self, action_name: str) -> None:
        self.action_name = action_name

    def name(self) -> Text:
        return self.action_name

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        if not tracker.get_slot(self.SLOT_OFFER):
            dispatcher.utter_message(response="utter_anything_else")
            return []
        if self.action_name == "action_affirm":
            dispatcher.utter_message(text=self.OFFER_UNAVAILABLE_TEXT)
        else:
            dispatcher.utter_message(response="utter_anything_else")
        logger.info("gateway.fallback.answered action=%s item=None kind=offer", self.name())
        return [SlotSet(self.SLOT_OFFER, None)]


def install(link: ActionServerLink, catalog: CatalogSource) -> None:
    """Let the gateway answer item questions itself while the action server is down
    (``runtime.action_link``; once per link; ``catalog`` is read at each answer)."""
    if link.local_actions:
        return
    executor = ActionExecutor()

    async def run(body: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        return await executor.run(body)

    for action in (LocalAnswer(catalog), LocalOutOfScope(catalog), LocalAskAffirmation(),
                   LocalYesNo("action_affirm"), LocalYesNo("action_deny")):
        executor.register_action(action)
        link.local_actions[action.name()] = run
