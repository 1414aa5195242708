"""Knowledge administration in headless Chromium with the real gateway, model and action
server: an admin logs in on /admin/catalog, finds the passport, changes its fee,
previews the chat answer, publishes with a reason; the web chat then answers with the
new fee (no retraining); the history shows the change and one click puts the file's
version back. No CSP violation or script error on the way."""

from __future__ import annotations

import re
import uuid
from typing import List

import pytest

from .conftest import SHOTS

pytestmark = [pytest.mark.browser, pytest.mark.model]

PASSWORD = "catalog-e2e-password-1"
NEW_FEE = "普通护照每本128元（页面发布测试）。"
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
  {directive: e.violatedDirective, blocked: e.blockedURI}));
"""
TURN_MS = 30000


@pytest.fixture(scope="module")
def admin_name(settings, live_server):
    from assistant.security.accounts import create_operator

    name = f"catalog.e2e.{uuid.uuid4().hex[:6]}"
    create_operator(settings.db_url, name, PASSWORD, role="admin", display_name="事项管理员")
    return name


def ask(page, text: str) -> str:
    before = page.locator(".msg.bot").count()
    page.fill("#input", text)
    page.press("#input", "Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('.msg.bot').length > n", arg=before, timeout=TURN_MS
    )
    page.wait_for_timeout(300)  # the rest of the turn's bubbles
    return "\n".join(page.locator(".msg.bot").all_inner_texts()[before:])


def test_admin_edits_a_fee_previews_publishes_and_the_chat_answers_with_it(browser, live_server, admin_name):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(20000)
    page.add_init_script(WATCH)
    errors: List[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        response = page.goto(live_server + "/admin/catalog")
        assert response is not None and response.status == 401
        page.fill("#username", admin_name)
        page.fill("#password", PASSWORD)
        with page.expect_navigation():
            page.click("#login-btn")
        page.wait_for_selector("#records button")

        page.fill("#search", "护照")
        page.click("#search-btn")
        page.wait_for_selector("#records button[data-id='passport']")
        page.click("#records button[data-id='passport']")
        page.wait_for_selector("#editor", state="visible")
        old_fee = page.input_value("#f-fees")
        assert "120元" in old_fee

        page.fill("#f-fees", NEW_FEE)
        page.click("#preview-btn")
        page.wait_for_selector("#preview-box", state="visible")
        fee_answer = page.inner_text("#preview .answer[data-question='fee'] .answer-text")
        assert NEW_FEE in fee_answer and "来源" in fee_answer

        page.click("#publish-btn")  # without a reason: refused on the page
        assert "修改原因" in page.inner_text("#error")
        page.fill("#reason", "收费标准调整（页面测试）")
        page.click("#publish-btn")
        page.wait_for_function("() => document.querySelector('#status').textContent.includes('已发布')")
        page.wait_for_selector("#history tr")
        assert "收费标准调整（页面测试）" in page.inner_text("#history")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "catalog-admin.png"), full_page=True)

        chat = context.new_page()
        chat.set_default_timeout(TURN_MS)
        chat.goto(live_server + "/")
        answer = ask(chat, "办护照要多少钱")
        assert NEW_FEE.rstrip("。") in answer, answer
        assert fee_answer.splitlines()[0] in answer  # the preview is the chat's own text

        page.click("#revert-file")
        page.wait_for_function("() => document.querySelector('#status').textContent.includes('已恢复')")
        assert page.input_value("#f-fees") == old_fee
        assert re.search(r"恢复为目录文件版本", page.inner_text("#history"))
        assert page.evaluate("() => window.__csp") == []
        assert [e for e in errors if not re.search(r"status of (401|403|422)", e)] == []
    finally:
        context.close()
