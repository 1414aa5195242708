"""Status notices in the web chat page (headless Chromium): a subscribed conversation
sees the notice appear live; a notice that came while the page was closed is shown
when the citizen comes back, once. No dialogue model needed: the gateway runs without one."""

from __future__ import annotations

import json

import httpx
import pytest

from assistant.api.app import create_app
from assistant.api.serving import serve_in_thread
from assistant.services.progress import subscriptions as subs
from assistant.services.progress.importer import load_demo_data
from tests.conftest import isolated_settings
from tests.notify_support import CMS_SECRET, daytime_zone, signed_event

pytestmark = [pytest.mark.browser]

NUMBER = "ZW20251102002"  # 审核中 in the demo data
SUPPLEMENT = "您的办件ZW2025****002有新进展：需补正材料。可在“办事助手”里输入办件编号查看详情。"
COMPLETED = "您的办件ZW2025****002有新进展：已办结。可在“办事助手”里输入办件编号查看详情。"


@pytest.fixture
def gateway(settings, tmp_path):
    app_settings = isolated_settings(settings, tmp_path, cms_webhook_secret=CMS_SECRET, timezone=daytime_zone(),
                                     wechat_token=None, notice_interval_seconds=600)
    load_demo_data(app_settings.db_url, app_settings.secret())
    with serve_in_thread(create_app(app_settings, load_model=False)) as base:
        yield base, app_settings


def post(base, number, event_id, status):
    path, headers, body = signed_event(number, event_id, status)
    reply = httpx.post(base + path, content=body, headers=headers, timeout=10)
    assert reply.status_code == 201, reply.text


def notices_on(page):
    return page.locator(".msg.notice").all_inner_texts()


def test_a_notice_appears_live_and_one_kept_while_away_is_shown_once(browser, gateway):
    base, app_settings = gateway
    session = httpx.post(f"{base}/api/v1/chat/sessions", timeout=10).json()
    subs.subscribe(app_settings.db_url, app_settings.secret(), NUMBER, "web", session["sender_id"], "reviewing")
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
    # A returning citizen: the page finds its conversation in localStorage.
    context.add_init_script(
        f"window.localStorage.setItem('banshi_chat_session', {json.dumps(json.dumps(session))});")
    page = context.new_page()
    page.goto(base + "/")
    page.wait_for_function("() => document.querySelectorAll('.msg.bot').length > 0")
    page.wait_for_timeout(500)  # the live stream is open
    post(base, NUMBER, "page-1", "需补正")
    page.wait_for_selector(".msg.notice", timeout=2000)  # live, within the 2-second target
    assert notices_on(page) == [SUPPLEMENT]
    page.close()

    post(base, NUMBER, "page-2", "办结")  # the page is closed
    page = context.new_page()
    page.goto(base + "/")
    page.wait_for_selector(".msg.notice", timeout=5000)
    assert notices_on(page) == [COMPLETED]  # the earlier one is not shown again
    page.reload()
    page.wait_for_function("() => document.querySelectorAll('.msg.bot').length > 0")
    page.wait_for_timeout(1500)
    assert notices_on(page) == []  # delivered once
    context.close()
