"""Call mode on the desk: a hotline call transcribed live, with suggestions, a
knowledge card and a ticket draft (工单) that follow the conversation.

* ``WS /api/v1/desk/call?inputs=1|2`` — needs a desk session (the ``banshi_desk``
  cookie) and, from a browser, a same-origin ``Origin``. The server first sends
  ``{"type": "ready", "asr": bool, "inputs", "items": [{"id", "name"}]}`` (every
  catalog record: the operator may file the ticket under any item, not only a
  suggested one). The client sends binary frames: one
  byte of input (0 = the caller, or the whole call with one input; 1 = the operator's
  microphone), then PCM16 mono 16 kHz audio; and text frames:
  ``{"type": "phrase", "speaker": "caller"|"operator", "text"}`` (a phrase typed or
  pasted instead of spoken), ``{"type": "end"}`` (the call ended: the last phrases
  are recognised, then ``{"type": "ended"}``), ``{"type": "save", "ticket": {...}}``
  (the operator's edited draft: ``{"type": "saved", "id"}``).
  The server sends ``{"type": "partial", "speaker", "text"}`` while a phrase is
  spoken, ``{"type": "final", "speaker", "text", "seq"}`` when it ends, then
  ``{"type": "assist", "suggestions", "card", "changed"}`` (after a caller's phrase)
  and ``{"type": "draft", "draft"}`` (the caller's name masked; ``phone_heard``: the
  number was heard by the digit recogniser, and a ticket keeping it is saved only with
  ``"phone_checked": true``, after the operator has read it back to the caller). Errors:
  ``{"type": "error", "code", "message"}`` (Chinese), then close 1008 (not logged in,
  another site, bad message, too long), 1011 (failure).
* ``GET /api/v1/desk/calls`` — saved call tickets, masked; ``GET
  /api/v1/desk/calls/{id}`` — one with its data and transcript (audited).

Transcripts never reach the logs (counts only); they are stored only in a saved
ticket, sealed, and deleted after ``call_retention_days`` (checked whenever a ticket
is saved or the list is read).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any, Dict, List, Optional
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Query, WebSocket
from fastapi import Path as PathParam
from pydantic import BaseModel, Field, StrictBool, StrictStr, ValidationError, validator
from starlette.websockets import WebSocketDisconnect, WebSocketState

from assistant.api.deps import MAX_ROW_ID, SettingsDep
from assistant.config.settings import Settings
from assistant.security.access import NOT_LOGGED_IN, OperatorDep
from assistant.security.sessions import principal_from_request
from assistant.services.assist import QUESTION_ORDER
from assistant.services.callmode import store
from assistant.services.callmode.config import TUNABLES
from assistant.services.callmode.digits import open_phone_listener
from assistant.services.callmode.draft import mask_name
from assistant.services.callmode.phrases import CALLER, SPEAKERS, Final, PhraseStream, open_phrase_stream
from assistant.services.callmode.session import CallSession
from assistant.services.speech import corrected_text, heard_text, voice_of
from voice.asr import AsrUnavailable
from voice.biased import DualAsr
from voice.audio import AudioError, check_pcm16

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/desk", tags=["desk"])

OTHER_SITE = "请从本系统的坐席页面发起通话"
BAD_MESSAGE = "通话数据格式不正确，请刷新页面后重试"
TOO_LONG = "通话时间过长，请保存工单后重新开始"
FAILED = "通话服务暂时出了点问题，请稍后再试"
CALL_ENDED = "通话已结束，不能再发送语音"
NO_CALL_TICKET = "没有找到该通话工单"
PHONE_UNCHECKED = "这个电话号码是从通话语音中识别的，可能有误。请向来电人复述核对后，勾选“已核对”再保存。"
CATEGORIES = ("咨询", "求助", "投诉", "建议", "表扬", "其他")
MAX_PHRASE_CHARS = 500
MAX_FIELD_CHARS = 2000
# Seconds a call may stay open beyond call_max_minutes (saving the ticket).
SLACK_SECONDS = 600
CallTicketId = PathParam(..., ge=1, le=MAX_ROW_ID)
# Under the data directory: the digit recogniser's view of the Vosk model (callmode/digits.py).
DIGIT_MODELS = "vosk-views"


class CallError(Exception):
    def __init__(self, code: str, message: str, close_code: int = 1008) -> None:
        super().__init__(code)
        self.code, self.message, self.close_code = code, message, close_code


class TicketBody(BaseModel):
    """The operator's edited draft."""

    caller_name: Optional[StrictStr] = Field(None, max_length=32)
    phone: Optional[StrictStr] = Field(None, max_length=20, regex=r"^[0-9+\- ]*$")
    address: Optional[StrictStr] = Field(None, max_length=200)
    item_id: Optional[StrictStr] = Field(None, max_length=64)
    question_type: Optional[StrictStr] = Field(None, max_length=32)
    category: StrictStr = Field("咨询", max_length=8)
    summary: StrictStr = Field("", max_length=MAX_FIELD_CHARS)
    answer: StrictStr = Field("", max_length=MAX_FIELD_CHARS)
    # The operator read a heard phone number back to the caller (see the draft).
    phone_checked: StrictBool = False

    class Config:
        extra = "forbid"

    @validator("category")
    def _category(cls, value: str) -> str:
        if value not in CATEGORIES:
            raise ValueError(f"问题类型只能是{'、'.join(CATEGORIES)}之一")
        return value

    @validator("question_type")
    def _question(cls, value: Optional[str]) -> Optional[str]:
        if value and value not in QUESTION_ORDER:
            raise ValueError("咨询内容类型不正确")
        return value or None


def same_origin(websocket: WebSocket) -> bool:
    """A browser's handshake from this site (no Origin: not a browser, the cookie decides)."""
    origin = websocket.headers.get("origin")
    if not origin:
        return True
    return urlsplit(origin).netloc == websocket.headers.get("host")


async def _send(websocket: WebSocket, message: Dict[str, Any]) -> None:
    await websocket.send_text(json.dumps(message, ensure_ascii=False))


async def _send_error(websocket: WebSocket, error: CallError) -> None:
    if websocket.application_state != WebSocketState.CONNECTED:
        return
    try:
        await _send(websocket, {"type": "error", "code": error.code, "message": error.message})
        await websocket.close(code=error.close_code)
    except (WebSocketDisconnect, RuntimeError):
        pass


class Call:
    """One call's connection: recogniser streams per input, the session, the limits."""

    def __init__(self, websocket: WebSocket, settings: Settings, username: str, inputs: int) -> None:
        self.websocket = websocket
        self.settings = settings
        self.username = username
        self.inputs = inputs
        self.app = websocket.app
        self.session = CallSession(self.app.state.catalog)
        self.streams: Dict[int, PhraseStream] = {}
        self.asr: Any = None
        self.biased: Any = None  # the catalog-biased recogniser, for the caller's input
        self.ended = False
        self.max_seconds = settings.call_max_minutes * 60.0

    async def start(self) -> None:
        try:
            recognizer = await voice_of(self.app).ready_asr()
            self.asr = voice_of(self.app).asr
            if isinstance(recognizer, DualAsr) and recognizer.biased is not recognizer.free:
                self.biased = recognizer.biased
        except AsrUnavailable as exc:
            logger.warning("desk.call.asr_unavailable reason=%s", exc.reason)
        items = [{"id": r.id, "name": r.name} for r in self.session.catalog.items()]
        await _send(self.websocket, {"type": "ready", "asr": self.asr is not None, "inputs": self.inputs, "items": items})

    async def audio(self, data: bytes) -> None:
        if self.ended:
            raise CallError("ended", CALL_ENDED)
        if len(data) < 2 or len(data) > TUNABLES.asr.max_frame_bytes or data[0] >= self.inputs:
            raise CallError("bad_message", BAD_MESSAGE)
        if self.asr is None:
            return  # no recogniser here: the operator types the phrases
        channel, pcm = data[0], data[1:]
        stream = self.streams.get(channel)
        if stream is None:
            caller = SPEAKERS[channel] == CALLER
            biased = self.biased if caller else None
            phones = None
            if caller and TUNABLES.phone.from_audio:
                phones = await open_phone_listener(self.asr.model_dir, Path(self.settings.data_dir) / DIGIT_MODELS)
            stream = self.streams[channel] = await open_phrase_stream(self.asr, SPEAKERS[channel], biased, phones)
        try:
            check_pcm16(pcm, max_seconds=self.max_seconds, already_seconds=stream.seconds)
        except AudioError as exc:
            raise CallError("too_long" if exc.code == "too_long" else "bad_message", TOO_LONG if exc.code == "too_long" else BAD_MESSAGE) from exc
        heard = await stream.feed(pcm)
        await self._heard(stream.speaker, heard.partial, heard.finals, heard.phone)

    async def _heard(
        self, speaker: str, partial: Optional[str], finals: List[Final], phone: Optional[str] = None
    ) -> None:
        for final in finals:
            await self.phrase(speaker, final.text, final.biased)
        if phone is not None:
            logger.info("desk.call.phone_heard")  # never the number
            await _send(self.websocket, self.session.hear_phone(phone).draft_message())
        if partial is not None:
            await _send(self.websocket, {"type": "partial", "speaker": speaker, "text": partial})

    async def phrase(self, speaker: str, text: str, biased: Optional[str] = None) -> None:
        """A final phrase: shown as heard (free decoding); the caller's are ranked by the
        transcript the item linker is surer of (free or biased), corrected with the
        catalog's terms."""
        text = " ".join(text.split())[:MAX_PHRASE_CHARS]
        if not text:
            return
        # The transcript first (the operator reads along), then what follows from it.
        await _send(self.websocket, {"type": "final", "speaker": speaker, "text": text, "seq": len(self.session.phrases)})
        corrected = None
        if speaker == CALLER and biased:
            _, corrected = await heard_text(self.app, self.settings, {"free": text, "biased": biased})
        elif speaker == CALLER:
            _, corrected = await corrected_text(self.app, self.settings, text)
        update = await self.session.hear(self.app.state.runtime, speaker, text, corrected)
        if speaker == CALLER:
            await _send(self.websocket, update.assist_message())
        await _send(self.websocket, update.draft_message())

    async def end(self) -> None:
        if not self.ended:
            self.ended = True
            for stream in list(self.streams.values()):
                heard = await stream.finish()
                await self._heard(stream.speaker, heard.partial, heard.finals, heard.phone)
        await _send(self.websocket, {"type": "ended", "phrases": len(self.session.phrases)})

    async def save(self, raw: Any) -> None:
        try:
            body = TicketBody.parse_obj(raw if isinstance(raw, dict) else {})
        except ValidationError as exc:
            first = exc.errors()[0]
            message = first["msg"] if any("\u4e00" <= c <= "\u9fff" for c in first["msg"]) else BAD_MESSAGE
            await _send(self.websocket, {"type": "error", "code": "bad_ticket", "message": message})
            return
        if body.item_id and body.item_id not in self.app.state.catalog:
            await _send(self.websocket, {"type": "error", "code": "bad_ticket", "message": "事项不正确，请重新选择"})
            return
        draft = self.session.draft()
        phone = (body.phone or "").replace(" ", "") or None
        if self.session.needs_read_back(phone, body.phone_checked):
            await _send(self.websocket, {"type": "error", "code": "phone_unchecked", "message": PHONE_UNCHECKED})
            return
        name = body.caller_name
        if name and draft.caller_name and name == mask_name(draft.caller_name):
            name = draft.caller_name  # the masked name left as shown: the name heard
        ticket = store.SavedTicket(
            caller_name=name or None,
            phone=phone,
            address=body.address or None,
            item_id=body.item_id or None,
            question_type=body.question_type,
            category=body.category,
            summary=body.summary,
            answer=body.answer,
        )
        seconds = time.monotonic() - self.session.started
        await asyncio.to_thread(store.purge, self.settings)  # tickets past retention, on every save
        ticket_id = await asyncio.to_thread(
            store.save_ticket, self.settings, self.username, ticket, self.session.transcript(), seconds
        )
        await _send(self.websocket, {"type": "saved", "id": ticket_id})

    async def command(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            raise CallError("bad_message", BAD_MESSAGE) from None
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "phrase":
            speaker, said = message.get("speaker", CALLER), message.get("text")
            if speaker not in SPEAKERS or not isinstance(said, str) or len(said) > MAX_PHRASE_CHARS:
                raise CallError("bad_message", BAD_MESSAGE)
            await self.phrase(speaker, said)
        elif kind == "end":
            await self.end()
        elif kind == "save":
            await self.save(message.get("ticket"))
        else:
            raise CallError("bad_message", BAD_MESSAGE)

    async def run(self) -> None:
        deadline = time.monotonic() + self.max_seconds + SLACK_SECONDS
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CallError("too_long", TOO_LONG)
            try:
                message = await asyncio.wait_for(self.websocket.receive(), timeout=remaining)
            except asyncio.TimeoutError:
                raise CallError("too_long", TOO_LONG) from None
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await self.audio(message["bytes"])
            elif message.get("text") is not None:
                await self.command(message["text"])


@router.websocket("/call")
async def call_stream(websocket: WebSocket, inputs: int = Query(1, ge=1, le=2)) -> None:
    """A call's audio in, transcript, suggestions and ticket draft out (module doc)."""
    settings: Settings = websocket.app.state.settings
    await websocket.accept()
    call: Optional[Call] = None
    try:
        if not same_origin(websocket):
            raise CallError("forbidden", OTHER_SITE)
        principal = await asyncio.to_thread(principal_from_request, websocket)
        if principal is None:
            raise CallError("forbidden", NOT_LOGGED_IN)
        call = Call(websocket, settings, principal.username, inputs)
        await asyncio.to_thread(store.audit, settings, principal.username, store.AUDIT_START)
        logger.info("desk.call.started operator=%s inputs=%d", principal.username, inputs)
        await call.start()
        await call.run()
    except CallError as error:
        logger.info("desk.call.error code=%s", error.code)
        await _send_error(websocket, error)
    except WebSocketDisconnect:
        pass
    except Exception:
        logger.exception("desk.call.failed")
        await _send_error(websocket, CallError("failed", FAILED, 1011))
    finally:
        if call is not None:
            logger.info(
                "desk.call.closed operator=%s phrases=%d seconds=%.0f",
                call.username, len(call.session.phrases), time.monotonic() - call.session.started,
            )


@router.get("/calls")
async def calls(principal: OperatorDep, settings: SettingsDep, limit: int = Query(50, ge=1, le=store.MAX_LIST)) -> Dict:
    """Saved call tickets, the newest first, masked (tickets past retention purged first)."""
    await asyncio.to_thread(store.purge, settings)
    return {"calls": await asyncio.to_thread(store.list_tickets, settings.db_url, limit)}


@router.get("/calls/{ticket_id}")
async def call_ticket(principal: OperatorDep, settings: SettingsDep, ticket_id: int = CallTicketId) -> Dict:
    """A saved call ticket with the caller's data and the transcript (an audited read)."""
    try:
        return await asyncio.to_thread(store.open_ticket, settings, principal.username, ticket_id)
    except store.CallTicketNotFound:
        raise HTTPException(status_code=404, detail=NO_CALL_TICKET) from None
