"""Web-chat and kiosk conversations: a random conversation id and a token that proves it.

The token is an HMAC of the id with the secret key, so any gateway replica can
check it without shared state. Conversation ids starting with ``web-`` or
``kiosk-`` (the ones this module hands out) can only be used with their token: a
citizen sees and continues only their own conversation. WeChat conversations
(``wx-<OpenID>``) are reserved the same way: only the WeChat channel, which checks
WeChat's signature, speaks for them; the chat API would need a token nobody has.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Optional

WEB_PREFIX = "web-"
KIOSK_PREFIX = "kiosk-"
WECHAT_PREFIX = "wx-"
TOKEN_PREFIXES = (WEB_PREFIX, KIOSK_PREFIX, WECHAT_PREFIX)


def new_sender_id(prefix: str = WEB_PREFIX) -> str:
    if prefix not in (WEB_PREFIX, KIOSK_PREFIX):
        raise ValueError(f"not a conversation prefix: {prefix!r}")
    return prefix + secrets.token_urlsafe(18)


def sign(secret: bytes, sender_id: str) -> str:
    return hmac.new(secret, f"chat:{sender_id}".encode(), hashlib.sha256).hexdigest()


def verify(secret: bytes, sender_id: str, token: Optional[str]) -> bool:
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError).
    return bool(token) and hmac.compare_digest(sign(secret, sender_id).encode(), str(token).encode("utf-8", "replace"))


def needs_token(sender_id: str) -> bool:
    return sender_id.startswith(TOKEN_PREFIXES)
