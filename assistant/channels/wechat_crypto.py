"""WeChat official-account message signatures and safe-mode encryption.

* ``signature``: SHA-1 of the sorted, concatenated token, timestamp and nonce
  (plus the ``Encrypt`` text for ``msg_signature``), as WeChat signs every call.
* Safe mode (安全模式) and compatible mode (兼容模式): the message XML is encrypted
  with AES-256-CBC. The key is the 43-character EncodingAESKey plus "=" decoded
  from base64 (32 bytes); the IV is the key's first 16 bytes; the plaintext is
  16 random bytes, the message length (4 bytes, big-endian), the message and the
  app id, padded with PKCS#7 to a multiple of **32** bytes (WeChat's block size,
  not AES's 16). The cipher comes from the ``cryptography`` package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from typing import Optional

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

PAD_BLOCK = 32
RANDOM_BYTES = 16


class WeChatCryptoError(ValueError):
    """A message that does not decrypt or is not for this app."""


def signature(token: str, timestamp: str, nonce: str, encrypted: str = "") -> str:
    """WeChat's signature: SHA-1 hex of the sorted parts joined (``encrypted`` only for ``msg_signature``)."""
    parts = [token, timestamp, nonce] + ([encrypted] if encrypted else [])
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def signature_ok(expected: str, given: Optional[str]) -> bool:
    # Compared as bytes: compare_digest refuses non-ASCII str (a forged signature → 403, not 500).
    return bool(given) and hmac.compare_digest(expected.encode("utf-8"), str(given).lower().encode("utf-8"))


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey."""
    if len(encoding_aes_key) != 43:
        raise WeChatCryptoError("EncodingAESKey must have 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise WeChatCryptoError("EncodingAESKey is not base64") from exc
    if len(key) != 32:
        raise WeChatCryptoError("EncodingAESKey does not decode to 32 bytes")
    return key


class WeChatCrypto:
    """Encrypts and decrypts message XML for one official account."""

    def __init__(self, encoding_aes_key: str, app_id: str) -> None:
        self.key = aes_key(encoding_aes_key)
        self.app_id = app_id.encode("utf-8")

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, message: str, random_bytes: Optional[bytes] = None) -> str:
        """The base64 ``Encrypt`` text of a message."""
        body = message.encode("utf-8")
        prefix = random_bytes if random_bytes is not None else os.urandom(RANDOM_BYTES)
        if len(prefix) != RANDOM_BYTES:
            raise ValueError("random_bytes must be 16 bytes")
        plain = prefix + struct.pack(">I", len(body)) + body + self.app_id
        pad = PAD_BLOCK - len(plain) % PAD_BLOCK
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    def decrypt(self, encrypted: str) -> str:
        """The message of an ``Encrypt`` text; WeChatCryptoError if it is damaged or for another app."""
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise WeChatCryptoError("not base64") from exc
        if not data or len(data) % 16:
            raise WeChatCryptoError("not a whole number of AES blocks")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= PAD_BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise WeChatCryptoError("bad padding")
        content = plain[RANDOM_BYTES:-pad]
        if len(content) < 4:
            raise WeChatCryptoError("too short")
        (length,) = struct.unpack(">I", content[:4])
        if length > len(content) - 4:
            raise WeChatCryptoError("bad length")
        message, app_id = content[4 : 4 + length], content[4 + length :]
        if not hmac.compare_digest(app_id, self.app_id):
            raise WeChatCryptoError("message for another app id")
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WeChatCryptoError("not UTF-8") from exc
