"""The pages work under their Content-Security-Policy: in headless Chromium, the chat,
the desk and the kiosk (fetch, server-sent events, the audio worklet, the voice
WebSocket, speech played from blobs) run a turn each without one CSP violation."""

from __future__ import annotations

from typing import Dict, List

import pytest

from .conftest import launch_browser

pytestmark = [pytest.mark.browser, pytest.mark.model]

USERNAME, PASSWORD = "csp-op", "csp-password-123"
# Records every violation the page reports, from before its first script runs.
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
  {directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber}));
"""


@pytest.fixture(scope="module")
def browser():
    with launch_browser(["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]) as launched:
        yield launched


class Watched:
    def __init__(self, browser, live_server: str, viewport: Dict[str, int]) -> None:
        self.context = browser.new_context(viewport=viewport, locale="zh-CN")
        self.context.grant_permissions(["microphone"], origin=live_server)
        self.page = self.context.new_page()
        self.page.add_init_script(WATCH)
        self.console: List[str] = []
        self.page.on("console", lambda message: self.console.append(message.text))
        self.base = live_server

    def open(self, path: str):
        response = self.page.goto(self.base + path)
        assert response is not None and response.status == 200
        assert "script-src 'self'" in response.headers["content-security-policy"]
        return self.page

    def violations(self) -> List:
        reported = self.page.evaluate("() => window.__csp")
        console = [line for line in self.console if "Content Security Policy" in line]
        return reported + console


@pytest.fixture
def watched(browser, live_server):
    opened: List[Watched] = []

    def make(viewport=None) -> Watched:
        opened.append(Watched(browser, live_server, viewport or {"width": 360, "height": 740}))
        return opened[-1]

    yield make
    for item in opened:
        item.context.close()


def test_chat_page_runs_under_the_policy(watched):
    view = watched()
    page = view.open("/")
    page.wait_for_selector(".msg.bot")
    count = page.locator(".msg.bot").count()
    page.fill("#input", "社保卡要带什么材料")
    page.press("#input", "Enter")
    page.wait_for_function("n => document.querySelectorAll('.msg.bot').length > n", arg=count, timeout=30000)
    assert view.violations() == []
    # The watch works: an inline script the page did not have is blocked and reported.
    page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1';"
                  " document.body.appendChild(s); }")
    page.wait_for_function("() => window.__csp.length > 0")
    assert page.evaluate("() => window.__ran") is None
    assert view.violations()[0]["directive"].startswith("script-src")


def test_desk_page_runs_under_the_policy(watched, settings):
    from assistant.security.accounts import DuplicateUsername, create_operator

    try:
        create_operator(settings.db_url, USERNAME, PASSWORD, display_name="安全")
    except DuplicateUsername:
        pass
    view = watched({"width": 1280, "height": 800})
    page = view.open("/desk")
    page.wait_for_selector("#login-form", state="visible")
    page.fill("#username", USERNAME)
    page.fill("#password", PASSWORD)
    page.click("#login-btn")
    page.wait_for_selector("#desk", state="visible")  # the queue and its event stream
    page.wait_for_timeout(1500)
    assert view.violations() == []


def test_kiosk_page_runs_under_the_policy(watched):
    view = watched({"width": 1080, "height": 1920})
    page = view.open("/kiosk")
    page.wait_for_selector("body[data-ready='1']", timeout=60000)
    page.wait_for_function("() => !!document.body.getAttribute('data-session')", timeout=10000)
    # A touch turn: the answer is spoken (speech played from a blob).
    page.get_by_role("button", name="社保卡", exact=True).click()
    page.wait_for_function("() => document.querySelector('#answer').innerText.includes('社会保障卡')", timeout=30000)
    # Hold to talk: the audio worklet and the voice WebSocket (the fake microphone beeps).
    box = page.locator("#talk").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.wait_for_timeout(1200)
    page.mouse.up()
    page.wait_for_function(
        "() => document.querySelector('#transcript').textContent.trim() !== '社保卡'", timeout=30000
    )
    assert view.violations() == []
