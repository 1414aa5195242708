"""Kiosk pre-applications for real: the kiosk's and the central's gateways served by
uvicorn, their own databases (SQLite files, or PostgreSQL databases in the second
pass), the outbox delivering over HTTP.

Sealed at rest (the bytes on disk hold no plaintext), receipt numbers, bounds, exactly
once at the central (also when sent again), the kiosk forgetting what was delivered,
operators' reads audited, retention, and the lookup by receipt number.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
from pathlib import Path
from typing import Dict, List

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw
from sqlalchemy import select, update

from assistant.api.app import create_app
from assistant.security import accounts
from assistant.services import outbox
from assistant.services.prefill import central, kiosk, sealing
from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import (
    AuditRecord,
    InboxMessage,
    OutboxMessage,
    Preapplication,
    PreapplicationMaterial,
)
from knowledge.catalog import load_catalog
from knowledge.prefill import load_forms
from tests.conftest import BACKEND, free_port, isolated_settings, serve_in_thread

KEY = "prefill-kiosk-key"
KIOSK_ID = "hall-3"
ITEM = "residence_permit"
NAME, ID_NUMBER, PHONE, ADDRESS = "欧阳娜娜", "11010519491231002X", "13987654321", "幸福路一百二十三号五栋六零一室"
FIELDS = {
    "name": NAME,
    "id_number": ID_NUMBER,
    "phone": PHONE,
    "address": ADDRESS,
    "since": "2025-03-01",
    "basis": "合法稳定住所",
}
PASSWORD = "prefill-desk-password"


@pytest.fixture(scope="module")
def form():
    return load_forms(load_catalog())[ITEM]


def photo(text: str = "居民身份证", fmt: str = "JPEG", size=(1200, 800)) -> bytes:
    image = Image.new("RGB", size, (245, 245, 240))
    draw = ImageDraw.Draw(image)
    for row in range(0, size[1], 40):  # some structure, so that the bytes are distinctive
        draw.line([(0, row), (size[0], (row * 7) % size[1])], fill=(row % 255, 40, 90), width=3)
    draw.text((40, 40), text.encode("ascii", "replace").decode(), fill=(0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, fmt, quality=90) if fmt == "JPEG" else image.save(buffer, fmt)
    return buffer.getvalue()


def kiosk_config(settings, directory: Path, central_url: str, **updates):
    values = {"kiosk_mode": True, "kiosk_id": KIOSK_ID, "central_url": central_url, "central_token": KEY,
              "secret_key": None, **updates}
    return isolated_settings(settings, directory, **values)


def central_config(settings, directory: Path, **updates):
    return isolated_settings(settings, directory, kiosk_mode=False, kiosk_api_keys=KEY, secret_key=None, **updates)


def rows(db_url, table) -> List:
    with session_factory(db_url)() as session:
        return session.execute(select(table)).scalars().all()


def disk_bytes(settings) -> bytes:
    """Everything this side keeps on disk: its SQLite files and sealed photos."""
    found = b""
    for path in settings.data_dir.rglob("*"):
        if path.is_file() and path.name != "secret_key":
            found += path.read_bytes()
    return found


def plaintexts(photo_bytes: List[bytes]) -> Dict[str, bytes]:
    out = {name: value.encode() for name, value in (("name", NAME), ("id", ID_NUMBER), ("phone", PHONE), ("address", ADDRESS))}
    for index, data in enumerate(photo_bytes):
        out[f"photo{index}"] = data[len(data) // 2: len(data) // 2 + 48]  # a piece of the compressed image
    return out


def set_delivered(db_url, message_id, when) -> None:
    with session_factory(db_url)() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id).values(delivered_at=when))
        session.commit()


async def deliver(config) -> tuple:
    async with outbox.central_client(config) as client:
        return await outbox.deliver_due(config.db_url, client, kiosk_id=config.kiosk_id, settings=config)


# ------------------------------------------------------------- at the kiosk
def test_a_pre_application_is_sealed_at_rest_with_a_receipt_at_once(settings, tmp_path, form):
    config = kiosk_config(settings, tmp_path / "kiosk", "http://127.0.0.1:9")
    photos = [photo("ID"), photo("LEASE", "PNG")]
    done = kiosk.submit(config, form, FIELDS, [kiosk.PhotoUpload("居民身份证", photos[0]), kiosk.PhotoUpload("房屋租赁合同", photos[1])])
    assert done.receipt.startswith("KSHALL3-") and done.receipt.endswith("-0001") and done.queued
    [row] = rows(config.db_url, Preapplication)
    assert (row.receipt, row.item_id, row.materials, row.applicant_masked, row.received_at) == (
        done.receipt, ITEM, 2, "欧***", None)
    assert sealing.open_fields(config.secret(), row.receipt, row.fields_sealed)["id_number"] == ID_NUMBER
    materials = rows(config.db_url, PreapplicationMaterial)
    assert sorted(m.material for m in materials) == ["居民身份证", "房屋租赁合同"]
    for material in materials:
        original = photos[0] if material.material == "居民身份证" else photos[1]
        assert sealing.read_photo(config, material.id, material.path) == original
    queued = rows(config.db_url, OutboxMessage)
    assert sorted(m.kind for m in queued) == ["material", "material", "preapplication"]
    assert {m.id for m in queued} >= {m.id for m in materials}
    # Nothing personal in the clear: not in the outbox payloads, not anywhere on disk.
    stored = " ".join(m.payload for m in queued)
    assert all(value not in stored for value in FIELDS.values() if value != ITEM)
    if BACKEND == "sqlite":
        on_disk = disk_bytes(config)
        for what, plain in plaintexts(photos).items():
            assert plain not in on_disk, f"{what} in the clear on disk"
    else:
        on_disk = disk_bytes(config)  # the sealed photo files
        assert all(plain not in on_disk for plain in plaintexts(photos).values())
        assert all(value not in (row.fields_sealed or "") for value in (NAME, ID_NUMBER, PHONE))
    # The receipt is answered here, as waiting at the kiosk.
    view = central.find_receipt(config.db_url, done.receipt)
    assert (view.state, view.materials, view.materials_received) == ("pending", 2, 0)


def test_receipt_numbers_count_per_day_and_never_repeat(settings, tmp_path, form):
    config = kiosk_config(settings, tmp_path / "kiosk", "http://127.0.0.1:9", kiosk_code="H3")
    day1 = dt.datetime(2026, 12, 5, 2, 0)
    first = kiosk.submit(config, form, FIELDS, [], now=day1).receipt
    errors: List[str] = []
    found: List[str] = []

    def one() -> None:
        try:
            found.append(kiosk.submit(config, form, FIELDS, [], now=day1).receipt)
        except Exception as exc:  # collected and asserted below
            errors.append(repr(exc))

    # More submissions at once than a kiosk's retries: PostgreSQL must serialise the
    # allocation itself (CI once lost one of six to five collisions in a row).
    threads = [threading.Thread(target=one) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert first == "KSH3-20261205-0001"
    assert sorted(found) == [f"KSH3-20261205-{n:04d}" for n in range(2, 14)]
    # The next day (in Beijing) starts again at 0001.
    assert kiosk.submit(config, form, FIELDS, [], now=dt.datetime(2026, 12, 5, 16, 30)).receipt == "KSH3-20261206-0001"


def test_a_full_kiosk_refuses_politely(settings, tmp_path, form):
    config = kiosk_config(settings, tmp_path / "kiosk", "http://127.0.0.1:9", prefill_max_pending=1)
    kiosk.submit(config, form, FIELDS, [])
    with pytest.raises(kiosk.PrefillRefused) as caught:
        kiosk.submit(config, form, FIELDS, [])
    assert caught.value.status == 503 and "已满" in caught.value.message
    assert len(rows(config.db_url, Preapplication)) == 1


# ---------------------------------------------------------- the kiosk page API
@pytest.fixture
def kiosk_app(settings, tmp_path):
    config = kiosk_config(settings, tmp_path / "kiosk-app", "http://127.0.0.1:9", prefill_max_photos=2,
                          prefill_max_photo_bytes=512 * 1024)
    with TestClient(create_app(config, load_model=False)) as client:
        session = client.post("/api/v1/voice/sessions").json()
        yield client, session, config


def body(session, **changes):
    out = {"sender_id": session["sender_id"], "token": session["token"], "item_id": ITEM, "fields": dict(FIELDS), "photos": []}
    out.update(changes)
    return out


def b64(data: bytes, prefix: str = "data:image/jpeg;base64,") -> str:
    import base64

    return prefix + base64.b64encode(data).decode()


def test_the_forms_and_a_submission_over_http(kiosk_app):
    client, session, config = kiosk_app
    forms = client.get("/api/v1/kiosk/forms").json()
    assert forms["offline"] is True and forms["printer"] is False
    assert forms["limits"] == {"max_photos": 2, "max_photo_bytes": 512 * 1024, "max_photo_pixels": config.prefill_max_photo_pixels}
    permit = next(f for f in forms["items"] if f["item_id"] == ITEM)
    assert [f["id"] for f in permit["fields"]] == list(FIELDS)
    answer = client.post("/api/v1/kiosk/preapplications", json=body(session, photos=[{"material": "居民身份证", "data": b64(photo())}]))
    assert answer.status_code == 201, answer.text
    got = answer.json()
    assert got["receipt"].startswith("KSHALL3-") and got["state"] == "pending" and got["materials"] == 1
    assert got["item_name"] == "居住证申领" and "网络恢复后会自动提交" in got["message"] and got["print"] is False
    with session_factory(config.db_url)() as db:
        audit = db.execute(select(AuditRecord).where(AuditRecord.action == "prefill.submit")).scalars().all()
    assert [(a.subject, a.channel, a.result) for a in audit] == [(got["receipt"], "kiosk", "queued")]
    assert audit[0].actor.startswith("citizen:") and session["sender_id"] not in audit[0].actor


@pytest.mark.parametrize(
    "change, status, detail, problem",
    [
        ({"fields": {**FIELDS, "id_number": "110105194912310021", "phone": "123"}}, 422, "有几项需要修改", "id_number"),
        ({"fields": {**FIELDS, "basis": "关系好"}}, 422, "有几项需要修改", "basis"),
        ({"photos": [{"material": "居民身份证", "data": b64(b"%PDF-1.4 not a photo" * 100)}]}, 415, "JPG 或 PNG", "photo:0"),
        ({"photos": [{"material": "居民身份证", "data": b64(photo(size=(100, 80)))}]}, 422, "照片太小", "photo:0"),
        ({"photos": [{"material": "居民身份证", "data": "@@not base64@@"}]}, 422, "照片数据格式不正确", "photo:0"),
        ({"photos": [{"material": "驾驶证", "data": b64(photo())}]}, 422, "不在本事项的材料清单", "photo:0"),
        ({"photos": [{"material": "居民身份证", "data": b64(photo())}] * 3}, 422, "最多 2 张", None),
        ({"photos": [{"material": "居民身份证", "data": b64(b"\xff\xd8\xff" + b"\0" * 600 * 1024)}]}, 413, "太大", "photo:0"),
        ({"item_id": "passport_to_mars"}, 404, "不能在自助机上预填", None),
        ({"token": "forged"}, 403, "会话已失效", None),
        ({"fields": "张三"}, 422, "字段类型不正确", None),
    ],
    ids=["bad-values", "bad-choice", "pdf", "tiny", "not-base64", "other-material", "too-many", "oversize", "no-form",
         "forged-token", "fields-not-an-object"],
)
def test_bad_submissions_are_refused_in_chinese_and_nothing_is_kept(kiosk_app, change, status, detail, problem):
    client, session, config = kiosk_app
    answer = client.post("/api/v1/kiosk/preapplications", json=body(session, **change))
    assert answer.status_code == status, answer.text
    assert detail in answer.json()["detail"]
    if problem:
        assert problem in answer.json()["problems"]
    assert rows(config.db_url, Preapplication) == [] and rows(config.db_url, OutboxMessage) == []
    files = config.data_dir / "prefill"
    assert not files.exists() or not any(files.iterdir())


def test_bodies_over_the_bound_and_broken_json_are_refused(kiosk_app):
    client, session, _ = kiosk_app
    huge = client.post("/api/v1/kiosk/preapplications", content=b"{" + b" " * (3 * 700 * 1024), headers={"content-type": "application/json"})
    assert huge.status_code == 413 and huge.json()["detail"] == "请求内容太大"
    broken = client.post("/api/v1/kiosk/preapplications", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 400 and "JSON" in broken.json()["detail"]


# --------------------------------------------------------- kiosk → central
@pytest.fixture
def central_server(settings, tmp_path):
    config = central_config(settings, tmp_path / "central")
    with serve_in_thread(create_app(config, load_model=False), free_port()) as url:
        yield url, config


async def test_delivered_exactly_once_and_forgotten_at_the_kiosk(settings, tmp_path, form, central_server):
    central_url, central_cfg = central_server
    down = kiosk_config(settings, tmp_path / "kiosk", f"http://127.0.0.1:{free_port()}")
    photos = [photo("ID"), photo("LEASE", "PNG")]
    done = kiosk.submit(down, form, FIELDS, [kiosk.PhotoUpload("居民身份证", photos[0]), kiosk.PhotoUpload("房屋租赁合同", photos[1])])
    # Nobody answers: every message waits for another try; nothing is lost.
    assert await deliver(down) == (0, 3)
    assert outbox.status(down.db_url)["counts"] == {"pending": 3, "delivered": 0, "failed": 0}
    config = down.copy(update={"central_url": central_url})
    messages = outbox.due_messages(config.db_url, utcnow() + dt.timedelta(hours=1))
    assert [m.kind for m in messages] == ["preapplication", "material", "material"]  # the form first
    # A photo waits while its pre-application is on its way.
    with pytest.raises(outbox.NotYet):
        outbox.request_of(config, messages[1], KIOSK_ID)
    # Each request sent by hand first (as if every answer had been lost) …
    set_delivered(config.db_url, messages[0].id, utcnow())
    requests = [outbox.request_of(config, message, KIOSK_ID) for message in messages]
    set_delivered(config.db_url, messages[0].id, None)
    async with outbox.central_client(config) as client:
        for request in requests:
            sent = await client.post(request.path, json=request.json, content=request.content,
                                     params=request.params, headers=request.headers)
            assert sent.status_code == 201, sent.text
    # … then by the outbox: the central answers "duplicate", applies nothing twice.
    outbox.make_due(config.db_url)
    assert await deliver(config) == (3, 0)
    assert len(rows(central_cfg.db_url, Preapplication)) == 1
    assert len(rows(central_cfg.db_url, PreapplicationMaterial)) == 2
    assert len(rows(central_cfg.db_url, InboxMessage)) == 3
    received = central.open_received(central_cfg, done.receipt)
    assert received["fields"] == FIELDS and received["item_id"] == ITEM and received["kiosk_id"] == KIOSK_ID
    assert received["applicant"] == "欧***" and len(received["photos"]) == 2
    by_material = {p["material"]: p["id"] for p in received["photos"]}
    assert central.open_photo(central_cfg, done.receipt, by_material["居民身份证"]) == ("image/jpeg", photos[0])
    assert central.open_photo(central_cfg, done.receipt, by_material["房屋租赁合同"]) == ("image/png", photos[1])
    # The central keeps them sealed: its inbox rows hold no values, its disk no plaintext.
    assert all(value not in r.payload for r in rows(central_cfg.db_url, InboxMessage) for value in (NAME, ID_NUMBER, PHONE))
    on_disk = disk_bytes(central_cfg)
    assert all(plain not in on_disk for plain in plaintexts(photos).values())
    # The kiosk forgot the personal data it delivered; the receipt still answers.
    [row] = rows(config.db_url, Preapplication)
    assert row.fields_sealed is None and row.purged_at is not None
    assert all(m.path is None for m in rows(config.db_url, PreapplicationMaterial))
    assert not [p for p in (config.data_dir / "prefill").iterdir() if p.is_file()]
    view = central.find_receipt(config.db_url, done.receipt)
    assert (view.state, view.materials_received) == ("received", 2)
    view = central.find_receipt(central_cfg.db_url, done.receipt)
    assert (view.state, view.materials, view.materials_received, view.purged) == ("received", 2, 2, False)
    assert central.find_receipt(central_cfg.db_url, "KSHALL3-20200101-0001") is None


async def test_a_receipt_number_another_kiosk_used_is_refused_and_given_up(settings, tmp_path, form, central_server):
    central_url, central_cfg = central_server
    first = kiosk_config(settings, tmp_path / "one", central_url, kiosk_code="SAME")
    second = kiosk_config(settings, tmp_path / "two", central_url, kiosk_code="SAME", kiosk_id="hall-4")
    a = kiosk.submit(first, form, FIELDS, [])
    b = kiosk.submit(second, form, FIELDS, [kiosk.PhotoUpload("居民身份证", photo())])
    assert a.receipt == b.receipt  # two kiosks misconfigured with the same code
    assert await deliver(first) == (1, 0)
    assert await deliver(second) == (0, 2)
    refused, photo_message = outbox.status(second.db_url)["messages"]
    assert refused["state"] == "failed" and "HTTP 409" in refused["last_error"]
    assert "回执号已被其他自助终端使用" in refused["last_error"]
    # Its photo is not sent at all: it never joins the other kiosk's receipt.
    assert photo_message["state"] == "failed" and "pre-application was given up" in photo_message["last_error"]
    [kept] = rows(central_cfg.db_url, Preapplication)
    assert kept.kiosk_id == KIOSK_ID
    assert rows(central_cfg.db_url, PreapplicationMaterial) == []


async def test_the_central_refuses_bad_photo_uploads(central_server):
    url, config = central_server
    jpeg = photo()
    import hashlib
    import uuid

    form_message = {"id": str(uuid.uuid4()), "kiosk_id": KIOSK_ID, "kind": "preapplication", "payload": {
        "receipt": "KSHALL3-20261205-0001", "item_id": ITEM, "fields": FIELDS, "materials": 1}}

    def params(**changes):
        out = {"id": str(uuid.uuid4()), "kiosk_id": KIOSK_ID, "receipt": "KSHALL3-20261205-0001", "material": "居民身份证",
               "sha256": hashlib.sha256(jpeg).hexdigest()}
        out.update(changes)
        return out

    path = "/api/v1/kiosk/inbox/material"
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "image/jpeg"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        cases = [
            (await http.post(path, params=params(), content=jpeg, headers={**headers, "Authorization": "Bearer wrong"}), 401, "凭证无效"),
            (await http.post(path, params=params(sha256="0" * 64), content=jpeg, headers=headers), 422, "传输中损坏"),
            (await http.post(path, params=params(sha256=hashlib.sha256(b"<svg/>").hexdigest()), content=b"<svg/>",
                             headers=headers), 415, "JPG 或 PNG"),
            (await http.post(path, params=params(), content=jpeg, headers={**headers, "Content-Type": "image/gif"}), 415, "JPG 或 PNG"),
            (await http.post(path, params=params(receipt="ZW20251102001"), content=jpeg, headers=headers), 422, "回执号格式不正确"),
            (await http.post(path, params=params(), content=b"\xff\xd8\xff" + b"\0" * (config.prefill_max_photo_bytes + 70 * 1024),
                             headers=headers), 413, "太大"),
        ]
        for answer, status, detail in cases:
            assert answer.status_code == status, answer.text
            assert detail in answer.json()["detail"], answer.json()
        # A photo sent as a JSON message is refused (it has its own endpoint).
        refused = await http.post("/api/v1/kiosk/inbox", headers={"Authorization": f"Bearer {KEY}"}, json={
            "id": str(uuid.uuid4()), "kiosk_id": KIOSK_ID, "kind": "material", "payload": {"receipt": "x"}})
        assert refused.status_code == 422 and "/api/v1/kiosk/inbox/material" in refused.json()["detail"]
        # A photo before its pre-application, or for another kiosk's receipt, is refused.
        early = await http.post(path, params=params(), content=jpeg, headers=headers)
        assert early.status_code == 409 and "还没有送达" in early.json()["detail"]
        sent = await http.post("/api/v1/kiosk/inbox", headers={"Authorization": f"Bearer {KEY}"}, json=form_message)
        assert sent.status_code == 201, sent.text
        other = await http.post(path, params=params(kiosk_id="hall-99"), content=jpeg, headers=headers)
        assert other.status_code == 409 and "其他自助终端" in other.json()["detail"]
        # One that fits: 201, then 200 duplicate, stored once.
        good = params()
        first = await http.post(path, params=good, content=jpeg, headers=headers)
        again = await http.post(path, params=good, content=jpeg, headers=headers)
        assert (first.status_code, first.json()["status"], again.status_code, again.json()["status"]) == (
            201, "accepted", 200, "duplicate")
    assert len(rows(config.db_url, PreapplicationMaterial)) == 1


# --------------------------------------------------- operators and retention
def test_operators_read_them_audited_and_retention_deletes_them(settings, tmp_path, form):
    config = central_config(settings, tmp_path / "central", prefill_retention_days=30)
    photos = [photo("ID")]
    # Stored directly (the page served by the central itself): received at once.
    done = kiosk.submit(config, form, FIELDS, [kiosk.PhotoUpload("居民身份证", photos[0])])
    assert not done.queued and rows(config.db_url, OutboxMessage) == []
    accounts.create_operator(config.db_url, "prefill-op", PASSWORD, display_name="坐席")
    with TestClient(create_app(config, load_model=False)) as client:
        base = "/api/v1/desk/preapplications"
        assert client.get(base).status_code == 401
        login = client.post("/api/v1/desk/login", json={"username": "prefill-op", "password": PASSWORD})
        assert login.status_code == 200
        listed = client.get(base).json()["preapplications"]
        assert [(p["receipt"], p["applicant"], p["photos"]) for p in listed] == [(done.receipt, "欧***", 1)]
        assert ID_NUMBER not in json.dumps(listed, ensure_ascii=False)
        seen = client.get(f"{base}/{done.receipt}").json()
        assert seen["fields"]["id_number"] == ID_NUMBER
        picture = client.get(f"{base}/{done.receipt}/photos/{seen['photos'][0]['id']}")
        assert picture.status_code == 200 and picture.content == photos[0]
        assert picture.headers["content-type"] == "image/jpeg" and picture.headers["cache-control"] == "no-store"
        assert client.get(f"{base}/KSHALL3-20200101-0001").status_code == 404
        assert client.get(f"{base}/not-a-receipt").json()["detail"] == "没有找到该预申请"
        # An orphan sealed file (a crash between writing and committing) is swept too.
        orphan = config.data_dir / "prefill" / ".stale.sealed.tmp"
        orphan.write_bytes(b"x")
        old = (utcnow() - dt.timedelta(days=3)).timestamp()
        import os

        os.utime(orphan, (old, old))
        report = central.purge(config, now=utcnow() + dt.timedelta(days=31))
        assert (report.fields, report.photos, report.orphans) == (1, 1, 1)
        assert not [p for p in (config.data_dir / "prefill").iterdir()]
        gone = client.get(f"{base}/{done.receipt}")
        assert gone.status_code == 200 and gone.json()["fields"] is None
        assert client.get(f"{base}/{done.receipt}/photos/{seen['photos'][0]['id']}").status_code == 410
        view = central.find_receipt(config.db_url, done.receipt)
        assert view.state == "received" and view.purged
    with session_factory(config.db_url)() as session:
        audit = session.execute(
            select(AuditRecord.action, AuditRecord.subject, AuditRecord.result)
            .where(AuditRecord.action.like("prefill.%")).order_by(AuditRecord.id)
        ).all()
    assert audit == [
        ("prefill.list", None, "ok"),
        ("prefill.view", done.receipt, "ok"),
        ("prefill.photo.view", done.receipt, "ok"),
        ("prefill.view", "KSHALL3-20200101-0001", "not_found"),
        ("prefill.view", done.receipt, "ok"),
        ("prefill.photo.view", done.receipt, "unavailable"),
    ]
    # Within the retention period nothing is purged.
    again = kiosk.submit(config, form, FIELDS, [])
    assert central.purge(config).fields == 0
    assert central.open_received(config, again.receipt)["fields"] == FIELDS


async def test_an_undecryptable_message_is_given_up_not_retried(settings, tmp_path, form):
    config = kiosk_config(settings, tmp_path / "kiosk", f"http://127.0.0.1:{free_port()}")
    done = kiosk.submit(config, form, FIELDS, [kiosk.PhotoUpload("居民身份证", photo())])
    other_key = config.copy(update={"secret_key": "another-secret-key-" + "x" * 20})
    assert await deliver(other_key) == (0, 2)
    report = outbox.status(config.db_url)
    assert report["counts"] == {"pending": 0, "delivered": 0, "failed": 2}
    form_message, photo_message = report["messages"]
    assert "the pre-application cannot be opened with this secret key" in form_message["last_error"]
    assert "its pre-application was given up" in photo_message["last_error"]
    assert central.find_receipt(config.db_url, done.receipt).state == "pending"
