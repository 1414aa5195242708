"""The WeChat server API used by the channel: access token, customer-service
messages (``message/custom/send``), template messages (``message/template/send``,
for notices outside the 48-hour window) and media download (``media/get``).

The access token comes from ``/cgi-bin/stable_token`` (the stable token: every
caller with the same app id gets the same token until it expires, so gateway
replicas do not invalidate each other's tokens), is cached until 5 minutes
before it expires, and is fetched again once when WeChat says it is invalid
(40001, 40014, 42001): one fetch shared by every call that was refused, in the
normal mode (WeChat hands out the current token), with ``force_refresh`` only if
that still returns the refused token (forcing invalidates the token of every
replica and is limited to 20 a day, 30 s apart). Async throughout (httpx).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Dict, Optional, Tuple

import httpx

logger = logging.getLogger(__name__)

TOKEN_PATH = "/cgi-bin/stable_token"
SEND_PATH = "/cgi-bin/message/custom/send"
TEMPLATE_PATH = "/cgi-bin/message/template/send"
MEDIA_PATH = "/cgi-bin/media/get"
REFRESH_MARGIN_S = 300
# errcodes
TOKEN_INVALID = frozenset({40001, 40014, 42001})
SYSTEM_BUSY = -1
RATE_LIMITED = frozenset({45009, 45011, 45047})  # API frequency / per-user send limits
OUT_OF_WINDOW = 45015  # more than 48 h since the user's last message
UNSUBSCRIBED = 43004
# Worth another attempt later; everything else is final for this message.
RETRYABLE = frozenset({SYSTEM_BUSY, 45009, 45011})


class WeChatApiError(Exception):
    """WeChat answered with an errcode (or not at all: errcode None, retryable)."""

    def __init__(self, errcode: Optional[int], errmsg: str = "") -> None:
        super().__init__(f"errcode={errcode} {errmsg}"[:200])
        self.errcode = errcode
        self.errmsg = errmsg[:200]

    @property
    def retryable(self) -> bool:
        return self.errcode is None or self.errcode in RETRYABLE


class WeChatApi:
    def __init__(self, base_url: str, app_id: str, app_secret: str, timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self._secret = app_secret
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s)
        self._token: Optional[str] = None
        self._token_expires = 0.0
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        await self._client.aclose()

    async def _json(self, response: httpx.Response) -> dict:
        if response.status_code >= 500:
            raise WeChatApiError(None, f"HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            raise WeChatApiError(None, f"HTTP {response.status_code}, not JSON") from None
        if not isinstance(data, dict):
            raise WeChatApiError(None, "not a JSON object")
        errcode = data.get("errcode")
        if errcode not in (None, 0):
            raise WeChatApiError(int(errcode), str(data.get("errmsg", "")))
        return data

    async def access_token(self, force: bool = False) -> str:
        async with self._lock:
            if not force and self._token and time.monotonic() < self._token_expires - REFRESH_MARGIN_S:
                return self._token
            return await self._fetch_token(force)

    async def _fetch_token(self, force: bool) -> str:
        """A token from WeChat (the caller holds the lock)."""
        body = {"grant_type": "client_credential", "appid": self.app_id, "secret": self._secret,
                "force_refresh": force}
        try:
            data = await self._json(await self._client.post(TOKEN_PATH, json=body))
        except httpx.HTTPError as exc:
            raise WeChatApiError(None, type(exc).__name__) from None
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeChatApiError(None, "no access_token in the answer")
        self._token = token
        self._token_expires = time.monotonic() + float(data.get("expires_in") or 7200)
        logger.info("wechat.api.token expires_in=%s forced=%s", data.get("expires_in"), force)
        return token

    async def _renew(self, refused: str) -> str:
        """A token to use instead of ``refused``: the one another call fetched since,
        else the current one from WeChat, forced only if WeChat still hands out ``refused``."""
        async with self._lock:
            if self._token and self._token != refused and time.monotonic() < self._token_expires - REFRESH_MARGIN_S:
                return self._token
            token = await self._fetch_token(False)
            if token == refused:
                token = await self._fetch_token(True)
            return token

    async def _with_token(self, call):
        """Run ``call(token)``; once more with a fresh token if WeChat says it is invalid."""
        token = await self.access_token()
        try:
            return await call(token)
        except WeChatApiError as exc:
            if exc.errcode not in TOKEN_INVALID:
                raise
            logger.warning("wechat.api.token_invalid errcode=%s", exc.errcode)
            return await call(await self._renew(token))

    async def send_text(self, openid: str, content: str) -> None:
        """A customer-service text message to a user. Raises WeChatApiError."""
        body = {"touser": openid, "msgtype": "text", "text": {"content": content}}

        async def call(token: str) -> None:
            try:
                response = await self._client.post(SEND_PATH, params={"access_token": token}, json=body)
            except httpx.HTTPError as exc:
                raise WeChatApiError(None, type(exc).__name__) from None
            await self._json(response)

        await self._with_token(call)

    async def send_template(self, openid: str, template_id: str, data: Dict[str, str], url: str = "") -> None:
        """A template message (``message/template/send``): allowed outside the 48-hour
        window, with the fields of a template chosen in the account's settings.
        ``data`` maps the template's field names to their values. Raises WeChatApiError."""
        body: Dict[str, Any] = {"touser": openid, "template_id": template_id,
                                "data": {name: {"value": value} for name, value in data.items()}}
        if url:
            body["url"] = url

        async def call(token: str) -> None:
            try:
                response = await self._client.post(TEMPLATE_PATH, params={"access_token": token}, json=body)
            except httpx.HTTPError as exc:
                raise WeChatApiError(None, type(exc).__name__) from None
            await self._json(response)

        await self._with_token(call)

    async def media(self, media_id: str, max_bytes: int) -> Tuple[bytes, str]:
        """A temporary media file (e.g. a voice message): its bytes and content type."""

        async def call(token: str) -> Tuple[bytes, str]:
            try:
                async with self._client.stream(
                    "GET", MEDIA_PATH, params={"access_token": token, "media_id": media_id}
                ) as response:
                    kind = response.headers.get("content-type", "")
                    declared = response.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > max_bytes:
                        raise WeChatApiError(None, "media too large")
                    data = b""
                    async for chunk in response.aiter_bytes():
                        data += chunk
                        if len(data) > max_bytes:
                            raise WeChatApiError(None, "media too large")
            except httpx.HTTPError as exc:
                raise WeChatApiError(None, type(exc).__name__) from None
            if response.status_code != 200 or "json" in kind or "text/plain" in kind:
                await self._json(httpx.Response(response.status_code, content=data))
                raise WeChatApiError(None, f"HTTP {response.status_code}, no media")
            return data, kind

        return await self._with_token(call)
