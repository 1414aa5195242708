"""The WeChat channel end to end: the simulator (signed, encrypted, 5 s timeout,
retries) → the real gateway with the real model and action server → passive
replies, or ``success`` and the customer-service API (the simulator's fake)."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from assistant.channels.wechat_sim import WeChatSimulator, message_xml
from tests.conftest import serve_in_thread

pytestmark = [pytest.mark.model, pytest.mark.asyncio(loop_scope="session")]

OLD = 10 * 60  # seconds: outside the 300 s timestamp window


def new_openid() -> str:
    return "oTest" + secrets.token_urlsafe(16).replace("-", "a").replace("_", "b")


@pytest.fixture(scope="module")
def channel_url(live_server, wechat_api) -> str:
    return f"{live_server}/channels/wechat"


@pytest.fixture
async def sim(channel_url, settings):
    async with WeChatSimulator(channel_url, settings.wechat_token, settings.wechat_app_id,
                               settings.wechat_encoding_aes_key) as simulator:
        yield simulator


@pytest.fixture
async def safe_sim(channel_url, settings):
    async with WeChatSimulator(channel_url, settings.wechat_token, settings.wechat_app_id,
                               settings.wechat_encoding_aes_key, safe=True) as simulator:
        yield simulator


def user_turns(settings, openid: str) -> int:
    """User messages the dialogue processed for this WeChat user (Rasa tracker store)."""
    engine = create_engine(settings.trackers_url)
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT COUNT(*) FROM events WHERE sender_id = :s AND type_name = 'user'"),
            {"s": f"wx-{openid}"},
        ).scalar()


def inbound_rows(settings, key: str) -> int:
    engine = create_engine(settings.db_url)
    with engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM wechat_inbound WHERE key = :k"), {"k": key}).scalar()


# ------------------------------------------------------------------ URL verification
async def test_url_verification(channel_url, settings):
    from assistant.channels.wechat_crypto import signature

    stamp, nonce = str(int(time.time())), "12345"
    good = {"signature": signature(settings.wechat_token, stamp, nonce), "timestamp": stamp, "nonce": nonce,
            "echostr": "echo-8734"}
    async with httpx.AsyncClient() as http:
        response = await http.get(channel_url, params=good)
        assert response.status_code == 200 and response.text == "echo-8734"
        bad = await http.get(channel_url, params={**good, "signature": "0" * 40})
        assert bad.status_code == 403 and bad.json()["detail"] == "签名校验失败"
        missing = await http.get(channel_url, params={"echostr": "x"})
        assert missing.status_code == 400


# ------------------------------------------------------------------ conversations
async def test_three_turns_keep_context(sim, settings):
    openid = new_openid()
    first = await sim.send_text(openid, "我想办社保卡")
    assert first.ok and first.attempts == 1 and "社会保障卡申领" in first.text
    second = await sim.send_text(openid, "要带啥")
    assert "社会保障卡申领" in second.text and "1. 居民身份证" in second.text
    third = await sim.send_text(openid, "多久能拿到")
    assert "办理时限" in third.text and "社会保障卡申领" in third.text
    assert user_turns(settings, openid) == 3
    assert max(r.seconds for r in (first, second, third)) < 4


async def test_three_turns_in_safe_mode(safe_sim, settings):
    openid = new_openid()
    first = await safe_sim.send_text(openid, "我想办护照")
    assert first.ok and "普通护照签发" in first.text  # read_reply checked MsgSignature and decrypted
    assert "<Encrypt>" in first.body and "普通护照" not in first.body
    second = await safe_sim.send_text(openid, "要多少钱")
    assert "普通护照签发" in second.text and "收费" in second.text
    third = await safe_sim.send_text(openid, "在哪里办")
    assert "普通护照签发" in third.text
    assert user_turns(settings, openid) == 3


async def test_buttons_become_numbered_options(sim):
    openid = new_openid()
    body = await sim.send_text(openid, "异地就医备案怎么办")
    assert "回复 1 " in body.text
    option = next(line for line in body.text.splitlines() if line.startswith("回复 1 "))
    chosen = await sim.send_text(openid, "1")
    assert chosen.text and "异地就医备案" in chosen.text and chosen.text != body.text
    assert option  # the first option's answer came back, not the "I did not understand" reply
    assert "没听懂" not in chosen.text and "没有理解" not in chosen.text


async def test_events_voice_recognition_and_other_types(sim, settings):
    openid = new_openid()
    welcome = await sim.send_event(openid, "subscribe")
    assert welcome.text and "办事助手" in welcome.text and "转人工" in welcome.text
    menu = await sim.send_event(openid, "CLICK", "MENU_PROGRESS")
    assert "编号" in menu.text  # the progress form asks for the application number
    voice = await sim.send_voice(openid, "media-unused", recognition="办社保卡要带什么材料")
    assert "社会保障卡申领" in voice.text
    video = await sim.deliver(sim.fields(openid, "video", MediaId="m1", ThumbMediaId="t1"))
    assert video.text == "抱歉，我暂时只能看懂文字、语音和图片。请您打字或发语音告诉我。"
    quiet = await sim.send_event(openid, "unsubscribe")
    assert quiet.ok and quiet.text is None and quiet.body == "success"
    too_long = await sim.send_text(openid, "长" * (settings.max_text_chars + 1))
    assert "太长" in too_long.text


# ------------------------------------------------------------------ refused requests
async def test_bad_signature_is_refused_and_nothing_processed(sim, settings):
    openid = new_openid()
    fields = sim.fields(openid, "text", Content="我想办社保卡")
    params, body = sim.signed(message_xml(fields), token="wrongToken")
    response = await sim.post(params, body)
    assert response.status_code == 403 and response.json()["detail"] == "签名校验失败"
    assert inbound_rows(settings, f"msg:{fields['MsgId']}") == 0
    assert user_turns(settings, openid) == 0


async def test_bad_msg_signature_in_safe_mode_is_refused(safe_sim, settings):
    openid = new_openid()
    fields = safe_sim.fields(openid, "text", Content="我想办社保卡")
    params, body = safe_sim.signed(message_xml(fields))
    response = await safe_sim.post({**params, "msg_signature": "f" * 40}, body)
    assert response.status_code == 403
    assert user_turns(settings, openid) == 0


async def test_old_timestamp_is_refused(sim, settings):
    openid = new_openid()
    fields = sim.fields(openid, "text", Content="我想办社保卡")
    params, body = sim.signed(message_xml(fields), timestamp=int(time.time()) - OLD)
    response = await sim.post(params, body)
    assert response.status_code == 403 and response.json()["detail"] == "请求时间戳无效或已过期"
    assert user_turns(settings, openid) == 0


@pytest.mark.parametrize("kind", ["oversized", "malformed", "xxe", "billion_laughs", "not_wechat", "bad_openid"])
async def test_bad_xml_is_refused_and_nothing_processed(sim, settings, kind):
    openid = new_openid()
    payloads = {
        "oversized": message_xml(sim.fields(openid, "text", Content="长" * (settings.wechat_max_xml_bytes // 3 + 10))),
        "malformed": f"<xml><FromUserName>{openid}</FromUserName><Content>未闭合",
        "xxe": ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                f"<xml><FromUserName>{openid}</FromUserName><CreateTime>1</CreateTime>"
                "<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>1</MsgId></xml>"),
        "billion_laughs": ('<!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
                           f"<xml><FromUserName>{openid}</FromUserName><Content>&b;</Content></xml>"),
        "not_wechat": "<html><body>hello</body></html>",
        "bad_openid": message_xml({**sim.fields(openid, "text", Content="你好"), "FromUserName": "o<script>"}),
    }
    params, body = sim.signed(payloads[kind])
    response = await sim.post(params, body)
    assert response.status_code == 400, response.text
    assert response.json()["detail"] == "消息格式不正确"
    assert user_turns(settings, openid) == 0


async def test_safe_mode_garbage_is_refused(safe_sim, settings):
    from assistant.channels.wechat_crypto import signature

    stamp, nonce = str(int(time.time())), "n1"
    garbage = "QUJDREVGR0hJSktMTU5PUA=="  # base64, not a WeChat ciphertext
    params = {"signature": signature(settings.wechat_token, stamp, nonce), "timestamp": stamp, "nonce": nonce,
              "encrypt_type": "aes", "msg_signature": signature(settings.wechat_token, stamp, nonce, garbage)}
    body = f"<xml><ToUserName>gh</ToUserName><Encrypt>{garbage}</Encrypt></xml>".encode()
    response = await safe_sim.post(params, body)
    assert response.status_code == 400


# ------------------------------------------------------------------ deadline and retries
async def test_slow_turn_answers_success_then_exactly_one_async_delivery(sim, wechat_api, settings):
    """A voice message without WeChat's recognition: the media download takes 4.5 s
    (a slow upstream), so the turn cannot finish within the 4 s passive window."""
    from tests.speech import QUESTION, mandarin_wav
    from voice.audio import pcm16_from_wav
    from voice.transcode import encode_amr

    wav = Path(settings.data_dir) / "wechat-voice.wav"
    mandarin_wav(QUESTION, wav)
    amr = encode_amr(pcm16_from_wav(wav.read_bytes(), max_bytes=1 << 24, max_seconds=60))
    media_id = wechat_api.add_media(amr, "audio/amr", delay_s=4.5)
    openid = new_openid()
    reply = await sim.send_voice(openid, media_id)
    assert reply.ok and reply.text is None and reply.body == "success"
    assert reply.attempts == 1 and 3.8 < reply.seconds < 4.9  # within WeChat's 5 s, so no retry
    got = await wechat_api.await_for(openid, 1, timeout_s=20)
    assert len(got) == 1 and "最低生活保障" in got[0]  # the Chinese voice question was understood
    await asyncio.sleep(2.0)  # nothing else arrives
    assert len(wechat_api.messages_to(openid)) == 1
    assert user_turns(settings, openid) == 1


async def test_three_retries_of_one_msg_id_make_one_turn(sim, wechat_api, settings):
    openid = new_openid()
    fields = sim.fields(openid, "text", Content="护照要带什么材料")
    xml = message_xml(fields)

    async def attempt():
        params, body = sim.signed(xml)  # each retry is signed anew (new nonce), same MsgId
        return await sim.post(params, body)

    together = await asyncio.gather(attempt(), attempt(), attempt())
    replies = [sim.read_reply(r) for r in together]
    assert all(r.status_code == 200 for r in together)
    assert replies[0] and "普通护照签发" in replies[0] and len(set(replies)) == 1
    later = [sim.read_reply(await attempt()) for _ in range(3)]
    assert set(later) == {replies[0]}
    assert user_turns(settings, openid) == 1
    assert wechat_api.messages_to(openid) == []


async def test_a_retry_that_claims_the_reply_first_leaves_the_first_delivery_the_same_reply(
        sim, wechat_api, settings, monkeypatch):
    """The race behind an intermittent failure: the turn stores its reply, a retry
    claims it for its own HTTP response, and only then does the first delivery try
    to claim it. The first delivery must answer the same reply, not "success"."""
    from assistant.channels import wechat as channel_module
    from assistant.channels import wechat_store

    original = channel_module.kept.claim_passive
    raced = []

    def claim_after_a_retry(db_url, key, sender_id, ready):
        if ready is not None and not raced:  # the first delivery, its turn done
            raced.append(wechat_store.claim_passive(db_url, key, sender_id))  # the retry wins
        return original(db_url, key, sender_id, ready)

    monkeypatch.setattr(channel_module.kept, "claim_passive", claim_after_a_retry)
    openid = new_openid()
    xml = message_xml(sim.fields(openid, "text", Content="护照要带什么材料"))
    params, body = sim.signed(xml)
    first = sim.read_reply(await sim.post(params, body))
    assert raced and raced[0] and "普通护照签发" in raced[0][0]
    assert first == raced[0][0]
    params, body = sim.signed(xml)
    assert sim.read_reply(await sim.post(params, body)) == first
    assert user_turns(settings, openid) == 1
    await asyncio.sleep(0.5)
    assert wechat_api.messages_to(openid) == []


async def test_a_restart_between_retries_still_makes_one_turn(sim, settings):
    """The second gateway has no dialogue model loaded: any turn it started would
    fail, so the same reply proves it came from the database."""
    from assistant.api.app import create_app

    openid = new_openid()
    fields = sim.fields(openid, "text", Content="营业执照在哪里办")
    xml = message_xml(fields)
    params, body = sim.signed(xml)
    first = sim.read_reply(await sim.post(params, body))
    assert first and "营业执照" in first
    with serve_in_thread(create_app(settings, load_model=False)) as restarted:
        async with WeChatSimulator(f"{restarted}/channels/wechat", settings.wechat_token,
                                   settings.wechat_app_id) as other:
            for _ in range(3):
                params, body = other.signed(xml)
                response = await other.post(params, body)
                assert response.status_code == 200 and other.read_reply(response) == first
    assert user_turns(settings, openid) == 1


# ------------------------------------------------------------------ handoff relay
async def test_operator_replies_reach_the_user_by_the_customer_service_api(sim, wechat_api, settings, live_server):
    from assistant.security import accounts

    openid = new_openid()
    asked = await sim.send_text(openid, "转人工")
    assert "人工" in asked.text
    relayed = await sim.send_text(openid, "我的社保卡丢了怎么办")
    assert relayed.ok and relayed.text is None  # goes to the operator; the bot stays quiet
    accounts.create_operator(settings.db_url, "wx-op", "operator-pass-123", display_name="坐席")
    with httpx.Client(base_url=live_server, timeout=30) as desk:
        login = desk.post("/api/v1/desk/login", json={"username": "wx-op", "password": "operator-pass-123"})
        desk.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        queue = desk.get("/api/v1/desk/queue").json()["tickets"]
        ticket = next(t for t in queue if t["conversation_id"] == f"wx-{openid}")
        assert ticket["channel"] == "wechat"
        messages = desk.get(f"/api/v1/desk/tickets/{ticket['id']}").json()["messages"]
        assert any("社保卡丢了" in m["text"] for m in messages)
        sent = desk.post(f"/api/v1/desk/tickets/{ticket['id']}/messages", json={"text": "您好，我是人工客服小王。"})
        assert sent.status_code in (200, 201), sent.text
    got = await wechat_api.await_for(openid, 1, timeout_s=15)
    assert got == ["您好，我是人工客服小王。"]


# ------------------------------------------------------------------ images (补交材料, photo questions)
SUPPLEMENT_NUMBER = "ZW20251102002"  # 居民身份证补领, phone tail 2002


@pytest.fixture(scope="module")
def wx_supplement(settings, live_server):
    """The demo applications; the case system asks the applicant of SUPPLEMENT_NUMBER for the ID card."""
    import datetime as dt
    import uuid

    from assistant.services.progress import events
    from assistant.services.progress.importer import load_demo_data
    from assistant.services.progress.records import CST

    load_demo_data(settings.db_url, settings.secret())
    now = dt.datetime.now(CST).replace(tzinfo=None) - dt.timedelta(minutes=1)
    events.record_event(settings.db_url, SUPPLEMENT_NUMBER, f"wx-{uuid.uuid4().hex[:12]}", "supplement", now,
                        "请补交本人居民身份证。", ["居民身份证"])
    return SUPPLEMENT_NUMBER


def valid_id_card_back():
    import datetime as dt
    import random

    from tests.materials_images import LONG_TERM, make_sample

    for seed in range(100):
        sample = make_sample("id_card_back", "clean", random.Random(seed))
        if sample.truth.expiry == LONG_TERM or sample.truth.expiry > dt.date.today():
            return sample
    raise AssertionError("no valid ID card among 100 samples")


def uploads_of(settings, number):
    from sqlalchemy import select

    from assistant.storage.database import session_factory
    from assistant.storage.tables import MaterialUpload

    with session_factory(settings.db_url)() as session:
        return session.execute(select(MaterialUpload).where(MaterialUpload.number == number)
                               .order_by(MaterialUpload.created_at)).scalars().all()


async def reply_to(reply, wechat_api, openid, before):
    """The passive reply, or (after "success", a slow OCR turn) the customer-service message."""
    if reply.text:
        return reply.text
    assert reply.ok and reply.body == "success"
    got = await wechat_api.await_for(openid, before + 1, timeout_s=30)
    return got[-1]


async def test_an_image_from_a_verified_user_hands_in_the_missing_material(sim, wechat_api, settings, wx_supplement):
    openid = new_openid()
    asked = await sim.send_text(openid, "我想查一下办件进度")
    assert "编号" in asked.text
    tail = await sim.send_text(openid, wx_supplement)
    assert "后四位" in tail.text
    progress = await sim.send_text(openid, "2002")
    assert "请补交这些材料" in progress.text and "居民身份证" in progress.text

    # A file that is not a photo: a clear refusal, nothing stored (other tests of the
    # session may have handed in materials for the same demo application before).
    earlier = [r.id for r in uploads_of(settings, wx_supplement)]
    junk = wechat_api.add_media(b"GIF89a" + b"\x00" * 300, "image/gif")
    refused = await reply_to(await sim.send_image(openid, junk), wechat_api, openid, len(wechat_api.messages_to(openid)))
    assert "只能上传照片" in refused and [r.id for r in uploads_of(settings, wx_supplement)] == earlier

    sample = valid_id_card_back()
    media_id = wechat_api.add_media(sample.data, "image/jpeg")
    before = len(wechat_api.messages_to(openid))
    delivered = await sim.send_image(openid, media_id)
    assert delivered.attempts == 1  # answered in time (passively or "success"): no retry, one upload
    text = await reply_to(delivered, wechat_api, openid, before)
    assert "已收到您补交的“居民身份证”" in text and "国徽面" in text
    [row] = [r for r in uploads_of(settings, wx_supplement) if r.id not in earlier]
    assert (row.channel, row.material, row.doc_type, row.verdict) == ("wechat", "居民身份证", "id_card_back", "ok")
    from assistant.services.materials import vault
    from assistant.config.settings import get_settings

    assert vault.decrypt(get_settings().secret(), row.id, vault.file_path(settings, row.id).read_bytes()) == sample.data


async def test_an_image_from_an_unverified_user_is_a_photo_question(sim, wechat_api, settings, wx_supplement):
    import random

    from tests.materials_images import make_sample

    openid = new_openid()
    receipt = make_sample("acceptance_receipt", "clean", random.Random(3))
    number = receipt.truth.application_number
    media_id = wechat_api.add_media(receipt.data, "image/jpeg")
    before_rows = len(uploads_of(settings, number))
    text = await reply_to(await sim.send_image(openid, media_id), wechat_api, openid, 0)
    # The number on the receipt started the progress lookup (not a demo application: not found).
    assert f"没有找到编号为 {number} 的办件" in text
    assert len(uploads_of(settings, number)) == before_rows  # a photo question stores nothing
    assert user_turns(settings, openid) == 1

    # A photo without any text: asked to type instead; no dialogue turn.
    from PIL import Image
    import io

    blank = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 200, 200)).save(blank, "JPEG")
    other = new_openid()
    unread = await reply_to(await sim.send_image(other, wechat_api.add_media(blank.getvalue(), "image/jpeg")),
                            wechat_api, other, len(wechat_api.messages_to(other)))
    assert unread == "抱歉，这张图片上的字我没能看清。请您打字告诉我，或者重新拍一张清楚的照片。"
    assert user_turns(settings, other) == 0
    # An image WeChat no longer has (expired media id): a polite failure.
    lost = await reply_to(await sim.send_image(other, "expired-media-id"), wechat_api, other,
                          len(wechat_api.messages_to(other)))
    assert lost == "抱歉，这张图片没有收到。请您稍后再发一次，或者打字告诉我。"


async def test_follow_through_on_wechat_subscribe_notice_and_image(sim, wechat_api, settings, monkeypatch):
    """Issue 15's WeChat acceptance: a verified user takes up "提醒我", a signed 需补正
    event reaches them as a customer-service message, and their photo of the missing
    document is pre-checked and handed in."""
    import random
    import uuid

    import httpx

    from assistant.services.progress import notices
    from assistant.services.progress.importer import load_demo_data
    from tests.materials_images import make_sample
    from tests.notify_support import CMS_SECRET, signed_event

    number, material = "ZW20251102002", "居民户口簿"
    load_demo_data(settings.db_url, settings.secret())
    monkeypatch.setattr(settings, "cms_webhook_secret", CMS_SECRET)
    monkeypatch.setattr(notices, "in_quiet_hours", lambda moment, timezone: False)
    openid = new_openid()

    async def said(text: str) -> str:
        before = len(wechat_api.messages_to(openid))
        reply = await sim.send_text(openid, text)
        got = await reply_to(reply, wechat_api, openid, before)
        await asyncio.sleep(1.0)  # the rest of a long reply goes by the customer-service API
        return "\n".join([got, *wechat_api.messages_to(openid)[before:]])

    assert "编号" in await said("我想查一下办件进度")
    assert "后四位" in await said(number)
    assert "要我提醒您吗" in await said("2002")
    assert "我会在这里提醒您" in await said("好的")

    before = len(wechat_api.messages_to(openid))
    path, headers, body = signed_event(number, f"wx-{uuid.uuid4().hex[:12]}", "需补正",
                                       note="请补交居民户口簿。", missing_materials=[material])
    async with httpx.AsyncClient() as http:
        posted = await http.post(sim.url.split("/channels/")[0] + path, content=body, headers=headers)
    assert posted.status_code == 201, posted.text
    notice = (await wechat_api.await_for(openid, before + 1, timeout_s=5))[-1]
    assert "ZW2025****002" in notice and "需补正" in notice and number not in notice

    assert "后四位" in await said(f"查一下{number}的进度")
    assert "请补交这些材料" in await said("2002")
    sample = make_sample("household_register", "clean", random.Random(7))
    before = len(wechat_api.messages_to(openid))
    text = await reply_to(await sim.send_image(openid, wechat_api.add_media(sample.data, "image/jpeg")),
                          wechat_api, openid, before)
    assert f"已收到您补交的“{material}”" in text
    assert [(r.channel, r.material) for r in uploads_of(settings, number)][-1] == ("wechat", material)
