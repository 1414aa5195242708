"""Call mode at the desk in a real browser: Chromium's fake microphone plays a caller
(espeak-ng Mandarin, a WAV file), the page streams it to the gateway, which
transcribes it with the Chinese Vosk model; the panel shows the transcript, a
suggestion for the right item with its knowledge card, and a ticket draft with the
phone number the caller said. Free decoding writes spoken digits as other words; the
digit recogniser (assistant/services/callmode/digits.py) hears the number, said digit
by digit by espeak-ng's female variant (its male voice's 三 is heard as 八 even
alone: bench/callmode_phone.py). A heard number may be wrong, so the ticket is saved
with it only once the operator has ticked that it was read back to the caller.
"""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from tests.speech import FEMALE_VOICE, mandarin_wav, require_voice

from .conftest import SHOTS

pytestmark = [pytest.mark.browser, pytest.mark.model]

USERNAME = "call.e2e"
PASSWORD = "call-e2e-password-1"
# One caller, one voice (the recogniser adapts to the speaker as the call goes on).
PHRASES = [
    "我家孩子上个月刚出生 想给他上户口",
    "出生证明有了 还要带什么",
    # Digit by digit, as a caller reading it out slowly (no 零: espeak-ng's 零 right
    # after another digit is lost in about one call in four through the browser).
    "我的手机号是，一，三，八，七，六，九，四，五，八，三，六",
]
ITEM = "newborn_hukou"
PHONE = "13876945836"
LIVE_MS = 60000


@pytest.fixture(scope="module")
def fake_microphone_wav(tmp_path_factory, settings) -> Path:
    """The caller's phrases with a second of silence after each, as one WAV file."""
    require_voice(settings)
    folder = tmp_path_factory.mktemp("call-e2e")
    frames, rate = [], None
    for n, text in enumerate(PHRASES):
        path = folder / f"{n}.wav"
        mandarin_wav(text, path, voice=FEMALE_VOICE)
        with wave.open(str(path), "rb") as reader:
            rate = reader.getframerate()
            frames.append(reader.readframes(reader.getnframes()) + b"\x00\x00" * rate)
    out = folder / "caller.wav"
    with wave.open(str(out), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(b"\x00\x00" * rate + b"".join(frames))
    return out


@pytest.fixture(scope="module")
def operator(settings, live_server):
    from assistant.security.accounts import DuplicateUsername, create_operator

    try:
        create_operator(settings.db_url, USERNAME, PASSWORD, display_name="热线坐席")
    except DuplicateUsername:
        pass
    return USERNAME


def test_a_call_is_transcribed_suggested_and_drafted(microphone_browser, live_server, operator):
    context = microphone_browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    context.grant_permissions(["microphone"], origin=live_server)
    page = context.new_page()
    page.set_default_timeout(LIVE_MS)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # What the gateway sent (finals and drafts), to say what went wrong when a wait times out.
    heard: list = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: heard.append(frame) if '"final"' in str(frame) or '"draft"' in str(frame) else None))
    try:
        page.goto(live_server + "/desk")
        page.wait_for_selector("#login-form", state="visible")
        page.fill("#username", operator)
        page.fill("#password", PASSWORD)
        page.click("#login-btn")
        page.wait_for_selector("#desk", state="visible")

        page.click("#call-open")
        page.click("#call-start")
        page.wait_for_function("() => document.querySelector('#call-status').textContent.includes('通话中')")
        # The transcript of what the fake microphone says, phrase by phrase.
        page.wait_for_selector("#call-transcript .call-phrase.caller .call-text")
        # The suggestion for the right item comes first, with its knowledge card.
        page.wait_for_function(
            f"() => {{ const s = document.querySelector('#call-suggestions li');"
            f" return s && s.dataset.itemId === '{ITEM}'; }}"
        )
        assert "户口" in page.text_content("#call-suggestions li .call-item")
        assert page.is_visible("#call-card") and "户口" in page.text_content("#call-card-title")
        assert page.input_value("#draft-item") == ITEM
        # The ticket may name any catalog item, also one never suggested in this call.
        assert page.locator("#draft-item option[value='bundle_after_death']").count() == 1

        # The number said on the call, heard from the audio, to be read back before saving.
        page.wait_for_function(f"() => document.querySelector('#draft-phone').value === '{PHONE}'")
        assert page.is_visible("#draft-phone-check") and "复述核对" in page.text_content("#draft-phone-check")
        assert page.input_value("#draft-summary").startswith("来电人来电咨询")

        page.click("#call-end")
        page.wait_for_function("() => document.querySelector('#call-status').textContent.includes('已结束')")
        page.click("#call-save")
        page.wait_for_function("() => document.querySelector('#call-error').textContent.includes('复述核对')")
        assert "工单已保存" not in page.text_content("#call-saved")
        page.check("#draft-phone-checked")
        page.click("#call-save")
        page.wait_for_function("() => document.querySelector('#call-saved').textContent.includes('工单已保存')")
        phrases = page.locator("#call-transcript .call-phrase").count()
        assert phrases >= 2
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.eval_on_selector("#call-panel", "panel => { panel.scrollTop = 0; }")
        page.screenshot(path=str(SHOTS / "desk_call_mode.png"))
        assert not errors, errors
    except Exception:
        print("call messages:", *[str(m)[:300] for m in heard[-12:]], sep="\n  ")
        raise
    finally:
        context.close()
