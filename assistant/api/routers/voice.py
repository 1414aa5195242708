"""Voice turns for the self-service kiosk: speech in, the same dialogue turn as the
chat, speech out.

* ``POST /api/v1/voice/turn`` — body: a WAV file (``Content-Type: audio/wav``);
  query ``sender_id``, ``token``, ``elderly=0|1``. Answer: ``{transcript,
  corrected, messages, intent, items, handoff?, audio, audio_ms}`` where
  ``audio`` is the spoken reply as a base64 WAV (``null`` without speech output).
* ``WS /api/v1/voice/stream?sender_id&token&elderly`` — one utterance per
  connection. The client sends binary frames of PCM16 mono 16 kHz audio, then the
  text frame ``{"type": "end"}`` (or ``{"type": "cancel"}``). The server sends
  ``{"type": "partial", "text"}`` while audio arrives, then ``{"type": "final",
  "transcript", "corrected"}``, then ``{"type": "reply", ...}`` (the fields of
  ``/voice/turn`` without ``audio``/``audio_ms``), then the spoken reply as one or
  more binary frames (each a complete WAV file, in order: sentences arrive as soon
  as they are synthesized), then ``{"type": "audio_end", "audio_ms", "chunks"}``,
  and closes with 1000. Errors: ``{"type": "error", "code", "message"}`` (Chinese
  message), then close: 1008 (bad token, bad message, too slow), 1009 (too much
  audio), 1013 (no speech-recognition model, or the dialogue model is still
  loading), 1011 (failure).
  ``mode=dictate`` (filling a field of the kiosk's pre-application form): no turn; the
  server sends ``{"type": "dictation", "transcript", "text"}`` (``text``: the free
  transcript fit for ``field``, the field's kind, by ``voice.dictation``) and closes.
* ``GET /api/v1/voice/status`` — ``{asr, tts, detail?, idle_seconds,
  max_seconds, barge_in: {enabled, level, end_silence_seconds}}``: whether speech
  in and out work, so the kiosk can fall back to touch and text, and how it
  listens while it speaks (barge-in).
* ``POST /api/v1/voice/sessions`` — a new kiosk conversation ``{sender_id:
  "kiosk-…", token}``; with ``{sender_id, token}`` of the conversation the kiosk is
  leaving (idle), that conversation is restarted (``/restart``) and its open
  handoff ticket cancelled.
* ``GET /kiosk`` — the kiosk page (``static/kiosk/``).

Transcripts are corrected with the catalog's terms (``voice.correct``), then run
through ``conversation_turn`` with channel ``kiosk`` (a conversation held by a
person is relayed to them, as for the chat). Logs carry hashed ids and sizes only,
never what was said.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from typing import Any, AsyncIterator, Dict, List, Optional, Tuple

from fastapi import APIRouter, HTTPException, Query, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field, StrictStr
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect, WebSocketState

from assistant.api.deps import SettingsDep, admit_conversation
from assistant.api.paths import STATIC_DIR
from assistant.api.schemas import SENDER_ID_RE, ChatSession, ErrorResponse
from assistant.config.settings import Settings
from assistant.security import chat_session
from assistant.security.pii import hash_id
from assistant.services.conversation import HANDOFF_KEY
from assistant.services.kiosk_voice import Plan, plan_turn
from knowledge.schema import short_name
from assistant.services.handoff import tickets
from assistant.services.speech import Voice, heard_text, stream_transcripts, transcripts, voice_of
from assistant.storage import tables
from voice.asr import AsrUnavailable
from voice.audio import SAMPLE_RATE, AudioError, check_pcm16, duration_seconds, louder_wav, pcm16_from_wav
from voice.dictation import dictation_text
from voice.tts import TtsUnavailable, wav_duration

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/voice", tags=["voice"])
page_router = APIRouter(include_in_schema=False)

KIOSK_PAGE = STATIC_DIR / "kiosk" / "index.html"
CHANNEL = "kiosk"
WAV_TYPES = {"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"}
BYTES_PER_SECOND = SAMPLE_RATE * 2

NOT_HEARD = "抱歉，没有听清，请再说一遍。"
RELAYED = "已转给工作人员，请稍候。"
MORE_ON_SCREEN = "更多内容请看屏幕。"
CHOOSE_ON_SCREEN = "您也可以点屏幕上的按钮。"
NOT_WAV = "请上传WAV格式的录音"
BAD_MESSAGE = "语音数据格式不正确，请重新说一遍"
TOO_SLOW = "录音时间太长，请重新按住按钮说话"
FAILED = "语音服务暂时出了点问题，请稍后再试，或使用屏幕上的按钮"
TTS_OFF = "语音播报暂时不可用"
# Written text spoken at most (the rest stays on screen), in characters.
MAX_SPOKEN_CHARS = 600
SOURCE_LINE = re.compile(r"^\s*来源[：:]")
# A stream ends at most this long after it opened (audio plus slack).
STREAM_SLACK_SECONDS = 15.0
MODE_TURN, MODE_DICTATE = "turn", "dictate"
FIELD_KINDS_RE = r"^(name|id_number|phone|address|text|date|number|choice)$"

# AudioError.code → HTTP status for /voice/turn.
AUDIO_STATUS = {"too_large": 413, "too_long": 413, "unsupported_format": 415}
ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 403, 413, 415, 422, 503)}


# ------------------------------------------------------------------- replies
def spoken_reply(reply: Dict[str, Any]) -> str:
    """What to say for a reply: its text without source lines, the first
    MAX_SPOKEN_CHARS characters (whole lines; the kiosk speaks them in parts,
    ``services.kiosk_voice``). The TTS rewrites it for the ear
    (``voice.speech_text``: numbers, lists, symbols)."""
    lines: List[str] = []
    has_buttons = False
    for message in reply.get("messages") or []:
        has_buttons = has_buttons or bool(message.get("buttons"))
        for line in (message.get("text") or "").split("\n"):
            if line.strip() and not SOURCE_LINE.match(line):
                lines.append(line)
    if not lines and reply.get(HANDOFF_KEY):
        lines.append(RELAYED)
    kept: List[str] = []
    size = 0
    for line in lines:
        if kept and size + len(line) > MAX_SPOKEN_CHARS:
            kept.append(MORE_ON_SCREEN)
            break
        kept.append(line)
        size += len(line)
    if has_buttons and kept and kept[-1] != MORE_ON_SCREEN:
        kept.append(CHOOSE_ON_SCREEN)
    return "\n".join(kept)


async def spoken_turn(conn: HTTPConnection, settings: Settings, sender_id: str, corrected: str) -> Plan:
    """One kiosk turn for what was said: a spoken command, a confirm-back or the
    dialogue's turn (``services.kiosk_voice``); a polite "say it again" when nothing
    was heard."""
    if not corrected:
        return Plan({"messages": [{"text": NOT_HEARD}], "intent": None, "items": []}, NOT_HEARD)
    plan = await plan_turn(conn, settings, sender_id, corrected, CHANNEL, spoken_reply)
    # What the kiosk is answering about, shown in large type above the answer.
    record = conn.app.state.catalog.get(plan.reply["item"]) if plan.reply.get("item") else None
    plan.reply["item_name"] = short_name(record.name) if record is not None else None
    return plan


async def synthesize(voice: Voice, text: str, elderly: bool, louder: bool = False) -> Optional[bytes]:
    if not text:
        return None
    try:
        if not await voice.tts.start():
            return None
        wav = await voice.tts.synthesize(text, elderly=elderly)
        return louder_wav(wav) if louder else wav
    except TtsUnavailable as exc:
        logger.warning("voice.tts.unavailable error=%s", type(exc).__name__)
    except Exception:  # the text reply still counts
        logger.exception("voice.tts.failed")
    return None


async def synthesize_chunks(voice: Voice, text: str, elderly: bool, louder: bool = False) -> AsyncIterator[bytes]:
    if not text:
        return
    try:
        if not await voice.tts.start():
            return
        async for chunk in voice.tts.synthesize_chunks(text, elderly):
            if chunk:
                yield louder_wav(chunk) if louder else chunk
    except TtsUnavailable as exc:
        logger.warning("voice.tts.unavailable error=%s", type(exc).__name__)
    except Exception:
        logger.exception("voice.tts.failed")


async def check_sender(conn: HTTPConnection, settings: Settings, sender_id: str, token: Optional[str]) -> None:
    if len(sender_id) > settings.max_sender_id_chars or not SENDER_ID_RE.match(sender_id):
        raise HTTPException(status_code=422, detail=f"sender_id 只能包含字母、数字和 _.:@-，长度1到{settings.max_sender_id_chars}")
    await admit_conversation(conn, settings, sender_id, token)


def audio_status(exc: AudioError) -> int:
    return AUDIO_STATUS.get(exc.code, 422)


# ------------------------------------------------------------------ endpoints
@router.get("/status")
async def status(request: Request, settings: SettingsDep) -> Dict[str, Any]:
    """Whether speech in (ASR) and out (TTS) work here; the kiosk falls back to touch
    and text when they do not. Loads the speech model on the first call."""
    voice = voice_of(request.app)
    answer: Dict[str, Any] = {
        "asr": False,
        "tts": bool(await voice.tts.start()),
        "idle_seconds": settings.kiosk_idle_seconds,
        "barge_in": {
            "enabled": settings.kiosk_barge_in,
            "level": settings.kiosk_barge_in_level,
            "end_silence_seconds": settings.kiosk_end_silence_seconds,
        },
        "max_seconds": settings.max_audio_seconds,
    }
    details = []
    try:
        await voice.ready_asr()
        answer["asr"] = bool(voice.asr.available)
    except AsrUnavailable as exc:
        details.append(str(exc))
    if not answer["tts"]:
        details.append(TTS_OFF)
    if details:
        answer["detail"] = "；".join(details)
    return answer


@router.post("/turn", responses=ERRORS)
async def voice_turn(
    request: Request,
    settings: SettingsDep,
    sender_id: str = Query(..., min_length=1, max_length=128),
    token: Optional[str] = Query(None, max_length=128),
    elderly: bool = Query(False, description="Speak the reply more slowly"),
) -> JSONResponse:
    """One spoken turn: the WAV body is transcribed, corrected, answered like a chat
    message (channel kiosk) and the answer spoken (base64 WAV in ``audio``)."""
    await check_sender(request, settings, sender_id, token)
    voice = voice_of(request.app)
    try:
        asr = await voice.ready_asr()
    except AsrUnavailable as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type not in WAV_TYPES:
        raise HTTPException(status_code=415, detail=NOT_WAV)
    body = await request.body()
    started = time.perf_counter()
    try:
        pcm = await asyncio.to_thread(
            pcm16_from_wav, body, max_bytes=settings.max_audio_bytes, max_seconds=settings.max_audio_seconds
        )
    except AudioError as exc:
        logger.info("voice.turn.bad_audio code=%s bytes=%d", exc.code, len(body))
        raise HTTPException(status_code=audio_status(exc), detail=exc.message) from exc
    heard = await transcripts(asr, pcm)
    asr_ms = (time.perf_counter() - started) * 1000
    text, corrected = await heard_text(request.app, settings, heard)
    plan = await spoken_turn(request, settings, sender_id, corrected)
    reply = {"transcript": text, "corrected": corrected, **plan.reply, "spoken": plan.spoken}
    wav = await synthesize(voice, plan.spoken, elderly or plan.slow, plan.louder)
    reply["audio"] = base64.b64encode(wav).decode("ascii") if wav else None
    reply["audio_ms"] = round(wav_duration(wav) * 1000) if wav else 0
    logger.info(
        "voice.turn sender=%s audio_s=%.1f asr_ms=%.0f total_ms=%.0f chars=%d intent=%s spoken=%s",
        hash_id(sender_id),
        duration_seconds(pcm),
        asr_ms,
        (time.perf_counter() - started) * 1000,
        len(reply["corrected"]),
        reply.get("intent"),
        bool(wav),
    )
    return JSONResponse(reply)


class StreamError(Exception):
    def __init__(self, code: str, message: str, close_code: int) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.close_code = close_code


async def _send_error(websocket: WebSocket, error: StreamError) -> None:
    if websocket.application_state != WebSocketState.CONNECTED:
        return
    try:
        await websocket.send_json({"type": "error", "code": error.code, "message": error.message})
        await websocket.close(code=error.close_code)
    except (WebSocketDisconnect, RuntimeError):
        pass


async def _receive_audio(websocket: WebSocket, settings: Settings, stream: Any) -> Tuple[int, bool]:
    """Feed the audio frames to the recognizer until ``end``; sends partials.
    Returns (bytes received, ended: False when the client cancelled)."""
    deadline = time.monotonic() + settings.max_audio_seconds + STREAM_SLACK_SECONDS
    received = 0
    last_partial = ""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise StreamError("timeout", TOO_SLOW, 1008)
        try:
            message = await asyncio.wait_for(websocket.receive(), timeout=remaining)
        except asyncio.TimeoutError:
            raise StreamError("timeout", TOO_SLOW, 1008) from None
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        data = message.get("bytes")
        if data is not None:
            try:
                check_pcm16(data, max_seconds=settings.max_audio_seconds, already_seconds=received / BYTES_PER_SECOND)
            except AudioError as exc:
                close_code = 1009 if exc.code == "too_long" else 1008
                raise StreamError(exc.code, exc.message, close_code) from exc
            received += len(data)
            partial = await stream.feed(data)
            if partial and partial != last_partial:
                last_partial = partial
                await websocket.send_json({"type": "partial", "text": partial})
            continue
        try:
            command = json.loads(message.get("text") or "")
            kind = command.get("type") if isinstance(command, dict) else None
        except ValueError:
            kind = None
        if kind == "end":
            return received, True
        if kind == "cancel":
            return received, False
        raise StreamError("bad_message", BAD_MESSAGE, 1008)


@router.websocket("/stream")
async def voice_stream(
    websocket: WebSocket,
    sender_id: str = Query(..., min_length=1, max_length=128),
    token: Optional[str] = Query(None, max_length=128),
    elderly: bool = Query(False),
    mode: str = Query(MODE_TURN, regex=f"^({MODE_TURN}|{MODE_DICTATE})$"),
    field: str = Query("text", regex=FIELD_KINDS_RE),
) -> None:
    """Streaming voice turn, or dictation into a form field (protocol in the module doc)."""
    settings: Settings = websocket.app.state.settings
    await websocket.accept()
    sender = hash_id(sender_id)
    try:
        try:
            await check_sender(websocket, settings, sender_id, token)
        except HTTPException as exc:
            code = "forbidden" if exc.status_code in (401, 403) else "bad_request"
            raise StreamError(code, str(exc.detail), 1008) from exc
        voice = voice_of(websocket.app)  # type: ignore[arg-type]
        try:
            asr = await voice.ready_asr()
        except AsrUnavailable as exc:
            raise StreamError("asr_unavailable", str(exc), 1013) from exc
        stream = await asr.open_stream()
        received, ended = await _receive_audio(websocket, settings, stream)
        if not ended:
            logger.info("voice.stream.cancelled sender=%s bytes=%d", sender, received)
            await websocket.close(code=1000)
            return
        ended_at = time.perf_counter()
        heard = await stream_transcripts(stream)
        if mode == MODE_DICTATE:
            await _dictate(websocket, heard.get("free") or "", field, sender, received)
            return
        text, corrected = await heard_text(websocket.app, settings, heard)
        await websocket.send_json({"type": "final", "transcript": text, "corrected": corrected})
        try:
            plan = await spoken_turn(websocket, settings, sender_id, corrected)
        except HTTPException as exc:  # e.g. 503 while the dialogue model loads
            raise StreamError("unavailable", str(exc.detail), 1013) from exc
        reply = plan.reply
        await websocket.send_json(
            {"type": "reply", "transcript": text, "corrected": corrected, **reply, "spoken": plan.spoken}
        )
        first_audio_ms = None
        audio_seconds = 0.0
        chunks = 0
        async for wav in synthesize_chunks(voice, plan.spoken, elderly or plan.slow, plan.louder):
            await websocket.send_bytes(wav)
            if first_audio_ms is None:
                first_audio_ms = (time.perf_counter() - ended_at) * 1000
            audio_seconds += wav_duration(wav)
            chunks += 1
        await websocket.send_json({"type": "audio_end", "audio_ms": round(audio_seconds * 1000), "chunks": chunks})
        logger.info(
            "voice.stream.turn sender=%s audio_s=%.1f chars=%d intent=%s reply_ms=%.0f first_audio_ms=%s chunks=%d",
            sender,
            received / BYTES_PER_SECOND,
            len(corrected),
            reply.get("intent"),
            (time.perf_counter() - ended_at) * 1000,
            f"{first_audio_ms:.0f}" if first_audio_ms is not None else None,
            chunks,
        )
        await websocket.close(code=1000)
    except StreamError as error:
        logger.info("voice.stream.error sender=%s code=%s", sender, error.code)
        await _send_error(websocket, error)
    except WebSocketDisconnect:
        logger.info("voice.stream.disconnected sender=%s", sender)
    except Exception:
        logger.exception("voice.stream.failed sender=%s", sender)
        await _send_error(websocket, StreamError("failed", FAILED, 1011))


async def _dictate(websocket: WebSocket, transcript: str, field: str, sender: str, received: int) -> None:
    """The free transcript (never corrected toward catalog terms), fit for the field."""
    value = dictation_text(transcript.strip(), field)
    await websocket.send_json({"type": "dictation", "transcript": transcript.strip(), "text": value, "field": field})
    logger.info("voice.stream.dictation sender=%s audio_s=%.1f field=%s chars=%d", sender, received / BYTES_PER_SECOND, field, len(value))
    await websocket.close(code=1000)


class KioskSessionRequest(BaseModel):
    """The kiosk conversation being left (idle), to restart it."""

    sender_id: StrictStr = Field(..., min_length=1, max_length=128)
    token: StrictStr = Field(..., min_length=1, max_length=128)

    class Config:
        extra = "forbid"


@router.post("/sessions", response_model=ChatSession, status_code=201, responses={422: {"model": ErrorResponse}})
async def new_kiosk_session(
    request: Request, settings: SettingsDep, body: Optional[KioskSessionRequest] = None
) -> ChatSession:
    """A new kiosk conversation. With the previous one's id and token, that one is
    restarted (the next person does not continue it) and its handoff cancelled."""
    if body is not None and body.sender_id.startswith(chat_session.KIOSK_PREFIX):
        if chat_session.verify(settings.secret(), body.sender_id, body.token):
            await end_conversation(request, settings, body.sender_id)
    sender_id = chat_session.new_sender_id(chat_session.KIOSK_PREFIX)
    return ChatSession(sender_id=sender_id, token=chat_session.sign(settings.secret(), sender_id))


async def end_conversation(conn: HTTPConnection, settings: Settings, sender_id: str) -> None:
    """Cancel the open handoff ticket and reset the dialogue state (``/restart``)."""
    ticket = await asyncio.to_thread(tickets.open_ticket_of, settings.db_url, sender_id)
    if ticket is not None:
        try:
            await asyncio.to_thread(
                tickets.finish_ticket, settings.db_url, ticket.id, status=tables.TICKET_CANCELLED, operator=None
            )
            await conn.app.state.live.bump()
            logger.info("voice.session.ticket_cancelled ticket=%s", ticket.id)
        except (tickets.TicketClosed, tickets.TicketNotFound):
            pass
    runtime = conn.app.state.runtime
    if runtime.ready:
        await runtime.chat(sender_id, "/restart", CHANNEL)
    logger.info("voice.session.ended sender=%s", hash_id(sender_id))


@page_router.get("/kiosk")
async def kiosk_page() -> FileResponse:
    return FileResponse(KIOSK_PAGE, headers={"Cache-Control": "no-cache"})
