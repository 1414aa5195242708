"""Missing materials handed in by photo (补交材料): the chat upload API, storage encrypted
at rest, forwarding (the local timeline and an HTTP case system, a local fake server),
the desk's view, retention — and refusals, with nothing stored. The real app without
the dialogue model, the real OCR, SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import json
import struct
import threading
import uuid
import zlib
from typing import Dict, List, Tuple

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import func, select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from assistant.api.app import create_app
from assistant.security import accounts, chat_session
from assistant.services.materials import forward, forwarding, uploads, vault
from assistant.services.materials.runner import Materials
from assistant.services.progress import events, grants
from assistant.services.progress.importer import load_demo_data
from assistant.services.progress.providers import load_view
from assistant.services.progress.records import CST
from assistant.storage.database import session_factory
from assistant.storage.tables import AuditRecord, MaterialUpload
from tests import staff
from tests.conftest import isolated_settings, routes_under, serve_in_thread

NUMBER = "ZW20251102003"  # 需补正 in the demo data
OTHER = "ZW20251102001"  # 已受理: nothing to hand in
TWO = "ZW20251102002"  # 审核中 in the demo data, made 需补正 with two materials here
MISSING = ["居民身份证", "居民户口簿"]
PASSWORD = "uploads-desk-password-1"
FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
CMS_SECRET = "cms-shared-secret-for-uploads-01"


# ------------------------------------------------------------------ documents
def id_card_back(quality: int = 90) -> bytes:
    """A synthetic ID card back (国徽面) with its validity, as a phone photo would show it."""
    image = Image.new("RGB", (1000, 630), (232, 238, 244))
    draw = ImageDraw.Draw(image)
    small, large = ImageFont.truetype(FONT, 40), ImageFont.truetype(FONT, 64)
    draw.text((250, 80), "中华人民共和国", font=small, fill=(20, 20, 20))
    draw.text((250, 160), "居民身份证", font=large, fill=(20, 20, 20))
    draw.text((120, 420), "签发机关  深圳市公安局福田分局", font=small, fill=(20, 20, 20))
    draw.text((120, 500), "有效期限  2015.03.01-2035.03.01", font=small, fill=(20, 20, 20))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def png_bomb(side: int = 60000) -> bytes:
    """A tiny PNG whose header declares a huge canvas (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")


def pdf_with_javascript() -> bytes:
    body = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R/OpenAction 4 0 R>>endobj\n"
            b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
            b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
            b"4 0 obj<</S/JavaScript/JS(app.alert('x'))>>endobj\n"
            b"trailer<</Root 1 0 R>>\n%%EOF\n")
    return body


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def app_settings(settings, tmp_path_factory):
    configured = isolated_settings(settings, tmp_path_factory.mktemp("uploads"), upload_max_bytes=2 * 1024 * 1024,
                                  photo_rate_limit="1000/minute")
    load_demo_data(configured.db_url, configured.secret())
    events.record_event(configured.db_url, NUMBER, "cms-upl-1", "supplement", dt.datetime(2026, 12, 4, 10, 0),
                        "请补交身份证和户口簿", MISSING)
    events.record_event(configured.db_url, TWO, "cms-upl-2", "supplement", dt.datetime(2026, 12, 4, 10, 0),
                        "请补交身份证和户口簿", MISSING)
    return configured


@pytest.fixture(scope="module")
def app(app_settings):
    application = create_app(app_settings, load_model=False)
    with TestClient(application):
        yield application


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app)


_senders = iter(range(1, 10_000))


def asked_again(app_settings, number: str = NUMBER) -> None:
    """The case system asks for both materials again (a newest 需补正 step), whatever
    earlier tests handed in."""
    now = dt.datetime.now(CST).replace(tzinfo=None)
    events.record_event(app_settings.db_url, number, f"cms-again-{uuid.uuid4().hex[:12]}", "supplement", now,
                        "请补交身份证和户口簿", MISSING)


def verified(app_settings, number: str = NUMBER) -> Tuple[str, str]:
    """A web conversation (id, token) that has just verified ``number``."""
    sender = chat_session.new_sender_id()
    grants.grant(app_settings, sender, number)
    return sender, chat_session.sign(app_settings.secret(), sender)


def post(client, sender: str, token: str, data: bytes, material=None, name="photo.jpg", kind="image/jpeg"):
    form = {"material": material} if material is not None else {}
    return client.post(f"/api/v1/chat/{sender}/uploads", params={"token": token},
                       files={"file": (name, data, kind)}, data=form)


def stored_rows(app_settings) -> int:
    with session_factory(app_settings.db_url)() as session:
        return session.execute(select(func.count(MaterialUpload.id))).scalar_one()


def files_on_disk(app_settings) -> List[str]:
    folder = vault.upload_dir(app_settings)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def audits(app_settings, action: str) -> List[AuditRecord]:
    with session_factory(app_settings.db_url)() as session:
        return session.execute(select(AuditRecord).where(AuditRecord.action == action)
                               .order_by(AuditRecord.id)).scalars().all()


def login(app, username: str) -> Tuple[TestClient, Dict[str, str]]:
    return staff.login(app, username, PASSWORD)


@pytest.fixture(scope="module")
def desk_users(app_settings):
    accounts.create_operator(app_settings.db_url, "upl-operator", PASSWORD, display_name="坐席")
    accounts.create_operator(app_settings.db_url, "upl-admin", PASSWORD, role="admin", display_name="管理员")
    return "upl-operator", "upl-admin"


# ------------------------------------------------------------------ the happy path
def test_a_verified_citizen_hands_in_a_missing_material(client, app_settings):
    asked_again(app_settings)
    sender, token = verified(app_settings)
    wanted = client.get(f"/api/v1/chat/{sender}/uploads", params={"token": token}).json()
    assert wanted["verified"] and wanted["number"] == NUMBER and wanted["materials"] == MISSING

    photo = id_card_back()
    answer = post(client, sender, token, photo, material="居民身份证")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["number"] == NUMBER and body["material"] == "居民身份证" and body["forwarded"] is True
    assert body["verdict"] == "ok" and "身份证" in body["message"] and "2035年3月1日" in body["message"]
    assert "已收到您补交的“居民身份证”" in body["message"]

    # Encrypted at rest: neither the JPEG nor any of its bytes in clear on disk.
    blob = vault.file_path(app_settings, body["id"]).read_bytes()
    assert not blob.startswith(b"\xff\xd8") and photo[100:164] not in blob and len(blob) > len(photo)
    assert vault.decrypt(app_settings.secret(), body["id"], blob) == photo
    with pytest.raises(Exception):  # the file of one upload cannot be passed off as another's
        vault.decrypt(app_settings.secret(), "00000000-0000-4000-8000-000000000000", blob)
    assert oct(vault.file_path(app_settings, body["id"]).stat().st_mode & 0o777) == "0o600"

    with session_factory(app_settings.db_url)() as session:
        row = session.get(MaterialUpload, body["id"])
        assert (row.number, row.material, row.mime, row.channel, row.verdict) == (
            NUMBER, "居民身份证", "image/jpeg", "web", "ok")
        assert row.doc_type == "id_card_back" and row.expiry == dt.date(2035, 3, 1) and row.forwarded_at
        assert row.text_sealed and "深圳" not in row.text_sealed  # sealed, not just masked
        assert sender not in row.sender_hash

    # The local case system put the receipt on the timeline: the lookup shows it and
    # lists only what is still missing.
    view = load_view(app_settings.db_url, NUMBER)
    assert view.latest.note == "已收到补交材料：居民身份证，等待工作人员审核。"
    assert view.missing_materials == ["居民户口簿"] and view.status == "supplement"
    again = client.get(f"/api/v1/chat/{sender}/uploads", params={"token": token}).json()
    assert again["materials"] == ["居民户口簿"] and again["uploaded"][0]["material"] == "居民身份证"

    store = audits(app_settings, uploads.AUDIT_STORE)[-1]
    assert store.subject == NUMBER and store.result == "ok" and store.actor.startswith("citizen:")
    assert audits(app_settings, forwarding.AUDIT_FORWARD)[-1].result == "ok"


def test_a_better_photo_of_a_material_already_sent_is_taken(client, app_settings):
    asked_again(app_settings)
    sender, token = verified(app_settings)
    first = post(client, sender, token, id_card_back(), material="居民身份证")
    assert first.status_code == 201
    second = post(client, sender, token, id_card_back(quality=70), material="居民身份证")
    assert second.status_code == 201 and second.json()["material"] == "居民身份证"


def test_the_material_must_be_one_that_is_missing(client, app_settings):
    sender, token = verified(app_settings)
    before = stored_rows(app_settings)
    unknown = post(client, sender, token, id_card_back(), material="结婚证")
    assert unknown.status_code == 422 and "不在需要补交的材料里" in unknown.json()["detail"]
    assert stored_rows(app_settings) == before


# ------------------------------------------------------------------ refusals
def test_without_verification_the_upload_is_refused(client, app_settings):
    before, files = stored_rows(app_settings), files_on_disk(app_settings)
    sender = chat_session.new_sender_id()
    token = chat_session.sign(app_settings.secret(), sender)
    refused = post(client, sender, token, id_card_back(), material="居民身份证")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "请先核实办件信息（受理编号和手机尾号），再上传材料。"
    assert client.get(f"/api/v1/chat/{sender}/uploads", params={"token": token}).json()["verified"] is False
    # An expired grant is no grant.
    grants.grant(app_settings, sender, NUMBER, minutes=0)
    assert post(client, sender, token, id_card_back(), material="居民身份证").status_code == 403
    # Another conversation's token does not open it.
    other, other_token = verified(app_settings)
    forged = post(client, other, token, id_card_back(), material="居民身份证")
    assert forged.status_code == 403 and forged.json()["detail"] == "会话已失效，请刷新页面后重试"
    assert stored_rows(app_settings) == before and files_on_disk(app_settings) == files
    assert audits(app_settings, uploads.AUDIT_REFUSE)[-1].result == "not_verified"


def test_an_application_without_missing_materials_takes_none(client, app_settings):
    sender, token = verified(app_settings, OTHER)
    refused = post(client, sender, token, id_card_back(), material="居民身份证")
    assert refused.status_code == 409 and refused.json()["detail"] == f"编号 {OTHER} 的办件目前不需要补交材料。"
    assert client.get(f"/api/v1/chat/{sender}/uploads", params={"token": token}).json()["materials"] == []


BAD_FILES = {
    "not a photo": (b"Hello, this is plain text, not a photo." * 10, 415, "只能上传照片"),
    "an executable named .jpg": (b"MZ\x90\x00" + b"\x00" * 2000, 415, "只能上传照片"),
    "a decompression bomb": (png_bomb(), 413, "照片尺寸太大"),
    "a PDF with JavaScript": (pdf_with_javascript(), 422, "脚本"),
    "a truncated JPEG": (id_card_back()[:3000], 422, "损坏"),
    "an empty file": (b"", 422, "空"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_are_refused_with_a_clear_message_and_nothing_is_stored(client, app_settings, case):
    data, status, words = BAD_FILES[case]
    sender, token = verified(app_settings)
    before, files = stored_rows(app_settings), files_on_disk(app_settings)
    refused = post(client, sender, token, data, material="居民户口簿")
    assert refused.status_code == status, refused.text
    assert words in refused.json()["detail"]
    assert stored_rows(app_settings) == before and files_on_disk(app_settings) == files


def test_oversize_uploads_are_refused_before_they_are_read(client, app_settings):
    sender, token = verified(app_settings)
    before = stored_rows(app_settings)
    big = b"\xff\xd8\xff" + b"\x00" * (app_settings.upload_max_bytes + 200 * 1024)
    refused = post(client, sender, token, big, material="居民户口簿")
    assert refused.status_code == 413 and "太大" in refused.json()["detail"]
    # Just over the file limit but within the body slack: the inspection refuses it.
    within = b"\xff\xd8\xff" + b"\x00" * (app_settings.upload_max_bytes + 10)
    refused = post(client, sender, token, within, material="居民户口簿")
    assert refused.status_code == 413 and "太大" in refused.json()["detail"]
    # A declared length over the limit is refused before the body is read.
    declared = client.post(f"/api/v1/chat/{sender}/uploads", params={"token": token}, content=b"x",
                           headers={"content-length": str(10 ** 9), "content-type": "multipart/form-data; boundary=x"})
    assert declared.status_code == 413
    assert stored_rows(app_settings) == before


@pytest.mark.parametrize("body, kind", [
    (b"", "multipart/form-data"),  # no boundary
    (b"--x\r\nContent-Disposition: form-data\r\n\r\nabc\r\n--x--\r\n", "multipart/form-data; boundary=x"),
    (b"--x\r\nbroken", "multipart/form-data; boundary=x"),
    (json.dumps({"file": "abc"}).encode(), "application/json"),
    (b"a=b", "application/x-www-form-urlencoded"),
])
def test_malformed_forms_get_a_clear_4xx(client, app_settings, body, kind):
    sender, token = verified(app_settings)
    answer = client.post(f"/api/v1/chat/{sender}/uploads", params={"token": token}, content=body,
                         headers={"content-type": kind})
    assert 400 <= answer.status_code < 500 and any("\u4e00" <= c <= "\u9fff" for c in answer.json()["detail"])


def test_two_files_in_one_upload_are_refused(client, app_settings):
    sender, token = verified(app_settings)
    answer = client.post(f"/api/v1/chat/{sender}/uploads", params={"token": token},
                         files=[("file", ("a.jpg", id_card_back(), "image/jpeg")),
                                ("file", ("b.jpg", id_card_back(), "image/jpeg"))])
    assert answer.status_code == 400 and answer.json()["detail"] == "上传格式不正确，请重新选择文件上传。"


def test_several_missing_materials_need_the_material_named(client, app_settings):
    sender, token = verified(app_settings, TWO)
    before = stored_rows(app_settings)
    unnamed = post(client, sender, token, id_card_back())
    assert unnamed.status_code == 422
    assert unnamed.json()["detail"] == "请选择您要补交的是哪一项材料：居民身份证、居民户口簿。"
    assert stored_rows(app_settings) == before


def test_with_one_material_missing_it_need_not_be_named(client, app_settings):
    asked_again(app_settings)
    sender, token = verified(app_settings)
    assert post(client, sender, token, id_card_back(), material="居民身份证").status_code == 201
    # The household register is what is left: an unnamed upload is taken as that.
    answer = post(client, sender, token, id_card_back())
    assert answer.status_code == 201 and answer.json()["material"] == "居民户口簿"
    assert answer.json()["verdict"] == "doubtful"  # an ID card is not a household register
    assert "wrong_type" in answer.json()["reasons"] and "户口" in answer.json()["message"]


def test_photo_questions_refuse_bad_files_and_unreadable_photos(client, app_settings):
    sender = chat_session.new_sender_id()
    token = chat_session.sign(app_settings.secret(), sender)
    url = f"/api/v1/chat/{sender}/photos"
    files, rows = files_on_disk(app_settings), stored_rows(app_settings)
    junk = client.post(url, params={"token": token}, files={"file": ("a.jpg", b"not an image at all", "image/jpeg")})
    assert junk.status_code == 415 and "只能上传照片" in junk.json()["detail"]
    blank = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 200, 200)).save(blank, "JPEG")
    unread = client.post(url, params={"token": token}, files={"file": ("b.jpg", blank.getvalue(), "image/jpeg")})
    assert unread.status_code == 422 and "没能看清" in unread.json()["detail"]
    bomb = client.post(url, params={"token": token}, files={"file": ("c.png", png_bomb(), "image/png")})
    assert bomb.status_code == 413
    forged = client.post(url, params={"token": "x" * 20}, files={"file": ("b.jpg", blank.getvalue(), "image/jpeg")})
    assert forged.status_code == 403
    assert files_on_disk(app_settings) == files and stored_rows(app_settings) == rows  # nothing kept


def test_too_many_photos_from_one_client_are_refused_before_they_are_read(settings, tmp_path):
    configured = isolated_settings(settings, tmp_path, photo_rate_limit="3/minute")
    with TestClient(create_app(configured, load_model=False)) as http:
        sender = chat_session.new_sender_id()
        token = chat_session.sign(configured.secret(), sender)
        answers = [http.post(f"/api/v1/chat/{sender}/photos", params={"token": token},
                             files={"file": ("a.jpg", b"not an image", "image/jpeg")}) for _ in range(4)]
        assert [a.status_code for a in answers] == [415, 415, 415, 429]
        assert answers[-1].json()["detail"] == "您发送照片的次数太多了，请 1 分钟后再试。"
        assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
        # Uploads count against the same limit (another conversation, the same client).
        other, other_token = verified(configured)
        assert post(http, other, other_token, id_card_back(), material="居民身份证").status_code == 429


# ------------------------------------------------------------------ the desk
UPLOAD_ROUTES = [(m, p.replace("{upload_id}", "00000000-0000-4000-8000-000000000000"))
                 for m, p in routes_under("/api/v1/desk/uploads")]


def test_the_desk_routes_are_found():
    assert {m for m, _ in UPLOAD_ROUTES} == {"GET", "DELETE"} and len(UPLOAD_ROUTES) == 3


@pytest.mark.parametrize("method, path", UPLOAD_ROUTES)
def test_every_desk_upload_route_needs_a_login(app, method, path):
    answer = TestClient(app).request(method, path, params={"number": NUMBER})
    assert answer.status_code == 401 and answer.json()["detail"] == "请先登录"


def test_operators_see_and_open_uploads_admins_delete_them(app, client, app_settings, desk_users):
    asked_again(app_settings)
    operator, admin = desk_users
    sender, token = verified(app_settings)
    photo = id_card_back(quality=85)
    upload_id = post(client, sender, token, photo, material="居民身份证").json()["id"]

    desk, csrf = login(app, operator)
    listed = desk.get("/api/v1/desk/uploads", params={"number": NUMBER.lower()})
    assert listed.status_code == 200
    found = next(u for u in listed.json()["uploads"] if u["id"] == upload_id)
    assert found["material"] == "居民身份证" and found["doc_type"] == "id_card_back" and found["verdict"] == "ok"
    assert found["expiry"] == "2035-03-01" and "签发机关" in found["text"] and found["forwarded"]
    assert desk.get("/api/v1/desk/uploads", params={"number": "13800003003"}).status_code == 422

    opened = desk.get(f"/api/v1/desk/uploads/{upload_id}/file")
    assert opened.status_code == 200 and opened.content == photo
    assert opened.headers["content-type"] == "image/jpeg" and opened.headers["cache-control"] == "no-store"
    assert "sandbox" in opened.headers["content-security-policy"]
    view = audits(app_settings, uploads.AUDIT_VIEW)[-1]
    assert (view.actor, view.subject, view.result) == (f"operator:{operator}", NUMBER, "ok")
    assert audits(app_settings, uploads.AUDIT_LIST)[-1].actor == f"operator:{operator}"

    assert desk.delete(f"/api/v1/desk/uploads/{upload_id}", headers=csrf).status_code == 403  # operators may not
    boss, boss_csrf = login(app, admin)
    assert boss.delete(f"/api/v1/desk/uploads/{upload_id}", headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert boss.delete(f"/api/v1/desk/uploads/{upload_id}", headers=boss_csrf).json()["deleted"] is True
    assert not vault.file_path(app_settings, upload_id).exists()
    gone = desk.get(f"/api/v1/desk/uploads/{upload_id}/file")
    assert gone.status_code == 404 and "删除" in gone.json()["detail"]
    assert boss.delete(f"/api/v1/desk/uploads/{upload_id}", headers=boss_csrf).status_code == 404
    assert audits(app_settings, uploads.AUDIT_DELETE)[-1].actor == f"operator:{admin}"
    missing = desk.get("/api/v1/desk/uploads/not-a-uuid/file")
    assert missing.status_code == 422
    # A file lost from the disk (or sealed under another key) is a 404, never a 500.
    asked_again(app_settings)
    lost_id = post(client, sender, token, photo, material="居民身份证").json()["id"]
    vault.file_path(app_settings, lost_id).unlink()
    lost = desk.get(f"/api/v1/desk/uploads/{lost_id}/file")
    assert lost.status_code == 404 and audits(app_settings, uploads.AUDIT_VIEW)[-1].result == "unreadable"


# ------------------------------------------------------------------ retention
def test_files_past_retention_are_deleted_and_the_rows_kept(client, app_settings):
    asked_again(app_settings)
    sender, token = verified(app_settings)
    upload_id = post(client, sender, token, id_card_back(), material="居民身份证").json()["id"]
    with session_factory(app_settings.db_url)() as session:
        session.execute(update(MaterialUpload).where(MaterialUpload.id == upload_id)
                        .values(created_at=dt.datetime.utcnow() - dt.timedelta(days=app_settings.upload_retention_days + 1)))
        session.commit()
    assert uploads.purge(app_settings) == 1
    assert not vault.file_path(app_settings, upload_id).exists()
    with session_factory(app_settings.db_url)() as session:
        row = session.get(MaterialUpload, upload_id)
        assert row.deleted_at is not None and row.text_sealed is None and row.material == "居民身份证"
    purged = audits(app_settings, uploads.AUDIT_PURGE)[-1]
    assert (purged.actor, purged.subject) == ("system:retention", NUMBER)
    assert uploads.purge(app_settings) == 0


def test_the_purge_command(client, app_settings):
    asked_again(app_settings)
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    sender, token = verified(app_settings)
    upload_id = post(client, sender, token, id_card_back(), material="居民身份证").json()["id"]
    with session_factory(app_settings.db_url)() as session:
        session.execute(update(MaterialUpload).where(MaterialUpload.id == upload_id)
                        .values(created_at=dt.datetime.utcnow() - dt.timedelta(days=400)))
        session.commit()
    env = {**os.environ, "BANSHI_DATA_DIR": str(app_settings.data_dir), "BANSHI_UPLOAD_RETENTION_DAYS": "365"}
    if app_settings.database_url:
        env["BANSHI_DATABASE_URL"] = app_settings.database_url
    done = subprocess.run([sys.executable, "-m", "assistant.cli", "progress", "purge-uploads"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "已删除 1 份超过保存期限（365 天）的补交材料文件" in done.stdout
    assert not vault.file_path(app_settings, upload_id).exists()


def test_leftover_files_without_their_row_are_removed(client, app_settings):
    asked_again(app_settings)
    import os
    import time
    import uuid

    sender, token = verified(app_settings)
    kept_id = post(client, sender, token, id_card_back(), material="居民身份证").json()["id"]
    folder = vault.upload_dir(app_settings)
    orphan = folder / f"{uuid.uuid4()}.bin"  # a crash between the file and its row
    half = folder / f"{uuid.uuid4()}.tmp"  # a crash while writing
    fresh = folder / f"{uuid.uuid4()}.bin"  # being written right now: left alone
    for path in (orphan, half, fresh):
        path.write_bytes(b"BSU1" + os.urandom(64))
    hour_ago = time.time() - 2 * uploads.ORPHAN_SECONDS
    for path in (orphan, half, vault.file_path(app_settings, kept_id)):
        os.utime(path, (hour_ago, hour_ago))
    uploads.purge(app_settings)
    assert not orphan.exists() and not half.exists() and fresh.exists()
    assert vault.file_path(app_settings, kept_id).exists()  # old, but its row is live
    fresh.unlink()


# ------------------------------------------------------------------ an HTTP case system
class FakeCaseSystem:
    """A case-management system that checks our signature and answers as told."""

    def __init__(self) -> None:
        self.received: List[Dict] = []
        self.statuses: List[int] = []
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/applications/{number}/materials", self.take, methods=["POST"])])

    async def take(self, request: Request) -> JSONResponse:
        body = await request.body()
        stamp = request.headers.get("x-banshi-timestamp", "")
        if not events.signature_ok(CMS_SECRET, stamp, body, request.headers.get("x-banshi-signature", "")):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        with self.lock:
            status = self.statuses.pop(0) if self.statuses else 201
            if status < 300:
                payload = json.loads(body)
                self.received.append({**payload, "number": request.path_params["number"],
                                      "key": request.headers.get("idempotency-key")})
        await asyncio.sleep(0.05)
        return JSONResponse({"reference": f"CMS-{len(self.received)}"}, status_code=status)


@pytest.fixture(scope="module")
def case_system():
    fake = FakeCaseSystem()
    with serve_in_thread(fake.app) as url:
        yield fake, url


def test_uploads_reach_an_http_case_system_once_retried_after_a_failure(settings, tmp_path, case_system):
    fake, url = case_system
    configured = isolated_settings(settings, tmp_path, cms_webhook_secret=CMS_SECRET, materials_forward_url=url,
                                   photo_rate_limit="1000/minute")
    load_demo_data(configured.db_url, configured.secret())
    events.record_event(configured.db_url, NUMBER, "cms-http-1", "supplement", dt.datetime(2026, 12, 4, 10, 0), "", MISSING)
    fake.statuses[:] = [503]  # down at first
    with TestClient(create_app(configured, load_model=False)) as http:
        sender, token = verified(configured)
        photo = id_card_back()
        answer = post(http, sender, token, photo, material="居民身份证")
        assert answer.status_code == 201 and answer.json()["forwarded"] is False
        assert "稍后会转交" in answer.json()["message"] and fake.received == []
        upload_id = answer.json()["id"]

    # Due again (the back-off passed): two sweeps at once (two replicas) send it once.
    with session_factory(configured.db_url)() as session:
        session.execute(update(MaterialUpload).where(MaterialUpload.id == upload_id)
                        .values(next_forward_at=dt.datetime.utcnow() - dt.timedelta(seconds=1)))
        session.commit()

    async def two_sweeps():
        first, second = Materials(configured), Materials(configured)
        try:
            return await asyncio.gather(forwarding.forward_due(configured, first.case_system),
                                        forwarding.forward_due(configured, second.case_system))
        finally:
            await first.stop()
            await second.stop()

    counts = asyncio.run(two_sweeps())
    assert sum(c["ok"] for c in counts) == 1 and len(fake.received) == 1
    got = fake.received[0]
    assert (got["number"], got["upload_id"], got["key"], got["material"]) == (NUMBER, upload_id, upload_id, "居民身份证")
    assert base64.b64decode(got["data_base64"]) == photo and got["doc_type"] == "id_card_back"
    with session_factory(configured.db_url)() as session:
        row = session.get(MaterialUpload, upload_id)
        assert row.forwarded_at and row.forward_ref == "CMS-1" and row.forward_attempts == 2
        assert row.next_forward_at is None
    # A refusal (4xx) is final: not retried.
    fake.statuses[:] = [400]
    with TestClient(create_app(configured, load_model=False)) as http:
        refused = post(http, sender, token, photo, material="居民户口簿")
    with session_factory(configured.db_url)() as session:
        row = session.get(MaterialUpload, refused.json()["id"])
        assert row.forwarded_at is None and row.next_forward_at is None
    assert len(fake.received) == 1


def test_a_forged_signature_is_what_the_fake_refuses(case_system):
    """The fake really checks signatures (so the test above proves ours are right)."""
    fake, url = case_system
    wrong = forward.HttpCaseSystem(url, "not-the-secret-at-all-000000")
    material = forward.Material("00000000-0000-4000-8000-000000000001", NUMBER, "居民身份证", "image/jpeg", b"x")

    async def send():
        try:
            await wrong.forward_material(material)
        finally:
            await wrong.aclose()

    with pytest.raises(forward.ForwardFailed) as failed:
        asyncio.run(send())
    assert failed.value.reason == "http_401" and failed.value.retryable is False
