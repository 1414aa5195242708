"""WeChat official-account (公众号) channel: ``GET/POST /channels/wechat``.

WeChat calls this URL with signed XML, waits 5 seconds, retries the same message
three times when it gets no answer, and shows "该公众号暂时无法提供服务" when the
answer is not valid. This connector:

* **checks** the signature (and ``msg_signature`` in safe mode), refuses
  timestamps outside ``wechat_timestamp_window_s`` (replays) with 403, and
  refuses oversized, malformed, DTD/entity (XXE) or undecryptable bodies with
  400 before anything is processed;
* **deduplicates** by MsgId (events: FromUserName + CreateTime): WeChat's retries
  get the first delivery's reply and never a second turn, also after a restart
  (``wechat_inbound`` in the database, expiring after ``wechat_dedup_hours``);
* **meets the deadline**: the reply goes in the HTTP response when the turn
  finishes within ``wechat_passive_seconds`` (4 s); otherwise the answer is
  ``success`` at once and the reply follows by the customer-service API
  (``message/custom/send``) from a persistent queue (``wechat_outgoing``),
  sent by :class:`DeliveryWorker` within WeChat's window (48 h, 5 messages per
  user message) with retries on WeChat's transient errors;
* keeps **multi-turn context**: the conversation id is ``wx-<OpenID>`` (hashed in
  logs); buttons become numbered options ("回复 1 …") that the next message selects;
* understands text, voice (WeChat's ``Recognition`` when present, else the media
  is downloaded, decoded and recognised by our Vosk pipeline), images (a verified
  user's missing material, else a photo question read by OCR: ``wechat_media.py``),
  subscribe and menu events; anything else gets a polite "please type or speak";
* relays to a human: while a handoff ticket holds the conversation, messages go to
  the desk and the operator's replies reach the user by the customer-service API
  (a pusher on ``app.state.pushers["wechat"]``).

Texts and formatting: ``wechat_format.py`` (tunables in ``wechat.yml``); delivery by the
customer-service API: ``wechat_delivery.py``; state changes kept while the database
restarts (the user is asked to send again only when nothing was processed yet):
``wechat_kept.py``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any, Dict, List, Optional, Tuple

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response

from assistant.channels import wechat_kept as kept
from assistant.channels import wechat_store as store
from assistant.channels.wechat_api import WeChatApi, WeChatApiError
from assistant.channels.wechat_crypto import WeChatCrypto, WeChatCryptoError, signature, signature_ok
from assistant.channels.wechat_delivery import DeliveryWorker
from assistant.channels.wechat_format import WeChatTexts, render, selected_option, sender_of, split_text
from assistant.channels.wechat_media import image_text
from assistant.channels.wechat_xml import (
    EVENT_CLICK,
    EVENT_SUBSCRIBE,
    MSG_EVENT,
    MSG_IMAGE,
    MSG_TEXT,
    MSG_VOICE,
    Inbound,
    WeChatXmlError,
    encrypted_envelope,
    parse_fields,
    text_reply,
)
from assistant.config.settings import Settings
from assistant.security.pii import hash_id
from assistant.services.conversation import HANDOFF_KEY, NO_REPLY, conversation_turn
from assistant.services.speech import heard_text, transcripts, voice_of
from assistant.storage.spool import is_outage
from assistant.storage.tables import WX_PASSIVE, WX_PENDING, WX_PROCESSING, WX_QUEUED

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/channels/wechat", tags=["wechat"], include_in_schema=False)

CHANNEL = "wechat"
SUCCESS = "success"  # WeChat: received, no passive reply
NOT_CONFIGURED = "未启用微信公众号渠道"
BAD_SIGNATURE = "签名校验失败"
BAD_TIMESTAMP = "请求时间戳无效或已过期"
BAD_MESSAGE = "消息格式不正确"
PLAINTEXT_REFUSED = "安全模式下只接受加密消息"
MISSING_PARAMS = "缺少签名参数"
# Options: "1", "１", " 2 " select the numbered options of the previous reply.

# ------------------------------------------------------------------ the channel
class WeChatChannel:
    """The channel's state in one gateway process (``app.state.wechat``)."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.texts = WeChatTexts.load()
        self.crypto = (
            WeChatCrypto(settings.wechat_encoding_aes_key, settings.wechat_app_id or "")
            if settings.wechat_encoding_aes_key
            else None
        )
        self.api = WeChatApi(settings.wechat_api_base, settings.wechat_app_id or "",
                             settings.wechat_app_secret or "", settings.wechat_api_timeout_s)
        self.delivery = DeliveryWorker(self)
        self._turns: Dict[str, asyncio.Task] = {}
        self._warm_up: Optional[asyncio.Task] = None
        self.passive_seconds = settings.wechat_passive_seconds

    async def start(self) -> None:
        self.delivery.start()
        self.app.state.pushers[CHANNEL] = self.push
        # Voice messages without WeChat's recognition use our recogniser: load it now
        # (in the background) rather than on the first voice message.
        voice = voice_of(self.app)
        if voice.asr.available:
            self._warm_up = asyncio.create_task(self._warm_asr(voice))

    @staticmethod
    async def _warm_asr(voice: Any) -> None:
        try:
            await voice.ready_asr()
        except Exception as exc:  # a broken model: voice messages get "please type" until fixed
            logger.warning("wechat.voice.unavailable error=%s", type(exc).__name__)

    async def stop(self) -> None:
        await self.delivery.stop()
        tasks = list(self._turns.values()) + ([self._warm_up] if self._warm_up is not None else [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.api.close()

    async def push(self, conversation_id: str, text: str) -> None:
        """An operator's reply (desk relay): queued for the customer-service API."""
        parts = split_text(text, self.texts.text_limit_bytes)
        await asyncio.to_thread(kept.queue_messages, self.settings.db_url, conversation_id, parts, "desk")
        self.delivery.wake()

    # -------------------------------------------------------------- one message
    async def handle(self, conn: Request, inbound: Inbound, received_at: float) -> Optional[str]:
        """The passive reply text for an inbound message, or None (answer "success").
        Without the database the message is not processed: the user is asked to send
        it again (changes made after the turn started are kept: ``wechat_kept``)."""
        try:
            return await self._handle(conn, inbound, received_at)
        except Exception as exc:
            if not is_outage(exc):
                raise
            logger.warning("wechat.message.db_unavailable user=%s error=%s",
                           hash_id(sender_of(inbound.from_user)), type(exc).__name__)
            return self.texts.db_down

    async def _handle(self, conn: Request, inbound: Inbound, received_at: float) -> Optional[str]:
        db_url = self.settings.db_url
        key = inbound.dedup_key
        sender = sender_of(inbound.from_user)
        deadline = received_at + self.passive_seconds
        earlier = await asyncio.to_thread(store.begin, db_url, key, sender, self.settings.wechat_dedup_hours)
        if earlier is not None:
            logger.info("wechat.message.retry user=%s key=%s status=%s delivery=%s",
                        hash_id(sender), hash_id(key), earlier.status, earlier.delivery)
            return await self._answer_retry(key, sender, deadline)
        await asyncio.to_thread(kept.note_inbound, db_url, sender)
        task = asyncio.create_task(self._turn(conn, inbound, key, sender))
        self._turns[key] = task
        task.add_done_callback(lambda _t: self._turns.pop(key, None))
        await self._wait(task, deadline)
        if task.done():
            ready = task.result() if not task.cancelled() and task.exception() is None else None
            parts = await asyncio.to_thread(kept.claim_passive, db_url, key, sender, ready)
            if parts is not None:
                return self._passive(parts)
        how, parts = await asyncio.to_thread(kept.give_up_waiting, db_url, key, sender)
        if how == WX_PASSIVE:
            return self._passive(parts)
        if how == WX_QUEUED:
            self.delivery.wake()
        else:  # a retry of this message may have claimed the passive reply first
            given = await self._passive_given(key)
            if given is not None:
                return given
        logger.info("wechat.message.async user=%s key=%s", hash_id(sender), hash_id(key))
        return None

    async def _passive_given(self, key: str) -> Optional[str]:
        """The passive reply another delivery of this message claimed, or None. Every
        delivery answers it: WeChat reads the response of the one it still waits on."""
        try:
            current = await asyncio.to_thread(store.state, self.settings.db_url, key)
        except Exception as exc:
            if is_outage(exc):
                return None
            raise
        if current is not None and current.delivery == WX_PASSIVE and current.reply:
            return current.reply[0]
        return None

    def _passive(self, parts: List[str]) -> Optional[str]:
        if len(parts) > 1:
            self.delivery.wake()  # the rest was queued
        return parts[0] if parts else None

    @staticmethod
    async def _wait(task: asyncio.Task, deadline: float) -> None:
        timeout = deadline - time.monotonic()
        if timeout <= 0:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=timeout)
        except asyncio.TimeoutError:
            pass
        except Exception:  # the turn logs its own failures
            pass

    async def _answer_retry(self, key: str, sender: str, deadline: float) -> Optional[str]:
        """A retry of a message seen before: the same passive reply, or "success"
        when the reply goes (or went) by the customer-service API. Never a new turn."""
        db_url = self.settings.db_url
        task = self._turns.get(key)
        if task is not None:
            await self._wait(task, deadline)
        current = await asyncio.to_thread(store.state, db_url, key)
        while current is not None and current.status == WX_PROCESSING and time.monotonic() < deadline:
            await asyncio.sleep(0.1)  # being answered elsewhere (another request or replica)
            current = await asyncio.to_thread(store.state, db_url, key)
        if current is None:
            return None
        if current.delivery == WX_PENDING:
            parts = await asyncio.to_thread(kept.claim_passive, db_url, key, sender, None)
            if parts is not None:
                return self._passive(parts)
        return await self._passive_given(key)

    async def _turn(self, conn: Request, inbound: Inbound, key: str, sender: str) -> List[str]:
        """Produce and store the reply (kept while the database is unreachable); queue
        it if the handler stopped waiting. Returns the reply."""
        failed = False
        try:
            parts = await self.reply_parts(conn, inbound, sender)
        except asyncio.CancelledError:
            raise
        except HTTPException as exc:  # e.g. 503 while the dialogue model loads
            logger.warning("wechat.turn.unavailable user=%s status=%s", hash_id(sender), exc.status_code)
            parts, failed = [NO_REPLY], True
        except Exception as exc:
            if is_outage(exc):
                logger.warning("wechat.turn.db_unavailable user=%s", hash_id(sender))
                parts = [self.texts.db_down]
            else:
                logger.exception("wechat.turn.failed user=%s", hash_id(sender))
                parts = [NO_REPLY]
            failed = True
        queued = await asyncio.to_thread(kept.store_reply, self.settings.db_url, key, sender, parts, failed)
        if queued:
            self.delivery.wake()
        return parts

    async def reply_parts(self, conn: Request, inbound: Inbound, sender: str) -> List[str]:
        """The reply to a message as WeChat text parts (empty: no reply)."""
        text, immediate = await self._text_of(inbound, sender)
        if immediate is not None:
            return split_text(immediate, self.texts.text_limit_bytes)
        if text is None:
            return []
        if len(text) > self.settings.max_text_chars:
            return [self.texts.too_long.format(limit=self.settings.max_text_chars)]
        db_url = self.settings.db_url
        options = await asyncio.to_thread(store.get_options, db_url, sender)
        chosen = selected_option(text, options)
        if chosen is not None:
            text = chosen
        result = await conversation_turn(conn, self.settings, sender, text, CHANNEL)
        body, new_options = render(result.get("messages") or [], self.texts)
        if options or new_options:
            await asyncio.to_thread(kept.set_options, db_url, sender, new_options or None)
        logger.info("wechat.turn.done user=%s intent=%s relayed=%s chars=%d", hash_id(sender),
                    result.get("intent"), bool(result.get(HANDOFF_KEY)) and not body, len(body))
        return split_text(body, self.texts.text_limit_bytes)

    async def _text_of(self, inbound: Inbound, sender: str) -> Tuple[Optional[str], Optional[str]]:
        """(text for the dialogue, None) or (None, a reply given without the dialogue)."""
        if inbound.msg_type == MSG_TEXT:
            return inbound.content.strip() or None, None
        if inbound.msg_type == MSG_VOICE:
            if inbound.recognition.strip():
                return inbound.recognition.strip(), None
            heard = await self._recognise(inbound, sender)
            return (heard, None) if heard else (None, self.texts.voice_failed)
        if inbound.msg_type == MSG_IMAGE:  # a missing material handed in, else a photo question
            return await image_text(self, inbound, sender)
        if inbound.msg_type == MSG_EVENT:
            if inbound.event == EVENT_SUBSCRIBE:
                return None, self.texts.welcome
            if inbound.event == EVENT_CLICK:
                mapped = self.texts.menu.get(inbound.event_key)
                return (mapped, None) if mapped else (None, self.texts.unsupported)
            return None, None  # unsubscribe, VIEW, location reports...: nothing to say
        return None, self.texts.unsupported

    async def _recognise(self, inbound: Inbound, sender: str) -> str:
        """Download a voice message and transcribe it with Vosk ('' if not possible)."""
        from voice.asr import AsrUnavailable
        from voice.audio import AudioError
        from voice.transcode import pcm16_from_media

        if not inbound.media_id:
            return ""
        started = time.perf_counter()
        try:
            asr = await voice_of(self.app).ready_asr()
            data, kind = await self.api.media(inbound.media_id, self.texts.max_voice_bytes)
            pcm = await asyncio.to_thread(
                pcm16_from_media, data, self.settings.max_audio_seconds
            )
            heard = await transcripts(asr, pcm)
        except AsrUnavailable:
            logger.warning("wechat.voice.no_model user=%s", hash_id(sender))
            return ""
        except (WeChatApiError, AudioError) as exc:
            logger.warning("wechat.voice.failed user=%s error=%s", hash_id(sender), exc)
            return ""
        _, corrected = await heard_text(self.app, self.settings, heard)
        logger.info("wechat.voice.recognised user=%s seconds=%.2f chars=%d", hash_id(sender),
                    time.perf_counter() - started, len(corrected))
        return corrected


def channel_of(request: Request) -> WeChatChannel:
    channel = getattr(request.app.state, "wechat", None)
    if channel is None:
        raise HTTPException(status_code=404, detail=NOT_CONFIGURED)
    return channel


# ------------------------------------------------------------------ endpoints
@dataclass(frozen=True)
class Signed:
    """A request whose WeChat signature and timestamp were checked."""

    channel: WeChatChannel
    timestamp: str
    nonce: str


def signed_request(
    request: Request,
    sig: Optional[str] = Query(None, alias="signature", max_length=64),
    timestamp: Optional[str] = Query(None, max_length=16),
    nonce: Optional[str] = Query(None, max_length=64),
) -> Signed:
    """404 when the channel is off, 400 without the signature parameters, 403 for a
    wrong signature or a timestamp outside the replay window."""
    channel = channel_of(request)
    settings = channel.settings
    if not sig or not timestamp or not nonce:
        raise HTTPException(status_code=400, detail=MISSING_PARAMS)
    if not signature_ok(signature(settings.wechat_token or "", timestamp, nonce), sig):
        raise HTTPException(status_code=403, detail=BAD_SIGNATURE)
    try:
        sent = int(timestamp)
    except ValueError:
        raise HTTPException(status_code=403, detail=BAD_TIMESTAMP) from None
    if abs(time.time() - sent) > settings.wechat_timestamp_window_s:
        raise HTTPException(status_code=403, detail=BAD_TIMESTAMP)
    return Signed(channel, timestamp, nonce)


SignedDep = Annotated[Signed, Depends(signed_request)]


@router.get("")
async def verify_url(signed: SignedDep, echostr: Optional[str] = Query(None, max_length=256)) -> PlainTextResponse:
    """WeChat's URL verification: echo ``echostr`` when the signature is ours."""
    if not echostr:
        raise HTTPException(status_code=400, detail=MISSING_PARAMS)
    return PlainTextResponse(echostr)


async def _read_body(request: Request, limit: int) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(status_code=400, detail=BAD_MESSAGE)
    return body


@router.post("")
async def receive(
    request: Request,
    signed: SignedDep,
    encrypt_type: Optional[str] = Query(None, max_length=16),
    msg_signature: Optional[str] = Query(None, max_length=64),
) -> Response:
    """A message or event from WeChat: its passive reply (XML) or ``success``."""
    received_at = time.monotonic()
    channel = signed.channel
    settings = channel.settings
    body = await _read_body(request, settings.wechat_max_xml_bytes)
    encrypted = encrypt_type == "aes"
    try:
        fields = parse_fields(body, settings.wechat_max_xml_bytes)
        if encrypted:
            if channel.crypto is None or settings.wechat_mode == "plain":
                raise WeChatXmlError("encrypted message but no AES key")
            envelope = fields.get("Encrypt", "")
            if not envelope:
                raise WeChatXmlError("no Encrypt")
            expected = signature(settings.wechat_token or "", signed.timestamp, signed.nonce, envelope)
            if not signature_ok(expected, msg_signature):
                raise HTTPException(status_code=403, detail=BAD_SIGNATURE)
            fields = parse_fields(channel.crypto.decrypt(envelope).encode("utf-8"), settings.wechat_max_xml_bytes)
        elif settings.wechat_mode == "safe":
            raise HTTPException(status_code=400, detail=PLAINTEXT_REFUSED)
        inbound = Inbound.from_fields(fields)
    except (WeChatXmlError, WeChatCryptoError) as exc:
        logger.warning("wechat.request.refused reason=%s", exc)
        raise HTTPException(status_code=400, detail=BAD_MESSAGE) from None
    reply = await channel.handle(request, inbound, received_at)
    if not reply:
        return PlainTextResponse(SUCCESS)
    xml = text_reply(inbound.from_user, inbound.to_user, reply)
    if encrypted and channel.crypto is not None:
        stamp, reply_nonce = str(int(time.time())), secrets.token_hex(8)
        envelope = channel.crypto.encrypt(xml)
        xml = encrypted_envelope(
            envelope, signature(settings.wechat_token or "", stamp, reply_nonce, envelope), stamp, reply_nonce
        )
    return Response(xml, media_type="application/xml")
