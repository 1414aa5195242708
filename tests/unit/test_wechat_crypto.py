"""WeChat signatures and safe-mode encryption, checked against an independent
implementation of WeChat's format (written here with ``hashlib`` and the
``cryptography`` primitives, not with the module under test)."""

from __future__ import annotations

import base64
import hashlib
import os
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from assistant.channels.wechat_crypto import WeChatCrypto, WeChatCryptoError, aes_key, signature, signature_ok

KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as WeChat shows it
APP_ID = "wx0123456789abcdef"


def raw_key(encoding_aes_key: str = KEY) -> bytes:
    return base64.b64decode(encoding_aes_key + "=")


def wechat_decrypt(encrypted: str, key: bytes) -> tuple:
    """WeChat's own decryption: AES-256-CBC, IV = key[:16], PKCS#7 to 32 bytes,
    then 16 random bytes, a 4-byte big-endian length, the message and the app id."""
    data = base64.b64decode(encrypted)
    assert len(data) % 32 == 0, "WeChat pads to a multiple of 32 bytes"
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    pad = plain[-1]
    assert 1 <= pad <= 32 and plain[-pad:] == bytes([pad]) * pad
    plain = plain[:-pad]
    random_part, (length,), rest = plain[:16], struct.unpack(">I", plain[16:20]), plain[20:]
    return random_part, rest[:length].decode("utf-8"), rest[length:].decode("utf-8")


def wechat_encrypt(plain: bytes, key: bytes) -> str:
    """Encrypts already-assembled (and padded) plaintext as WeChat would."""
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")


def assemble(message: bytes, app_id: bytes = APP_ID.encode(), random_part: bytes = b"r" * 16) -> bytes:
    plain = random_part + struct.pack(">I", len(message)) + message + app_id
    pad = 32 - len(plain) % 32
    return plain + bytes([pad]) * pad


# ------------------------------------------------------------------ signatures
def test_signature_is_sha1_of_the_sorted_parts():
    token, stamp, nonce = "banshiTestToken", "1718000000", "77819"
    expected = hashlib.sha1("".join(sorted([token, stamp, nonce])).encode()).hexdigest()
    assert signature(token, stamp, nonce) == expected
    # the order of the arguments does not matter, only their sorted order
    assert signature(nonce, token, stamp) == expected


def test_msg_signature_includes_the_encrypted_text():
    token, stamp, nonce, encrypted = "tok", "1718000000", "abc", "ZW5jcnlwdGVk+/=="
    expected = hashlib.sha1("".join(sorted([token, stamp, nonce, encrypted])).encode()).hexdigest()
    assert signature(token, stamp, nonce, encrypted) == expected
    assert signature(token, stamp, nonce, encrypted) != signature(token, stamp, nonce)


def test_signature_ok():
    good = signature("tok", "1", "2")
    assert signature_ok(good, good)
    assert signature_ok(good, good.upper())
    assert not signature_ok(good, None)
    assert not signature_ok(good, "")
    assert not signature_ok(good, "0" * 40)
    assert not signature_ok(good, good[:-1])
    # a forged non-ASCII signature is a mismatch, not an exception (→ 403, not 500)
    assert not signature_ok(good, "签名" + good[2:])
    assert not signature_ok(good, "é" * 40)


# ------------------------------------------------------------------ keys
def test_aes_key_decodes_the_43_characters():
    assert aes_key(KEY) == raw_key()
    assert len(aes_key(KEY)) == 32


@pytest.mark.parametrize("bad", [
    "",
    KEY[:-1],  # 42
    KEY + "A",  # 44
    KEY + "=",  # 44 with its padding
    KEY[:-1] + "-",  # not base64 (URL-safe alphabet)
    KEY[:-1] + "!",
    KEY[:20] + "=" + KEY[21:],  # padding in the middle
])
def test_aes_key_rejects_bad_keys(bad):
    with pytest.raises(WeChatCryptoError):
        aes_key(bad)
    with pytest.raises(WeChatCryptoError):
        WeChatCrypto(bad, APP_ID)


# ------------------------------------------------------------------ round trips
MESSAGES = [
    "",
    "a",
    "<xml><Content><![CDATA[你好，我想办社保卡]]></Content></xml>",
    "办事指南：居民身份证、户口簿、近期一寸照片。" * 40,
    "emoji 🙂 and ünïcödé",
]


@pytest.mark.parametrize("message", MESSAGES)
def test_round_trip(message):
    crypto = WeChatCrypto(KEY, APP_ID)
    encrypted = crypto.encrypt(message)
    assert crypto.decrypt(encrypted) == message
    _, text, app_id = wechat_decrypt(encrypted, raw_key())
    assert (text, app_id) == (message, APP_ID)


@pytest.mark.parametrize("total", [64, 96, 128, 320])
def test_exact_multiple_of_32_gets_a_whole_block_of_padding(total):
    # 16 random + 4 length + message + app id == total bytes: PKCS#7 adds a full 32-byte block
    message = "x" * (total - 16 - 4 - len(APP_ID))
    crypto = WeChatCrypto(KEY, APP_ID)
    encrypted = crypto.encrypt(message)
    data = base64.b64decode(encrypted)
    assert len(data) == total + 32
    decryptor = Cipher(algorithms.AES(raw_key()), modes.CBC(raw_key()[:16])).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    assert plain[-32:] == bytes([32]) * 32
    assert crypto.decrypt(encrypted) == message
    assert wechat_decrypt(encrypted, raw_key())[1:] == (message, APP_ID)


def test_chinese_message_of_exactly_32_byte_blocks():
    # 3 UTF-8 bytes per character: choose n with 16 + 4 + 3n + len(app id) ≡ 0 (mod 32)
    n = next(n for n in range(1, 100) if (16 + 4 + 3 * n + len(APP_ID)) % 32 == 0)
    message = "办" * n
    crypto = WeChatCrypto(KEY, APP_ID)
    encrypted = crypto.encrypt(message)
    assert len(base64.b64decode(encrypted)) == 16 + 4 + 3 * n + len(APP_ID) + 32
    assert crypto.decrypt(encrypted) == message


def test_format_is_wechats():
    random_part = os.urandom(16)
    message = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Content><![CDATA[办理进度]]></Content></xml>"
    encrypted = WeChatCrypto(KEY, APP_ID).encrypt(message, random_bytes=random_part)
    assert wechat_decrypt(encrypted, raw_key()) == (random_part, message, APP_ID)
    # and byte for byte what WeChat would send for the same random prefix
    assert encrypted == wechat_encrypt(assemble(message.encode(), random_part=random_part), raw_key())


def test_decrypts_what_wechat_encrypts():
    message = "<xml><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[转人工]]></Content></xml>"
    encrypted = wechat_encrypt(assemble(message.encode(), random_part=os.urandom(16)), raw_key())
    assert WeChatCrypto(KEY, APP_ID).decrypt(encrypted) == message


def test_random_prefix_differs_between_messages():
    crypto = WeChatCrypto(KEY, APP_ID)
    first, second = crypto.encrypt("same"), crypto.encrypt("same")
    assert first != second
    assert wechat_decrypt(first, raw_key())[0] != wechat_decrypt(second, raw_key())[0]
    with pytest.raises(ValueError):
        crypto.encrypt("x", random_bytes=b"short")


# ------------------------------------------------------------------ refusals
def test_tampered_ciphertext_is_refused():
    crypto = WeChatCrypto(KEY, APP_ID)
    message = "<xml><Content>你好</Content></xml>"
    data = bytearray(base64.b64decode(crypto.encrypt(message, random_bytes=b"\x07" * 16)))
    refused = 0
    for position in range(len(data)):
        tampered = bytearray(data)
        tampered[position] ^= 0x01
        try:
            result = crypto.decrypt(base64.b64encode(bytes(tampered)).decode())
        except WeChatCryptoError:
            refused += 1
            continue
        # CBC has no MAC: a flipped bit in the first ciphertext block only garbles the
        # random prefix and flips the same bit of the plaintext's second block (length
        # or message); everything else breaks the length, the app id or the padding
        assert position < 16, f"byte {position} changed without an error: {result!r}"
        assert result != message
    assert refused >= len(data) - 16


def test_truncated_and_extended_ciphertext_is_refused():
    crypto = WeChatCrypto(KEY, APP_ID)
    data = base64.b64decode(crypto.encrypt("hello " * 10))
    for broken in (data[:-16], data[:-32], data[:16], data + data[-16:], data[16:], data[:-1]):
        with pytest.raises(WeChatCryptoError):
            crypto.decrypt(base64.b64encode(broken).decode())


def test_wrong_app_id_is_refused():
    encrypted = WeChatCrypto(KEY, "wxOTHERAPP0000000").encrypt("<xml/>")
    with pytest.raises(WeChatCryptoError):
        WeChatCrypto(KEY, APP_ID).decrypt(encrypted)
    # a prefix of the right app id is not the app id
    encrypted = WeChatCrypto(KEY, APP_ID[:-1]).encrypt("<xml/>")
    with pytest.raises(WeChatCryptoError):
        WeChatCrypto(KEY, APP_ID).decrypt(encrypted)


def test_wrong_key_is_refused():
    other = "Z" + KEY[1:]
    encrypted = WeChatCrypto(other, APP_ID).encrypt("<xml><Content>secret</Content></xml>")
    with pytest.raises(WeChatCryptoError):
        WeChatCrypto(KEY, APP_ID).decrypt(encrypted)


@pytest.mark.parametrize("bad", ["", "not base64!", "abc", "====", "YWJj\n", "YW Jj", "你好"])
def test_bad_base64_is_refused(bad):
    with pytest.raises(WeChatCryptoError):
        WeChatCrypto(KEY, APP_ID).decrypt(bad)


@pytest.mark.parametrize("pad_byte", [0, 33, 255])
def test_bad_padding_value_is_refused(pad_byte):
    plain = b"r" * 16 + struct.pack(">I", 3) + b"abc" + APP_ID.encode()
    plain += b"\x00" * (32 - len(plain) % 32 - 1) + bytes([pad_byte])
    with pytest.raises(WeChatCryptoError):
        WeChatCrypto(KEY, APP_ID).decrypt(wechat_encrypt(plain, raw_key()))


def test_inconsistent_padding_is_refused():
    plain = assemble(b"abc")
    pad = plain[-1]
    assert pad > 2
    broken = plain[:-2] + bytes([pad ^ 1]) + bytes([pad])  # last byte right, one before wrong
    with pytest.raises(WeChatCryptoError):
        WeChatCrypto(KEY, APP_ID).decrypt(wechat_encrypt(broken, raw_key()))


def test_length_beyond_the_data_is_refused():
    plain = b"r" * 16 + struct.pack(">I", 10_000) + b"abc" + APP_ID.encode()
    pad = 32 - len(plain) % 32
    with pytest.raises(WeChatCryptoError):
        WeChatCrypto(KEY, APP_ID).decrypt(wechat_encrypt(plain + bytes([pad]) * pad, raw_key()))


def test_invalid_utf8_message_is_refused():
    with pytest.raises(WeChatCryptoError):
        WeChatCrypto(KEY, APP_ID).decrypt(wechat_encrypt(assemble(b"\xff\xfe\xfd"), raw_key()))
