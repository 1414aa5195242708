"""Personal data of pre-applications at rest: the fields sealed in their row (AES-GCM,
key from the secret key and a purpose bound to the receipt number) and the photos as
sealed files under ``<data_dir>/prefill/`` (bound to their row's id). Both sides (kiosk
and central) use the same format, each with its own secret key."""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from pathlib import Path
from typing import Dict

from assistant.config.settings import Settings
from assistant.security.sealed import seal, seal_bytes, unseal, unseal_bytes

logger = logging.getLogger(__name__)

FILES_DIR = "prefill"
SUFFIX = ".sealed"
PURPOSE_FIELDS = "prefill.fields"
PURPOSE_PHOTO = "prefill.photo"
_REL_PATH_RE = re.compile(r"^prefill/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.sealed$")


def seal_fields(secret: bytes, receipt: str, fields: Dict[str, str]) -> str:
    text = json.dumps(fields, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return seal(secret, f"{PURPOSE_FIELDS}:{receipt}", text)


def open_fields(secret: bytes, receipt: str, token: str) -> Dict[str, str]:
    """The fields; ``InvalidTag`` for another key or receipt."""
    return json.loads(unseal(secret, f"{PURPOSE_FIELDS}:{receipt}", token))


def files_dir(settings: Settings) -> Path:
    return settings.data_dir / FILES_DIR


def relative_path(file_id: str) -> str:
    return f"{FILES_DIR}/{uuid.UUID(file_id)}{SUFFIX}"


def absolute_path(settings: Settings, relative: str) -> Path:
    if not _REL_PATH_RE.match(relative or ""):
        raise ValueError("not a sealed photo path")
    return settings.data_dir / relative


def write_photo(settings: Settings, file_id: str, data: bytes) -> str:
    """Seal ``data`` into its file (written to a temporary name, synced, then renamed:
    never half a file under the final name). Returns the path relative to the data dir."""
    relative = relative_path(file_id)
    path = absolute_path(settings, relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    sealed = seal_bytes(settings.secret(), PURPOSE_PHOTO, data, file_id)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(sealed)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return relative


def read_photo(settings: Settings, file_id: str, relative: str) -> bytes:
    """The photo's bytes; ``FileNotFoundError``, or ``InvalidTag``/``ValueError`` when it
    cannot be opened with this secret key or belongs to another row."""
    return unseal_bytes(settings.secret(), PURPOSE_PHOTO, absolute_path(settings, relative).read_bytes(), file_id)


def delete_photo(settings: Settings, relative: str) -> bool:
    try:
        absolute_path(settings, relative).unlink()
    except FileNotFoundError:
        return False
    return True
