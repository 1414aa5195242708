"""Missing materials handed in at the kiosk (补交, the document camera): a kiosk
conversation (``POST /api/v1/voice/sessions``: ``kiosk-…`` and its token) that has
verified a 需补正 application sees what it may hand in and uploads through the chat
upload path; the upload is recorded as the kiosk's, pre-checked, forwarded and on the
desk. Tokens are checked (another conversation's, a web token), an unverified kiosk
conversation is refused, bad files are refused with nothing stored — on a central
gateway and on a kiosk gateway (``kiosk_mode``) alike. The page has the button and
its scripts. The real app without the dialogue model, real OCR, SQLite or PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import func, select

from assistant.api.app import create_app
from assistant.security import chat_session
from assistant.services.materials import uploads
from assistant.services.progress import events, grants
from assistant.services.progress.importer import load_demo_data
from assistant.storage.database import session_factory
from assistant.storage.tables import AuditRecord, MaterialUpload
from tests.conftest import free_port, isolated_settings

NUMBER = "ZW20251102003"  # 需补正 in the demo data
MISSING = ["居民身份证"]
FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"


def id_card_back() -> bytes:
    image = Image.new("RGB", (1000, 630), (232, 238, 244))
    draw = ImageDraw.Draw(image)
    small, large = ImageFont.truetype(FONT, 40), ImageFont.truetype(FONT, 64)
    draw.text((250, 80), "中华人民共和国", font=small, fill=(20, 20, 20))
    draw.text((250, 160), "居民身份证", font=large, fill=(20, 20, 20))
    draw.text((120, 420), "签发机关  深圳市公安局福田分局", font=small, fill=(20, 20, 20))
    draw.text((120, 500), "有效期限  2015.03.01-2035.03.01", font=small, fill=(20, 20, 20))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="module", params=["central", "kiosk"])
def gateway(request, settings, tmp_path_factory):
    """The kiosk page's gateway: the central server itself, or a kiosk's own gateway
    (kiosk mode, its central server unreachable)."""
    extra = {}
    if request.param == "kiosk":
        extra = {"kiosk_mode": True, "kiosk_id": "hall-9", "central_url": f"http://127.0.0.1:{free_port()}",
                 "central_token": "kiosk-key"}
    configured = isolated_settings(settings, tmp_path_factory.mktemp(f"kiosk-supplement-{request.param}"),
                                  photo_rate_limit="1000/minute", **extra)
    load_demo_data(configured.db_url, configured.secret())
    events.record_event(configured.db_url, NUMBER, "cms-kiosk-1", "supplement", dt.datetime(2026, 12, 4, 10, 0),
                        "请补交身份证", MISSING)
    application = create_app(configured, load_model=False)
    with TestClient(application) as client:
        yield client, configured


def kiosk_session(client):
    made = client.post("/api/v1/voice/sessions")
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["sender_id"].startswith(chat_session.KIOSK_PREFIX)
    return body["sender_id"], body["token"]


def post(client, sender, token, data, material=None, name="photo.jpg", kind="image/jpeg"):
    form = {"material": material} if material is not None else {}
    return client.post(f"/api/v1/chat/{sender}/uploads", params={"token": token},
                       files={"file": (name, data, kind)}, data=form)


def rows(configured, number=NUMBER):
    with session_factory(configured.db_url)() as session:
        return session.execute(select(MaterialUpload).where(MaterialUpload.number == number)
                               .order_by(MaterialUpload.created_at)).scalars().all()


def count_rows(configured) -> int:
    with session_factory(configured.db_url)() as session:
        return session.execute(select(func.count(MaterialUpload.id))).scalar_one()


def test_the_kiosk_page_has_the_button_and_the_shared_camera(gateway):
    client, _ = gateway
    page = client.get("/kiosk")
    assert page.status_code == 200
    html = page.text
    assert 'id="supplement-open"' in html and "拍照补交材料" in html and 'id="supplement-view"' in html
    scripts = ["/static/kiosk/kiosk.js", "/static/kiosk/camera.js", "/static/kiosk/prefill.js",
               "/static/kiosk/supplement.js"]
    assert [html.index(s) for s in scripts] == sorted(html.index(s) for s in scripts)  # camera.js before its users
    for script in scripts:
        assert client.get(script).status_code == 200
    assert "camera=(self)" in page.headers.get("permissions-policy", "")


def test_a_verified_kiosk_conversation_hands_in_by_the_document_camera(gateway):
    client, configured = gateway
    sender, token = kiosk_session(client)
    assert client.get(f"/api/v1/chat/{sender}/uploads", params={"token": token}).json()["verified"] is False
    grants.grant(configured, sender, NUMBER)  # what the dialogue records after the phone check
    wanted = client.get(f"/api/v1/chat/{sender}/uploads", params={"token": token}).json()
    assert wanted["verified"] and wanted["number"] == NUMBER and wanted["materials"] == MISSING

    answer = post(client, sender, token, id_card_back())  # one material wanted: no need to name it
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["material"] == "居民身份证" and body["verdict"] == "ok" and body["forwarded"] is True
    assert "已收到您补交的“居民身份证”" in body["message"] and "2035年3月1日" in body["message"]
    (row,) = rows(configured)
    assert (row.channel, row.material, row.doc_type) == ("kiosk", "居民身份证", "id_card_back")
    assert row.sender_hash == grants.sender_key(configured, sender)
    # Nothing more is wanted now (the case system's timeline has the material).
    after = client.get(f"/api/v1/chat/{sender}/uploads", params={"token": token}).json()
    assert after["materials"] == [] and [u["material"] for u in after["uploaded"]] == ["居民身份证"]
    # On the desk list of the application (audited).
    listed = uploads.list_uploads(configured, NUMBER, "operator:test")
    assert [(u["material"], u["channel"]) for u in listed][0] == ("居民身份证", "kiosk")
    with session_factory(configured.db_url)() as session:
        stored = session.execute(select(AuditRecord).where(AuditRecord.action == uploads.AUDIT_STORE,
                                                           AuditRecord.channel == "kiosk")).scalars().all()
    assert stored and all(NUMBER == a.subject for a in stored)


def test_kiosk_uploads_check_the_token_and_the_verification(gateway):
    client, configured = gateway
    events.record_event(configured.db_url, NUMBER, f"cms-kiosk-again-{dt.datetime.now().timestamp()}", "supplement",
                        dt.datetime.now(), "请补交身份证", MISSING)
    before = count_rows(configured)
    sender, token = kiosk_session(client)
    other, other_token = kiosk_session(client)
    grants.grant(configured, sender, NUMBER)
    photo = id_card_back()
    assert post(client, sender, None, photo).status_code == 403  # no token (401 with BANSHI_REQUIRE_CHAT_TOKEN)
    assert post(client, sender, other_token, photo).status_code == 403  # another kiosk conversation's token
    web = client.post("/api/v1/chat/sessions").json()
    assert post(client, sender, web["token"], photo).status_code == 403
    refused = post(client, other, other_token, photo)  # this one never verified anything
    assert refused.status_code == 403 and refused.json()["detail"] == uploads.NOT_VERIFIED
    not_a_photo = post(client, sender, token, b"just some text, not a picture", name="a.jpg")
    assert not_a_photo.status_code == 415 and "照片" in not_a_photo.json()["detail"]
    unknown = post(client, sender, token, photo, material="结婚证")
    assert unknown.status_code == 422 and "不在需要补交的材料里" in unknown.json()["detail"]
    assert count_rows(configured) == before
