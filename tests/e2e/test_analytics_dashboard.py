"""The analytics dashboard in headless Chromium with a seeded week (tests/analytics_seed.py):
an admin logs in on the page's own form, every chart is drawn from the week's data
(Chart.js canvases holding the numbers the API gives), the not-understood list is
masked, filters redraw the charts, the CSV links follow the filters — without one CSP
violation or console error; an operator gets the refusal; axe-core finds nothing."""

from __future__ import annotations

import re
from typing import List

import pytest

from assistant.api.app import create_app
from assistant.security import accounts
from tests.analytics_seed import FIRST_DAY, LAST_DAY, seed_week
from tests.conftest import isolated_settings, serve_in_thread

from .conftest import SHOTS

pytestmark = [pytest.mark.browser]

ADMIN, OPERATOR, PASSWORD = "analytics.admin", "analytics.op", "analytics-e2e-password"
WEEK = f"start={FIRST_DAY.isoformat()}&end={LAST_DAY.isoformat()}"
CHARTS = ("chart-conversations", "chart-understood", "chart-handoffs", "chart-reasons", "chart-response",
          "chart-rating-items", "chart-rating-channels", "chart-items", "chart-questions", "chart-notices")
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
  {directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber}));
"""
# Every chart's data: [sum of all its values, number of labels] (Chart.js keeps them on the canvas).
CHART_DATA = """ids => ids.map(id => {
  const chart = Chart.getChart(document.getElementById(id));
  if (!chart) return null;
  const values = chart.data.datasets.flatMap(d => d.data).filter(v => typeof v === 'number');
  return [values.reduce((a, b) => a + b, 0), chart.data.labels.length, chart.canvas.width];
})"""


@pytest.fixture(scope="module")
def server(settings, tmp_path_factory):
    # No background rollup: the week is seeded in the past after the server started.
    config = isolated_settings(settings, tmp_path_factory.mktemp("dashboard"), timezone="Asia/Shanghai",
                               analytics_rollup_minutes=0)
    app = create_app(config, load_model=False)
    with serve_in_thread(app) as url:
        seed_week(config)
        accounts.create_operator(config.db_url, ADMIN, PASSWORD, role="admin", display_name="数据管理员")
        accounts.create_operator(config.db_url, OPERATOR, PASSWORD, role="operator")
        yield url


class Watched:
    def __init__(self, browser, base: str) -> None:
        self.context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
        self.page = self.context.new_page()
        self.page.set_default_timeout(20000)
        self.page.add_init_script(WATCH)
        self.console: List[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.base = base

    def login(self, path: str, username: str):
        response = self.page.goto(self.base + path)
        assert response is not None and response.status == 401
        self.page.fill("#username", username)
        self.page.fill("#password", PASSWORD)
        with self.page.expect_navigation():
            self.page.click("#login-btn")
        return self.page

    def problems(self) -> List:
        """CSP violations, script errors and console messages, less the expected ones:
        the refusals this test asks for (the 401 login page, the 403 refusal, the 422
        of a range too long) and Chromium's notes on the app-wide Permissions-Policy."""
        expected = re.compile(r"status of (401|403|422) |Permissions-Policy header: Unrecognized feature")
        return self.page.evaluate("() => window.__csp") + [m for m in self.console if not expected.search(m)]


@pytest.fixture
def watched(browser, server):
    opened: List[Watched] = []

    def make() -> Watched:
        opened.append(Watched(browser, server))
        return opened[-1]

    yield make
    for item in opened:
        item.context.close()


def loaded(page) -> None:
    page.wait_for_selector("body[data-loaded='1']")


def test_the_dashboard_draws_the_seeded_week(watched, server):
    view = watched()
    page = view.login(f"/admin/analytics?{WEEK}", ADMIN)
    loaded(page)
    assert page.title() == "数据分析 - 办事助手"
    assert page.input_value("#start") == FIRST_DAY.isoformat() and page.input_value("#end") == LAST_DAY.isoformat()
    assert page.text_content("#who") == "数据管理员"
    charts = page.evaluate(CHART_DATA, list(CHARTS))
    for chart_id, found in zip(CHARTS, charts):
        assert found is not None, f"{chart_id}: no chart"
        total, labels, width = found
        assert total > 0 and labels > 0 and width > 0, (chart_id, found)
    # The charts hold the report's numbers: conversations per day add up to the week's.
    report = page.evaluate(
        "q => fetch('/api/v1/admin/analytics/report?' + q, {credentials: 'same-origin'}).then(r => r.json())", WEEK)
    conversations = page.evaluate(CHART_DATA, ["chart-conversations"])[0][0]
    assert conversations == sum(r["conversations"] for r in report["tables"]["conversations_daily"]["rows"])
    assert page.evaluate(CHART_DATA, ["chart-conversations"])[0][1] == 7
    # Totals and the masked list of what was not understood.
    totals = page.locator("#totals").inner_text()
    assert "会话数" in totals and str(report["totals"]["conversations"]) in totals
    rows = page.locator("#not-covered tr")
    assert rows.count() == len(report["tables"]["not_covered"]["rows"]) > 0
    listed = page.locator("#not-covered").inner_text()
    assert "我叫张* 电话138****5678" in listed and "13812345678" not in listed
    # How fresh the turns are (the report's rolled_up_at), in small text under the status.
    assert report["range"]["rolled_up_at"] and page.text_content("#freshness").startswith("对话数据统计于 20")
    # CSV links carry the filters.
    href = page.get_attribute("a.csv[data-table='top_items']", "href")
    assert href == f"/api/v1/admin/analytics/export/top_items.csv?{WEEK}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "analytics-dashboard.png"), full_page=True)

    # Filter by a channel: the charts are drawn again from WeChat's turns only.
    page.select_option("#channel", "wechat")
    page.click("#apply")
    page.wait_for_function("() => location.search.includes('channel=wechat')")
    loaded(page)
    labels = page.evaluate(
        "() => Chart.getChart(document.getElementById('chart-conversations')).data.datasets.map(d => d.label)")
    assert labels == ["微信"]
    wechat = page.evaluate(
        "q => fetch('/api/v1/admin/analytics/report?' + q + '&channel=wechat').then(r => r.json())", WEEK)
    assert page.evaluate(CHART_DATA, ["chart-conversations"])[0][0] == sum(
        r["conversations"] for r in wechat["tables"]["conversations_daily"]["rows"])
    assert page.get_attribute("a.csv[data-table='top_items']", "href").endswith("&channel=wechat")
    # A range that is too long is refused with a clear message, the charts stay.
    page.fill("#start", "2020-01-01")
    page.click("#apply")
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error") == "统计范围最长366天，请缩短日期范围"
    assert view.problems() == []


def test_an_operator_is_refused_and_can_log_out(watched):
    view = watched()
    page = view.login(f"/admin/analytics?{WEEK}", OPERATOR)
    assert "没有权限" in page.text_content("h1")
    assert page.locator("canvas").count() == 0
    with page.expect_navigation():
        page.click("#logout")
    assert page.locator("#login-form").count() == 1
    assert view.problems() == []


def test_axe_finds_no_violations(watched):
    from axe_playwright_python.sync_playwright import Axe

    view = watched()
    page = view.login(f"/admin/analytics?{WEEK}", ADMIN)
    loaded(page)
    results = Axe().run(page, options={"resultTypes": ["violations"]})
    assert results.violations_count == 0, results.generate_report()
