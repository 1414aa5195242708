"""A bounded check of a photo of a material, before it is stored: the type by its
content (JPEG or PNG, never by a name), its size, its pixels (the header's dimensions
are checked before anything is decoded: no decompression bombs), and that it decodes.

TODO(merge): the materials branch (issue-15-materials) brings
``assistant.services.materials.inspect.inspect_upload(data, limits) -> Inspected``
raising ``UploadRefused(code, message)``; switch ``check_photo`` to it there and keep
this module's ``PhotoRefused`` codes (they decide the HTTP status).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image

from assistant.config.settings import Settings

JPEG = "image/jpeg"
PNG = "image/png"
CONTENT_TYPES = (JPEG, PNG)
_MAGIC = ((b"\xff\xd8\xff", JPEG, "JPEG"), (b"\x89PNG\r\n\x1a\n", PNG, "PNG"))
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


def sniff(data: bytes) -> str:
    """The content type by the first bytes; ``PhotoRefused`` for anything else."""
    for magic, content_type, _ in _MAGIC:
        if data.startswith(magic):
            return content_type
    raise PhotoRefused("unsupported", UNSUPPORTED)


def check_photo(data: bytes, limits: PhotoLimits) -> Photo:
    """The photo's type, dimensions and hash; ``PhotoRefused`` (code, Chinese message)."""
    if not data:
        raise PhotoRefused("empty", EMPTY)
    if len(data) > limits.max_bytes:
        raise PhotoRefused("too_large", TOO_LARGE.format(mb=max(1, limits.max_bytes // (1024 * 1024))))
    content_type = sniff(data)
    pil_format = next(fmt for _, ctype, fmt in _MAGIC if ctype == content_type)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[pil_format])
            width, height = image.size
            if width * height > limits.max_pixels or max(width, height) > MAX_SIDE:
                raise PhotoRefused("too_many_pixels", TOO_MANY_PIXELS)
            if min(width, height) < MIN_SIDE:
                raise PhotoRefused("too_small", TOO_SMALL)
            if content_type == JPEG:
                # Decoded at 1/8 scale: the whole stream is read, in a fraction of the time.
                image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                image.load()
            else:
                image.verify()  # every chunk and its checksum, without inflating the pixels
        except PhotoRefused:
            raise
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise PhotoRefused("too_many_pixels", TOO_MANY_PIXELS) from None
        except (OSError, ValueError, SyntaxError, EOFError, Image.UnidentifiedImageError):
            raise PhotoRefused("broken", BROKEN) from None
    return Photo(content_type, width, height, len(data), hashlib.sha256(data).hexdigest())
