"""Requests for a human helper, and the fallbacks that lead there.

The queue, the relay and the operator desk come with the desk; here a request is
recorded in the database and the citizen is told so.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher

from actions.common import SLOT_HUMAN_OFFERED, SLOT_ITEM, channel_of, linked_items
from actions.feedback import HUMAN_BUTTONS
from assistant.settings import get_settings
from knowledge import db
from knowledge.answers import button_payload

logger = logging.getLogger(__name__)

OFFER_FALLBACK = "fallback"
REQUEST_TEXT = "已为您登记人工服务请求（编号 {id}）。工作人员会尽快与您联系，请稍候。您也可以拨打12345政务服务便民热线。"
DECLINE_TEXT = "好的。您还有其他想问的吗？"
FALLBACK_TEXT = "抱歉，我没能理解您的问题。需要为您转接人工服务吗？"
AFFIRM_TEXT = "您是想问“{label}”吗？"
INTENT_LABELS = {
    "ask_service": "怎么办理这项业务",
    "ask_materials": "要带什么材料",
    "ask_conditions": "办理条件",
    "ask_process": "办理流程",
    "ask_fee": "收费标准",
    "ask_time_limit": "多久能办好",
    "ask_location": "在哪里办",
    "check_progress": "查询办件进度",
    "request_human": "转人工服务",
    "complain": "投诉",
    "feedback": "评价服务",
}


class ActionRequestHuman(Action):
    def name(self) -> Text:
        return "action_request_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        reason = tracker.get_slot(SLOT_HUMAN_OFFERED) or "request_human"
        row_id = await asyncio.to_thread(
            db.add_handoff_request,
            get_settings().db_url,
            tracker.sender_id,
            reason,
            tracker.get_slot(SLOT_ITEM),
            channel_of(tracker),
        )
        logger.info("actions.handoff.requested id=%s reason=%s", row_id, reason)
        dispatcher.utter_message(text=REQUEST_TEXT.format(id=row_id))
        return [SlotSet(SLOT_HUMAN_OFFERED, None)]


class ActionDeclineHuman(Action):
    def name(self) -> Text:
        return "action_decline_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        dispatcher.utter_message(text=DECLINE_TEXT)
        return [SlotSet(SLOT_HUMAN_OFFERED, None)]


class ActionDefaultFallback(Action):
    """After two failed turns: offer a human."""

    def name(self) -> Text:
        return "action_default_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        logger.info("actions.fallback.offer_human")
        dispatcher.utter_message(text=FALLBACK_TEXT, buttons=HUMAN_BUTTONS)
        # Like Rasa's default fallback: forget the failed message, then wait for the answer.
        return [UserUtteranceReverted(), SlotSet(SLOT_HUMAN_OFFERED, OFFER_FALLBACK)]


class ActionDefaultAskAffirmation(Action):
    """First stage of the two-stage fallback: "您是想问…吗？" with buttons."""

    def name(self) -> Text:
        return "action_default_ask_affirmation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        ranking = (tracker.latest_message or {}).get("intent_ranking") or []
        candidates = [r["name"] for r in ranking if r.get("name") in INTENT_LABELS]
        if not candidates:
            dispatcher.utter_message(response="utter_ask_rephrase")
            return []
        intent = candidates[0]
        items = linked_items(tracker)
        payload = button_payload(intent, items[0][0]) if items else f"/{intent}"
        dispatcher.utter_message(
            text=AFFIRM_TEXT.format(label=INTENT_LABELS[intent]),
            buttons=[
                {"title": "是的", "payload": payload},
                {"title": "都不是", "payload": "/out_of_scope"},
            ],
        )
        return []
