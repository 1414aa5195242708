"""The whole human-handoff loop in two browsers: a citizen in the web chat and an
operator at the desk (headless Debian chromium driven by Playwright, real gateway,
real model, real action server).

The citizen asks, asks for a person, gets the operator's answer live, writes back;
the operator logs in, sees the ticket arrive live, reads the summary, takes a
suggested answer, sends it and hands the conversation back to the assistant,
which then answers again.
"""

import re
import time

import pytest

from .conftest import SHOTS
from tests.e2e.webchat import TURN_MS, ask, wait_bot_text

pytestmark = [pytest.mark.browser, pytest.mark.model]

USERNAME = "desk.e2e"
PASSWORD = "desk-e2e-password-1"
DISPLAY_NAME = "测试坐席"
# Bot turns right after start-up are slower than the ~50 ms of a warm model.
# Live updates (handoff relay, desk events) arrive within a second or two.
LIVE_MS = 15000

@pytest.fixture(scope="module")
def operator(settings, live_server):
    from assistant.security.accounts import DuplicateUsername, create_operator

    try:
        create_operator(settings.db_url, USERNAME, PASSWORD, display_name=DISPLAY_NAME)
    except DuplicateUsername:
        pass
    return USERNAME


@pytest.fixture
def citizen(browser, live_server):
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(TURN_MS)
    page.goto(live_server + "/")
    yield page
    context.close()


@pytest.fixture
def desk(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(LIVE_MS)
    page.goto(live_server + "/desk")
    yield page
    context.close()


def login(page, username, password):
    page.wait_for_selector("#login-form", state="visible")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-btn")
    page.wait_for_selector("#desk", state="visible")


def stored_marks(settings, ticket_id):
    from sqlalchemy import select

    from assistant.storage.database import session_factory
    from assistant.storage.tables import SuggestionMark

    with session_factory(settings.db_url)() as session:
        rows = session.execute(
            select(SuggestionMark).where(SuggestionMark.ticket_id == ticket_id)
        ).scalars().all()
        return [(row.mark, row.operator, row.rank, row.item_id) for row in rows]


def test_login_errors_are_shown_in_chinese(desk, operator):
    desk.wait_for_selector("#login-form", state="visible")
    desk.fill("#username", operator)
    desk.fill("#password", "not-the-password")
    desk.click("#login-btn")
    desk.wait_for_selector("#login-error", state="visible")
    assert "用户名或密码不正确" in desk.inner_text("#login-error")
    assert desk.locator("#desk").is_hidden()


def test_handoff_loop(citizen, desk, operator, settings):
    # 1. The citizen asks and the assistant answers.
    before = ask(citizen, "我想办社保卡要带什么")
    answer = wait_bot_text(citizen, "社会保障卡申领", after=before)
    assert "居民身份证" in answer

    # 2. The operator is logged in and watching the live queue.
    login(desk, operator, PASSWORD)
    assert DISPLAY_NAME in desk.inner_text("#operator-name")
    desk.wait_for_function("() => document.querySelector('#conn').textContent.includes('正常')")

    # 3. The citizen asks for a person and is told they are in the queue.
    before = citizen.locator(".msg.bot").count()
    citizen.click("#human")
    notice = wait_bot_text(citizen, "人工服务", after=before)
    ticket_id = int(re.search(r"编号\s*(\d+)", notice).group(1))
    citizen.wait_for_selector("#handoff-bar", state="visible", timeout=LIVE_MS)
    assert "人工服务" in citizen.inner_text("#handoff-status")
    assert citizen.locator("#handoff-cancel").is_visible()

    # 4. The ticket arrives on the desk without a reload.
    item = desk.locator(f'.ticket-item[data-id="{ticket_id}"]')
    item.wait_for(state="visible", timeout=LIVE_MS)
    assert "社会保障卡申领" in item.inner_text()
    assert int(desk.inner_text("#queue-count")) >= 1

    # 5. The operator opens it: the summary says what the citizen wanted.
    item.click()
    desk.wait_for_selector("#ticket", state="visible")
    desk.wait_for_function(
        "(id) => document.querySelector('#ticket-title').textContent.includes('#' + id)", arg=ticket_id
    )
    assert "社会保障卡申领" in desk.inner_text("#sum-item")
    assert "社保卡" in desk.inner_text("#sum-question")
    assert desk.inner_text("#sum-answer").strip() not in ("", "—")
    assert desk.input_value("#assist-text").strip()  # prefilled with the question

    # 6. Suggested answers; the first one goes into the reply and is sent.
    desk.click("#assist-go")
    first = desk.locator(".suggestion").first
    first.wait_for(state="visible", timeout=TURN_MS)
    assert 1 <= desk.locator(".suggestion").count() <= 3
    assert "社会保障卡申领" in first.locator(".item-name").inner_text()
    assert re.fullmatch(r"\d{1,3}%", first.locator(".confidence").inner_text().strip())
    first.locator(".insert").click()
    reply = desk.input_value("#reply")
    assert reply.strip() and reply.strip() in first.locator(".answer").inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    desk.screenshot(path=str(SHOTS / "desk-1280.png"))
    desk.click("#send-reply")
    desk.wait_for_selector("#conversation .msg.operator")
    assert desk.input_value("#reply") == ""

    # 7. The citizen sees the operator's reply live, and that a person is there.
    citizen.wait_for_selector(".msg.operator", timeout=LIVE_MS)
    shown = citizen.locator(".msg.operator").last.inner_text()
    assert shown.split() == reply.split()
    assert "工作人员" in citizen.locator(".row.operator .sender").last.inner_text()
    citizen.wait_for_function(
        "() => document.querySelector('#handoff-status').textContent.includes('工作人员已接入')",
        timeout=LIVE_MS,
    )
    assert citizen.locator("#handoff-cancel").is_hidden()

    # 8. The citizen writes back: the bot stays quiet, the desk shows the message.
    bots = citizen.locator(".msg.bot").count()
    ask(citizen, "好的，谢谢。大概多久能办好？")
    citizen.wait_for_function(
        "() => [...document.querySelectorAll('.msg.system')].some(e => e.textContent.includes('工作人员'))"
    )
    assert citizen.locator(".msg.bot").count() == bots
    desk.wait_for_function(
        """() => [...document.querySelectorAll('#conversation .msg.citizen')]
              .some(e => e.textContent.includes('大概多久能办好'))""",
        timeout=LIVE_MS,
    )
    assert "大概多久能办好" in desk.input_value("#assist-text")  # re-filled

    # The mark: the inserted answer was sent unchanged.
    deadline = time.monotonic() + 10
    while ("used", operator) not in [m[:2] for m in stored_marks(settings, ticket_id)]:
        assert time.monotonic() < deadline, stored_marks(settings, ticket_id)
        time.sleep(0.2)

    # 9. The operator hands the conversation back to the assistant.
    desk.click("#handback")
    desk.wait_for_selector("#ticket-closed", state="visible")
    assert "转回智能助手" in desk.inner_text("#ticket-closed")
    desk.wait_for_selector(f'.ticket-item[data-id="{ticket_id}"]', state="detached", timeout=LIVE_MS)
    citizen.wait_for_function(
        "() => [...document.querySelectorAll('.msg.system')].some(e => e.textContent.includes('转回智能助手'))",
        timeout=LIVE_MS,
    )
    citizen.wait_for_selector("#handoff-bar", state="hidden", timeout=LIVE_MS)

    # 10. The assistant answers again.
    before = ask(citizen, "社保卡要带什么材料")
    answer = wait_bot_text(citizen, "居民身份证", after=before)
    assert "社会保障卡" in answer
    SHOTS.mkdir(parents=True, exist_ok=True)
    citizen.screenshot(path=str(SHOTS / "chat-handoff-360.png"))


def test_phone_query_mode_without_a_ticket(desk, operator):
    login(desk, operator, PASSWORD)
    desk.click("#query-mode")
    desk.wait_for_selector("#ticket-empty", state="visible")
    desk.fill("#assist-text", "护照办理要多少钱")
    desk.press("#assist-text", "Control+Enter")
    first = desk.locator(".suggestion").first
    first.wait_for(state="visible", timeout=TURN_MS)
    assert "护照" in first.locator(".item-name").inner_text()
    assert first.locator(".qtype").inner_text() in {"收费标准", "办理概述", "所需材料", "办理条件",
                                                   "办理流程", "办理时限", "办理地点"}
    first.locator(".card summary").click()
    assert first.locator(".card dl").is_visible()
    first.locator(".wrong").click()
    desk.wait_for_function(
        "() => document.querySelector('.suggestion').classList.contains('marked-wrong')"
    )
    # Logging out returns to the login form.
    desk.click("#logout")
    desk.wait_for_selector("#login-form", state="visible")
