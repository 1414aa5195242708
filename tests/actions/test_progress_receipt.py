"""The progress lookup recognises kiosk receipt numbers (KS…): the form takes one instead
of an application number, ends without a phone check, and answers the pre-application's
state; unknown ones are told and counted like unknown numbers. On the action server's
own database (SQLite, or PostgreSQL in the second pass)."""

from __future__ import annotations

import pytest
from rasa_sdk.events import FollowupAction
from sqlalchemy import select

from actions.progress import (
    BAD_RECEIPT_TEXT,
    ActionInform,
    ActionProgressAnswer,
    ValidateProgressForm,
)
from assistant.security.audit import citizen_actor
from assistant.services.prefill import kiosk
from assistant.storage import database
from assistant.storage.tables import AuditRecord, OutboxMessage
from knowledge.catalog import load_catalog
from knowledge.prefill import load_forms

from .conftest import DOMAIN, make_tracker

FIELDS = {"name": "李四", "id_number": "11010519491231002X", "phone": "13700001234", "address": "建设路九号三单元",
          "since": "2025-01-02", "basis": "合法稳定就业"}


@pytest.fixture(scope="module")
def receipts(settings):
    """A pre-application received by the center and one still waiting at a kiosk."""
    form = load_forms(load_catalog())["residence_permit"]
    jpeg = _jpeg()
    received = kiosk.submit(settings.copy(update={"kiosk_mode": False}), form, FIELDS, [kiosk.PhotoUpload("居民身份证", jpeg)])
    waiting = kiosk.submit(
        settings.copy(update={"kiosk_mode": True, "kiosk_code": "RCPT"}), form, FIELDS,
        [kiosk.PhotoUpload("居民身份证", jpeg), kiosk.PhotoUpload("房屋租赁合同", jpeg)],
    )
    yield received.receipt, waiting.receipt
    # Nothing of the waiting one may be taken for another kiosk's mail.
    with database.session_factory(settings.db_url)() as session:
        for message_id in waiting.message_ids:
            session.execute(OutboxMessage.__table__.delete().where(OutboxMessage.id == message_id))
        session.commit()


def _jpeg() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (240, 240, 240)).save(buffer, "JPEG")
    return buffer.getvalue()


def form_tracker(text, intent="inform", requested=None, slots=None, sender_id="receipt-test"):
    return make_tracker(text, intent, slots={"requested_slot": requested, **(slots or {})}, sender_id=sender_id)


def audit_rows(settings, sender_id):
    with database.session_factory(settings.db_url)() as session:
        return session.execute(
            select(AuditRecord).where(AuditRecord.actor == citizen_actor(sender_id)).order_by(AuditRecord.id)
        ).scalars().all()


async def test_a_receipt_number_is_taken_by_the_form(dispatcher, receipts):
    received, _ = receipts
    form = ValidateProgressForm()
    spaced = received.lower().replace("-", " ")
    start = form_tracker(f"查一下{spaced}", "check_progress")
    assert await form.extract_application_number(dispatcher, start, DOMAIN) == {
        "application_number": received, "phone_tail": None, "progress_outcome": None}
    asked = form_tracker(f"回执号是{received}", requested="application_number")
    assert await form.extract_application_number(dispatcher, asked, DOMAIN) == {"application_number": received}
    wrong = form_tracker("KS123", requested="application_number")
    assert await form.extract_application_number(dispatcher, wrong, DOMAIN) == {"application_number": None}
    assert dispatcher.messages[-1]["text"] == BAD_RECEIPT_TEXT


async def test_a_received_pre_application_is_answered_without_a_phone_check(dispatcher, settings, receipts):
    received, _ = receipts
    form = ValidateProgressForm()
    sender = "receipt-received"
    t = form_tracker(received, requested="application_number", sender_id=sender)
    result = await form.validate_application_number(received, dispatcher, t, DOMAIN)
    assert result == {"application_number": received, "progress_outcome": "kiosk_receipt", "service_item": "residence_permit"}
    done = form_tracker(received, slots={"application_number": received, "progress_outcome": "kiosk_receipt"}, sender_id=sender)
    assert await form.required_slots(["application_number", "phone_tail"], dispatcher, done, DOMAIN) == []
    events = await ActionProgressAnswer().run(dispatcher, done, DOMAIN)
    answer = [m for m in dispatcher.messages if m.get("text")][-1]
    text = answer["text"]
    assert text.startswith(f"已收到您在自助机提交的预申请（回执号 {received}，事项：居住证申领，")
    assert "政务服务中心已经收到，连同 1 张材料照片" in text
    assert all(value not in text for value in ("李四", "13700001234", "11010519491231002X"))
    assert [b["title"] for b in answer["buttons"]] == ["办理要带的全部材料", "转人工"]
    assert dispatcher.messages[-1]["custom"]["reply"] == {"item": "residence_permit", "answer": "progress"}
    names = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    assert names["application_number"] is None and names["progress_outcome"] is None
    assert [(r.action, r.subject, r.result) for r in audit_rows(settings, sender)] == [
        ("progress.lookup", received, "found")]


async def test_a_pre_application_still_at_the_kiosk(dispatcher, receipts):
    _, waiting = receipts
    sender = "receipt-waiting"
    t = form_tracker(waiting, requested="application_number", sender_id=sender)
    assert (await ValidateProgressForm().validate_application_number(waiting, dispatcher, t, DOMAIN))[
        "progress_outcome"] == "kiosk_receipt"
    done = form_tracker(waiting, slots={"application_number": waiting, "progress_outcome": "kiosk_receipt"}, sender_id=sender)
    await ActionProgressAnswer().run(dispatcher, done, DOMAIN)
    text = [m for m in dispatcher.messages if m.get("text")][-1]["text"]
    assert "已收到您在自助机提交的预申请" in text and "目前保存在自助机上，网络恢复后会自动提交" in text


async def test_an_unknown_receipt_is_told_audited_and_counted(dispatcher, settings):
    sender = "receipt-unknown"
    form = ValidateProgressForm()
    unknown = "KSNOWHERE-20260101-0001"
    t = form_tracker(unknown, requested="application_number", sender_id=sender)
    assert await form.validate_application_number(unknown, dispatcher, t, DOMAIN) == {"application_number": None}
    assert dispatcher.messages[-1]["text"].startswith(f"没有找到回执号为 {unknown} 的预申请。")
    for n in range(2, 6):
        await form.validate_application_number(f"KSNOWHERE-20260101-000{n}", dispatcher, t, DOMAIN)
    # Guessing receipts throttles like guessing application numbers.
    throttled = await form.validate_application_number("KSNOWHERE-20260101-0009", dispatcher, t, DOMAIN)
    assert throttled["progress_outcome"] == "throttled"
    assert [r.result for r in audit_rows(settings, sender)] == ["not_found"] * 5 + ["throttled"]


async def test_a_receipt_said_outside_the_form_starts_the_lookup(dispatcher, receipts):
    received, _ = receipts
    assert await ActionInform().run(dispatcher, make_tracker(f"{received}", "inform"), DOMAIN) == [
        FollowupAction("progress_form")]
