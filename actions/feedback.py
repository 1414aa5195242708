"""好差评 (ratings) and complaints: recorded in the database, acknowledged. While the
database is unreachable they wait in the storage spool and the citizen is thanked
all the same (a complaint is then acknowledged without its number)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.common import SLOT_ITEM, channel_of, reply_info
from assistant.config.settings import get_settings
from assistant.security.pii import mask_pii
from assistant.services import outbox
from knowledge import db

logger = logging.getLogger(__name__)

RATING_GOOD, RATING_BAD = "good", "bad"
ANSWER_FEEDBACK = "feedback"
# Checked in order: negative cues first ("不好" contains "好").
_BAD_CUES = ("差评", "不好", "没用", "不行", "不满意", "垃圾", "答非所问", "看不懂", "失望", "太差", "很差", "不准确")
_GOOD_CUES = ("好评", "满意", "不错", "有用", "很好", "挺好", "赞", "棒", "清楚", "方便", "好")

THANKS_GOOD = "感谢您的好评！我们会继续努力。"
THANKS_BAD = "抱歉没能帮到您，您的意见已记录，我们会改进。如需人工帮助，请说“转人工”。"
THANKS_NEUTRAL = "感谢您的评价，已记录。"
COMPLAINT_LEAD = "非常抱歉给您带来不好的体验。您的投诉已记录（投诉编号 {id}），我们会转交相关部门核实处理。"
# The complaint waits in the spool (the database is restarting): no number yet.
COMPLAINT_LEAD_KEPT = "非常抱歉给您带来不好的体验。您的投诉已记录，我们会转交相关部门核实处理。"


def rating_of(text: str) -> Optional[str]:
    if any(cue in text for cue in _BAD_CUES):
        return RATING_BAD
    if any(cue in text for cue in _GOOD_CUES):
        return RATING_GOOD
    return None


def _text(tracker: Tracker) -> str:
    return mask_pii(((tracker.latest_message or {}).get("text") or "").strip())[:1000]


class ActionRecordFeedback(Action):
    def name(self) -> Text:
        return "action_record_feedback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        settings = get_settings()
        text = _text(tracker)
        rating = rating_of(text)
        row_id = await asyncio.to_thread(
            db.keep_feedback,
            settings.db_url,
            tracker.sender_id,
            "feedback",
            text,
            rating,
            tracker.get_slot(SLOT_ITEM),
            channel_of(tracker),
        )
        logger.info("actions.feedback.recorded rating=%s spooled=%s", rating, row_id is None)
        if settings.kiosk_mode:  # the central server collects the kiosks' ratings (outbox)
            message_id = await asyncio.to_thread(
                outbox.enqueue,
                settings.db_url,
                "rating",
                {
                    "conversation_id": tracker.sender_id,
                    "rating": rating,
                    "text": text,  # masked by _text
                    "item_id": tracker.get_slot(SLOT_ITEM),
                    "kiosk_id": settings.kiosk_id,
                },
            )
            logger.info("actions.feedback.queued outbox=%s rating=%s", message_id, rating)
        message = {RATING_GOOD: THANKS_GOOD, RATING_BAD: THANKS_BAD}.get(rating or "", THANKS_NEUTRAL)
        dispatcher.utter_message(text=message)
        dispatcher.utter_message(json_message=reply_info(tracker.get_slot(SLOT_ITEM), ANSWER_FEEDBACK))
        return []


class ActionRecordComplaint(Action):
    def name(self) -> Text:
        return "action_record_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        row_id = await asyncio.to_thread(
            db.keep_feedback,
            get_settings().db_url,
            tracker.sender_id,
            "complaint",
            _text(tracker),
            RATING_BAD,
            tracker.get_slot(SLOT_ITEM),
            channel_of(tracker),
        )
        logger.info("actions.complaint.recorded id=%s spooled=%s", row_id, row_id is None)
        from actions.handoff import REASON_COMPLAINT, open_handoff

        lead = COMPLAINT_LEAD_KEPT if row_id is None else COMPLAINT_LEAD.format(id=row_id)
        await open_handoff(dispatcher, tracker, REASON_COMPLAINT, lead=lead)
        dispatcher.utter_message(json_message=reply_info(tracker.get_slot(SLOT_ITEM), ANSWER_FEEDBACK))
        return []
