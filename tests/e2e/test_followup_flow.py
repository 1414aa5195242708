"""Issue 15's browser acceptance, end to end in one conversation (headless Chromium,
the real gateway, model, action server, notice scheduler and OCR): a citizen verifies
an application in the web chat and takes up the offer "提醒我"; the case-management
system posts a signed 需补正 event; the notice appears in the open chat; the citizen
looks the application up again, attaches a photo of the missing document and reads the
pre-check's answer; an operator finds the upload through the desk API."""

from __future__ import annotations

import random
import uuid

import httpx
import pytest

from assistant.security import accounts
from assistant.services.progress import notices
from tests.materials_images import make_sample
from tests.notify_support import CMS_SECRET, signed_event
from tests.e2e.webchat import TURN_MS, ask, wait_bot_text

pytestmark = [pytest.mark.browser, pytest.mark.model]

NUMBER = "ZW20251102002"  # 居民身份证补领, 审核中 in the demo data, phone tail 2002
MATERIAL = "居民户口簿"
USERNAME = "desk.followup"
PASSWORD = "desk-followup-password-1"
UPLOAD_MS = 60000  # OCR on two shared cores


def verify(page):
    before = ask(page, f"帮我查一下{NUMBER}的进度")
    wait_bot_text(page, "后四位", after=before)
    return ask(page, "2002")


@pytest.fixture
def case_system(settings, monkeypatch):
    """The live gateway takes signed status events (the session's settings object is
    the app's), and notices go out now whatever the hour (quiet hours are tested apart)."""
    from assistant.services.progress.importer import load_demo_data

    load_demo_data(settings.db_url, settings.secret())
    monkeypatch.setattr(settings, "cms_webhook_secret", CMS_SECRET)
    monkeypatch.setattr(notices, "in_quiet_hours", lambda moment, timezone: False)
    try:
        accounts.create_operator(settings.db_url, USERNAME, PASSWORD, display_name="跟进坐席")
    except accounts.DuplicateUsername:
        pass


def test_subscribe_notice_photo_and_desk(browser, live_server, settings, case_system, tmp_path):
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(TURN_MS)
    page.goto(live_server + "/")

    # 1. A verified lookup, then the offer; "提醒我" subscribes this conversation.
    before = verify(page)
    wait_bot_text(page, "要我提醒您吗", after=before)
    page.locator(".chip", has_text="提醒我").last.click()
    wait_bot_text(page, "我会在这里提醒您", after=before)

    # 2. The case system asks for a material: the notice appears in the open chat.
    path, headers, body = signed_event(NUMBER, f"e2e-{uuid.uuid4().hex[:12]}", "需补正",
                                       note="请补交居民户口簿。", missing_materials=[MATERIAL])
    posted = httpx.post(live_server + path, content=body, headers=headers, timeout=10)
    assert posted.status_code == 201, posted.text
    page.wait_for_selector(".msg.notice", timeout=5000)
    assert "ZW2025****002" in page.inner_text(".msg.notice") and "需补正" in page.inner_text(".msg.notice")

    # 3. Looked up again: what is missing, the attach bar, the photo, the pre-check's answer.
    before = verify(page)
    answer = wait_bot_text(page, "请补交这些材料", after=before)
    assert MATERIAL in answer
    page.wait_for_selector("#attach-bar", state="visible")
    sample = make_sample("household_register", "clean", random.Random(7))
    photo = tmp_path / "hukou.jpg"
    photo.write_bytes(sample.data)
    before = page.locator(".msg.bot").count()
    page.set_input_files("#attach-file-input", str(photo))
    reply = wait_bot_text(page, f"已收到您补交的“{MATERIAL}”", after=before, timeout=UPLOAD_MS)
    assert "户口" in reply
    context.close()

    # 4. The operator sees it on the desk.
    with httpx.Client(base_url=live_server, timeout=30) as desk:
        login = desk.post("/api/v1/desk/login", json={"username": USERNAME, "password": PASSWORD})
        assert login.status_code == 200
        desk.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        listed = desk.get("/api/v1/desk/uploads", params={"number": NUMBER})
        assert listed.status_code == 200, listed.text
        assert MATERIAL in listed.text and "household_register" in listed.text
