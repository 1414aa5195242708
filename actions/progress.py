"""办件进度: the progress form (application number + phone verification) and its answer.

A kiosk receipt number (``KS…``, a pre-application entered at a kiosk,
``assistant/services/prefill/``) given instead of an application number is answered at
once with the pre-application's state (at the kiosk, or received by the center): it
shows no personal data, so no phone verification is asked; it is audited and counted
like any lookup.

Every lookup of an application writes an audit record (no raw personal data).
Three wrong phone verifications lock the number for 15 minutes; too many unknown
numbers from one conversation throttle it (against guessing numbers), and every
lookup and verification counts against the client IP the gateway saw for the
conversation, across all conversations (``assistant.security.client_limits``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import re
import unicodedata
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy import func, select

from actions.common import CATALOG, SLOT_ITEM, channel_of, intent_of, reply_info
from actions.followup import offer_events
from assistant.config.settings import get_settings
from assistant.security.audit import citizen_actor, record_audit
from assistant.security.client_limits import hit_progress_limit, progress_retry_after
from assistant.security.pii import MOBILE, is_receipt_number
from assistant.services.prefill.central import STATE_RECEIVED, ReceiptView, find_receipt
from assistant.services.prefill.receipts import normalize_receipt
from assistant.services.progress import grants
from assistant.services.progress.guard import (
    LOCK_MINUTES,
    MAX_FAILURES,
    locked_until,
    record_failure,
    record_success,
)
from assistant.services.progress.providers import ProgressProvider, ProgressUnavailable, get_provider
from assistant.services.progress.records import ApplicationView, normalize_number, verify_phone_tail
from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import (
    STATUS_ACCEPTED,
    STATUS_COMPLETED,
    STATUS_REJECTED,
    STATUS_REVIEWING,
    STATUS_SUPPLEMENT,
    AuditRecord,
)
from knowledge.answers import button_payload, material_line
from knowledge.catalog import Catalog

logger = logging.getLogger(__name__)

FORM = "progress_form"
LOOKUP_TEXT = "好的，我帮您查一下这件办件的进度。"
ANSWER_PROGRESS = "progress"
SLOT_NUMBER = "application_number"
SLOT_PHONE = "phone_tail"
SLOT_OUTCOME = "progress_outcome"
SLOT_STATUS = "progress_status"
REQUESTED_SLOT = "requested_slot"

OUTCOME_VERIFIED = "verified"
OUTCOME_LOCKED = "locked"
OUTCOME_THROTTLED = "throttled"
OUTCOME_UNAVAILABLE = "unavailable"
OUTCOME_IP_THROTTLED = "ip_throttled"
OUTCOME_RECEIPT = "kiosk_receipt"  # a kiosk receipt number was found: answered without verification
TERMINAL_OUTCOMES = {
    OUTCOME_VERIFIED, OUTCOME_LOCKED, OUTCOME_THROTTLED, OUTCOME_UNAVAILABLE, OUTCOME_IP_THROTTLED, OUTCOME_RECEIPT
}

# Unknown numbers one conversation may try within LOCK_MINUTES.
MAX_UNKNOWN_NUMBERS = 5

ACTION_LOOKUP = "progress.lookup"
ACTION_VERIFY = "progress.verify"

# Messages the form takes as an attempt at the requested value; other intents
# (a question, "不查了", "转人工") leave the form to the rules.
CAPTURE_INTENTS = {
    None,
    "inform",
    "check_progress",
    "affirm",
    "greet",
    "thank",
    "feedback",
    "out_of_scope",
    "nlu_fallback",
}
FORGOT_RE = re.compile(
    r"(忘|不记得|记不得|记不清|找不到|不知道|没有|丢).{0,6}(编号|号码|受理号|办件号|回执|单号)"
    r"|(编号|号码|受理号|办件号).{0,6}(忘|不记得|找不到|不知道|在哪|哪里)"
)
# The last four digits of the phone number, or the whole mobile number (pii.MOBILE).
TAIL_RE = re.compile(rf"(?<!\d)(?P<last4>\d{{4}})(?!\d)|{MOBILE}")

WHERE_NUMBER_TEXT = (
    "办件编号以 ZW 开头，后面是 11 位数字。您可以在这些地方找到：\n"
    "1. 窗口给您的受理回执（受理通知书）上；\n"
    "2. 受理后收到的短信里；\n"
    "3. 政务服务App或网站的“我的办件”里。\n"
    "找到后告诉我就可以。"
)
BAD_NUMBER_TEXT = "办件编号以 ZW 开头，后面是 11 位数字，比如 ZW20250318007。"
NOT_FOUND_TEXT = "没有找到编号为 {number} 的办件。请核对后再输入一次。"
BAD_TAIL_TEXT = "请输入办件登记手机号的最后四位数字，比如 1234。"
WRONG_TAIL_TEXT = "手机尾号不对。您还可以再试 {left} 次。"
LOCKED_TEXT = "验证失败次数过多。为保护您的信息，编号 {number} 已锁定，请 {minutes} 分钟后再试，或携带身份证到窗口查询。"
THROTTLED_TEXT = "查询次数过多，请 {minutes} 分钟后再试。您也可以拨打12345政务服务便民热线查询。"
IP_THROTTLED_TEXT = "您所在网络的查询次数过多，请 {minutes} 分钟后再试。您也可以拨打12345政务服务便民热线查询。"
UNAVAILABLE_TEXT = "抱歉，办件系统暂时无法查询。请稍后再试，或拨打12345政务服务便民热线。"

STATUS_TEXT = {
    STATUS_ACCEPTED: "窗口已经受理，正在等待审核。",
    STATUS_REVIEWING: "正在审核，请您耐心等待，不需要再跑一趟。",
    STATUS_SUPPLEMENT: "还需要补正材料，审核才能继续。",
    STATUS_COMPLETED: "已经办结。",
    STATUS_REJECTED: "没有通过受理。",
}
HUMAN_BUTTON = {"title": "转人工", "payload": "/request_human"}

# Kiosk pre-applications (receipt numbers KS…).
KS_LIKE_RE = re.compile(r"(?<![A-Za-z])[Kk][Ss][\s-]*[A-Za-z0-9]")
BAD_RECEIPT_TEXT = "自助机预申请的回执号像这样：KSHALL3-20261205-0001（KS、本机代码、日期、序号）。请核对后再输入一次。"
RECEIPT_HEAD_TEXT = "已收到您在自助机提交的预申请（回执号 {receipt}，事项：{item}，{when}提交）。"
RECEIPT_PENDING_TEXT = "目前保存在自助机上，网络恢复后会自动提交到政务服务中心，您不需要重新填写。"
RECEIPT_RECEIVED_TEXT = "政务服务中心已经收到{photos}，工作人员审核后会与您联系。"
RECEIPT_PHOTOS_TEXT = "，连同 {n} 张材料照片"
RECEIPT_UPLOADING_TEXT = "还有 {n} 张材料照片在网络恢复后上传。"
RECEIPT_PURGED_TEXT = "按规定，预申请里的个人信息已在保存期满后删除；如需继续办理，请带上回执到窗口。"
RECEIPT_NOT_FOUND_TEXT = (
    "没有找到回执号为 {receipt} 的预申请。如果您刚在自助机上提交，可能还在等网络恢复后上传，"
    "请稍后再查，或带上回执到窗口咨询。"
)

_provider: Optional[ProgressProvider] = None


def provider() -> ProgressProvider:
    global _provider
    if _provider is None:
        _provider = get_provider(get_settings())
    return _provider


def _text(tracker: Tracker) -> str:
    return unicodedata.normalize("NFKC", (tracker.latest_message or {}).get("text") or "")


async def _audit(tracker: Tracker, action: str, number: Optional[str], result: str) -> None:
    await asyncio.to_thread(
        record_audit,
        get_settings().db_url,
        actor=citizen_actor(tracker.sender_id),
        action=action,
        subject=number,
        channel=channel_of(tracker),
        result=result,
    )


def _unknown_lookups(db_url: str, actor: str, since: dt.datetime) -> int:
    with session_factory(db_url)() as session:
        return int(
            session.execute(
                select(func.count(AuditRecord.id)).where(
                    AuditRecord.actor == actor,
                    AuditRecord.action == ACTION_LOOKUP,
                    AuditRecord.result == "not_found",
                    AuditRecord.at >= since,
                )
            ).scalar_one()
        )


async def _over_ip_limit(tracker: Tracker, action: str, number: str) -> bool:
    """Count this attempt against the conversation's client IP; True (audited, nothing
    looked up) when that client is over ``progress_ip_rate_limit``."""
    _, wait = await asyncio.to_thread(hit_progress_limit, get_settings(), tracker.sender_id)
    if wait is None:
        return False
    await _audit(tracker, action, number, "ip_throttled")
    return True


def _minutes_left(until: Optional[dt.datetime]) -> int:
    if until is None:
        return LOCK_MINUTES
    return max(1, math.ceil((until - utcnow()).total_seconds() / 60))


class ValidateProgressForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_progress_form"

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        # A final outcome (locked, throttled, unavailable) ends the form early.
        if tracker.get_slot(SLOT_OUTCOME) in TERMINAL_OUTCOMES - {OUTCOME_VERIFIED}:
            return []
        return domain_slots

    async def get_validation_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        events = await super().get_validation_events(dispatcher, tracker, domain)
        # rasa_sdk drops a slot that is not a required slot when it was also extracted
        # this turn (the outcome reset when the form starts with the number given at
        # once), even if a validator then set it: keep the outcome the validators chose.
        if SLOT_OUTCOME in tracker.slots_to_validate() and all(e.get("name") != SLOT_OUTCOME for e in events):
            events.append(SlotSet(SLOT_OUTCOME, tracker.slots.get(SLOT_OUTCOME)))
        return events

    # ------------------------------------------------------------ extraction
    async def extract_application_number(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        text = _text(tracker)
        number = normalize_number(text) or normalize_receipt(text)
        requested = tracker.get_slot(REQUESTED_SLOT)
        if requested is None:
            # The form starts (it always requests a slot once running): forget an
            # earlier lookup, keep a number said right away.
            return {SLOT_NUMBER: number, SLOT_PHONE: None, SLOT_OUTCOME: None}
        if requested != SLOT_NUMBER:
            return {}
        if number:
            return {SLOT_NUMBER: number}
        if FORGOT_RE.search(text):
            dispatcher.utter_message(text=WHERE_NUMBER_TEXT)
            return {SLOT_NUMBER: None}
        if intent_of(tracker) in CAPTURE_INTENTS:
            dispatcher.utter_message(text=BAD_RECEIPT_TEXT if KS_LIKE_RE.search(text) else BAD_NUMBER_TEXT)
            return {SLOT_NUMBER: None}
        return {}

    async def extract_phone_tail(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        if tracker.get_slot(REQUESTED_SLOT) != SLOT_PHONE:
            return {}
        text = _text(tracker)
        match = TAIL_RE.search(re.sub(r"[\s-]", "", text))
        if match:
            return {SLOT_PHONE: match.group("last4") or match.group("tail")}
        if intent_of(tracker) in CAPTURE_INTENTS or re.search(r"\d", text):
            dispatcher.utter_message(text=BAD_TAIL_TEXT)
            return {SLOT_PHONE: None}
        return {}

    # ------------------------------------------------------------ validation
    async def validate_application_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        receipt = str(value) if value and is_receipt_number(str(value)) else None
        number = receipt or (normalize_number(str(value)) if value else None)
        if not number:
            return {SLOT_NUMBER: None}
        db_url = get_settings().db_url
        actor = citizen_actor(tracker.sender_id)
        since = utcnow() - dt.timedelta(minutes=LOCK_MINUTES)
        if await asyncio.to_thread(_unknown_lookups, db_url, actor, since) >= MAX_UNKNOWN_NUMBERS:
            await _audit(tracker, ACTION_LOOKUP, number, "throttled")
            return {SLOT_NUMBER: None, SLOT_OUTCOME: OUTCOME_THROTTLED}
        if receipt:
            return await self._validate_receipt(receipt, dispatcher, tracker)
        if await asyncio.to_thread(locked_until, db_url, number):
            await _audit(tracker, ACTION_LOOKUP, number, "locked")
            return {SLOT_NUMBER: number, SLOT_OUTCOME: OUTCOME_LOCKED}
        if await _over_ip_limit(tracker, ACTION_LOOKUP, number):
            return {SLOT_NUMBER: None, SLOT_OUTCOME: OUTCOME_IP_THROTTLED}
        try:
            view = await provider().lookup(number)
        except ProgressUnavailable:
            await _audit(tracker, ACTION_LOOKUP, number, "unavailable")
            return {SLOT_NUMBER: None, SLOT_OUTCOME: OUTCOME_UNAVAILABLE}
        if view is None:
            await _audit(tracker, ACTION_LOOKUP, number, "not_found")
            dispatcher.utter_message(text=NOT_FOUND_TEXT.format(number=number))
            return {SLOT_NUMBER: None}
        await _audit(tracker, ACTION_LOOKUP, number, "found")
        return {SLOT_NUMBER: number, SLOT_ITEM: view.item_id}

    async def _validate_receipt(
        self, receipt: str, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> Dict[Text, Any]:
        """A kiosk receipt number: found here (the kiosk's or the center's database), the
        form ends and the answer shows its state; else asked again, like an unknown number."""
        if await _over_ip_limit(tracker, ACTION_LOOKUP, receipt):
            return {SLOT_NUMBER: None, SLOT_OUTCOME: OUTCOME_IP_THROTTLED}
        view = await asyncio.to_thread(find_receipt, get_settings().db_url, receipt)
        if view is None:
            await _audit(tracker, ACTION_LOOKUP, receipt, "not_found")
            dispatcher.utter_message(text=RECEIPT_NOT_FOUND_TEXT.format(receipt=receipt))
            return {SLOT_NUMBER: None}
        await _audit(tracker, ACTION_LOOKUP, receipt, "found")
        return {SLOT_NUMBER: receipt, SLOT_OUTCOME: OUTCOME_RECEIPT, SLOT_ITEM: view.item_id}

    async def validate_phone_tail(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        number = tracker.get_slot(SLOT_NUMBER)
        if not value or not number:
            return {SLOT_PHONE: None}
        db_url = get_settings().db_url
        if await asyncio.to_thread(locked_until, db_url, number):
            await _audit(tracker, ACTION_VERIFY, number, "locked")
            return {SLOT_PHONE: None, SLOT_OUTCOME: OUTCOME_LOCKED}
        if await _over_ip_limit(tracker, ACTION_VERIFY, number):
            return {SLOT_PHONE: None, SLOT_OUTCOME: OUTCOME_IP_THROTTLED}
        try:
            view = await provider().lookup(number)
        except ProgressUnavailable:
            await _audit(tracker, ACTION_VERIFY, number, "unavailable")
            return {SLOT_PHONE: None, SLOT_OUTCOME: OUTCOME_UNAVAILABLE}
        if view is not None and verify_phone_tail(view, str(value)):
            await asyncio.to_thread(record_success, db_url, number)
            await _audit(tracker, ACTION_VERIFY, number, "ok")
            await asyncio.to_thread(grants.grant, get_settings(), tracker.sender_id, number)  # may hand in materials
            return {SLOT_PHONE: str(value), SLOT_OUTCOME: OUTCOME_VERIFIED}
        failures, lock = await asyncio.to_thread(record_failure, db_url, number)
        await _audit(tracker, ACTION_VERIFY, number, "locked" if lock else "wrong_code")
        logger.info("actions.progress.wrong_code failures=%d locked=%s", failures, bool(lock))
        if lock:
            return {SLOT_PHONE: None, SLOT_OUTCOME: OUTCOME_LOCKED}
        dispatcher.utter_message(text=WRONG_TAIL_TEXT.format(left=MAX_FAILURES - failures))
        return {SLOT_PHONE: None}


# ------------------------------------------------------------------- answer
def _when(at: dt.datetime) -> str:
    return f"{at.month}月{at.day}日 {at:%H:%M}"


def _date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _missing_lines(catalog: Catalog, item_id: str, names: List[str]) -> List[str]:
    """The missing materials, with the catalog's details where the names match."""
    record = catalog.records.get(item_id)
    materials = list(catalog.materials_for(item_id)) if record else []
    lines = []
    for index, name in enumerate(names, start=1):
        match = next(
            (m for m in materials if m.name == name or name in m.name or m.name in name), None
        )
        lines.append(material_line(index, match) if match else f"{index}. {name}")
    return lines


def receipt_answer(catalog: Catalog, view: ReceiptView, timezone: str) -> str:
    """A kiosk pre-application's state in plain words (no personal data)."""
    from zoneinfo import ZoneInfo

    record = catalog.records.get(view.item_id)
    when = view.created_at.replace(tzinfo=dt.timezone.utc).astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
    parts = [RECEIPT_HEAD_TEXT.format(receipt=view.receipt, item=record.name if record else view.item_id, when=_when(when))]
    if view.state != STATE_RECEIVED:
        parts.append(RECEIPT_PENDING_TEXT)
        return "\n".join(parts)
    photos = RECEIPT_PHOTOS_TEXT.format(n=view.materials_received) if view.materials_received else ""
    parts.append(RECEIPT_RECEIVED_TEXT.format(photos=photos))
    if view.materials > view.materials_received:
        parts.append(RECEIPT_UPLOADING_TEXT.format(n=view.materials - view.materials_received))
    if view.purged:
        parts.append(RECEIPT_PURGED_TEXT)
    return "\n".join(parts)


def progress_answer(catalog: Catalog, view: ApplicationView) -> str:
    """The status in plain words, what happens next, and the dates."""
    record = catalog.records.get(view.item_id)
    item_name = record.name if record else "办件"
    parts = [f"您的“{item_name}”（编号 {view.number}）目前{view.label}：{STATUS_TEXT.get(view.status, '')}"]
    latest = view.latest
    if latest is not None and latest.note:
        parts.append(f"最新进展（{_when(latest.at)}）：{latest.note}")
    elif latest is not None:  # when the status last changed (at a kiosk nothing else tells them)
        parts.append(f"状态已更新：{_when(latest.at)} 变为“{latest.label}”。")
    if view.status == STATUS_SUPPLEMENT:
        missing = view.missing_materials
        if missing:
            parts.append("请补交这些材料：\n" + "\n".join(_missing_lines(catalog, view.item_id, missing)))
        where = record.where.window.rstrip("。；;") if record else "原受理窗口"
        parts.append(f"下一步：带齐材料到{where}补交，或在网上“我的办件”里上传。补正后会继续审核。")
    elif view.status in (STATUS_ACCEPTED, STATUS_REVIEWING):
        parts.append("下一步：审核通过后会短信通知您。")
    elif view.status == STATUS_COMPLETED:
        if view.pickup_method:
            parts.append(f"领取方式：{view.pickup_method}。")
    elif view.status == STATUS_REJECTED:
        parts.append("如果对结果有疑问，可以转人工咨询，或拨打12345政务服务便民热线。")
    if view.promised_date and view.status not in (STATUS_COMPLETED, STATUS_REJECTED):
        parts.append(f"预计办结日期：{_date(view.promised_date)}。")
    return "\n".join(parts)


class ActionProgressAnswer(Action):
    """After the form: the progress, or why it cannot be shown."""

    def name(self) -> Text:
        return "action_progress_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        events = await self._answer(dispatcher, tracker)
        item = next((e["value"] for e in events if e.get("name") == SLOT_ITEM), None)
        dispatcher.utter_message(json_message=reply_info(item, ANSWER_PROGRESS))
        return events

    async def _answer(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
        outcome = tracker.get_slot(SLOT_OUTCOME)
        number = tracker.get_slot(SLOT_NUMBER)
        reset = [SlotSet(SLOT_PHONE, None)]
        if outcome == OUTCOME_LOCKED and number:
            until = await asyncio.to_thread(locked_until, get_settings().db_url, number)
            dispatcher.utter_message(
                text=LOCKED_TEXT.format(number=number, minutes=_minutes_left(until)), buttons=[HUMAN_BUTTON]
            )
            return reset + [SlotSet(SLOT_NUMBER, None), SlotSet(SLOT_OUTCOME, None)]
        if outcome == OUTCOME_THROTTLED:
            dispatcher.utter_message(text=THROTTLED_TEXT.format(minutes=LOCK_MINUTES))
            return reset + [SlotSet(SLOT_OUTCOME, None)]
        if outcome == OUTCOME_IP_THROTTLED:
            wait = await asyncio.to_thread(progress_retry_after, get_settings(), tracker.sender_id)
            minutes = max(1, math.ceil((wait or 60) / 60))
            dispatcher.utter_message(text=IP_THROTTLED_TEXT.format(minutes=minutes), buttons=[HUMAN_BUTTON])
            return reset + [SlotSet(SLOT_NUMBER, None), SlotSet(SLOT_OUTCOME, None)]
        if outcome == OUTCOME_RECEIPT and number:
            return await self._receipt(dispatcher, number, reset)
        if outcome != OUTCOME_VERIFIED or not number:
            dispatcher.utter_message(text=UNAVAILABLE_TEXT, buttons=[HUMAN_BUTTON])
            return reset + [SlotSet(SLOT_OUTCOME, None)]
        try:
            view = await provider().lookup(number)
        except ProgressUnavailable:
            view = None
        if view is None:
            dispatcher.utter_message(text=UNAVAILABLE_TEXT, buttons=[HUMAN_BUTTON])
            return reset
        catalog = await CATALOG.get()
        buttons = []
        if view.status == STATUS_SUPPLEMENT and view.item_id in catalog.records:
            buttons.append({"title": "办理要带的全部材料", "payload": button_payload("ask_materials", view.item_id)})
        buttons.append(HUMAN_BUTTON)
        dispatcher.utter_message(text=progress_answer(catalog, view), buttons=buttons)
        logger.info("actions.progress.answered status=%s", view.status)
        # The verified number stays for a handoff summary and the reminder offer; the phone tail goes.
        offer = await asyncio.to_thread(offer_events, dispatcher, tracker, number, view.status, view.pickup_method)
        return reset + [SlotSet(SLOT_ITEM, view.item_id), SlotSet(SLOT_STATUS, view.status)] + offer


    async def _receipt(self, dispatcher: CollectingDispatcher, receipt: str, reset: List[EventType]) -> List[EventType]:
        settings = get_settings()
        view = await asyncio.to_thread(find_receipt, settings.db_url, receipt)
        done = reset + [SlotSet(SLOT_NUMBER, None), SlotSet(SLOT_OUTCOME, None)]
        if view is None:  # gone since the form found it
            dispatcher.utter_message(text=RECEIPT_NOT_FOUND_TEXT.format(receipt=receipt))
            return done
        catalog = await CATALOG.get()
        buttons = []
        if view.item_id in catalog.records:
            buttons.append({"title": "办理要带的全部材料", "payload": button_payload("ask_materials", view.item_id)})
        buttons.append(HUMAN_BUTTON)
        dispatcher.utter_message(text=receipt_answer(catalog, view, settings.timezone), buttons=buttons)
        logger.info("actions.progress.receipt_answered state=%s", view.state)
        return done + [SlotSet(SLOT_ITEM, view.item_id)]


class ActionInform(Action):
    """A value given outside a form: an application number starts the progress lookup
    (the number is already taken), anything else asks what the person wants."""

    def name(self) -> Text:
        return "action_inform"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        if next(tracker.get_latest_entity_values(SLOT_NUMBER), None) or normalize_receipt(_text(tracker)):
            dispatcher.utter_message(text=LOOKUP_TEXT)
            return [FollowupAction(FORM)]
        dispatcher.utter_message(response="utter_inform_ack")
        return []
