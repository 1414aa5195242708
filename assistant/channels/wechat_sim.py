"""A WeChat simulator: the WeChat server as our channel sees it.

* :class:`WeChatSimulator` sends user messages the way WeChat does: XML signed
  with the token (``signature``, ``timestamp``, ``nonce``), encrypted in safe mode
  (``encrypt_type=aes``, ``msg_signature``), waits at most 5 seconds and retries
  the same message three times when no answer came; it checks and decrypts
  passive replies.
* :class:`FakeWeChatApi` is a local stand-in for ``api.weixin.qq.com``: the stable
  access token, ``message/custom/send`` (recorded per user, with injectable
  errors, and 45015 for users whose 48-hour window is closed: ``close_window``),
  ``message/template/send`` (template messages, checked like WeChat checks them,
  recorded per user) and ``media/get`` (voice files, with an optional delay).

``banshi wechat-sim`` chats through a running gateway with both; the tests and
``bench/wechat.py`` use the classes directly.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from assistant.channels.wechat_crypto import WeChatCrypto, signature
from assistant.channels.wechat_xml import parse_fields

WECHAT_TIMEOUT_S = 5.0
WECHAT_RETRIES = 3
ACCOUNT = "gh_banshi_sim"
_msg_ids = itertools.count(int(time.time() * 1000) * 1000 + secrets.randbelow(1000))


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def message_xml(fields: Dict[str, Any]) -> str:
    inner = "".join(
        f"<{k}>{v}</{k}>" if isinstance(v, int) else f"<{k}>{_cdata(str(v))}</{k}>" for k, v in fields.items()
    )
    return f"<xml>{inner}</xml>"


@dataclass
class SimReply:
    """What WeChat got back for one message (after its retries)."""

    status: Optional[int]  # HTTP status of the last attempt; None: every attempt timed out
    text: Optional[str]  # the passive reply's Content, None for "success"/empty
    attempts: int
    seconds: float  # from the first send to the answer that counted
    body: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200


class WeChatSimulator:
    """Sends messages to ``url`` (the gateway's ``/channels/wechat``) as WeChat would."""

    def __init__(self, url: str, token: str, app_id: str, encoding_aes_key: Optional[str] = None,
                 safe: bool = False, timeout_s: float = WECHAT_TIMEOUT_S, retries: int = WECHAT_RETRIES,
                 account: str = ACCOUNT) -> None:
        self.url = url
        self.token = token
        self.app_id = app_id
        self.crypto = WeChatCrypto(encoding_aes_key, app_id) if encoding_aes_key else None
        if safe and self.crypto is None:
            raise ValueError("safe mode needs the EncodingAESKey")
        self.safe = safe
        self.timeout_s = timeout_s
        self.retries = retries
        self.account = account
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def close(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> "WeChatSimulator":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -------------------------------------------------------------- building
    @staticmethod
    def new_msg_id() -> str:
        return str(next(_msg_ids))

    def fields(self, openid: str, msg_type: str = "text", **values: Any) -> Dict[str, Any]:
        base: Dict[str, Any] = {"ToUserName": self.account, "FromUserName": openid,
                                "CreateTime": int(time.time()), "MsgType": msg_type}
        base.update(values)
        if msg_type != "event" and "MsgId" not in base:
            base["MsgId"] = int(self.new_msg_id())
        return base

    def signed(self, xml: str, timestamp: Optional[int] = None, token: Optional[str] = None
               ) -> Tuple[Dict[str, str], bytes]:
        """Query parameters and body of one delivery, signed (and encrypted in safe mode)."""
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        nonce = secrets.token_hex(5)
        key = token if token is not None else self.token
        params = {"signature": signature(key, stamp, nonce), "timestamp": stamp, "nonce": nonce,
                  "openid": "sim"}
        if not self.safe:
            return params, xml.encode("utf-8")
        assert self.crypto is not None
        encrypted = self.crypto.encrypt(xml)
        params.update(encrypt_type="aes", msg_signature=signature(key, stamp, nonce, encrypted))
        body = f"<xml><ToUserName>{_cdata(self.account)}</ToUserName><Encrypt>{_cdata(encrypted)}</Encrypt></xml>"
        return params, body.encode("utf-8")

    # -------------------------------------------------------------- sending
    async def post(self, params: Dict[str, str], body: bytes) -> httpx.Response:
        return await self._client.post(self.url, params=params, content=body,
                                       headers={"Content-Type": "text/xml"})

    def read_reply(self, response: httpx.Response) -> Optional[str]:
        """The passive reply's Content (checked and decrypted in safe mode), or None."""
        body = response.text.strip()
        if response.status_code != 200 or body in ("", "success"):
            return None
        fields = parse_fields(body.encode("utf-8"), 1 << 20)
        if "Encrypt" in fields:
            if self.crypto is None:
                raise AssertionError("encrypted reply but no key")
            expected = signature(self.token, fields.get("TimeStamp", ""), fields.get("Nonce", ""), fields["Encrypt"])
            if expected != fields.get("MsgSignature"):
                raise AssertionError("reply MsgSignature does not match")
            fields = parse_fields(self.crypto.decrypt(fields["Encrypt"]).encode("utf-8"), 1 << 20)
        elif self.safe:
            raise AssertionError("plaintext reply in safe mode")
        if fields.get("MsgType") != "text":
            raise AssertionError(f"unexpected reply type {fields.get('MsgType')}")
        return fields.get("Content", "")

    async def deliver(self, fields: Dict[str, Any]) -> SimReply:
        """Deliver one message like WeChat: up to 1 + ``retries`` attempts of the same
        XML, each cut off after ``timeout_s``; an HTTP answer ends it."""
        xml = message_xml(fields)
        started = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            params, body = self.signed(xml)
            try:
                response = await self.post(params, body)
            except (httpx.TimeoutException, httpx.TransportError):
                if attempts > self.retries:
                    return SimReply(None, None, attempts, time.monotonic() - started)
                continue
            return SimReply(response.status_code, self.read_reply(response), attempts,
                            time.monotonic() - started, response.text)

    async def send_text(self, openid: str, text: str, **values: Any) -> SimReply:
        return await self.deliver(self.fields(openid, "text", Content=text, **values))

    async def send_voice(self, openid: str, media_id: str, recognition: str = "", fmt: str = "amr") -> SimReply:
        values: Dict[str, Any] = {"MediaId": media_id, "Format": fmt}
        if recognition:
            values["Recognition"] = recognition
        return await self.deliver(self.fields(openid, "voice", **values))

    async def send_image(self, openid: str, media_id: str, pic_url: str = "http://mmbiz.qpic.cn/sim.jpg") -> SimReply:
        return await self.deliver(self.fields(openid, "image", MediaId=media_id, PicUrl=pic_url))

    async def send_event(self, openid: str, event: str, key: str = "") -> SimReply:
        values: Dict[str, Any] = {"Event": event}
        if key:
            values["EventKey"] = key
        return await self.deliver(self.fields(openid, "event", **values))


# ------------------------------------------------------------------ fake API
@dataclass
class Sent:
    touser: str
    content: str
    at: float


@dataclass
class SentTemplate:
    touser: str
    template_id: str
    data: Dict[str, str]  # field name → value
    url: str
    at: float


# WeChat's limits of a template message's values by field type (name without digits).
TEMPLATE_VALUE_LIMITS = {"thing": 20, "character_string": 32, "phrase": 5, "number": 32, "letter": 32,
                         "name": 10, "time": 40, "date": 40, "amount": 32, "phone_number": 17, "car_number": 8,
                         "const": 20}


@dataclass
class FakeWeChatApi:
    """A local ``api.weixin.qq.com`` (thread-safe: served in a thread, read by tests)."""

    app_id: str
    app_secret: str
    token_seconds: int = 7200
    sent: List[Sent] = field(default_factory=list)
    token_requests: int = 0
    # errcodes to answer the next send calls with, in order (e.g. [-1] or [40001]).
    fail_sends: List[int] = field(default_factory=list)
    media: Dict[str, Tuple[bytes, str, float]] = field(default_factory=dict)
    templates: List[SentTemplate] = field(default_factory=list)
    fail_templates: List[int] = field(default_factory=list)  # like fail_sends, for template/send
    # Template ids the account has (empty: any id is accepted).
    template_ids: List[str] = field(default_factory=list)
    # Users whose customer-service window is closed: message/custom/send answers 45015.
    closed_windows: set = field(default_factory=set)

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._token = secrets.token_hex(16)
        self.app = Starlette(routes=[
            Route("/cgi-bin/stable_token", self._stable_token, methods=["POST"]),
            Route("/cgi-bin/token", self._token_get, methods=["GET"]),
            Route("/cgi-bin/message/custom/send", self._send, methods=["POST"]),
            Route("/cgi-bin/message/template/send", self._send_template, methods=["POST"]),
            Route("/cgi-bin/media/get", self._media, methods=["GET"]),
        ])

    # -------------------------------------------------------------- endpoints
    def _issue(self, appid: Optional[str], secret: Optional[str], force: bool) -> JSONResponse:
        with self._cond:
            self.token_requests += 1
            if appid != self.app_id or secret != self.app_secret:
                return JSONResponse({"errcode": 40013, "errmsg": "invalid appid"})
            if force:
                self._token = secrets.token_hex(16)
            return JSONResponse({"access_token": self._token, "expires_in": self.token_seconds})

    async def _stable_token(self, request: Request) -> JSONResponse:
        body = await request.json()
        return self._issue(body.get("appid"), body.get("secret"), bool(body.get("force_refresh")))

    async def _token_get(self, request: Request) -> JSONResponse:
        q = request.query_params
        return self._issue(q.get("appid"), q.get("secret"), False)

    async def _send(self, request: Request) -> JSONResponse:
        body = await request.json()
        with self._cond:
            if request.query_params.get("access_token") != self._token:
                return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
            if self.fail_sends:
                code = self.fail_sends.pop(0)
                if code == 40001:
                    self._token = secrets.token_hex(16)  # as if it expired
                return JSONResponse({"errcode": code, "errmsg": "injected"})
            if body.get("msgtype") != "text" or not body.get("touser"):
                return JSONResponse({"errcode": 40008, "errmsg": "invalid message type"})
            if body["touser"] in self.closed_windows:
                return JSONResponse({"errcode": 45015, "errmsg": "response out of time limit"})
            content = (body.get("text") or {}).get("content", "")
            if len(content.encode("utf-8")) > 2048:
                return JSONResponse({"errcode": 45002, "errmsg": "content size out of limit"})
            self.sent.append(Sent(body["touser"], content, time.monotonic()))
            self._cond.notify_all()
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def _send_template(self, request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"errcode": 47001, "errmsg": "data format error"})
        with self._cond:
            if request.query_params.get("access_token") != self._token:
                return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
            if self.fail_templates:
                return JSONResponse({"errcode": self.fail_templates.pop(0), "errmsg": "injected"})
            touser, template_id, data = body.get("touser"), body.get("template_id"), body.get("data")
            if not isinstance(touser, str) or not touser:
                return JSONResponse({"errcode": 40003, "errmsg": "invalid openid"})
            if not isinstance(template_id, str) or not template_id or (
                    self.template_ids and template_id not in self.template_ids):
                return JSONResponse({"errcode": 40037, "errmsg": "invalid template_id"})
            if not isinstance(data, dict) or not data:
                return JSONResponse({"errcode": 47003, "errmsg": "argument invalid! data is empty"})
            values = {}
            for name, entry in data.items():
                value = entry.get("value") if isinstance(entry, dict) else None
                limit = TEMPLATE_VALUE_LIMITS.get(str(name).rstrip("0123456789"))
                if not isinstance(value, str) or not value or limit is None or len(value) > limit:
                    return JSONResponse({"errcode": 47003, "errmsg": f"argument invalid! data.{name}.value invalid"})
                values[name] = value
            msgid = len(self.templates) + 1
            self.templates.append(SentTemplate(touser, template_id, values, str(body.get("url") or ""),
                                               time.monotonic()))
            self._cond.notify_all()
        return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    async def _media(self, request: Request) -> Response:
        with self._cond:
            if request.query_params.get("access_token") != self._token:
                return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
            found = self.media.get(request.query_params.get("media_id", ""))
        if found is None:
            return JSONResponse({"errcode": 40007, "errmsg": "invalid media_id"})
        data, kind, delay = found
        if delay:
            await asyncio.sleep(delay)
        return Response(data, media_type=kind)

    # -------------------------------------------------------------- for tests
    def add_media(self, data: bytes, kind: str = "audio/amr", delay_s: float = 0.0) -> str:
        media_id = secrets.token_urlsafe(12)
        with self._cond:
            self.media[media_id] = (data, kind, delay_s)
        return media_id

    def messages_to(self, openid: str) -> List[str]:
        with self._cond:
            return [s.content for s in self.sent if s.touser == openid]

    def wait_for(self, openid: str, count: int = 1, timeout_s: float = 15.0) -> List[str]:
        """Block until ``openid`` got at least ``count`` messages (or the timeout); returns them."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                got = [s.content for s in self.sent if s.touser == openid]
                left = deadline - time.monotonic()
                if len(got) >= count or left <= 0:
                    return got
                self._cond.wait(left)

    async def await_for(self, openid: str, count: int = 1, timeout_s: float = 15.0) -> List[str]:
        return await asyncio.to_thread(self.wait_for, openid, count, timeout_s)

    def close_window(self, openid: str) -> None:
        """From now on the user is outside the 48-hour window (custom/send answers 45015)."""
        with self._cond:
            self.closed_windows.add(openid)

    def templates_to(self, openid: str) -> List[SentTemplate]:
        with self._cond:
            return [t for t in self.templates if t.touser == openid]

    def wait_for_template(self, openid: str, count: int = 1, timeout_s: float = 15.0) -> List[SentTemplate]:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                got = [t for t in self.templates if t.touser == openid]
                left = deadline - time.monotonic()
                if len(got) >= count or left <= 0:
                    return got
                self._cond.wait(left)


# ------------------------------------------------------------------ CLI
async def chat(url: str, settings: Any, api: FakeWeChatApi, openid: str, safe: bool) -> None:
    """Read lines from the terminal and send them as one WeChat user (``banshi wechat-sim``).
    Customer-service messages (late replies, operator replies) are printed as they arrive."""
    sim = WeChatSimulator(url, settings.wechat_token, settings.wechat_app_id,
                          settings.wechat_encoding_aes_key, safe=safe)

    async def show_customer_service_messages() -> None:
        seen = templates = 0
        while True:
            got = await api.await_for(openid, seen + 1, timeout_s=0.5)
            for text in got[seen:]:
                print(f"\n助手（客服消息）> {text}\n你> ", end="", flush=True)
            seen = len(got)
            sent = api.templates_to(openid)
            for template in sent[templates:]:  # status notices outside the 48-hour window
                fields = "，".join(template.data.values())
                print(f"\n助手（模板消息 {template.template_id}）> {fields}\n你> ", end="", flush=True)
            templates = len(sent)

    printer = asyncio.create_task(show_customer_service_messages())
    print("输入消息后回车发送；/subscribe 关注，/menu KEY 点菜单，/quit 退出。")
    try:
        while True:
            line = (await asyncio.to_thread(input, "你> ")).strip()
            if line in ("/quit", "/exit"):
                return
            if not line:
                continue
            if line == "/subscribe":
                reply = await sim.send_event(openid, "subscribe")
            elif line.startswith("/menu "):
                reply = await sim.send_event(openid, "CLICK", line.split(None, 1)[1])
            else:
                reply = await sim.send_text(openid, line)
            if reply.status is None:
                print(f"[超时：{reply.attempts} 次都没有在 5 秒内回答，微信会显示“该公众号暂时无法提供服务”]")
            elif reply.status != 200:
                print(f"[HTTP {reply.status}: {reply.body[:200]}]")
            elif reply.text:
                print(f"助手（被动回复，{reply.seconds:.2f} 秒）> {reply.text}")
            else:
                print(f"[success，{reply.seconds:.2f} 秒：回复（如有）将以客服消息送达]")
    except (EOFError, KeyboardInterrupt):
        await asyncio.sleep(1.0)  # let late customer-service messages show
        return
    finally:
        printer.cancel()
        await asyncio.gather(printer, return_exceptions=True)
        await sim.close()
