"""Handing in a missing material at the kiosk (补交) in headless Chromium, against the
real gateway, model and action server: the citizen looks up a 需补正 application on
the kiosk page and verifies it; a large "拍照补交材料" button appears; the document
camera (Chromium's fake camera playing a rendered 常住人口登记卡) takes the photo; the
pre-check's answer is shown in large type and read aloud (the kiosk's TTS request);
the upload is stored as the kiosk's and the button goes away. Without a camera the
file picker does it (a non-picture refused on the page); the idle reset closes it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from assistant.services.progress.importer import import_csv
from assistant.storage.database import session_factory
from assistant.storage.tables import MaterialUpload
from tests.materials_images import make_sample

from .conftest import SHOTS, launch_browser
from .test_kiosk import SIZES_JS

pytestmark = [pytest.mark.browser, pytest.mark.model]

CAMERA_NUMBER = "ZW20261205071"  # verified and handed in with the (fake) document camera
FILE_NUMBER = "ZW20261205072"  # handed in by the file picker (no camera)
IDLE_NUMBER = "ZW20261205073"  # left alone: the idle reset
MATERIAL = "居民户口簿"
TURN_MS = 30000
UPLOAD_MS = 120000  # OCR on two shared cores
PORTRAIT = {"width": 1080, "height": 1920}
NO_CAMERA = (
    "(() => { const md = navigator.mediaDevices; const original = md.getUserMedia.bind(md);"
    " md.getUserMedia = (c) => (c && c.video) ? Promise.reject(new DOMException('no camera', 'NotFoundError'))"
    " : original(c); })();"
)


def y4m(image: Image.Image, path: Path, frames: int = 2) -> Path:
    """``image`` as an uncompressed Y4M video (4:2:0), what Chromium's fake camera plays."""
    width, height = (image.width // 2) * 2, (image.height // 2) * 2
    y, cb, cr = image.convert("RGB").resize((width, height)).convert("YCbCr").split()
    half = (width // 2, height // 2)
    frame = b"FRAME\n" + y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F5:1 Ip A1:1\n".encode() + frame * frames)
    return path


@pytest.fixture(scope="module")
def register():
    """A photographed household register page and its truth (the applicant's name)."""
    return make_sample("household_register", "clean", random.Random(21))


@pytest.fixture(scope="module")
def applications(settings, register, tmp_path_factory):
    rows = ["number,item_id,applicant_name,phone,id_number,promised_date,pickup_method,status,at,note,"
            "missing_materials"]
    for number in (CAMERA_NUMBER, FILE_NUMBER, IDLE_NUMBER):
        tail = number[-4:]
        rows.append(f"{number},id_card_reissue,{register.truth.name},1380000{tail},,,窗口领取,受理,"
                    "2026-11-30 09:00,已受理。,")
        rows.append(f"{number},id_card_reissue,{register.truth.name},1380000{tail},,,窗口领取,需补正,"
                    f"2026-12-02 10:00,请补交居民户口簿。,{MATERIAL}")
    path = tmp_path_factory.mktemp("kiosk-supplement") / "applications.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    import_csv(settings.db_url, path, settings.secret())


@pytest.fixture(scope="module")
def browser(register, tmp_path_factory):
    folder = tmp_path_factory.mktemp("camera")
    (folder / "register.jpg").write_bytes(register.data)
    video = y4m(Image.open(folder / "register.jpg"), folder / "register.y4m")
    with launch_browser(["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                         f"--use-file-for-fake-video-capture={video}"]) as launched:
        yield launched


def open_kiosk(browser, live_server, query="", init_script=None):
    context = browser.new_context(viewport=PORTRAIT, locale="zh-CN")
    context.grant_permissions(["microphone", "camera"], origin=live_server)
    page = context.new_page()
    page.set_default_timeout(TURN_MS)
    if init_script:
        page.add_init_script(init_script)
    spoken = []

    def on_request(request):
        if request.url.endswith("/api/v1/tts") and request.method == "POST":
            spoken.append(json.loads(request.post_data or "{}").get("text") or "")

    page.on("request", on_request)
    page.goto(f"{live_server}/kiosk{query}")
    page.wait_for_selector("body[data-ready='1']", timeout=90000)
    return context, page, spoken


def say(page, text, fragment):
    before = page.get_attribute("body", "data-answered") or ""
    page.fill("#text-input", text)
    page.press("#text-input", "Enter")
    page.wait_for_function(
        """([before, fragment]) => (document.body.getAttribute('data-answered') || '') !== before
              && document.getElementById('answer').textContent.includes(fragment)""",
        arg=[before, fragment],
    )


def verify(page, number):
    say(page, f"帮我查一下{number}的进度", "后四位")
    say(page, number[-4:], "请补交这些材料")
    page.wait_for_selector("#supplement-open:not([hidden])")


def uploads_of(settings, number):
    with session_factory(settings.db_url)() as session:
        return session.execute(select(MaterialUpload).where(MaterialUpload.number == number)).scalars().all()


def test_the_document_camera_hands_in_the_missing_material(browser, live_server, settings, applications):
    context, page, spoken = open_kiosk(browser, live_server)
    try:
        # Not before a verified lookup.
        assert page.locator("#supplement-open").is_hidden()
        verify(page, CAMERA_NUMBER)
        assert page.inner_text("#supplement-open") == "拍照补交材料"
        height = page.evaluate("() => document.getElementById('supplement-open').getBoundingClientRect().height")
        assert height >= 100  # a large target
        # Still full screen: nothing scrolls but the answer.
        assert page.evaluate("() => document.scrollingElement.scrollHeight") <= PORTRAIT["height"]

        page.click("#supplement-open")
        page.wait_for_selector("#supplement:not([hidden])")
        assert "ZW2026****071" in page.inner_text("#supplement-intro") and MATERIAL in page.inner_text("#supplement-intro")
        assert page.get_attribute(f"#supplement-materials [role=radio]:has-text('{MATERIAL}')", "aria-checked") == "true"
        sizes = page.evaluate(SIZES_JS)
        assert sizes["small"] == [] and sizes["targets"] == [], sizes
        _no_axe_violations(page)
        page.click("#supplement-shoot")
        page.wait_for_selector("#supplement-camera:not([hidden])")
        page.wait_for_function("() => document.getElementById('supplement-view').videoWidth > 0", timeout=15000)
        page.screenshot(path=str(_shot("kiosk-supplement-camera.png")))
        heard_before = len(spoken)
        page.click("#supplement-snap")
        page.wait_for_function(
            "m => document.getElementById('supplement-answer').textContent.includes(m)",
            arg=f"已收到您补交的“{MATERIAL}”", timeout=UPLOAD_MS)
        answer = page.inner_text("#supplement-answer")
        size = page.evaluate("() => parseFloat(getComputedStyle(document.getElementById('supplement-answer')).fontSize)")
        assert size >= 36  # large type
        # Read aloud like a reply (the TTS request holds the answer's first line).
        for _ in range(50):
            if len(spoken) > heard_before:
                break
            page.wait_for_timeout(100)
        assert len(spoken) > heard_before and spoken[-1].split("\n")[0] in answer
        page.screenshot(path=str(_shot("kiosk-supplement-answer.png")))

        (upload,) = uploads_of(settings, CAMERA_NUMBER)
        assert (upload.channel, upload.material) == ("kiosk", MATERIAL)
        assert upload.doc_type == "household_register", (upload.doc_type, upload.verdict, answer)
        # Nothing more is wanted: the button goes when the step is closed.
        page.wait_for_function("() => document.body.getAttribute('data-supplement') === 'none'")
        page.click("#supplement-close")
        page.wait_for_selector("#supplement", state="hidden")
        assert page.locator("#supplement-open").is_hidden()
    finally:
        context.close()


def test_without_a_camera_the_file_picker_hands_it_in(browser, live_server, settings, applications, register,
                                                      tmp_path):
    context, page, _ = open_kiosk(browser, live_server, init_script=NO_CAMERA)
    try:
        verify(page, FILE_NUMBER)
        page.click("#supplement-open")
        page.wait_for_selector("#supplement:not([hidden])")
        # The camera fails: the page falls back to the file picker.
        with page.expect_file_chooser() as chooser:
            page.click("#supplement-shoot")
        text_file = tmp_path / "notes.txt"
        text_file.write_text("不是照片", encoding="utf-8")
        chooser.value.set_files(str(text_file))
        page.wait_for_function("() => document.getElementById('supplement-status').textContent.includes('不是照片')")
        assert uploads_of(settings, FILE_NUMBER) == []
        assert page.inner_text("#supplement-shoot") == "选择照片"
        photo = tmp_path / "register.jpg"
        photo.write_bytes(register.data)
        with page.expect_file_chooser() as chooser:
            page.click("#supplement-shoot")
        chooser.value.set_files(str(photo))
        page.wait_for_function(
            "m => document.getElementById('supplement-answer').textContent.includes(m)",
            arg=f"已收到您补交的“{MATERIAL}”", timeout=UPLOAD_MS)
        assert [u.channel for u in uploads_of(settings, FILE_NUMBER)] == ["kiosk"]
    finally:
        context.close()


def test_the_idle_reset_closes_it_for_the_next_person(browser, live_server, settings, applications):
    context, page, _ = open_kiosk(browser, live_server, query="?idle=3")
    try:
        verify(page, IDLE_NUMBER)
        page.click("#supplement-open")
        page.wait_for_selector("#supplement:not([hidden])")
        page.wait_for_selector("#supplement", state="hidden", timeout=60000)
        assert page.locator("#supplement-open").is_hidden()
        assert page.get_attribute("body", "data-supplement") == "none"
        assert uploads_of(settings, IDLE_NUMBER) == []
    finally:
        context.close()


def _no_axe_violations(page):
    from axe_playwright_python.sync_playwright import Axe

    options = {"rules": {"color-contrast-enhanced": {"enabled": True}}, "resultTypes": ["violations"]}
    results = Axe().run(page, options=options)
    assert results.violations_count == 0, results.generate_report()


def _shot(name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS / name
