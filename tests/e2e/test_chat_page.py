"""The mobile web chat page in headless Chromium (Debian's chromium, driven by Playwright)."""

import pytest

from .conftest import SHOTS

pytestmark = [pytest.mark.browser, pytest.mark.model]


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
    page = context.new_page()
    page.goto(live_server + "/")
    yield page
    context.close()


def bot_texts(page):
    return page.locator(".msg.bot").all_inner_texts()


def test_chat_turn_with_materials_and_chips(page):
    assert "您好" in page.locator(".msg.bot").first.inner_text()
    page.fill("#input", "我想办社保卡要带什么")
    page.press("#input", "Enter")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.msg.bot')].some(e => e.textContent.includes('社会保障卡申领'))",
        timeout=15000,
    )
    assert page.locator(".msg.user").last.inner_text() == "我想办社保卡要带什么"
    answer = [t for t in bot_texts(page) if "社会保障卡申领" in t][-1]
    assert "1. 居民身份证" in answer
    chips = page.locator(".chip:not([disabled])")
    assert chips.count() >= 2
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "chat-360.png"))
    # A quick reply shows its title and asks with its payload.
    title = chips.first.inner_text()
    count = page.locator(".msg.bot").count()
    chips.first.click()
    page.wait_for_function(f"() => document.querySelectorAll('.msg.bot').length > {count}", timeout=15000)
    assert page.locator(".msg.user").last.inner_text() == title
    assert "社会保障卡申领" in bot_texts(page)[-1]


def test_fits_a_360px_screen(page):
    width = page.evaluate("() => document.scrollingElement.scrollWidth")
    assert width <= 360
    assert page.locator("#human").is_visible()
    size = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('#input')).fontSize)")
    assert size >= 16


def test_human_button_opens_a_ticket(page):
    count = page.locator(".msg.bot").count()
    page.click("#human")
    page.wait_for_function(f"() => document.querySelectorAll('.msg.bot').length > {count}", timeout=15000)
    assert "人工服务" in bot_texts(page)[-1]
    # The handoff status bar: waiting in the queue, with a way back to the assistant.
    page.wait_for_selector("#handoff-bar", state="visible", timeout=5000)
    assert page.locator("#handoff-cancel").is_visible()
    page.click("#handoff-cancel")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.msg')].some(e => e.textContent.includes('已取消人工服务'))",
        timeout=15000,
    )
    page.wait_for_selector("#handoff-bar", state="hidden", timeout=5000)
    # The notice comes in the reply and on the live stream: shown once.
    page.wait_for_timeout(2000)
    shown = [t for t in page.locator(".msg").all_inner_texts() if "已取消人工服务" in t]
    assert len(shown) == 1


def test_session_token_is_stored_and_sent(page):
    page.wait_for_function("() => !!localStorage.getItem('banshi_chat_session')", timeout=10000)
    stored = page.evaluate("() => JSON.parse(localStorage.getItem('banshi_chat_session'))")
    assert stored["sender_id"].startswith("web-") and stored["token"]
    # A stale token: the page starts a new conversation and still gets an answer.
    page.evaluate(
        """() => { const s = JSON.parse(localStorage.getItem('banshi_chat_session'));
                   s.token = 'stale'; localStorage.setItem('banshi_chat_session', JSON.stringify(s)); }"""
    )
    page.reload()
    page.fill("#input", "护照要带什么")
    page.press("#input", "Enter")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.msg.bot')].some(e => e.textContent.includes('护照'))",
        timeout=15000,
    )
    fresh = page.evaluate("() => JSON.parse(localStorage.getItem('banshi_chat_session'))")
    assert fresh["sender_id"] != stored["sender_id"] and fresh["token"] != "stale"


def test_server_text_is_not_html(page):
    page.fill("#input", "<b>护照</b>要带什么")
    page.press("#input", "Enter")
    page.wait_for_function("() => document.querySelectorAll('.msg.user').length >= 1")
    assert page.locator(".msg.user b").count() == 0
