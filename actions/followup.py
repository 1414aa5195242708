"""Follow-through after a verified progress lookup: the offer "状态有变化时提醒我",
then (for an application that needs materials, or is finished and waits to be
picked up) the offer of a dated reminder (服务找人: "补交截止前提醒您", "提醒您去领取"),
and what a following "好的" / "不用了" means. One offer at a time, in ``pending_offer``:

* ``progress_subscription`` — status notices (``+<kind>``: a dated reminder is
  offered next, whatever the answer);
* ``reminder:<kind>`` — a dated reminder; "好的" asks for the date;
* ``ask:<kind>@<time>`` — the date was asked; the gateway takes the answer ("12月20日")
  and sets the reminder (``assistant.services.progress.commands``), "好的" asks again.

``action_progress_answer`` makes the offers on channels that can be told later (the
web chat and WeChat); ``action_affirm`` subscribes the conversation
(``assistant.services.progress.subscriptions``: the recipient sealed at rest,
audited), ``action_deny`` declines. With no offer pending both answer as before
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
from assistant.services.progress import commands, reminders, subscriptions
from assistant.services.progress import reminder_words as words
from assistant.services.progress.notices import masked_number
from assistant.storage.tables import STATUS_COMPLETED, STATUS_SUPPLEMENT

logger = logging.getLogger(__name__)

SLOT_OFFER = "pending_offer"
SLOT_NUMBER = "application_number"
SLOT_OUTCOME = "progress_outcome"
OUTCOME_VERIFIED = "verified"
OFFER_SUBSCRIBE = "progress_subscription"
OFFER_THEN = "+"  # progress_subscription+supplement_deadline: the dated offer comes next
OFFER_REMINDER = "reminder:"
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
DECLINED_STATUS_TEXT = "好的，状态有变化时不提醒您。"
# The dated reminders offered after a lookup, by the application's state.
DATED_OFFER_TEXT = {
    words.SUPPLEMENT: "要我在补交材料的截止日期前提醒您吗？",
    words.PICKUP: "要我提醒您去领取吗？",
}
# Finished applications sent by post have nothing to pick up.
MAILED = ("邮寄", "快递", "EMS", "寄出", "寄送")


def dated_kind(status: Optional[str], pickup_method: Optional[str]) -> Optional[str]:
    """The dated reminder worth offering for an application in this state, or None."""
    if status == STATUS_SUPPLEMENT:
        return words.SUPPLEMENT
    if status == STATUS_COMPLETED and pickup_method and not any(word in pickup_method for word in MAILED):
        return words.PICKUP
    return None


def _has_reminder(channel: str, sender_id: str, kind: str, number: str) -> bool:
    settings = get_settings()
    shown = masked_number(number)
    return any(view.kind == kind and view.number == shown for view in reminders.list_reminders(
        settings.db_url, settings.secret(), channel, sender_id))


def _dated_offer(dispatcher: CollectingDispatcher, kind: str) -> List[EventType]:
    dispatcher.utter_message(text=DATED_OFFER_TEXT[kind], buttons=OFFER_BUTTONS)
    return [SlotSet(SLOT_OFFER, OFFER_REMINDER + kind)]


def offer_events(dispatcher: CollectingDispatcher, tracker: Tracker, number: str,
                 status: Optional[str] = None, pickup_method: Optional[str] = None) -> List[EventType]:
    """After a verified answer: offer status notices where the channel can carry them
    and the conversation is not subscribed to this number yet; for an application
    that needs materials or waits to be picked up, a dated reminder too — after the
    first offer's answer, or at once when there is no first offer."""
    channel = channel_of(tracker)
    if channel not in OFFER_CHANNELS:
        return []
    settings = get_settings()
    kind = dated_kind(status, pickup_method)
    try:
        numbers = subscriptions.numbers_of(settings.db_url, settings.secret(), channel, tracker.sender_id)
        if kind is not None and _has_reminder(channel, tracker.sender_id, kind, number):
            kind = None
    except Exception as exc:  # the offer is a courtesy: never lose the answer over it
        logger.warning("actions.followup.offer_skipped error=%s", type(exc).__name__)
        return []
    if number in numbers:
        return _dated_offer(dispatcher, kind) if kind else []
    dispatcher.utter_message(text=OFFER_TEXT, buttons=OFFER_BUTTONS)
    return [SlotSet(SLOT_OFFER, OFFER_SUBSCRIBE + (OFFER_THEN + kind if kind else ""))]


def _next_offer(offer: Optional[str]) -> Optional[str]:
    """The dated reminder to offer after the status offer ``offer`` was answered."""
    if offer and offer.startswith(OFFER_SUBSCRIBE + OFFER_THEN):
        kind = offer[len(OFFER_SUBSCRIBE + OFFER_THEN):]
        return kind if kind in DATED_OFFER_TEXT else None
    return None


def _ask(dispatcher: CollectingDispatcher, kind: str) -> List[EventType]:
    """Ask for the date of a dated reminder; the gateway takes the answer."""
    dispatcher.utter_message(text=commands.ASK_TEXT[kind], buttons=commands.ASK_BUTTONS.get(kind) or None)
    return [SlotSet(SLOT_OFFER, commands.ask_value(kind))]


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
        verified = bool(number) and tracker.get_slot(SLOT_OUTCOME) == OUTCOME_VERIFIED and channel in OFFER_CHANNELS
        asked = commands.pending_kind(offer)
        if asked is not None:  # "好的" to "截止日期是哪天？": ask again
            return _ask(dispatcher, asked)
        if verified and isinstance(offer, str) and offer.startswith(OFFER_REMINDER):
            kind = offer[len(OFFER_REMINDER):]
            if kind in DATED_OFFER_TEXT:
                logger.info("actions.followup.dated_offer_taken kind=%s", kind)
                return _ask(dispatcher, kind)
        if not (offer or "").startswith(OFFER_SUBSCRIBE) or not verified:
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
        kind = _next_offer(offer)
        if kind is not None:
            return _dated_offer(dispatcher, kind)
        return [SlotSet(SLOT_OFFER, None)]


class ActionDeny(Action):
    """"不用了": decline what was offered, or ask what else (nothing pending)."""

    def name(self) -> Text:
        return "action_deny"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        offer = tracker.get_slot(SLOT_OFFER)
        kind = _next_offer(offer)
        if kind is not None:
            dispatcher.utter_message(text=DECLINED_STATUS_TEXT)
            return _dated_offer(dispatcher, kind)
        if offer:
            dispatcher.utter_message(text=DECLINED_TEXT)
            return [SlotSet(SLOT_OFFER, None)]
        dispatcher.utter_message(response="utter_anything_else")
        return []
