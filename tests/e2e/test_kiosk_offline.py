"""Offline entry at the kiosk (离线录入，信号恢复后一键提交), in headless Chromium with a
fake camera and microphone, against real gateways served by uvicorn.

Acceptance: a kiosk gateway whose central server is unreachable; a pre-application and
a photo (the document camera) are entered on the kiosk page; a receipt number is shown
(and printed: the kiosk has a printer); the kiosk gateway restarts; the central server
comes up; both arrive exactly once (rows counted at the central), also after another
restart; and the citizen asks about it by the receipt number in the web chat.

Also: sizes and accessibility of the form, voice dictation into the chosen field (the
kiosk's hold-to-talk; the fake microphone plays a real recording), the file picker when
there is no camera, a refused photo, the idle reset wiping a half-filled form.
"""

from __future__ import annotations

import re
import time
import wave
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from assistant.api.app import create_app
from assistant.services import outbox
from assistant.storage.database import session_factory
from assistant.storage.tables import InboxMessage, OutboxMessage, Preapplication, PreapplicationMaterial
from tests.conftest import free_port, isolated_settings, serve_in_thread
from tests.speech import RECORDING, RECORDING_TEXT, char_error_rate, require_voice

from .conftest import SHOTS, launch_browser
from .test_kiosk import SIZES_JS

pytestmark = [pytest.mark.browser]

KEY = "offline-kiosk-key"
KIOSK_ID = "hall-7"
RECEIPT_RE = re.compile(r"^KSHALL7-\d{8}-\d{4}$")
PORTRAIT = {"width": 1080, "height": 1920}
PRINT_STUB = "window.__printed = 0; window.print = function () { window.__printed += 1; };"
NO_CAMERA = (
    "(() => { const md = navigator.mediaDevices; const original = md.getUserMedia.bind(md);"
    " md.getUserMedia = (c) => (c && c.video) ? Promise.reject(new DOMException('no camera', 'NotFoundError'))"
    " : original(c); })();"
)
VALUES = {
    "#pf-name": "欧阳娜娜",
    "#pf-id_number": "11010519491231002X",
    "#pf-phone": "13987654321",
    "#pf-address": "幸福路一百二十三号五栋六零一室",
    "#pf-since": "2025-03-01",
}


def microphone_wav(path: Path) -> Path:
    """Real read speech (AISHELL-1, 16 kHz mono) after half a second of silence: what a
    citizen says into a text field. (espeak-ng's robotic Mandarin is what the catalog-
    biased recogniser is for; dictation decodes freely.)"""
    with wave.open(str(RECORDING), "rb") as reader:
        assert (reader.getframerate(), reader.getnchannels(), reader.getsampwidth()) == (16000, 1, 2)
        pcm = reader.readframes(reader.getnframes())
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16000)
        writer.writeframes(b"\x00\x00" * 8000 + pcm + b"\x00\x00" * 16000)
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory, settings):
    require_voice(settings)
    wav = microphone_wav(tmp_path_factory.mktemp("offline") / "mic.wav")
    fake_devices = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",  # a fake camera (test pattern) and microphone
        f"--use-file-for-fake-audio-capture={wav}%noloop",
    ]
    with launch_browser(fake_devices) as launched:
        yield launched


def kiosk_settings(settings, directory: Path, central_url: str, **updates):
    values = {"kiosk_mode": True, "kiosk_id": KIOSK_ID, "central_url": central_url, "central_token": KEY,
              "kiosk_printer": True, **updates}
    return isolated_settings(settings, directory, **values)


@pytest.fixture(scope="module")
def offline_kiosk(settings, tmp_path_factory):
    """A kiosk gateway whose central server never answers: (URL, settings)."""
    config = kiosk_settings(settings, tmp_path_factory.mktemp("kiosk-ui"), f"http://127.0.0.1:{free_port()}")
    with serve_in_thread(create_app(config, load_model=False), free_port()) as url:
        yield url, config


def open_page(browser, url, init_script=None, viewport=PORTRAIT):
    context = browser.new_context(viewport=viewport, locale="zh-CN")
    context.grant_permissions(["microphone", "camera"], origin=url)
    page = context.new_page()
    page.add_init_script(PRINT_STUB)
    if init_script:
        page.add_init_script(init_script)
    page.goto(url + "/kiosk")
    page.wait_for_selector("body[data-ready='1'][data-prefill='1']", timeout=90000)
    page.wait_for_function("() => !!document.body.getAttribute('data-session')", timeout=10000)
    return context, page


def start_item(page, name="居住证申领"):
    page.click("#prefill-open")
    page.wait_for_selector("#prefill-items:not([hidden])")
    page.get_by_role("button", name=name, exact=True).click()
    page.wait_for_selector("#prefill-form:not([hidden])")


def fill_permit(page):
    for selector, value in VALUES.items():
        page.fill(selector, value)
    page.get_by_role("radio", name="合法稳定住所").click()


def photograph(page, material="居民身份证"):
    before = int(page.evaluate("() => Number(document.body.getAttribute('data-photos') || 0)"))
    page.get_by_role("button", name=f"拍照：{material}").click()
    page.wait_for_selector("#camera:not([hidden])")
    page.wait_for_function("() => document.querySelector('#camera-view').videoWidth > 0", timeout=15000)
    page.click("#camera-shoot")
    page.wait_for_function(f"() => Number(document.body.getAttribute('data-photos') || 0) > {before}", timeout=15000)


def kiosk_rows(db_url):
    with session_factory(db_url)() as session:
        return session.execute(select(OutboxMessage)).scalars().all()


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


# --------------------------------------------------------------- acceptance
def test_offline_entry_reaches_the_central_exactly_once(browser, settings, tmp_path, live_server):
    central_port = free_port()  # nothing listens there yet: the central is unreachable
    kiosk = kiosk_settings(settings, tmp_path / "kiosk", f"http://127.0.0.1:{central_port}")
    with serve_in_thread(create_app(kiosk, load_model=False), free_port()) as kiosk_url:
        context, page = open_page(browser, kiosk_url)
        try:
            start_item(page)
            fill_permit(page)
            photograph(page)
            page.click("#prefill-submit")
            page.wait_for_selector("#prefill-receipt:not([hidden])", timeout=30000)
            receipt = page.inner_text("#receipt-number").strip()
            assert RECEIPT_RE.match(receipt), receipt
            assert "网络恢复后会自动提交" in page.inner_text("#receipt-message")
            assert float(page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('#receipt-number')).fontSize)")) >= 60
            # The kiosk has a printer: the receipt sheet was printed once, and holds the number.
            page.wait_for_function("() => window.__printed === 1", timeout=5000)
            assert page.inner_text("#sheet-number") == receipt
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "kiosk-prefill-receipt.png"))
            # Nothing entered stays on the page.
            assert page.evaluate("() => document.querySelectorAll('#prefill-fields input').length") == 0
            page.click("#receipt-done")
            page.wait_for_selector("#prefill", state="hidden")
        finally:
            context.close()
        # The outbox keeps trying; the central never answers.
        wait_until(lambda: all(r.attempts >= 2 for r in kiosk_rows(kiosk.db_url)) and len(kiosk_rows(kiosk.db_url)) == 2,
                   30, "two failed attempts each")
    queued = kiosk_rows(kiosk.db_url)
    assert sorted(r.kind for r in queued) == ["material", "preapplication"]
    assert all(r.delivered_at is None and r.failed_at is None for r in queued)
    errors = {r.kind: r.last_error for r in queued}
    assert errors["preapplication"].startswith("network error")
    assert errors["material"].startswith("waiting: its pre-application")  # the photo goes after the form
    assert outbox.status(kiosk.db_url)["counts"] == {"pending": 2, "delivered": 0, "failed": 0}

    # The central comes up on its address (the deployment the web chat answers from);
    # the kiosk restarts (a new gateway, the same database).
    central = settings.copy(update={"kiosk_api_keys": KEY})
    with serve_in_thread(create_app(central, load_model=False), central_port):
        started = time.monotonic()
        with serve_in_thread(create_app(kiosk, load_model=False), free_port()):
            wait_until(lambda: all(r.delivered_at for r in kiosk_rows(kiosk.db_url)), 60, "delivery")
        elapsed = time.monotonic() - started
        # Once more, to be sure nothing is sent twice after another restart.
        with serve_in_thread(create_app(kiosk, load_model=False), free_port()):
            time.sleep(2.5)
    ids = sorted(r.id for r in kiosk_rows(kiosk.db_url))
    with session_factory(central.db_url)() as session:
        forms = session.execute(select(Preapplication).where(Preapplication.receipt == receipt)).scalars().all()
        photos = session.execute(
            select(PreapplicationMaterial).where(PreapplicationMaterial.receipt == receipt)
        ).scalars().all()
        inbox = session.execute(select(InboxMessage).where(InboxMessage.id.in_(ids))).scalars().all()
    assert len(forms) == 1 and len(photos) == 1 and len(inbox) == 2
    assert forms[0].kiosk_id == KIOSK_ID and forms[0].item_id == "residence_permit" and forms[0].materials == 1
    assert photos[0].material == "居民身份证" and photos[0].content_type == "image/jpeg" and photos[0].width >= 200
    assert sorted(r.id for r in inbox) == ids
    assert forms[0].fields_sealed and VALUES["#pf-id_number"] not in forms[0].fields_sealed
    # The kiosk keeps no personal data once delivered.
    with session_factory(kiosk.db_url)() as session:
        [kept] = session.execute(select(Preapplication)).scalars().all()
        assert kept.fields_sealed is None
        assert all(m.path is None for m in session.execute(select(PreapplicationMaterial)).scalars())
    print(f"\nkiosk pre-application: delivered {elapsed:.1f} s after the restart")

    # Later, in the web chat: the citizen asks by the receipt number.
    with httpx.Client(base_url=live_server, timeout=60) as http:
        session = http.post("/api/v1/chat/sessions").json()
        first = http.post("/api/v1/chat", json={**session, "text": "我在自助机提交的预申请怎么样了"}).json()
        assert "编号" in first["messages"][0]["text"], first
        answer = http.post("/api/v1/chat", json={**session, "text": receipt}).json()
    text = "\n".join(m.get("text") or "" for m in answer["messages"])
    assert f"已收到您在自助机提交的预申请（回执号 {receipt}，事项：居住证申领" in text, text
    assert "政务服务中心已经收到，连同 1 张材料照片" in text
    assert answer["answer"] == "progress" and answer["item"] == "residence_permit"


# ------------------------------------------------------------- the form itself
def test_the_form_is_large_and_accessible(browser, offline_kiosk):
    from axe_playwright_python.sync_playwright import Axe

    url, _ = offline_kiosk
    context, page = open_page(browser, url)
    options = {"rules": {"color-contrast-enhanced": {"enabled": True}}, "resultTypes": ["violations"]}
    try:
        assert page.locator("#prefill-open").is_visible()
        page.click("#prefill-open")
        page.wait_for_selector("#prefill-items:not([hidden])")
        results = Axe().run(page, options=options)
        assert results.violations_count == 0, results.generate_report()
        page.get_by_role("button", name="居住证申领", exact=True).click()
        page.wait_for_selector("#prefill-form:not([hidden])")
        photograph(page)
        sizes = page.evaluate(SIZES_JS)
        assert sizes["small"] == [], sizes["small"]
        assert sizes["targets"] == [], sizes["targets"]
        assert float(page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('#pf-name')).fontSize)")) >= 36
        results = Axe().run(page, options=options)
        assert results.violations_count == 0, results.generate_report()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "kiosk-prefill-form.png"), full_page=True)
        # Wrong values: each is marked where it is, in plain words.
        page.fill("#pf-name", "张")
        page.fill("#pf-id_number", "123456")
        page.click("#prefill-submit")
        page.wait_for_selector("#pf-id_number[aria-invalid='true']", timeout=15000)
        assert "有几项需要修改" in page.inner_text("#prefill-error")
        assert "不正确" in page.inner_text("#pf-id_number-error")
        assert "请填写手机号码" in page.inner_text("#pf-phone-error")
        results = Axe().run(page, options=options)
        assert results.violations_count == 0, results.generate_report()
        # Closing wipes everything entered.
        page.click("#prefill-close")
        page.wait_for_selector("#prefill", state="hidden")
        page.click("#prefill-open")
        assert page.locator("#prefill-fields input").count() == 0
    finally:
        context.close()


def test_voice_fills_the_chosen_field(browser, offline_kiosk):
    url, _ = offline_kiosk
    context, page = open_page(browser, url)
    try:
        start_item(page, "最低生活保障申请（低保）")
        assert page.locator("#prefill-talk").is_visible()
        page.click("#pf-reason")  # the field to fill
        box = page.locator("#prefill-talk").bounding_box()
        sent = []
        page.on("websocket", lambda ws: sent.append(ws.url))
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.wait_for_timeout(5500)
        page.mouse.up()
        page.wait_for_function("() => document.querySelector('#pf-reason').value.length > 0", timeout=60000)
        assert any("mode=dictate" in u and "field=text" in u for u in sent), sent
        heard = page.input_value("#pf-reason")
        assert char_error_rate(RECORDING_TEXT, heard) <= 0.35, heard  # free decoding: no catalog words forced in
        assert page.inner_text("#prefill-heard").startswith("已填入：")
        assert page.input_value("#pf-name") == ""  # only the chosen field
    finally:
        context.close()


def test_without_a_camera_the_file_picker_is_used_and_a_bad_file_refused(browser, offline_kiosk, tmp_path):
    url, config = offline_kiosk
    fake = tmp_path / "not-a-photo.jpg"
    fake.write_bytes(b"%PDF-1.4\n" + b"this is a document, not a photo\n" * 200)
    real = tmp_path / "photo.png"
    from PIL import Image

    Image.new("RGB", (900, 600), (230, 230, 220)).save(real, "PNG")
    context, page = open_page(browser, url, init_script=NO_CAMERA)
    try:
        start_item(page)
        fill_permit(page)
        with page.expect_file_chooser() as chooser:
            page.get_by_role("button", name="拍照：居民身份证").click()
        chooser.value.set_files(str(fake))
        page.wait_for_function("() => document.body.getAttribute('data-photos') === '1'")
        assert page.get_by_role("button", name="选择照片：居民身份证").is_visible()  # no camera here
        page.click("#prefill-submit")
        page.wait_for_selector(".photo .field-error:not([hidden])", timeout=15000)
        assert "JPG 或 PNG" in page.inner_text(".photo .field-error")
        assert page.locator("#prefill-receipt").is_hidden()
        page.get_by_role("button", name="删除：居民身份证的照片").click()
        with page.expect_file_chooser() as chooser:
            page.get_by_role("button", name="选择照片：居民身份证").click()
        chooser.value.set_files(str(real))
        page.wait_for_function("() => document.body.getAttribute('data-photos') === '1'")
        page.click("#prefill-submit")
        page.wait_for_selector("#prefill-receipt:not([hidden])", timeout=30000)
        assert RECEIPT_RE.match(page.inner_text("#receipt-number").strip())
    finally:
        context.close()
    with session_factory(config.db_url)() as session:
        photos = session.execute(select(PreapplicationMaterial)).scalars().all()
    assert "image/png" in [p.content_type for p in photos]


def test_the_idle_reset_wipes_a_half_filled_form(browser, offline_kiosk):
    url, _ = offline_kiosk
    context = browser.new_context(viewport=PORTRAIT, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(url + "/kiosk?idle=3")
        page.wait_for_selector("body[data-ready='1'][data-prefill='1']", timeout=90000)
        start_item(page)
        page.fill("#pf-id_number", VALUES["#pf-id_number"])
        page.wait_for_selector("body[data-reset]", state="attached", timeout=20000)
        assert page.locator("#prefill").is_hidden()
        assert VALUES["#pf-id_number"] not in page.content()
    finally:
        context.close()
