"""The web chat's "提醒" panel (headless Chromium, the real gateway, model and action
server): reminders set by typing in the conversation — one with the month at once,
one whose month was asked for — and a status subscription appear in the panel; one
is cancelled there, then the rest with 全部取消; "我的提醒" agrees."""

from __future__ import annotations

import pytest

from assistant.services.progress import commands, reminders, subscriptions
from tests.e2e.webchat import TURN_MS, ask, wait_bot_text

pytestmark = [pytest.mark.browser, pytest.mark.model]

NUMBER = "ZW20251102002"  # 审核中 in the demo data, phone tail 2002


@pytest.fixture
def demo(settings):
    from assistant.services.progress.importer import load_demo_data

    load_demo_data(settings.db_url, settings.secret())


def test_reminders_set_in_the_chat_are_listed_and_cancelled_in_the_panel(browser, live_server, settings, demo):
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(TURN_MS)
    page.goto(live_server + "/")
    year = commands.today_in(settings.timezone).year + 1

    # Before any conversation: the panel opens and says there is nothing.
    page.click("#reminders-open")
    assert page.get_attribute("#reminders-open", "aria-expanded") == "true"
    page.wait_for_function("() => document.getElementById('reminders-status').textContent.includes('没有设置提醒')")
    page.click("#reminders-close")
    assert page.locator("#reminders-panel").is_hidden()

    before = ask(page, f"身份证{year}年3月到期，提醒我")
    wait_bot_text(page, f"身份证{year}年3月到期", after=before)
    before = ask(page, "护照快到期了提醒我")
    wait_bot_text(page, "护照到期的年份和月份", after=before)
    before = ask(page, f"{year + 1}年5月")
    wait_bot_text(page, f"护照{year + 1}年5月到期", after=before)
    before = ask(page, f"帮我查一下{NUMBER}的进度")
    wait_bot_text(page, "后四位", after=before)
    before = ask(page, "2002")
    wait_bot_text(page, "要我提醒您吗", after=before)
    page.locator(".chip", has_text="提醒我").last.click()
    wait_bot_text(page, "我会在这里提醒您", after=before)

    session = page.evaluate("window.banshiChat.session()")
    sender_id = session["sender_id"]

    page.click("#reminders-open")
    page.wait_for_function("() => document.querySelectorAll('#reminders-list .reminders-item').length === 3")
    items = page.locator("#reminders-list .reminders-item").all_inner_texts()
    assert "办件状态提醒 · 编号 ZW2025****002" in items[0] and NUMBER not in " ".join(items)
    assert any("身份证到期提醒" in t and f"{year}年3月到期" in t for t in items)
    assert any("护照到期提醒" in t and f"{year + 1}年5月到期" in t for t in items)
    page.screenshot(path=str(_shot("chat-reminders-panel.png")))

    # Cancel the passport's reminder in the panel.
    page.locator("#reminders-list .reminders-item", has_text="护照到期提醒").locator(".reminders-cancel").click()
    page.wait_for_function("() => document.getElementById('reminders-status').textContent.includes('已取消：护照到期提醒')")
    page.wait_for_function("() => document.querySelectorAll('#reminders-list .reminders-item').length === 2")
    kinds = [r.kind for r in reminders.list_reminders(settings.db_url, settings.secret(), "web", sender_id)]
    assert kinds == ["id_card_expiry"]

    # "我的提醒" in the chat agrees with the panel.
    before = ask(page, "我的提醒")
    listed = wait_bot_text(page, "您设置了这些提醒", after=before)
    assert "1. 办件 ZW2025****002" in listed and "2. 身份证到期提醒" in listed and "护照" not in listed

    page.click("#reminders-cancel-all")
    page.wait_for_function("() => document.getElementById('reminders-status').textContent.includes('已全部取消')")
    page.wait_for_function("() => document.querySelectorAll('#reminders-list .reminders-item').length === 0")
    assert reminders.list_reminders(settings.db_url, settings.secret(), "web", sender_id) == []
    assert subscriptions.numbers_of(settings.db_url, settings.secret(), "web", sender_id) == []

    # A reminder set while the panel is open shows there.
    before = ask(page, f"身份证{year}年4月到期，提醒我")
    wait_bot_text(page, f"身份证{year}年4月到期", after=before)
    page.wait_for_function("() => document.querySelectorAll('#reminders-list .reminders-item').length === 1")
    context.close()


def _shot(name):
    from tests.e2e.conftest import SHOTS

    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS / name
