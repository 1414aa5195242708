"""Personal data sealed at rest: AES-GCM under a key derived from the secret key and a
purpose (a sealed value of one purpose cannot be opened as another's), and keyed hashes
to find a sealed value without opening it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


def _key(secret: bytes, purpose: str) -> bytes:
    return hmac.new(secret, b"banshi-seal:" + purpose.encode(), hashlib.sha256).digest()


def seal(secret: bytes, purpose: str, text: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(_key(secret, purpose)).encrypt(nonce, text.encode("utf-8"), purpose.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def unseal(secret: bytes, purpose: str, token: str) -> str:
    """The text; ``cryptography.exceptions.InvalidTag`` if the key or purpose differ."""
    raw = base64.urlsafe_b64decode(token.encode("ascii"))
    return AESGCM(_key(secret, purpose)).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], purpose.encode()).decode("utf-8")


def keyed_hash(secret: bytes, purpose: str, text: str) -> str:
    return hmac.new(_key(secret, purpose), text.encode("utf-8"), hashlib.sha256).hexdigest()


# ------------------------------------------------------------------- bytes
# Sealed files (document photos): a format tag, the nonce, the ciphertext with its tag.
FILE_MAGIC = b"BSK1"


def seal_bytes(secret: bytes, purpose: str, data: bytes, context: str = "") -> bytes:
    """``data`` sealed under the purpose's key; ``context`` (e.g. the row's id) is
    authenticated too, so a sealed file cannot stand in for another row's."""
    nonce = os.urandom(NONCE_BYTES)
    aad = f"{purpose}\x00{context}".encode()
    return FILE_MAGIC + nonce + AESGCM(_key(secret, purpose)).encrypt(nonce, data, aad)


def unseal_bytes(secret: bytes, purpose: str, sealed: bytes, context: str = "") -> bytes:
    """The bytes; ``ValueError`` for a foreign format, ``InvalidTag`` for a wrong key,
    purpose or context (or altered bytes)."""
    if not sealed.startswith(FILE_MAGIC) or len(sealed) < len(FILE_MAGIC) + NONCE_BYTES + 16:
        raise ValueError("not a sealed file")
    body = sealed[len(FILE_MAGIC):]
    aad = f"{purpose}\x00{context}".encode()
    return AESGCM(_key(secret, purpose)).decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], aad)
