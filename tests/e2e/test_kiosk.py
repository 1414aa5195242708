"""The kiosk page in headless Chromium with a fake microphone that plays a WAV.

Hold-to-talk goes through the real pipeline: getUserMedia → AudioWorklet (16 kHz
PCM16) → WS /api/v1/voice/stream → Vosk (the Chinese model; the microphone plays
a service question in espeak-ng's Mandarin) → the dialogue → the spoken reply played by the
page. Then the touch and text fallback, the idle reset, sizes and axe-core.
"""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from tests.speech import QUESTION, mandarin_wav, require_voice

from .conftest import SHOTS, launch_browser

pytestmark = [pytest.mark.browser, pytest.mark.model]

START_TEXT = "按住下面的“按住说话”按钮，说出您要办的事，说完松开。"
PORTRAIT = {"width": 1080, "height": 1920}
LANDSCAPE = {"width": 1920, "height": 1080}


def microphone_wav(path: Path) -> Path:
    """A Mandarin question after 0.5 s of silence, as 16-bit PCM mono 16 kHz WAV."""
    raw = path.with_suffix(".espeak.wav")
    mandarin_wav(QUESTION, raw)
    with wave.open(str(raw), "rb") as reader:
        rate, frames = reader.getframerate(), reader.readframes(reader.getnframes())
    import numpy as np
    from scipy.signal import resample_poly

    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64)
    samples = resample_poly(samples, 16000, rate)
    pcm = np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16000)
        writer.writeframes(b"\x00\x00" * 8000 + pcm + b"\x00\x00" * 16000)
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory, settings):
    require_voice(settings)
    wav = microphone_wav(tmp_path_factory.mktemp("kiosk") / "mic.wav")
    fake_microphone = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}%noloop",
    ]
    with launch_browser(fake_microphone) as launched:
        yield launched


def without_barge_in(route):
    """The server's voice status with barge-in off: the fake microphone plays its
    question whenever it is opened, which would interrupt every spoken reply."""
    status = route.fetch().json()
    status["barge_in"]["enabled"] = False
    route.fulfill(json=status)


def open_kiosk(browser, live_server, path="/kiosk", viewport=PORTRAIT, init_script=None, status=None,
               barge_in=False):
    context = browser.new_context(viewport=viewport, locale="zh-CN")
    context.grant_permissions(["microphone"], origin=live_server)
    page = context.new_page()
    if init_script:
        page.add_init_script(init_script)
    if status is not None:
        page.route("**/api/v1/voice/status", lambda route: route.fulfill(json=status))
    elif not barge_in:
        page.route("**/api/v1/voice/status", without_barge_in)
    page.goto(live_server + path)
    page.wait_for_selector("body[data-ready='1']", timeout=60000)
    page.wait_for_function("() => !!document.body.getAttribute('data-session')", timeout=10000)
    return context, page


@pytest.fixture
def kiosk(browser, live_server):
    context, page = open_kiosk(browser, live_server)
    yield page
    context.close()


def answer_text(page) -> str:
    return page.inner_text("#answer")


def wait_answer(page, after: str, contains: str = "", timeout=30000) -> str:
    page.wait_for_function(
        "([after, contains]) => { const a = document.querySelector('#answer').innerText;"
        " return (document.body.getAttribute('data-answered') || '') !== after && a.includes(contains); }",
        arg=[after, contains],
        timeout=timeout,
    )
    return answer_text(page)


def answered_mark(page) -> str:
    return page.evaluate("() => document.body.getAttribute('data-answered') || ''")


def hold_to_talk(page, seconds: float) -> None:
    box = page.locator("#talk").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.wait_for_timeout(int(seconds * 1000))
    page.mouse.up()


# ------------------------------------------------------------------ voice
def test_hold_to_talk_transcribes_answers_and_speaks(kiosk):
    page = kiosk
    assert page.locator("#talk").is_enabled()
    # What goes over the voice WebSocket while the button is held, and what comes back.
    sent, received = [], []

    def watch(ws):
        ws.on("framesent", lambda frame: sent.append(frame))
        ws.on("framereceived", lambda frame: received.append(frame))

    page.on("websocket", watch)
    before = answered_mark(page)
    with page.expect_websocket() as ws_info:
        hold_to_talk(page, 3.5)
    assert "/api/v1/voice/stream" in ws_info.value.url and "elderly=0" in ws_info.value.url
    wait_answer(page, before, timeout=60000)
    transcript = page.inner_text("#transcript")
    assert "低保" in transcript, transcript  # the question was heard
    assert "最低生活保障" in answer_text(page)  # and answered about its item,
    assert "最低生活保障" in page.inner_text("#answer-label")  # which is named above the answer
    # Audio was streamed as binary frames while held; the server sent a final transcript.
    assert sum(isinstance(frame, bytes) for frame in sent) >= 5
    assert any(isinstance(frame, str) and '"final"' in frame for frame in received)
    assert answer_text(page).strip()
    # The reply is spoken: the <audio> element started playing.
    page.wait_for_function("() => Number(document.querySelector('#player').dataset.played || 0) >= 1",
                           timeout=30000)
    assert page.locator("#replay").is_enabled()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "kiosk-voice-1080x1920.png"))
    # 重听 plays it again.
    played = page.evaluate("() => Number(document.querySelector('#player').dataset.played)")
    page.click("#replay")
    page.wait_for_function(f"() => Number(document.querySelector('#player').dataset.played) > {played}",
                           timeout=15000)


def test_slow_speech_is_remembered_and_sent(kiosk):
    page = kiosk
    assert page.get_attribute("#slow", "aria-pressed") == "false"
    page.click("#slow")
    assert page.get_attribute("#slow", "aria-pressed") == "true"
    page.reload()
    page.wait_for_selector("body[data-ready='1']", timeout=30000)
    assert page.get_attribute("#slow", "aria-pressed") == "true"
    with page.expect_websocket() as ws_info:
        hold_to_talk(page, 1.0)
    assert "elderly=1" in ws_info.value.url
    page.click("#slow")
    assert page.evaluate("() => localStorage.getItem('banshi_kiosk_slow')") == "0"


def ask_by_text_until_spoken(page, question: str, expect: str) -> None:
    """Type a question (a long answer), wait until its spoken reply plays."""
    before = answered_mark(page)
    page.fill("#text-input", question)
    page.press("#text-input", "Enter")
    wait_answer(page, before, expect)
    page.wait_for_function("() => Number(document.querySelector('#player').dataset.played || 0) >= 1",
                           timeout=30000)


def test_speaking_over_the_reply_stops_it_and_is_heard(browser, live_server):
    """Barge-in: the microphone opens while the reply plays (the fake one then plays
    the 低保 question); the reply stops and the question is answered, hands-free."""
    context, page = open_kiosk(browser, live_server, barge_in=True)
    try:
        ask_by_text_until_spoken(page, "护照要带什么材料", "护照")
        after = answered_mark(page)
        page.wait_for_function("() => Number(document.body.getAttribute('data-barged') || 0) >= 1",
                               timeout=30000)
        # The reply was cut short (it lasts far longer than the question's onset).
        assert page.evaluate("() => document.querySelector('#player').paused")
        assert page.inner_text("#talk-label") == "正在听，请说，说完稍等"
        # The turn ends by itself after the pause that follows the question.
        assert "最低生活保障" in wait_answer(page, after, "最低生活保障", timeout=60000)
        assert "低保" in page.inner_text("#transcript")
        assert page.inner_text("#talk-label") == "按住说话"
    finally:
        context.close()


def test_barge_in_is_off_when_the_server_says_so(browser, live_server):
    context, page = open_kiosk(browser, live_server)
    try:
        ask_by_text_until_spoken(page, "护照要带什么材料", "护照")
        page.wait_for_timeout(3000)  # the fake question would have been heard by now
        assert page.evaluate("() => document.body.getAttribute('data-barged')") is None
        assert not page.evaluate("() => document.querySelector('#player').paused")
    finally:
        context.close()


def test_too_short_a_press_asks_to_hold(kiosk):
    page = kiosk
    hold_to_talk(page, 0.1)
    page.wait_for_function("() => document.querySelector('#transcript').textContent.includes('请按住按钮')")


# ------------------------------------------------------------------ touch and text
def test_common_items_follow_ups_and_text(kiosk):
    page = kiosk
    before = answered_mark(page)
    page.get_by_role("button", name="社保卡", exact=True).click()
    text = wait_answer(page, before, "社会保障卡申领")
    assert page.inner_text("#transcript") == "社保卡"
    choices = page.locator("#choices .choice")
    assert choices.count() >= 2
    title = choices.first.inner_text()
    before = answered_mark(page)
    choices.first.click()
    assert "社会保障卡申领" in wait_answer(page, before)
    assert page.inner_text("#transcript") == title
    # The text box.
    before = answered_mark(page)
    page.fill("#text-input", "护照要带什么材料")
    page.press("#text-input", "Enter")
    assert "护照" in wait_answer(page, before)
    assert page.input_value("#text-input") == ""
    assert text != answer_text(page)


def test_human_button_opens_a_ticket(kiosk):
    page = kiosk
    assert page.locator("#human").is_visible()
    before = answered_mark(page)
    page.click("#human")
    assert "人工" in wait_answer(page, before)
    page.wait_for_selector("#handoff-bar", state="visible", timeout=10000)
    # Back to the assistant while waiting.
    before = answered_mark(page)
    page.click("#handoff-cancel")
    assert "已取消人工服务" in wait_answer(page, before)
    page.wait_for_selector("#handoff-bar", state="hidden", timeout=5000)


def test_without_speech_recognition_touch_and_text_remain(browser, live_server):
    detail = "没有找到语音识别模型"
    context, page = open_kiosk(
        browser, live_server, status={"asr": False, "tts": True, "idle_seconds": 90, "detail": detail}
    )
    try:
        assert "语音识别暂时不可用" in page.inner_text("#notice")
        assert page.locator("#notice").is_visible()
        assert not page.locator("#talk").is_visible()
        assert page.locator(".common .item").count() >= 6 and page.locator("#text-input").is_visible()
        before = answered_mark(page)
        page.get_by_role("button", name="身份证", exact=True).click()
        assert "身份证" in wait_answer(page, before)
    finally:
        context.close()


def test_without_a_microphone_the_page_says_so(browser, live_server):
    context, page = open_kiosk(
        browser,
        live_server,
        init_script="navigator.mediaDevices.getUserMedia = () => "
        "Promise.reject(new DOMException('denied', 'NotAllowedError'));",
    )
    try:
        hold_to_talk(page, 1.0)
        page.wait_for_selector("#notice", state="visible", timeout=10000)
        assert "麦克风" in page.inner_text("#notice")
        assert not page.locator("#talk").is_visible()
        assert page.locator("#text-input").is_visible()
    finally:
        context.close()


# ------------------------------------------------------------------ idle reset
def test_idle_clears_the_screen_and_starts_a_new_conversation(browser, live_server):
    context, page = open_kiosk(browser, live_server, path="/kiosk?idle=3")
    try:
        first = page.get_attribute("body", "data-session")
        before = answered_mark(page)
        page.get_by_role("button", name="护照", exact=True).click()
        assert "护照" in wait_answer(page, before)
        # The idle time counts from the end of the spoken answer: stop it here.
        page.wait_for_function("() => Number(document.querySelector('#player').dataset.played || 0) >= 1",
                               timeout=15000)
        page.evaluate("() => document.querySelector('#player').pause()")
        page.wait_for_selector("body[data-reset]", state="attached", timeout=15000)
        page.wait_for_function(f"() => document.body.getAttribute('data-session') !== '{first}'", timeout=10000)
        assert page.inner_text("#transcript") == START_TEXT
        assert "护照" not in answer_text(page) and "您好" in answer_text(page)
        assert page.locator("#choices").is_hidden()
        assert page.get_attribute("body", "data-session").startswith("kiosk-")
    finally:
        context.close()


# ------------------------------------------------------------------ sizes and accessibility
SIZES_JS = """() => {
  const visible = (e) => { const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
  const small = [];
  for (const e of document.querySelectorAll('body *')) {
    if (!visible(e)) continue;
    const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const size = parseFloat(getComputedStyle(e).fontSize);
    if ((own || e.matches('input')) && size < 28) small.push([e.tagName, e.id || e.className, size]);
  }
  const targets = [];
  for (const e of document.querySelectorAll('button, input, a, [role=button]')) {
    if (!visible(e)) continue;
    const r = e.getBoundingClientRect();
    if (r.width < 64 || r.height < 64) targets.push([e.tagName, e.id || e.textContent.trim(), r.width, r.height]);
  }
  return {small, targets, body: parseFloat(getComputedStyle(document.body).fontSize)};
}"""


@pytest.mark.parametrize("viewport", [PORTRAIT, LANDSCAPE], ids=["portrait", "landscape"])
def test_text_size_and_touch_targets(browser, live_server, viewport):
    context, page = open_kiosk(browser, live_server, viewport=viewport)
    try:
        before = answered_mark(page)
        page.get_by_role("button", name="社保卡", exact=True).click()
        wait_answer(page, before, "社会保障卡申领")
        sizes = page.evaluate(SIZES_JS)
        assert sizes["body"] >= 28
        assert sizes["small"] == [], sizes["small"]
        assert sizes["targets"] == [], sizes["targets"]
        # Full screen: nothing scrolls but the answer.
        assert page.evaluate("() => document.scrollingElement.scrollHeight") <= viewport["height"]
        assert page.evaluate("() => document.scrollingElement.scrollWidth") <= viewport["width"]
        assert page.locator("#talk").is_visible() and page.locator("#human").is_visible()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"kiosk-{viewport['width']}x{viewport['height']}.png"))
    finally:
        context.close()


def test_axe_finds_no_violations(kiosk):
    from axe_playwright_python.sync_playwright import Axe

    page = kiosk
    # AAA contrast (7:1) too: axe's color-contrast-enhanced rule is off by default.
    options = {"rules": {"color-contrast-enhanced": {"enabled": True}}, "resultTypes": ["violations"]}
    axe = Axe()
    results = axe.run(page, options=options)
    assert results.violations_count == 0, results.generate_report()
    before = answered_mark(page)
    page.get_by_role("button", name="社保卡", exact=True).click()
    wait_answer(page, before, "社会保障卡申领")
    results = axe.run(page, options=options)
    assert results.violations_count == 0, results.generate_report()
    # The fallback notice and the handoff bar too.
    page.click("#human")
    page.wait_for_selector("#handoff-bar", state="visible", timeout=10000)
    results = axe.run(page, options=options)
    assert results.violations_count == 0, results.generate_report()
    page.click("#handoff-cancel")
    page.wait_for_selector("#handoff-bar", state="hidden", timeout=10000)
