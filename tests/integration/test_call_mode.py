"""Call mode on the desk (WS /api/v1/desk/call, GET /api/v1/desk/calls): who may open
a call, the ticket draft filled from what is said, saving it sealed and audited, the
retention purge; then a real call: espeak-ng Mandarin streamed at real time through
the real gateway, recognised by the Chinese Vosk model, with the model's suggestions.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Dict, List, Tuple

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from starlette.websockets import WebSocketDisconnect

from assistant.api.app import create_app
from assistant.security import accounts
from assistant.services.callmode import store
from assistant.storage.call_tables import CallTicket
from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import AuditRecord
from tests.conftest import isolated_settings
from tests.speech import FEMALE_VOICE, mandarin_wav, require_voice

CALL = "/api/v1/desk/call"
PASSWORD = "call-desk-password-1"
API_KEY = "test-assist-key"  # BANSHI_ASSIST_API_KEYS in tests/conftest.py


@pytest.fixture(scope="module")
def app_settings(settings, tmp_path_factory):
    # No speech model here: the operator types the phrases (the degraded mode).
    folder = tmp_path_factory.mktemp("call")
    return isolated_settings(settings, folder, vosk_model_path=folder / "no-model")


@pytest.fixture(scope="module")
def app(app_settings):
    application = create_app(app_settings, load_model=False)
    with TestClient(application):
        yield application


@pytest.fixture(scope="module")
def operator(app_settings):
    accounts.create_operator(app_settings.db_url, "call-op", PASSWORD, display_name="热线坐席")
    return "call-op"


def login(app, username: str) -> TestClient:
    client = TestClient(app)
    response = client.post("/api/v1/desk/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return client


def refused(client: TestClient, headers: Dict[str, str] = None) -> Tuple[dict, int]:
    with client.websocket_connect(CALL, headers=headers or {}) as ws:
        message = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    return message, closed.value.code


# ------------------------------------------------------------------ who may call
def test_a_call_needs_a_desk_session(app):
    message, code = refused(TestClient(app))
    assert message == {"type": "error", "code": "forbidden", "message": "请先登录"} and code == 1008
    # An assist API key is for machines: it opens no call.
    message, code = refused(TestClient(app), {"Authorization": f"Bearer {API_KEY}"})
    assert message["code"] == "forbidden" and code == 1008


def test_a_disabled_operator_cannot_call(app, app_settings):
    accounts.create_operator(app_settings.db_url, "call-gone", PASSWORD)
    client = login(app, "call-gone")
    accounts.set_active(app_settings.db_url, "call-gone", False)
    message, code = refused(client)
    assert message["code"] == "forbidden" and code == 1008


def test_a_call_from_another_site_is_refused(app, operator):
    client = login(app, operator)
    message, code = refused(client, {"Origin": "https://evil.example"})
    assert message["code"] == "forbidden" and "坐席页面" in message["message"] and code == 1008


def test_saved_calls_need_a_login(app):
    for path in ("/api/v1/desk/calls", "/api/v1/desk/calls/1"):
        response = TestClient(app).get(path)
        assert response.status_code == 401 and response.json()["detail"] == "请先登录"


# ------------------------------------------------------------------ typed phrases
def call_messages(ws, until: str) -> List[dict]:
    messages = []
    while True:
        message = ws.receive_json()
        messages.append(message)
        if message["type"] == until:
            return messages


def test_typed_phrases_fill_the_draft_and_the_ticket_is_saved_sealed(app, app_settings, operator, caplog):
    caplog.set_level("DEBUG")
    client = login(app, operator)
    with client.websocket_connect(CALL, headers={"Origin": "http://testserver"}) as ws:
        ready = ws.receive_json()
        items = ready.pop("items")
        assert ready == {"type": "ready", "asr": False, "inputs": 1}
        # Every catalog record can be chosen for the ticket, bundles too.
        assert {i["id"] for i in items} == set(app.state.catalog.records)
        assert {"id": "bundle_after_death", "name": "身后一件事"} in items
        phrases = [
            ("caller", "喂 你好 我叫沈佳怡"),
            ("caller", "我想问问居住证怎么办"),
            ("operator", "您好 居住证需要先登记居住半年"),
            ("caller", "我电话是 幺五零 二二三三 四四五五"),
            ("caller", "我住在高新区创业路十号"),
        ]
        for speaker, text in phrases:
            ws.send_text(json.dumps({"type": "phrase", "speaker": speaker, "text": text}))
            messages = call_messages(ws, "draft")
            final = messages[0]
            assert final["type"] == "final" and final["speaker"] == speaker and final["text"] == text
            # Suggestions follow the caller's phrases only (none here: no dialogue model).
            assert [m["type"] for m in messages] == (["final", "assist", "draft"] if speaker == "caller" else ["final", "draft"])
        draft = messages[-1]["draft"]
        assert draft["phone"] == "15022334455" and draft["caller_name"] == "沈**"
        assert draft["address"] == "高新区创业路十号" and draft["category"] == "咨询"
        assert draft["answer"] == "您好 居住证需要先登记居住半年"
        ws.send_text(json.dumps({"type": "end"}))
        assert ws.receive_json() == {"type": "ended", "phrases": 5}
        # Bad tickets are refused in Chinese and the call goes on.
        ws.send_text(json.dumps({"type": "save", "ticket": {"category": "闲聊"}}))
        error = ws.receive_json()
        assert error["type"] == "error" and "问题类型只能是" in error["message"]
        ws.send_text(json.dumps({"type": "save", "ticket": {"item_id": "no_such_item"}}))
        assert "事项不正确" in ws.receive_json()["message"]
        ticket = {
            "caller_name": "沈**",  # left masked as shown: the name heard is saved
            "phone": "15022334455",
            "address": draft["address"],
            "item_id": "residence_permit",
            "question_type": "conditions",
            "category": "咨询",
            "summary": draft["summary"],
            "answer": draft["answer"],
        }
        ws.send_text(json.dumps({"type": "save", "ticket": ticket}))
        saved = ws.receive_json()
        assert saved["type"] == "saved" and saved["id"] >= 1
    ticket_id = saved["id"]

    with session_factory(app_settings.db_url)() as session:
        row = session.get(CallTicket, ticket_id)
        stored = " ".join(str(v) for v in (row.fields_sealed, row.transcript_sealed, row.phone_masked, row.name_masked))
    assert "15022334455" not in stored and "沈佳怡" not in stored and "创业路" not in stored
    assert row.phone_masked == "150****4455" and row.name_masked == "沈**"

    listed = client.get("/api/v1/desk/calls").json()["calls"]
    assert listed[0]["id"] == ticket_id and listed[0]["phone"] == "150****4455"
    assert "15022334455" not in json.dumps(listed, ensure_ascii=False)
    opened = client.get(f"/api/v1/desk/calls/{ticket_id}").json()
    assert opened["caller_name"] == "沈佳怡" and opened["phone"] == "15022334455"
    assert [p["speaker"] for p in opened["transcript"]] == ["caller", "caller", "operator", "caller", "caller"]
    assert opened["transcript"][3]["text"] == "我电话是 幺五零 二二三三 四四五五"
    assert client.get("/api/v1/desk/calls/999999").status_code == 404

    with session_factory(app_settings.db_url)() as session:
        actions = session.execute(
            select(AuditRecord.action, AuditRecord.subject).where(AuditRecord.actor == f"operator:{operator}")
        ).all()
    assert (store.AUDIT_START, None) in actions
    assert (store.AUDIT_SAVE, f"call:{ticket_id}") in actions and (store.AUDIT_VIEW, f"call:{ticket_id}") in actions
    # What was said never reaches the logs.
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "desk.call.saved" in logged
    assert not any(secret in logged for secret in ("15022334455", "沈佳怡", "创业路", "居住证怎么办"))


def test_tickets_past_retention_lose_their_personal_data(app, app_settings, operator):
    ticket = store.SavedTicket("林小雨", "13700001111", "东湖路1号", "passport", None, "咨询", "摘要", "答复")
    ticket_id = store.save_ticket(app_settings, operator, ticket, [{"seq": 0, "speaker": "caller", "text": "护照", "at_s": 0}], 30)
    old = utcnow() - dt.timedelta(days=app_settings.call_retention_days + 1)
    with session_factory(app_settings.db_url)() as session, session.begin():
        session.execute(update(CallTicket).where(CallTicket.id == ticket_id).values(created_at=old))
    client = login(app, operator)
    listed = {c["id"]: c for c in client.get("/api/v1/desk/calls").json()["calls"]}
    assert listed[ticket_id]["purged"] is True and listed[ticket_id]["phone"] is None
    opened = client.get(f"/api/v1/desk/calls/{ticket_id}").json()
    assert opened["transcript"] == [] and "phone" not in opened or opened.get("phone") is None
    assert opened["item_id"] == "passport"  # what is no personal data stays


def test_the_gateways_retention_task_purges_call_tickets_without_a_visit(app_settings, operator):
    """Nobody opens the desk: the gateway's hourly retention task purges on its own."""
    from assistant.services import retention

    ticket = store.SavedTicket("周小林", "13700002222", "西湖路2号", "passport", None, "咨询", "摘要", "答复")
    ticket_id = store.save_ticket(app_settings, operator, ticket, [{"seq": 0, "speaker": "caller", "text": "护照", "at_s": 0}], 30)
    old = utcnow() - dt.timedelta(days=app_settings.call_retention_days + 1)
    with session_factory(app_settings.db_url)() as session, session.begin():
        session.execute(update(CallTicket).where(CallTicket.id == ticket_id).values(created_at=old))

    async def one_round() -> None:
        task = asyncio.ensure_future(retention.purge_periodically(app_settings, interval_s=3600))
        try:
            for _ in range(200):
                with session_factory(app_settings.db_url)() as session:
                    if session.get(CallTicket, ticket_id).fields_sealed is None:
                        return
                await asyncio.sleep(0.05)
        finally:
            task.cancel()

    asyncio.run(one_round())
    with session_factory(app_settings.db_url)() as session:
        row = session.get(CallTicket, ticket_id)
        assert row.fields_sealed is None and row.transcript_sealed is None and row.phone_masked is None


def test_bad_frames_end_the_call_with_a_clear_error(app, operator):
    client = login(app, operator)
    for frame in (b"\x01" + b"\x00" * 3200, b"\x00" * (70 * 1024)):  # no second input; too large
        with client.websocket_connect(CALL) as ws:
            assert ws.receive_json()["type"] == "ready"
            ws.send_bytes(frame)
            error = ws.receive_json()
            assert error["code"] == "bad_message" and "格式不正确" in error["message"]
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 1008
    with client.websocket_connect(CALL) as ws:
        ws.receive_json()
        ws.send_text("not json")
        assert ws.receive_json()["code"] == "bad_message"


# ------------------------------------------------------------------ a spoken call
CALLER_PHRASES = ["我家孩子上个月刚出生 想给他上户口", "出生证明有了 还要带什么"]
OPERATOR_PHRASE = "您好 请您慢慢说"


@pytest.fixture(scope="module")
def spoken_call(tmp_path_factory, settings) -> List[bytes]:
    require_voice(settings)
    from voice.audio import pcm16_from_wav

    folder = tmp_path_factory.mktemp("call-audio")
    return [
        pcm16_from_wav(mandarin_wav(text, folder / f"{n}.wav"), max_bytes=50_000_000, max_seconds=60)
        for n, text in enumerate(CALLER_PHRASES + [OPERATOR_PHRASE])
    ]


async def live_cookie(live_server: str, settings) -> str:
    import httpx

    try:
        accounts.create_operator(settings.db_url, "call-live", PASSWORD)
    except accounts.DuplicateUsername:
        pass
    async with httpx.AsyncClient(base_url=live_server) as http:
        response = await http.post("/api/v1/desk/login", json={"username": "call-live", "password": PASSWORD})
        assert response.status_code == 200
        return "; ".join(f"{k}={v}" for k, v in response.cookies.items())


async def stream(live_server: str, cookie: str, clips: List[Tuple[int, bytes]], inputs: int = 1) -> List[dict]:
    """Send (input, PCM) clips at real time, a second of silence after each; every message."""
    import websockets

    url = live_server.replace("http://", "ws://") + f"{CALL}?inputs={inputs}"
    silence = b"\x00\x00" * 16000
    received: List[dict] = []
    async with websockets.connect(url, extra_headers={"Cookie": cookie}) as ws:
        ready = json.loads(await ws.recv())
        assert ready["type"] == "ready" and ready["asr"] is True and ready["inputs"] == inputs
        for channel, clip in clips:
            audio = clip + silence
            for start in range(0, len(audio), 3200):  # 0.1-s frames, at real time
                await ws.send(bytes([channel]) + audio[start : start + 3200])
                await asyncio.sleep(0.1)
        await ws.send(json.dumps({"type": "end"}))
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
            received.append(message)
            if message["type"] == "ended":
                return received


@pytest.mark.model
async def test_a_spoken_call_is_transcribed_and_followed_by_suggestions(live_server, settings, spoken_call):
    cookie = await live_cookie(live_server, settings)
    received = await stream(live_server, cookie, [(0, clip) for clip in spoken_call[: len(CALLER_PHRASES)]])
    kinds = [m["type"] for m in received]
    assert "partial" in kinds
    finals = [m for m in received if m["type"] == "final"]
    # Each phrase ended at its pause (not only at the end of the call).
    assert len(finals) >= 2 and kinds.index("final") < len(kinds) - 3
    assert all(m["speaker"] == "caller" and m["text"] for m in finals)
    assists = [m for m in received if m["type"] == "assist"]
    assert assists[-1]["suggestions"] and assists[-1]["suggestions"][0]["item_id"] == "newborn_hukou", finals
    assert assists[-1]["card"]["item_id"] == "newborn_hukou" and assists[-1]["card"]["materials"]
    drafts = [m for m in received if m["type"] == "draft"]
    assert drafts[-1]["draft"]["item_id"] == "newborn_hukou"


@pytest.mark.model
async def test_two_inputs_label_the_speakers(live_server, settings, spoken_call):
    cookie = await live_cookie(live_server, settings)
    received = await stream(live_server, cookie, [(1, spoken_call[-1]), (0, spoken_call[0])], inputs=2)
    finals = [m for m in received if m["type"] == "final"]
    speakers = [m["speaker"] for m in finals]
    assert "operator" in speakers and "caller" in speakers, finals
    assert speakers.index("operator") < speakers.index("caller")
    # Suggestions follow the caller only: none after the operator's phrases.
    for n, message in enumerate(received[:-1]):
        if message["type"] == "final" and message["speaker"] == "operator":
            assert received[n + 1]["type"] != "assist"


# ------------------------------------------------------------------ a number said on the call
# Said digit by digit, as a caller reading it out slowly; espeak-ng's female variant,
# whose digits the small model hears (bench/callmode_phone.py: its male voice's 三 is
# heard as 八 even alone).
PHONE_PHRASE = "我的手机号是，一，三，九，零，七，二，六，五，四，八，三"
PHONE = "13907265483"


@pytest.mark.model
async def test_a_number_said_on_the_call_is_heard_and_saved_only_once_read_back(live_server, settings, tmp_path):
    import websockets

    from voice.audio import pcm16_from_wav

    require_voice(settings)
    cookie = await live_cookie(live_server, settings)
    clip = pcm16_from_wav(mandarin_wav(PHONE_PHRASE, tmp_path / "phone.wav", voice=FEMALE_VOICE), max_bytes=50_000_000, max_seconds=60)
    audio = clip + b"\x00\x00" * 16000
    url = live_server.replace("http://", "ws://") + CALL
    async with websockets.connect(url, extra_headers={"Cookie": cookie}) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        for start in range(0, len(audio), 3200):
            await ws.send(bytes([0]) + audio[start : start + 3200])
            await asyncio.sleep(0.1)
        await ws.send(json.dumps({"type": "end"}))
        received = []
        while not received or received[-1]["type"] != "ended":
            received.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=60)))
        drafts = [m["draft"] for m in received if m["type"] == "draft"]
        # The free transcript writes the digits as other words; the digit recogniser hears them.
        assert drafts and drafts[-1]["phone"] == PHONE and drafts[-1]["phone_heard"] is True, received
        ticket = {"phone": PHONE, "category": "咨询", "summary": "", "answer": ""}
        await ws.send(json.dumps({"type": "save", "ticket": ticket}))
        refused = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
        assert refused["type"] == "error" and refused["code"] == "phone_unchecked" and "复述核对" in refused["message"]
        await ws.send(json.dumps({"type": "save", "ticket": {**ticket, "phone_checked": True}}))
        saved = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
        assert saved["type"] == "saved", saved
    opened = store.open_ticket(settings, "call-live", saved["id"])
    assert opened["phone"] == PHONE


@pytest.mark.model
async def test_speech_without_a_number_gives_the_draft_no_heard_phone(live_server, settings, spoken_call):
    cookie = await live_cookie(live_server, settings)
    received = await stream(live_server, cookie, [(0, clip) for clip in spoken_call[: len(CALLER_PHRASES)]])
    drafts = [m["draft"] for m in received if m["type"] == "draft"]
    assert drafts and all(d["phone"] is None and d["phone_heard"] is False for d in drafts)
