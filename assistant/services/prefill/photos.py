"""A bounded check of a photo of a material, before it is stored: the checks of any
upload (``materials.inspect.inspect_upload``: the type by its content, never by a name;
the size; the header's dimensions before anything is decoded, so no decompression bombs;
a full decode), narrowed to what a kiosk form takes (JPEG or PNG, at least
``MIN_SIDE`` pixels a side), with this module's codes (they decide the HTTP status) and
messages (they speak of a photo, not a file).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from assistant.config.settings import Settings
from assistant.services.materials import inspect

JPEG = "image/jpeg"
PNG = "image/png"
CONTENT_TYPES = (JPEG, PNG)
MIN_SIDE = 200  # pixels: smaller photos of a document cannot be read
MAX_SIDE = 20000

# PhotoRefused.code → HTTP status.
STATUS = {"empty": 422, "too_large": 413, "too_many_pixels": 413, "unsupported": 415, "broken": 422, "too_small": 422}

EMPTY = "照片是空的，请重新拍一张。"
TOO_LARGE = "照片文件太大（最多 {mb} MB），请重新拍一张。"
TOO_MANY_PIXELS = "照片像素太多，请重新拍一张。"
UNSUPPORTED = "只能上传 JPG 或 PNG 格式的照片。"
BROKEN = "照片文件不完整或已损坏，请重新拍一张。"
TOO_SMALL = "照片太小，看不清内容，请离近一点重新拍。"


class PhotoRefused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 422)


@dataclass(frozen=True)
class PhotoLimits:
    max_bytes: int
    max_pixels: int

    @classmethod
    def of(cls, settings: Settings) -> "PhotoLimits":
        return cls(settings.prefill_max_photo_bytes, settings.prefill_max_photo_pixels)


@dataclass(frozen=True)
class Photo:
    content_type: str
    width: int
    height: int
    size: int
    sha256: str


# inspect's refusal codes → this module's.
_CODES = {
    inspect.EMPTY: "empty",
    inspect.TOO_LARGE: "too_large",
    inspect.TOO_MANY_PIXELS: "too_many_pixels",
    inspect.NOT_ALLOWED_TYPE: "unsupported",
}
_MESSAGES = {"empty": EMPTY, "too_many_pixels": TOO_MANY_PIXELS, "unsupported": UNSUPPORTED, "broken": BROKEN}


def check_photo(data: bytes, limits: PhotoLimits) -> Photo:
    """The photo's type, dimensions and hash; ``PhotoRefused`` (code, Chinese message)."""
    if data and len(data) <= limits.max_bytes and inspect.sniff_mime(data) not in CONTENT_TYPES:
        raise PhotoRefused("unsupported", UNSUPPORTED)  # a WebP or a PDF is fine elsewhere, not here
    bounds = inspect.UploadLimits(max_bytes=limits.max_bytes, max_pixels=limits.max_pixels, max_pages=1,
                                  max_side=MAX_SIDE)
    try:
        found = inspect.inspect_upload(data, bounds)
    except inspect.UploadRefused as refused:
        code = _CODES.get(refused.code, "broken")
        if code == "too_large":
            raise PhotoRefused(code, TOO_LARGE.format(mb=max(1, limits.max_bytes // (1024 * 1024)))) from None
        raise PhotoRefused(code, _MESSAGES[code]) from None
    assert found.width is not None and found.height is not None
    if min(found.width, found.height) < MIN_SIDE:
        raise PhotoRefused("too_small", TOO_SMALL)
    return Photo(found.mime, found.width, found.height, found.size, hashlib.sha256(data).hexdigest())
