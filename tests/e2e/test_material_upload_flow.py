"""Handing in a missing material by photo, in two browsers (headless Debian chromium
driven by Playwright; the real gateway, model, action server and OCR).

The case system has asked for a missing material (a 需补正 event); the citizen asks
for the progress in the web chat, verifies the application with the phone tail, is
told what is missing, gets the attach bar, tries a file that is not a photo (a clear
refusal), then attaches a photo of the document and reads the pre-check's answer.
An operator logs in at the desk, looks the application up and sees the upload with
its pre-check, and opens the file (an audited read).
"""

from __future__ import annotations

import datetime as dt
import random
import uuid

import pytest
from sqlalchemy import select

from assistant.services.progress import events
from assistant.services.progress.importer import load_demo_data
from assistant.services.progress.records import CST
from assistant.storage.database import session_factory
from assistant.storage.tables import AuditRecord, MaterialUpload
from tests.materials_images import LONG_TERM, make_sample

from .conftest import SHOTS
from tests.e2e.webchat import TURN_MS, ask, wait_bot_text

pytestmark = [pytest.mark.browser, pytest.mark.model]

NUMBER = "ZW20251102003"  # 社会保障卡申领, phone tail 3003
MATERIAL = "居民身份证"
USERNAME = "desk.uploads"
PASSWORD = "desk-uploads-password-1"
UPLOAD_MS = 60000  # OCR on two shared cores


@pytest.fixture(scope="module")
def supplement(settings, live_server):
    """The demo applications, and a 需补正 event asking for the ID card."""
    load_demo_data(settings.db_url, settings.secret())
    now = dt.datetime.now(CST).replace(tzinfo=None) - dt.timedelta(minutes=1)
    events.record_event(settings.db_url, NUMBER, f"e2e-{uuid.uuid4().hex[:12]}", "supplement", now,
                        "请补交本人居民身份证。", [MATERIAL])
    return NUMBER


@pytest.fixture(scope="module")
def operator(settings, live_server):
    from assistant.security.accounts import DuplicateUsername, create_operator

    try:
        create_operator(settings.db_url, USERNAME, PASSWORD, display_name="材料坐席")
    except DuplicateUsername:
        pass
    return USERNAME


def valid_id_card_back():
    """A clean synthetic ID card back still valid today (the generator draws some expired ones)."""
    for seed in range(100):
        sample = make_sample("id_card_back", "clean", random.Random(seed))
        if sample.truth.expiry == LONG_TERM or sample.truth.expiry > dt.datetime.now(CST).date():
            return sample
    raise AssertionError("no valid ID card among 100 samples")


def test_a_photo_of_the_missing_document_reaches_the_desk(browser, live_server, settings, supplement, operator,
                                                          tmp_path):
    citizen_context = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
    citizen = citizen_context.new_page()
    citizen.set_default_timeout(TURN_MS)
    citizen.goto(live_server + "/")
    assert citizen.locator("#attach-bar").is_hidden()  # nobody verified anything yet

    # 1. Progress: the number, the phone tail, then the answer listing what is missing.
    before = ask(citizen, "我的社保卡办得怎么样了")
    wait_bot_text(citizen, "编号", after=before)
    before = ask(citizen, NUMBER)
    wait_bot_text(citizen, "后四位", after=before)
    before = ask(citizen, "3003")
    answer = wait_bot_text(citizen, "请补交这些材料", after=before)
    assert MATERIAL in answer and "补正" in answer

    # 2. The attach bar appears for the verified conversation.
    citizen.wait_for_selector("#attach-bar", state="visible", timeout=TURN_MS)
    assert MATERIAL in citizen.inner_text("#attach-title")
    assert citizen.locator("#attach-camera").is_visible() and citizen.locator("#attach-pick").is_visible()
    assert citizen.get_attribute("#attach-camera-input", "capture") == "environment"
    assert citizen.locator("#photo-ask").is_hidden()  # one camera button at a time
    citizen.screenshot(path=str(SHOTS / "material-upload-attach.png"))

    # 3. A file that is not a photo is refused with a clear message; nothing is stored.
    text_file = tmp_path / "notes.txt"
    text_file.write_text("这不是照片", encoding="utf-8")
    citizen.set_input_files("#attach-file-input", str(text_file))
    citizen.wait_for_function(
        "() => [...document.querySelectorAll('.msg.system')].some(e => e.textContent.includes('只能上传照片'))",
        timeout=UPLOAD_MS,
    )
    with session_factory(settings.db_url)() as session:
        assert not session.execute(select(MaterialUpload).where(MaterialUpload.number == NUMBER)).first()

    # 4. The photo of the ID card: the pre-check's answer appears in the chat.
    sample = valid_id_card_back()
    photo = tmp_path / "id-card.jpg"
    photo.write_bytes(sample.data)
    before = citizen.locator(".msg.bot").count()
    citizen.set_input_files("#attach-file-input", str(photo))
    reply = wait_bot_text(citizen, "已收到您补交的“居民身份证”", after=before, timeout=UPLOAD_MS)
    assert "身份证" in reply and "国徽面" in reply
    assert any("补交材料：居民身份证" in t for t in citizen.locator(".msg.user").all_inner_texts())
    citizen.wait_for_selector("#attach-bar", state="hidden", timeout=TURN_MS)  # nothing left to hand in
    assert citizen.locator("#photo-ask").is_visible()
    citizen.screenshot(path=str(SHOTS / "material-upload-chat.png"))
    with session_factory(settings.db_url)() as session:
        row = session.execute(select(MaterialUpload).where(MaterialUpload.number == NUMBER)).scalars().one()
        upload_id = row.id
        assert row.material == MATERIAL and row.channel == "web" and row.doc_type == "id_card_back"
    citizen_context.close()

    # 5. The operator finds it on the desk and opens the file.
    desk_context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    desk = desk_context.new_page()
    desk.set_default_timeout(TURN_MS)
    desk.goto(live_server + "/desk")
    desk.wait_for_selector("#login-form", state="visible")
    desk.fill("#username", operator)
    desk.fill("#password", PASSWORD)
    desk.click("#login-btn")
    desk.wait_for_selector("#desk", state="visible")
    desk.click("#uploads-open")
    desk.wait_for_selector("#uploads-panel", state="visible")
    desk.fill("#uploads-number", NUMBER.lower())
    desk.click("#uploads-go")
    item = desk.locator(f'.upload-item[data-id="{upload_id}"]')
    item.wait_for(state="visible")
    shown = item.inner_text()
    assert MATERIAL in shown and "预审通过" in shown and "身份证国徽面" in shown and "已转交" in shown
    assert "1 份补交材料" in desk.inner_text("#uploads-status")
    desk.screenshot(path=str(SHOTS / "material-upload-desk.png"))
    link = item.locator(".upload-link")
    opened = desk.request.get(live_server + link.get_attribute("href"))
    assert opened.status == 200 and opened.body() == sample.data
    desk_context.close()

    with session_factory(settings.db_url)() as session:
        seen = session.execute(select(AuditRecord.action, AuditRecord.actor).where(
            AuditRecord.subject == NUMBER, AuditRecord.action.like("materials.upload.%"))).all()
    assert ("materials.upload.store", ) in [(a,) for a, _ in seen]
    assert ("materials.upload.list", f"operator:{operator}") in seen
    assert ("materials.upload.view", f"operator:{operator}") in seen


def test_a_photo_of_a_receipt_is_read_as_a_question(browser, live_server, tmp_path):
    """拍照提问: the application number on a 受理回执 starts the progress lookup."""
    receipt = make_sample("acceptance_receipt", "clean", random.Random(3))
    number = receipt.truth.application_number
    photo = tmp_path / "receipt.jpg"
    photo.write_bytes(receipt.data)
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(TURN_MS)
    page.goto(live_server + "/")
    assert page.locator("#photo-ask").is_visible()
    before = page.locator(".msg.bot").count()
    page.set_input_files("#photo-input", str(photo))
    reply = wait_bot_text(page, number, after=before, timeout=UPLOAD_MS)
    assert f"没有找到编号为 {number} 的办件" in reply  # not a demo application: the lookup ran with it
    assert any(t.startswith("［照片］") and number in t for t in page.locator(".msg.user").all_inner_texts())
    # A file that is no photo: a clear message, no turn.
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01garbage" * 50)
    page.set_input_files("#photo-input", str(junk))
    page.wait_for_function(
        "() => [...document.querySelectorAll('.msg.system')].some(e => e.textContent.includes('只能上传照片'))",
        timeout=UPLOAD_MS,
    )
    context.close()
