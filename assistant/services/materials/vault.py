"""Material uploads at rest: each file encrypted with AES-GCM under a key derived from
the secret key for this purpose (as ``assistant/security/sealed.py`` does for texts),
the upload id as associated data (one upload's file cannot pass for another's), under
``data_dir/uploads/<id>.bin`` (0600, written atomically)."""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from assistant.config.settings import Settings

PURPOSE = "material-upload"
MAGIC = b"BSU1"
NONCE_BYTES = 12
UPLOAD_DIR = "uploads"


def _key(secret: bytes) -> bytes:
    return hmac.new(secret, b"banshi-seal:" + PURPOSE.encode(), hashlib.sha256).digest()


def encrypt(secret: bytes, upload_id: str, data: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return MAGIC + nonce + AESGCM(_key(secret)).encrypt(nonce, data, upload_id.encode("ascii"))


def decrypt(secret: bytes, upload_id: str, blob: bytes) -> bytes:
    """The file's bytes; ``InvalidTag`` for another key or id, ValueError for no upload file."""
    if not blob.startswith(MAGIC):
        raise ValueError("not an upload file")
    nonce = blob[len(MAGIC):len(MAGIC) + NONCE_BYTES]
    return AESGCM(_key(secret)).decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES:], upload_id.encode("ascii"))


def upload_dir(settings: Settings) -> Path:
    return settings.data_dir / UPLOAD_DIR


def file_path(settings: Settings, upload_id: str) -> Path:
    return upload_dir(settings) / f"{uuid.UUID(upload_id)}.bin"  # a uuid only: never a path


def write_file(settings: Settings, upload_id: str, data: bytes) -> Path:
    folder = upload_dir(settings)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = file_path(settings, upload_id)
    temp = path.with_suffix(".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(encrypt(settings.secret(), upload_id, data))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    return path


def read_file(settings: Settings, upload_id: str) -> bytes:
    return decrypt(settings.secret(), upload_id, file_path(settings, upload_id).read_bytes())


def remove_file(settings: Settings, upload_id: str) -> None:
    try:
        file_path(settings, upload_id).unlink()
    except FileNotFoundError:
        pass


def stale_files(settings: Settings, older_than_s: float):
    """(upload id, path) of the files in the upload folder not changed for ``older_than_s``
    (leftovers of a crash between writing a file and its row are among them)."""
    import time

    folder = upload_dir(settings)
    if not folder.exists():
        return []
    found = []
    for path in folder.iterdir():
        try:
            if time.time() - path.stat().st_mtime >= older_than_s:
                found.append((str(uuid.UUID(path.name.split(".")[0])), path))
        except (ValueError, OSError):
            continue  # not ours, or gone meanwhile
    return found
