"""Follow-through after a verified progress lookup: the offer "状态有变化时提醒我",
and what a following "好的" / "不用了" means.

``action_progress_answer`` makes the offer on channels that can be told later (the
web chat and WeChat) and sets ``pending_offer``; ``action_affirm`` subscribes the
conversation (``assistant.services.progress.subscriptions``: the recipient sealed at
rest, audited), ``action_deny`` declines. With no offer pending both answer as before
("好的。您还有其他想问的吗？").
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import channel_of, reply_info
from assistant.config.settings import get_settings
from assistant.services.progress import subscriptions
from assistant.services.progress.notices import masked_number

logger = logging.getLogger(__name__)

SLOT_OFFER = "pending_offer"
SLOT_NUMBER = "application_number"
SLOT_OUTCOME = "progress_outcome"
OUTCOME_VERIFIED = "verified"
OFFER_SUBSCRIBE = "progress_subscription"
# Channels that can tell the citizen later (the kiosk shows the news on the next lookup).
OFFER_CHANNELS = frozenset({"web", "wechat"})
ANSWER_FOLLOWUP = "followup"

OFFER_TEXT = "办件状态有变化时，要我提醒您吗？"
OFFER_BUTTONS = [{"title": "提醒我", "payload": "/affirm"}, {"title": "不用了", "payload": "/deny"}]
SUBSCRIBED_TEXT = (
    "好的。编号 {number} 的办件状态有变化时，我会在这里提醒您。"
    "晚上9点到早上8点不打扰您。不想再收到时，回复“退订提醒”。"
)
ALREADY_TEXT = "编号 {number} 的办件已经设置了提醒，状态有变化时我会告诉您。"
TOO_MANY_TEXT = "您设置的提醒已经很多了。请先回复“退订提醒”取消不需要的，再来设置。"
FAILED_TEXT = "抱歉，提醒暂时没有设置成功。请稍后再试，或随时来问我办件进度。"
DECLINED_TEXT = "好的，不提醒您。您还有其他想问的吗？"


def offer_events(dispatcher: CollectingDispatcher, tracker: Tracker, number: str) -> List[EventType]:
    """After a verified answer: offer the reminder where the channel can carry it and
    the conversation is not subscribed to this number yet."""
    channel = channel_of(tracker)
    if channel not in OFFER_CHANNELS:
        return []
    settings = get_settings()
    try:
        numbers = subscriptions.numbers_of(settings.db_url, settings.secret(), channel, tracker.sender_id)
    except Exception as exc:  # the offer is a courtesy: never lose the answer over it
        logger.warning("actions.followup.offer_skipped error=%s", type(exc).__name__)
        return []
    if number in numbers:
        return []
    dispatcher.utter_message(text=OFFER_TEXT, buttons=OFFER_BUTTONS)
    return [SlotSet(SLOT_OFFER, OFFER_SUBSCRIBE)]


def _subscribe(channel: str, sender_id: str, number: str, status: str) -> Optional[subscriptions.Subscribed]:
    settings = get_settings()
    return subscriptions.subscribe(settings.db_url, settings.secret(), number, channel, sender_id, status)


class ActionAffirm(Action):
    """"好的" / "提醒我": accept what was offered, or ask what else (nothing pending)."""

    def name(self) -> Text:
        return "action_affirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        offer = tracker.get_slot(SLOT_OFFER)
        number = tracker.get_slot(SLOT_NUMBER)
        channel = channel_of(tracker)
        if offer != OFFER_SUBSCRIBE or not number or tracker.get_slot(SLOT_OUTCOME) != OUTCOME_VERIFIED \
                or channel not in OFFER_CHANNELS:
            dispatcher.utter_message(response="utter_anything_else")
            return [SlotSet(SLOT_OFFER, None)] if offer else []
        status = tracker.get_slot("progress_status") or ""
        shown = masked_number(number)
        try:
            done = await asyncio.to_thread(_subscribe, channel, tracker.sender_id, number, status)
        except ValueError:
            dispatcher.utter_message(text=TOO_MANY_TEXT)
            return [SlotSet(SLOT_OFFER, None)]
        except Exception:
            logger.exception("actions.followup.subscribe_failed")
            dispatcher.utter_message(text=FAILED_TEXT)
            return [SlotSet(SLOT_OFFER, None)]
        text = SUBSCRIBED_TEXT if done.created else ALREADY_TEXT
        dispatcher.utter_message(text=text.format(number=shown))
        dispatcher.utter_message(json_message=reply_info(None, ANSWER_FOLLOWUP))
        logger.info("actions.followup.subscribed channel=%s created=%s", channel, done.created)
        return [SlotSet(SLOT_OFFER, None)]


class ActionDeny(Action):
    """"不用了": decline what was offered, or ask what else (nothing pending)."""

    def name(self) -> Text:
        return "action_deny"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        if tracker.get_slot(SLOT_OFFER):
            dispatcher.utter_message(text=DECLINED_TEXT)
            return [SlotSet(SLOT_OFFER, None)]
        dispatcher.utter_message(response="utter_anything_else")
        return []
