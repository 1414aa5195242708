"""The improvement loop in two browsers (headless Chromium, real gateway, model and
action server): an operator asks the desk for suggestions on a caller's question and
marks the first one "不对"; an admin opens /admin/reviews, finds it in the queue —
masked — assigns the right item and intent and accepts it, the open count going down;
the accepted review says where it went (a situation of the item, a training example);
the item's history on /admin/catalog shows the revision, reverted in one click; no CSP
violation or script error on the page, and axe-core finds nothing."""

from __future__ import annotations

import re
from typing import List

import pytest

from .conftest import SHOTS

pytestmark = [pytest.mark.browser, pytest.mark.model]

OPERATOR, ADMIN, PASSWORD = "review.op", "review.admin", "review-e2e-password-1"
QUESTION = "我叫王五，电话13712345678，孩子刚出生上户口要带什么"
MASKED = "我叫王*，电话137****5678，孩子刚出生上户口要带什么"
SITUATION = "孩子刚出生上户口要带什么"  # what accepting adds to the item: no personal data
ITEM = "birth_registration"
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
  {directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber}));
"""
EXPECTED = re.compile(r"status of (401|403) |Permissions-Policy header: Unrecognized feature")


@pytest.fixture(scope="module")
def accounts_made(settings, live_server):
    from assistant.security.accounts import DuplicateUsername, create_operator

    for name, role in ((OPERATOR, "operator"), (ADMIN, "admin")):
        try:
            create_operator(settings.db_url, name, PASSWORD, role=role, display_name="审核员" if role == "admin" else "坐席")
        except DuplicateUsername:
            pass


def _page(browser, console: List[str]):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(30000)
    page.add_init_script(WATCH)
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    return context, page


def test_a_wrong_mark_on_the_desk_reaches_the_review_queue(browser, live_server, accounts_made):
    console: List[str] = []
    desk_context, desk = _page(browser, [])
    desk.goto(live_server + "/desk")
    desk.wait_for_selector("#login-form", state="visible")
    desk.fill("#username", OPERATOR)
    desk.fill("#password", PASSWORD)
    desk.click("#login-btn")
    desk.wait_for_selector("#desk", state="visible")
    desk.fill("#assist-text", QUESTION)
    desk.click("#assist-go")
    first = desk.locator(".suggestion").first
    first.wait_for(state="visible")
    suggested = first.locator(".item-name").inner_text()
    first.locator(".wrong").click()
    desk.wait_for_function("() => document.querySelector('.suggestion .s-note').textContent.includes('已记录')")
    desk_context.close()

    context, page = _page(browser, console)
    response = page.goto(live_server + "/admin/reviews?reason=wrong_mark")
    assert response is not None and response.status == 401
    page.fill("#username", ADMIN)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("#login-btn")
    page.wait_for_selector("body[data-loaded='1']")
    assert page.title() == "待审核消息 - 办事助手"
    # The admin pages link to each other; this one is marked as the current page.
    nav = page.locator("#admin-nav a")
    assert nav.all_inner_texts() == ["数据分析", "事项管理", "待审核消息", "人工坐席"]
    assert page.locator("#admin-nav a[aria-current='page']").inner_text() == "待审核消息"
    assert page.inner_text("#who")  # the signed-in admin's name (admin.js)
    row = page.locator("#rows tr", has_text=MASKED)
    row.wait_for(state="visible")
    text = row.inner_text()
    assert "坐席标记建议有误" in text and suggested in text
    assert "13712345678" not in page.content() and "王五" not in page.content()
    open_before = int(page.get_attribute("body", "data-open"))
    assert open_before >= 1
    trend = page.evaluate("""() => { const c = Chart.getChart(document.getElementById('chart-trend'));
        return c ? [c.data.labels.length, c.data.datasets[0].data[c.data.datasets[0].data.length - 1]] : null; }""")
    assert trend == [30, open_before]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "review-queue.png"), full_page=True)

    # Assign the right item and intent, then accept it: it leaves the open queue.
    row.locator("button.open-review").click()
    page.wait_for_selector("#editor", state="visible")
    assert MASKED in page.inner_text("#editor-text")
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"resultTypes": ["violations"]})
    assert results.violations_count == 0, results.generate_report()
    page.select_option("#assign-item", ITEM)
    page.select_option("#assign-intent", "ask_materials")
    assert page.is_disabled("#accept-btn")
    page.click("#assign-btn")
    page.wait_for_function("() => !document.querySelector('#accept-btn').disabled")
    row = page.locator("#rows tr", has_text=MASKED)
    page.wait_for_function("t => [...document.querySelectorAll('#rows tr')].some(r => r.textContent.includes(t) && r.textContent.includes('待审核'))", arg=MASKED)
    page.click("#accept-btn")
    page.wait_for_selector("#editor", state="hidden")
    page.wait_for_function("n => Number(document.body.dataset.open) === n - 1", arg=open_before)
    assert page.locator("#rows tr", has_text=MASKED).count() == 0
    page.select_option("#state", "done")
    page.click("#apply")
    page.wait_for_function("t => [...document.querySelectorAll('#rows tr')].some(r => r.textContent.includes(t))", arg=MASKED)
    done = page.locator("#rows tr", has_text=MASKED)
    assert "已完成" in done.inner_text()
    # Where it went: a situation of the item, live (a catalog revision), and a training
    # example for the next training. No personal data in the situation.
    situation = done.locator(".destinations li[data-kind='situation']").inner_text()
    assert situation.startswith("已添加为事项") and "实时生效" in situation
    assert "等待下次训练" in done.locator(".destinations li[data-kind='training']").inner_text()
    revision = re.search(r"#(\d+)", situation).group(1)

    # The item's history on the catalog page shows it; one click reverts it.
    page.goto(live_server + "/admin/catalog")
    page.fill("#search", ITEM)
    page.click("#search-btn")
    page.click(f"#records button[data-id='{ITEM}']")
    page.wait_for_selector("#history tr")
    latest = page.locator("#history tr").first.inner_text()
    assert latest.startswith(revision) and "审核采纳：" in latest and ADMIN in latest
    assert SITUATION in page.input_value("#f-situations").splitlines() and "137" not in page.inner_text("#history")
    rows = page.locator("#history tr").count()
    if rows > 1:
        page.locator("#history tr").nth(1).locator("button.revert").click()
    else:
        page.click("#revert-file")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('已恢复')")
    page.goto(live_server + "/admin/reviews?state=done")
    page.wait_for_selector("body[data-loaded='1']")
    assert "此后已撤回" in page.locator("#rows tr", has_text=MASKED).locator(".destinations").inner_text()
    problems = page.evaluate("() => window.__csp") + [m for m in console if not EXPECTED.search(m)]
    assert problems == []
    context.close()
