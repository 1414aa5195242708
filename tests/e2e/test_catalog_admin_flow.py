"""Knowledge administration in headless Chromium with the real gateway, model and action
server: an admin logs in on /admin/catalog, finds the passport, changes its fee,
previews the chat answer, publishes with a reason; the web chat then answers with the
new fee (no retraining); the history shows the change and one click puts the file's
version back. An admin adds a material in the row editor (keyboard only), sees a
problem next to the field it is about, moves the card, publishes, and the chat lists
the material; the history shows what a version changed, the fee before → after
highlighted. No CSP violation or script error on the way."""

from __future__ import annotations

import re
import uuid
from contextlib import contextmanager
from typing import Iterator, List, Tuple

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


@contextmanager
def passport_editor(browser, live_server: str, admin_name: str) -> Iterator[Tuple]:
    """(context, page, errors): the admin signed in on /admin/catalog with the passport
    open; at the end, no CSP violation and no script error."""
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
        yield context, page, errors
        assert page.evaluate("() => window.__csp") == []
        assert [e for e in errors if not re.search(r"status of (401|403|422)", e)] == []
    finally:
        context.close()


def publish(page, reason: str) -> None:
    page.fill("#reason", reason)
    page.click("#publish-btn")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('已发布')")


def revert_to_file(page) -> None:
    page.click("#revert-file")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('已恢复')")


def test_admin_edits_a_fee_previews_publishes_and_the_chat_answers_with_it(browser, live_server, admin_name):
    with passport_editor(browser, live_server, admin_name) as (context, page, errors):
        old_fee = page.input_value("#f-fees")
        assert "120元" in old_fee

        page.fill("#f-fees", NEW_FEE)
        page.click("#preview-btn")
        page.wait_for_selector("#preview-box", state="visible")
        fee_answer = page.inner_text("#preview .answer[data-question='fee'] .answer-text")
        assert NEW_FEE in fee_answer and "来源" in fee_answer

        page.click("#publish-btn")  # without a reason: refused on the page
        assert "修改原因" in page.inner_text("#error")
        publish(page, "收费标准调整（页面测试）")
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

        revert_to_file(page)
        assert page.input_value("#f-fees") == old_fee
        assert re.search(r"恢复为目录文件版本", page.inner_text("#history"))


NEW_MATERIAL = "居住地村（居）委会出具的居住证明"
CONDITION = "户籍不在本市的"


def focused_field(page) -> str:
    return page.evaluate("() => document.activeElement.dataset.field || ''")


def test_admin_adds_a_material_in_the_row_editor_and_the_chat_lists_it(browser, live_server, admin_name):
    with passport_editor(browser, live_server, admin_name) as (context, page, errors):
        cards = page.locator("#materials .row-card")
        before = cards.count()
        assert before >= 3 and page.input_value("#materials-0-name") == "居民身份证"
        assert page.is_checked("#materials-0-required")

        # Keyboard only: the add button, then the new card's fields in tab order.
        page.focus("#add-material")
        page.keyboard.press("Enter")
        assert cards.count() == before + 1
        new = before
        assert focused_field(page) == f"materials[{new}].name"
        page.keyboard.type(NEW_MATERIAL)
        assert NEW_MATERIAL in page.inner_text(f"#materials-{new}-title")
        page.keyboard.press("Enter")  # in a field: neither publishes nor asks for the reason
        assert page.is_hidden("#error") and focused_field(page) == f"materials[{new}].name"
        page.keyboard.press("Tab")
        page.keyboard.press("ArrowDown")  # 原件 → 复印件
        assert page.input_value(f"#materials-{new}-form") == "copy"
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        assert focused_field(page) == f"materials[{new}].e_license"
        page.keyboard.press("Tab")
        page.keyboard.press("Space")  # not required … and no condition yet
        assert not page.is_checked(f"#materials-{new}-required")

        page.click("#validate-btn")
        problem = page.wait_for_selector(f".field-problem[data-for='materials[{new}].condition']")
        assert "非必需的材料要写明在什么情况下需要" in problem.text_content()
        assert page.evaluate(  # beside the condition input of that card, which has the focus
            f"() => document.querySelector('#materials-{new}-condition').closest('.field')"
            f".contains(document.querySelector(\".field-problem[data-for='materials[{new}].condition']\"))"
        )
        assert page.get_attribute(f"#materials-{new}-condition", "aria-invalid") == "true"
        assert focused_field(page) == f"materials[{new}].condition"
        assert page.locator(".field-problem").count() == 1
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.locator(f"#materials .row-card:nth-child({new + 1})").screenshot(path=str(SHOTS / "catalog-material-problem.png"))
        page.keyboard.type(CONDITION)

        page.click(f"#materials .row-card:nth-child({new + 1}) .row-up")  # one place up
        assert page.input_value(f"#materials-{new - 1}-name") == NEW_MATERIAL
        assert page.input_value(f"#materials-{new - 1}-condition") == CONDITION
        assert focused_field(page) == "" and page.evaluate("() => document.activeElement.dataset.action") == "up"
        publish(page, "增加居住证明（页面测试）")
        assert page.locator(".field-problem").count() == 0
        assert page.input_value(f"#materials-{new - 1}-name") == NEW_MATERIAL  # reloaded from the server

        chat = context.new_page()
        chat.set_default_timeout(TURN_MS)
        chat.goto(live_server + "/")
        answer = ask(chat, "办护照要带什么材料")
        assert NEW_MATERIAL in answer, answer

        page.click("#history tr:first-child .show-diff")
        page.wait_for_selector("#diff-box", state="visible")
        change = page.inner_text("#diff .change[data-field='materials']")
        assert "新增" in change and NEW_MATERIAL in change and "复印件1份" in change
        assert page.locator("#diff .change.important").count() == 0  # the fee did not change
        revert_to_file(page)
        assert NEW_MATERIAL not in [page.input_value(f"#materials-{i}-name") for i in range(cards.count())]


def test_the_history_shows_the_fee_before_and_after(browser, live_server, admin_name):
    with passport_editor(browser, live_server, admin_name) as (context, page, errors):
        old_fee = page.input_value("#f-fees")
        page.fill("#f-fees", NEW_FEE)
        page.fill("#f-aliases", page.input_value("#f-aliases") + "\n护照差异测试")
        situations = page.input_value("#f-situations")
        page.fill("#f-situations", situations + "\n普通护照签发要多久")  # names the service: refused
        page.click("#validate-btn")
        problem = page.wait_for_selector(".field-problem[data-for^='situations[']")
        assert "直接写了事项名称" in problem.text_content()
        assert page.evaluate("p => document.querySelector('#f-situations').closest('.field').contains(p)", problem)
        assert page.evaluate("() => document.activeElement.id") == "f-situations"
        page.fill("#f-situations", situations)
        publish(page, "收费标准调整（差异测试）")
        page.click("#history tr:first-child .show-diff")
        page.wait_for_selector("#diff-box", state="visible")
        fee = page.locator("#diff .change.important")
        assert fee.count() == 1 and fee.get_attribute("data-field") == "fees"
        assert page.evaluate("() => document.querySelector('#diff .change').dataset.field") == "fees"  # first
        assert "收费标准有变动" in fee.inner_text()
        assert fee.locator("del").inner_text() == old_fee and fee.locator("ins").inner_text() == NEW_FEE
        assert "护照差异测试" in page.inner_text("#diff .change[data-field='aliases']")
        assert page.get_attribute("#history tr:first-child .show-diff", "aria-expanded") == "true"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.locator("#history-box").screenshot(path=str(SHOTS / "catalog-diff.png"))
        revert_to_file(page)
        assert page.input_value("#f-fees") == old_fee
