"""Voice turns through the real gateway: speech in (Vosk, the Chinese model), the
dialogue, speech out.

The input is a service question spoken by espeak-ng's Mandarin voice; free decoding
loses its service words, the catalog-biased recogniser keeps them, and the gateway
answers the transcript the item linker is surer of: the reply is about the item
asked for. Then the shape of the turn, the bounds and the degraded modes.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import wave
from pathlib import Path

import httpx
import pytest

from assistant.config.hours import ServiceHours
from assistant.services.handoff import tickets
from tests.speech import QUESTION, QUESTION_ITEM, mandarin_wav, require_voice
from tests.conftest import isolated_settings

pytestmark = [pytest.mark.model]

NOT_HEARD = "抱歉，没有听清，请再说一遍。"


def wav_bytes(seconds: float, rate: int = 16000, channels: int = 1) -> bytes:
    """Silence as a 16-bit WAV."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(b"\x00\x00" * channels * int(rate * seconds))
    return out.getvalue()


def pcm16_16k(wav: bytes) -> bytes:
    from voice.audio import pcm16_from_wav

    return pcm16_from_wav(wav, max_bytes=50_000_000, max_seconds=600)


def check_wav(data: bytes) -> float:
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    with wave.open(io.BytesIO(data), "rb") as reader:
        assert reader.getsampwidth() == 2 and reader.getframerate() >= 8000
        seconds = reader.getnframes() / reader.getframerate()
    assert seconds > 0.2
    return seconds


@pytest.fixture(scope="module")
def question_wav(tmp_path_factory, settings) -> bytes:
    require_voice(settings)
    return mandarin_wav(QUESTION, tmp_path_factory.mktemp("voice") / "question.wav")


def about_the_question(body: dict) -> bool:
    """The turn heard the service asked for and answered about it."""
    return "低保" in body["corrected"] and body.get("item") == QUESTION_ITEM


def kiosk_session(client, previous=None) -> dict:
    reply = client.post("/api/v1/voice/sessions", json=previous) if previous else client.post("/api/v1/voice/sessions")
    assert reply.status_code == 201
    session = reply.json()
    assert session["sender_id"].startswith("kiosk-") and session["token"]
    return session


def turn(client, session, wav: bytes, content_type="audio/wav", **params):
    return client.post(
        "/api/v1/voice/turn",
        params={"sender_id": session["sender_id"], "token": session["token"], **params},
        content=wav,
        headers={"Content-Type": content_type},
    )


# ------------------------------------------------------------------ status/page
def test_status_and_page(client, settings):
    require_voice(settings)
    status = client.get("/api/v1/voice/status").json()
    assert status["asr"] is True and status["tts"] is True
    assert status["idle_seconds"] == settings.kiosk_idle_seconds
    assert status["barge_in"] == {
        "enabled": True,
        "level": settings.kiosk_barge_in_level,
        "end_silence_seconds": settings.kiosk_end_silence_seconds,
    }
    assert "detail" not in status
    page = client.get("/kiosk")
    assert page.status_code == 200 and 'lang="zh-CN"' in page.text
    assert "按住说话" in page.text
    for asset in ("kiosk.js", "kiosk.css", "pcm16-worklet.js"):
        assert client.get(f"/static/kiosk/{asset}").status_code == 200


# ------------------------------------------------------------------ POST /turn
def test_voice_turn_transcribes_answers_and_speaks(client, question_wav):
    session = kiosk_session(client)
    reply = turn(client, session, question_wav)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["transcript"], body
    assert about_the_question(body), body
    assert body["messages"] and body["messages"][0]["text"]
    assert "intent" in body and isinstance(body["items"], list)
    seconds = check_wav(base64.b64decode(body["audio"]))
    assert abs(body["audio_ms"] - seconds * 1000) < 50


def test_elderly_rate_speaks_more_slowly(client, question_wav):
    # Two fresh conversations get the same first reply; the elderly one is slower.
    normal = turn(client, kiosk_session(client), question_wav).json()
    slow = turn(client, kiosk_session(client), question_wav, elderly=1).json()
    assert [m.get("text") for m in normal["messages"]] == [m.get("text") for m in slow["messages"]]
    assert slow["audio_ms"] > normal["audio_ms"] * 1.15


def test_silence_gets_a_polite_say_it_again(client, settings):
    require_voice(settings)
    body = turn(client, kiosk_session(client), wav_bytes(1.0)).json()
    assert body["transcript"] == "" and body["corrected"] == ""
    assert body["messages"] == [{"text": NOT_HEARD}]
    assert body["intent"] is None and body["items"] == []
    check_wav(base64.b64decode(body["audio"]))  # spoken too


def test_bad_audio_is_a_clear_4xx(client, settings):
    require_voice(settings)
    session = kiosk_session(client)
    # Not a WAV: by content type, and by content.
    wrong_type = turn(client, session, b"hello", content_type="text/plain")
    assert wrong_type.status_code == 415 and wrong_type.json()["detail"] == "请上传WAV格式的录音"
    not_wav = turn(client, session, b"ID3\x03\x00\x00\x00" + b"\x00" * 500)
    assert not_wav.status_code == 415 and "WAV" in not_wav.json()["detail"]
    # Over 60 s (of silence): refused before decoding.
    overlong = turn(client, session, wav_bytes(61.0))
    assert overlong.status_code == 413 and "录音太长" in overlong.json()["detail"]
    # Over 10 MB: the gateway refuses the body ...
    huge = turn(client, session, b"\x00" * (settings.max_audio_bytes + 128 * 1024))
    assert huge.status_code == 413 and huge.json()["detail"] == "请求内容太大"
    # ... and just over the audio limit (within the voice path's body limit): the audio check.
    large = turn(client, session, wav_bytes(1.0) + b"\x00" * settings.max_audio_bytes)
    assert large.status_code == 413 and "录音文件太大" in large.json()["detail"]


def test_body_limit_is_per_path(client, settings):
    require_voice(settings)
    # 3 s of 44.1 kHz stereo: ~530 KB, far over the 64 KB of other paths.
    wav = wav_bytes(3.0, rate=44100, channels=2)
    assert len(wav) > 8 * 64 * 1024
    assert turn(client, kiosk_session(client), wav).status_code == 200
    chat = client.post("/api/v1/chat", content=b'{"sender_id":"x1234567","text":"' + b"a" * len(wav) + b'"}',
                       headers={"Content-Type": "application/json"})
    assert chat.status_code == 413


def test_kiosk_conversations_need_their_token(client, question_wav):
    session = kiosk_session(client)
    assert turn(client, {**session, "token": "forged"}, question_wav).status_code == 403
    chat = {"sender_id": session["sender_id"], "text": "社保卡怎么办", "channel": "kiosk"}
    assert client.post("/api/v1/chat", json=chat).status_code == 403
    answered = client.post("/api/v1/chat", json={**chat, "token": session["token"]})
    assert answered.status_code == 200 and "社会保障卡" in answered.json()["messages"][0]["text"]


def test_voice_turn_is_relayed_while_a_person_holds_the_conversation(client, settings, question_wav):
    session = kiosk_session(client)
    ticket = tickets.open_ticket(
        settings.db_url,
        conversation_id=session["sender_id"],
        channel="kiosk",
        reason="request_human",
        item_id=None,
        summary={},
        hours=ServiceHours.parse("always"),
    )
    body = turn(client, session, question_wav).json()
    assert body["messages"] == [] and body["handoff"]["ticket_id"] == ticket.id
    assert body["transcript"]
    check_wav(base64.b64decode(body["audio"]))  # "已转给工作人员，请稍候。"
    stored = tickets.get_ticket(settings.db_url, ticket.id)
    assert [m["text"] for m in stored["messages"] if m["role"] == "citizen"] == [body["corrected"]]
    # Leaving the kiosk (idle) cancels the ticket and starts a new conversation.
    fresh = kiosk_session(client, previous=session)
    assert fresh["sender_id"] != session["sender_id"]
    assert tickets.open_ticket_of(settings.db_url, session["sender_id"]) is None


def test_new_session_restarts_the_previous_conversation(client, settings):
    session = kiosk_session(client)
    chat = {"sender_id": session["sender_id"], "token": session["token"], "channel": "kiosk"}
    assert client.post("/api/v1/chat", json={**chat, "text": "社保卡要带什么"}).status_code == 200
    kiosk_session(client, previous=session)
    # The last turn is "/restart": action_restart, Restarted ("restart"), then a new session.
    events = tracker_events(settings, session["sender_id"])
    last_turn = events[len(events) - 1 - events[::-1].index("user") :]
    assert "restart" in last_turn and "session_started" in last_turn, last_turn
    # A forged previous conversation is left alone (and still gets a new session).
    other = kiosk_session(client)
    assert client.post("/api/v1/chat", json={**chat, "sender_id": other["sender_id"], "token": other["token"],
                                             "text": "护照怎么办"}).status_code == 200
    kiosk_session(client, previous={"sender_id": other["sender_id"], "token": "f" * 64})
    assert "restart" not in tracker_events(settings, other["sender_id"])


def tracker_events(settings, sender_id: str) -> list:
    import sqlalchemy

    engine = sqlalchemy.create_engine(settings.trackers_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sqlalchemy.text("SELECT type_name FROM events WHERE sender_id = :s ORDER BY id"), {"s": sender_id}
        ).fetchall()
    engine.dispose()
    return [row[0] for row in rows]


# ------------------------------------------------------------------ WebSocket
def ws_url(live_server: str, session: dict, **params) -> str:
    query = httpx.QueryParams({"sender_id": session["sender_id"], "token": session["token"], **params})
    return live_server.replace("http://", "ws://") + f"/api/v1/voice/stream?{query}"


async def collect(ws) -> list:
    """Every frame until the server closes: ("text", dict) or ("bytes", bytes)."""
    import websockets

    frames = []
    try:
        while True:
            frame = await asyncio.wait_for(ws.recv(), timeout=60)
            frames.append(("bytes", frame) if isinstance(frame, bytes) else ("text", json.loads(frame)))
    except websockets.ConnectionClosed:
        pass
    return frames


async def test_stream_partials_final_reply_and_audio(live_server, client, question_wav):
    import websockets

    pcm = pcm16_16k(question_wav) + b"\x00\x00" * 8000  # and 0.5 s of silence
    session = kiosk_session(client)
    async with websockets.connect(ws_url(live_server, session)) as ws:
        for start in range(0, len(pcm), 6400):  # 0.2 s frames
            await ws.send(pcm[start : start + 6400])
            await asyncio.sleep(0.02)
        await ws.send(json.dumps({"type": "end"}))
        frames = await collect(ws)
        assert ws.close_code == 1000
    kinds = [f[1]["type"] if f[0] == "text" else "audio" for f in frames]
    assert kinds[0] == "partial", kinds
    first_final = kinds.index("final")
    assert set(kinds[:first_final]) == {"partial"}
    assert kinds[first_final + 1] == "reply" and kinds[-1] == "audio_end"
    audio = [f[1] for f in frames if f[0] == "bytes"]
    assert audio and kinds[first_final + 2 : -1] == ["audio"] * len(audio)
    final = frames[first_final][1]
    assert "低保" in final["corrected"], final
    reply = frames[first_final + 1][1]
    assert reply.get("item") == QUESTION_ITEM, reply
    assert reply["messages"][0]["text"] and reply["transcript"] == final["transcript"]
    total = sum(check_wav(chunk) for chunk in audio)
    assert abs(frames[-1][1]["audio_ms"] - total * 1000) < 50 and frames[-1][1]["chunks"] == len(audio)


async def test_stream_without_audio_says_it_again(live_server, client, settings):
    import websockets

    require_voice(settings)
    async with websockets.connect(ws_url(live_server, kiosk_session(client))) as ws:
        await ws.send(json.dumps({"type": "end"}))
        frames = await collect(ws)
    texts = [f[1] for f in frames if f[0] == "text"]
    assert texts[0] == {"type": "final", "transcript": "", "corrected": ""}
    assert texts[1]["messages"] == [{"text": NOT_HEARD}]
    assert any(f[0] == "bytes" for f in frames)


async def stream_error(url: str, *sends) -> tuple:
    import websockets

    async with websockets.connect(url, max_size=None) as ws:
        for data in sends:
            await ws.send(data)
        frames = await collect(ws)
        return [f[1] for f in frames if f[0] == "text"], ws.close_code


async def test_stream_bounds_and_errors(live_server, client, settings):
    require_voice(settings)
    session = kiosk_session(client)
    # More than 60 s of audio: an error frame, then close 1009.
    too_long = b"\x00\x00" * int(16000 * (settings.max_audio_seconds + 1))
    texts, code = await stream_error(ws_url(live_server, session), too_long)
    assert texts[-1]["type"] == "error" and texts[-1]["code"] == "too_long" and "录音太长" in texts[-1]["message"]
    assert code == 1009
    # An odd number of bytes is not PCM16; an unknown command is refused.
    texts, code = await stream_error(ws_url(live_server, session), b"\x00\x00\x00")
    assert texts[-1]["type"] == "error" and code == 1008
    texts, code = await stream_error(ws_url(live_server, session), "hello")
    assert texts[-1] == {"type": "error", "code": "bad_message", "message": "语音数据格式不正确，请重新说一遍"}
    assert code == 1008
    # A kiosk conversation without its token.
    texts, code = await stream_error(ws_url(live_server, {**session, "token": "forged"}))
    assert texts[-1]["code"] == "forbidden" and code == 1008


async def test_stream_cancel_closes_without_a_turn(live_server, client, question_wav):
    import websockets

    session = kiosk_session(client)
    async with websockets.connect(ws_url(live_server, session)) as ws:
        await ws.send(pcm16_16k(question_wav)[:32000])
        await ws.send(json.dumps({"type": "cancel"}))
        frames = await collect(ws)
        assert ws.close_code == 1000
    assert all(f[0] == "text" and f[1]["type"] == "partial" for f in frames)


# ------------------------------------------------------------------ no model
def test_without_a_speech_model(settings, tmp_path):
    from fastapi.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    from assistant.api.app import create_app

    degraded = isolated_settings(settings, tmp_path, **{"vosk_model_path": tmp_path / "no-model"})
    with TestClient(create_app(degraded, load_model=False)) as client:
        session = kiosk_session(client)
        reply = turn(client, session, wav_bytes(1.0))
        assert reply.status_code == 503
        assert "语音识别模型" in reply.json()["detail"] and "BANSHI_VOSK_MODEL_PATH" in reply.json()["detail"]
        status = client.get("/api/v1/voice/status").json()
        assert status["asr"] is False and "语音识别模型" in status["detail"]
        with client.websocket_connect(ws_url("http://testserver", session).replace("ws://testserver", "")) as ws:
            error = ws.receive_json()
            assert error["type"] == "error" and error["code"] == "asr_unavailable"
            assert "语音识别模型" in error["message"]
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 1013


def test_a_kiosk_warms_the_speech_engines_up_at_start(settings, tmp_path):
    import time

    from fastapi.testclient import TestClient

    from assistant.api.app import create_app

    require_voice(settings)
    kiosk = isolated_settings(settings, tmp_path, **{"kiosk_mode": True})
    with TestClient(create_app(kiosk, load_model=False)) as client:
        task = client.app.state.voice_warm_up
        deadline = time.monotonic() + 60
        while not task.done() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert task.done() and task.exception() is None
        assert client.app.state.voice.asr.loaded
        assert client.get("/api/v1/voice/status").json()["asr"] is True


# ------------------------------------------------------------------ spoken dialogue (elderly)
@pytest.fixture(scope="module")
def say(tmp_path_factory, settings):
    """A spoken phrase (espeak-ng Mandarin) as WAV bytes, cached per text."""
    require_voice(settings)
    folder = tmp_path_factory.mktemp("said")
    made: dict = {}

    def make(text: str) -> bytes:
        if text not in made:
            made[text] = mandarin_wav(text, folder / f"{len(made)}.wav")
        return made[text]

    return make


def test_say_it_again_slower_and_louder_by_voice(client, say):
    session = kiosk_session(client)
    first = turn(client, session, say(QUESTION)).json()
    assert about_the_question(first), first
    again = turn(client, session, say("再说一遍")).json()
    assert again["answer"] == "repeat" and again["spoken"] == first["spoken"], again
    assert again["messages"] == first["messages"] and again["item"] == QUESTION_ITEM
    assert abs(again["audio_ms"] - first["audio_ms"]) < 100
    louder = turn(client, session, say("大声点")).json()
    assert louder["answer"] == "repeat" and louder["spoken"] == first["spoken"]

    def loudness(body):  # RMS of the samples
        import numpy as np

        with wave.open(io.BytesIO(base64.b64decode(body["audio"]))) as reader:
            frames = reader.readframes(reader.getnframes())
        return float(np.sqrt(np.mean(np.frombuffer(frames, dtype="<i2").astype(np.float64) ** 2)))

    assert loudness(louder) > loudness(first) * 1.3


def test_a_long_answer_is_spoken_in_parts(client, say):
    from assistant.services.kiosk_voice import CONFIG

    session = kiosk_session(client)
    first = turn(client, session, say(QUESTION)).json()
    assert first["spoken"].endswith(CONFIG.ask_next), first["spoken"]
    assert len(first["spoken"]) < len("".join(m["text"] for m in first["messages"]))
    following = turn(client, session, say("对")).json()  # "还要听下一条吗？" — "对"
    assert following["answer"] == "next" and following["item"] == QUESTION_ITEM, following
    assert following["spoken"] and following["spoken"] != first["spoken"]
    assert following["messages"][0]["text"] in "".join(m["text"] for m in first["messages"]).replace("\n", "") or following["messages"][0]["text"]


def test_unsure_understanding_is_confirmed_back_by_voice(client, say):
    session = kiosk_session(client)
    asked = turn(client, session, say("户口的事")).json()
    assert asked["answer"] == "confirm" and asked["spoken"].startswith("您是想问"), asked
    item = asked["item"]
    confirmed = turn(client, session, say("对")).json()
    assert confirmed["item"] == item and confirmed["answer"] not in ("confirm", "repeat"), confirmed
    # "不是" after a confirm-back: asked to say it again, nothing answered.
    turn(client, session, say("户口的事"))
    rejected = turn(client, session, say("不对")).json()
    assert rejected["item"] is None and "再说一遍" in rejected["spoken"], rejected
