"""Handoff to a human helper: on request, on a complaint, after two failed turns.

A ticket is opened with a summary of the conversation (no raw personal data), and
the citizen is told their place in the queue, or, outside service hours, when
people are available. The gateway then relays the conversation (assistant.services.handoff).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher

from actions.common import CATALOG, SLOT_ITEM, channel_of
from actions.progress import OUTCOME_VERIFIED, SLOT_NUMBER, SLOT_OUTCOME
from assistant.config.hours import ServiceHours, describe_when
from assistant.config.settings import get_settings
from assistant.security.pii import hash_id, mask_pii
from assistant.services import outbox
from assistant.services.handoff import tickets
from knowledge.guidance import ask_affirmation

logger = logging.getLogger(__name__)

REASON_REQUEST = tickets.REASON_REQUEST
REASON_COMPLAINT = tickets.REASON_COMPLAINT
REASON_FALLBACK = tickets.REASON_FALLBACK

QUEUED_TEXT = "已为您转接人工服务（编号 {id}），您前面还有 {ahead} 位。请稍候，工作人员会在这里回复您。想回到智能助手，请说“取消人工”。"
QUEUED_FIRST_TEXT = "已为您转接人工服务（编号 {id}），马上就到您。请稍候，工作人员会在这里回复您。想回到智能助手，请说“取消人工”。"
ALREADY_TEXT = "您已在排队等候人工服务（编号 {id}），请稍候。"
AFTER_HOURS_TEXT = (
    "现在不是人工服务时间（{hours}）。已为您登记（编号 {id}），"
    "工作人员会在{when}后回复您。现在您也可以继续问我，或拨打12345政务服务便民热线。"
)
# A complaint: recorded and followed up by a person; the assistant keeps answering.
COMPLAINT_FOLLOW_UP_TEXT = "工作人员会跟进处理，有回复会在这里告诉您。您可以继续问我，想马上找人工请点“转人工”。"
FALLBACK_FOLLOW_UP_TEXT = "已请工作人员看一看，有回复会在这里告诉您。您也可以换个说法再问我，想马上找人工请点“转人工”。"
COMPLAINT_AFTER_HOURS_TEXT = "工作人员会在{when}后跟进处理。您可以继续问我，或拨打12345政务服务便民热线。"
# Kiosk mode: the request goes to the hall staff through the outbox (delivered later if offline).
KIOSK_NOTIFIED_TEXT = "已通知大厅工作人员，请在这里稍候，工作人员会尽快过来帮您。"
FALLBACK_LEAD = "抱歉，我没能理解您的问题。"
# The database is restarting: the request waits in the storage spool and the ticket opens
# in a few seconds; its number and place in the queue are not known yet.
KEPT_TEXT = "已为您登记人工服务。系统正在恢复，暂时无法告诉您排队位置，工作人员会在这里回复您，请稍候。"
KEPT_AFTER_HOURS_TEXT = (
    "现在不是人工服务时间（{hours}）。已为您登记，工作人员会在{when}后回复您。"
    "现在您也可以继续问我，或拨打12345政务服务便民热线。"
)
# Messages that carry the citizen's actual question (not "转人工" itself).
QUESTION_INTENTS = {
    "ask_service",
    "ask_materials",
    "ask_conditions",
    "ask_process",
    "ask_fee",
    "ask_time_limit",
    "ask_location",
    "check_progress",
    "complain",
    "out_of_scope",
    "nlu_fallback",
}
SUMMARY_TEXT_CHARS = 300


def _last_question(tracker: Tracker) -> Optional[str]:
    latest = None
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        text = (event.get("text") or "").strip()
        if not text or text.startswith("/"):
            continue
        latest = latest or text
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if intent in QUESTION_INTENTS:
            return text
    return latest


def _last_bot_answer(tracker: Tracker) -> Optional[str]:
    for event in reversed(tracker.events):
        if event.get("event") == "bot" and event.get("text"):
            return event["text"]
    return None


def _clip(text: Optional[str]) -> Optional[str]:
    if not text:
        return None
    text = mask_pii(text)
    return text if len(text) <= SUMMARY_TEXT_CHARS else text[: SUMMARY_TEXT_CHARS - 1] + "…"


async def build_summary(tracker: Tracker, reason: str) -> Dict[str, Any]:
    """What the operator needs so the citizen never repeats themselves (no raw PII)."""
    item_id = tracker.get_slot(SLOT_ITEM)
    catalog = await CATALOG.get()
    record = catalog.records.get(item_id) if item_id else None
    verified = tracker.get_slot(SLOT_OUTCOME) == OUTCOME_VERIFIED
    number = tracker.get_slot(SLOT_NUMBER)
    turns = sum(1 for e in tracker.events if e.get("event") == "user")
    return {
        "reason": reason,
        "item_id": item_id,
        "item_name": record.name if record else None,
        "question": _clip(_last_question(tracker)),
        "bot_answer": _clip(_last_bot_answer(tracker)),
        "intent": ((tracker.latest_message or {}).get("intent") or {}).get("name"),
        "turns": turns,
        "channel": channel_of(tracker),
        "verification": {
            "application_number": number if (number and verified) else None,
            "verified": verified,
            "state": tracker.get_slot(SLOT_OUTCOME) or ("number_given" if number else "none"),
        },
    }


async def open_handoff(
    dispatcher: CollectingDispatcher, tracker: Tracker, reason: str, lead: str = ""
) -> Optional[tickets.TicketInfo]:
    """Open (or find) the conversation's ticket and tell the citizen where they stand.

    On a kiosk there is no local ticket (None): the request goes to the central
    server through the outbox, which delivers it once the network allows. While the
    database is unreachable there is no ticket yet either (None): the request waits
    in the storage spool and the citizen is told so.
    """
    settings = get_settings()
    hours = settings.hours
    summary = await build_summary(tracker, reason)
    if settings.kiosk_mode:
        message_id = await asyncio.to_thread(
            outbox.enqueue,
            settings.db_url,
            "handoff",
            {
                "conversation_id": tracker.sender_id,
                "reason": reason,
                "item_id": tracker.get_slot(SLOT_ITEM),
                "summary": summary,
                "kiosk_id": settings.kiosk_id,
            },
        )
        logger.info(
            "actions.handoff.queued outbox=%s reason=%s sender=%s", message_id, reason, hash_id(tracker.sender_id)
        )
        dispatcher.utter_message(text=lead + KIOSK_NOTIFIED_TEXT)
        return None
    info = await asyncio.to_thread(
        tickets.open_ticket,
        settings.db_url,
        conversation_id=tracker.sender_id,
        channel=channel_of(tracker),
        reason=reason,
        item_id=tracker.get_slot(SLOT_ITEM),
        summary=summary,
        hours=hours,
    )
    if info is None:  # kept in the spool: the ticket opens once the database is back
        logger.warning("actions.handoff.spooled reason=%s sender=%s", reason, hash_id(tracker.sender_id))
        dispatcher.utter_message(text=lead + _kept_text(reason, hours))
        return None
    logger.info(
        "actions.handoff.opened ticket=%s reason=%s created=%s deferred=%s sender=%s",
        info.id,
        reason,
        info.created,
        info.deferred,
        hash_id(tracker.sender_id),
    )
    buttons = None
    if reason == REASON_FALLBACK and info.created and not info.deferred:
        text = FALLBACK_FOLLOW_UP_TEXT
        buttons = [{"title": "转人工", "payload": "/request_human"}]
    elif reason == REASON_COMPLAINT and info.created:
        if info.deferred:
            text = COMPLAINT_AFTER_HOURS_TEXT.format(when=describe_when(hours.next_open()))
        else:
            text = COMPLAINT_FOLLOW_UP_TEXT
            buttons = [{"title": "转人工", "payload": "/request_human"}]
    elif info.deferred:
        text = AFTER_HOURS_TEXT.format(
            hours=hours.describe(), id=info.id, when=describe_when(hours.next_open())
        )
    elif not info.created:
        text = ALREADY_TEXT.format(id=info.id)
    elif (info.position or 1) <= 1:
        text = QUEUED_FIRST_TEXT.format(id=info.id)
    else:
        text = QUEUED_TEXT.format(id=info.id, ahead=(info.position or 1) - 1)
    # The reason and whether the ticket is new travel beside it (the gateway's metrics).
    custom = {"handoff": info.public(), "handoff_reason": reason, "handoff_created": info.created}
    dispatcher.utter_message(text=lead + text, buttons=buttons, json_message=custom)
    return info


def _kept_text(reason: str, hours: ServiceHours) -> str:
    """What to say when the ticket waits in the spool (no number, no queue place yet)."""
    deferred = not hours.is_open()
    when = describe_when(hours.next_open()) if deferred else ""
    if reason == REASON_COMPLAINT:
        return COMPLAINT_AFTER_HOURS_TEXT.format(when=when) if deferred else COMPLAINT_FOLLOW_UP_TEXT
    if deferred:
        return KEPT_AFTER_HOURS_TEXT.format(hours=hours.describe(), when=when)
    return FALLBACK_FOLLOW_UP_TEXT if reason == REASON_FALLBACK else KEPT_TEXT


class ActionRequestHuman(Action):
    def name(self) -> Text:
        return "action_request_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        await open_handoff(dispatcher, tracker, REASON_REQUEST)
        return []


class ActionDefaultFallback(Action):
    """After two failed turns (the two-stage fallback gave up): hand over to a human."""

    def name(self) -> Text:
        return "action_default_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        await open_handoff(dispatcher, tracker, REASON_FALLBACK, lead=FALLBACK_LEAD)
        # Like Rasa's default fallback: forget the failed message.
        return [UserUtteranceReverted()]


class ActionDefaultAskAffirmation(Action):
    """First stage of the two-stage fallback: "您是想问…吗？" with buttons."""

    def name(self) -> Text:
        return "action_default_ask_affirmation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        ask_affirmation(dispatcher, tracker)
        return []
