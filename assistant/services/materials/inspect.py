"""Inspect an uploaded file before anything else touches it: what it really is, and whether it is
within bounds.

The type comes from the content (magic bytes, then the decoder), never from the file name or the
declared content type. Accepted: JPEG, PNG and WebP photos, and PDF files. Every bound is checked as
early as possible:

- bytes: before anything is parsed;
- pixels and side length: from the image header, *before* the pixels are decoded, so a small file
  declaring a huge canvas (a decompression bomb) is refused without allocating it. Pillow's own
  guard (``Image.MAX_IMAGE_PIXELS``, ``DecompressionBombError``/``Warning``) is handled too;
- the image is then decoded fully (JPEG at 1/8 scale, which still reads every byte), so truncated or
  corrupt files are refused here rather than later;
- PDF: encrypted files, files with active content (JavaScript, launch actions, embedded files, rich
  media, XFA forms) and files with more pages than allowed are refused.

Every refusal is an :class:`UploadRefused` with a machine code and a short message in plain
simplified Chinese for the citizen. This module is synchronous and CPU-bound: async callers run
:func:`inspect_upload` with ``asyncio.to_thread``.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from dataclasses import dataclass
from typing import Any, Optional, Set

from PIL import Image, ImageFile

logger = logging.getLogger(__name__)

KIND_IMAGE = "image"
KIND_PDF = "pdf"

MIME_JPEG = "image/jpeg"
MIME_PNG = "image/png"
MIME_WEBP = "image/webp"
MIME_PDF = "application/pdf"
ALLOWED_MIMES = (MIME_JPEG, MIME_PNG, MIME_WEBP, MIME_PDF)

# Refusal codes (machine side) ------------------------------------------------------------------
EMPTY = "empty"
NOT_ALLOWED_TYPE = "not_allowed_type"
TOO_LARGE = "too_large"
TOO_MANY_PIXELS = "too_many_pixels"
TOO_MANY_PAGES = "too_many_pages"
PDF_ACTIVE_CONTENT = "pdf_active_content"
PDF_ENCRYPTED = "pdf_encrypted"
UNREADABLE = "unreadable"

# ... and what the citizen reads (short sentences, 您).
MESSAGES = {
    EMPTY: "文件是空的。请您重新选择照片或 PDF 文件。",
    NOT_ALLOWED_TYPE: "只能上传照片（JPG、PNG）或 PDF 文件。请您换一个文件。",
    TOO_LARGE: "文件太大了，最大 {max_mb} MB。请您压缩后再上传，或者直接拍一张照片。",
    TOO_MANY_PIXELS: "照片尺寸太大了。请您缩小后再上传，或者直接用手机拍一张。",
    TOO_MANY_PAGES: "PDF 文件页数太多，最多 {max_pages} 页。请您只上传需要的那几页。",
    PDF_ACTIVE_CONTENT: "这个 PDF 文件里有脚本或附件，为了安全不能接收。请您上传照片，或者重新导出一个普通的 PDF。",
    PDF_ENCRYPTED: "这个 PDF 文件设置了密码，我们打不开。请您去掉密码后再上传，或者上传照片。",
    UNREADABLE: "文件已损坏或不完整，我们打不开。请您重新拍照或重新导出后再上传。",
}

# Magic numbers.
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PDF_MAGIC = b"%PDF-"

# PDF names that mean "this file can act" (scripts, launching programs, carrying other files).
_ACTIVE_KEYS = frozenset(
    {"/JavaScript", "/JS", "/Launch", "/EmbeddedFile", "/EmbeddedFiles", "/RichMedia", "/XFA"}
)
_ACTIVE_ACTIONS = frozenset(
    {"/JavaScript", "/Launch", "/ImportData", "/RichMediaExecute", "/Rendition", "/SubmitForm", "/GoToR", "/GoToE"}
)
# The same names in the raw bytes outside streams (a belt for objects the structural walk cannot
# reach, e.g. behind a damaged cross-reference table). Stream data is left out: compressed bytes
# hold "/JS" by chance about once in 16 MB. ``#xx`` escapes in names are decoded before matching.
_RAW_ACTIVE_RE = re.compile(rb"/(?:JavaScript|JS|Launch|EmbeddedFiles?|RichMedia|XFA)(?![A-Za-z0-9])")
_STREAM_RE = re.compile(rb"stream\r?\n.*?endstream", re.DOTALL)
_NAME_ESCAPE_RE = re.compile(rb"#([0-9A-Fa-f]{2})")
# Bounds of the PDF walk: a file with more objects than this is not a scanned document.
_MAX_PDF_OBJECTS = 50_000
_MAX_PDF_DEPTH = 200


class UploadRefused(Exception):
    """An upload that is not accepted: ``code`` for machines, ``message`` (Chinese) for people."""

    def __init__(self, code: str, message: Optional[str] = None, **params: Any) -> None:
        self.code = code
        self.message = message or MESSAGES.get(code, MESSAGES[UNREADABLE]).format(**params)
        super().__init__(f"{code}: {self.message}")


@dataclass(frozen=True)
class Inspected:
    kind: str  # KIND_IMAGE | KIND_PDF
    mime: str  # one of ALLOWED_MIMES
    size: int  # bytes
    width: Optional[int]  # pixels (images only)
    height: Optional[int]
    pages: Optional[int]  # PDFs only


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_pages: int = 10
    max_side: int = 12000


def sniff_mime(data: bytes) -> Optional[str]:
    """The MIME type told by the first bytes, or None when it is not one we accept."""
    head = data[:16]
    if head.startswith(_JPEG_MAGIC):
        return MIME_JPEG
    if head.startswith(_PNG_MAGIC):
        return MIME_PNG
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return MIME_WEBP
    if head.startswith(_PDF_MAGIC):
        return MIME_PDF
    return None


def inspect_upload(data: bytes, limits: UploadLimits = UploadLimits()) -> Inspected:
    """Check ``data`` and tell what it is; raise :class:`UploadRefused` when it is not accepted."""
    size = len(data or b"")
    if size == 0:
        raise UploadRefused(EMPTY)
    if size > limits.max_bytes:
        raise UploadRefused(TOO_LARGE, max_mb=max(1, limits.max_bytes // (1024 * 1024)))
    mime = sniff_mime(data)
    if mime is None:
        logger.info("materials.inspect.refused code=%s size=%d head=%s", NOT_ALLOWED_TYPE, size, data[:4].hex())
        raise UploadRefused(NOT_ALLOWED_TYPE)
    try:
        if mime == MIME_PDF:
            result = _inspect_pdf(data, limits)
        else:
            result = _inspect_image(data, mime, limits)
    except UploadRefused as refused:
        logger.info("materials.inspect.refused code=%s mime=%s size=%d", refused.code, mime, size)
        raise
    logger.info(
        "materials.inspect.accepted mime=%s size=%d width=%s height=%s pages=%s",
        result.mime, result.size, result.width, result.height, result.pages,
    )
    return result


# ----------------------------------------------------------------------------------- images
_PIL_FORMATS = {MIME_JPEG: "JPEG", MIME_PNG: "PNG", MIME_WEBP: "WEBP"}


def _open_image(data: bytes, mime: str) -> Image.Image:
    """Open (header only) with only the decoder the magic bytes named."""
    try:
        # (catch_warnings is process-wide, not per thread: if another thread resets the filter, the
        # warning is only printed, and the header check below refuses the image anyway.)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[mime]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadRefused(TOO_MANY_PIXELS) from None
    except Exception as exc:  # UnidentifiedImageError, SyntaxError, struct errors ...
        logger.info("materials.inspect.open_failed mime=%s error=%s", mime, type(exc).__name__)
        raise UploadRefused(UNREADABLE) from None


def _inspect_image(data: bytes, mime: str, limits: UploadLimits) -> Inspected:
    image = _open_image(data, mime)
    width, height = image.size
    # Bounds from the header, before a single pixel is decoded.
    if width <= 0 or height <= 0:
        raise UploadRefused(UNREADABLE)
    if width > limits.max_side or height > limits.max_side or width * height > limits.max_pixels:
        raise UploadRefused(TOO_MANY_PIXELS)
    try:
        image.verify()  # structure (PNG chunk CRCs ...), no pixel data
    except Exception as exc:
        logger.info("materials.inspect.verify_failed mime=%s error=%s", mime, type(exc).__name__)
        raise UploadRefused(UNREADABLE) from None
    # verify() leaves the image unusable: open again and decode every byte, which refuses
    # truncated files (Pillow raises unless ImageFile.LOAD_TRUNCATED_IMAGES is set).
    image = _open_image(data, mime)
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone relaxed Pillow globally: do not rely on it
        logger.warning("materials.inspect.truncated_images_allowed: Pillow accepts truncated images globally")
    try:
        if mime == MIME_JPEG:
            image.draft("RGB", (max(1, width // 8), max(1, height // 8)))  # DCT scaling: fast, still reads all
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadRefused(TOO_MANY_PIXELS) from None
    except Exception as exc:  # OSError("image file is truncated"), zlib errors ...
        logger.info("materials.inspect.decode_failed mime=%s error=%s", mime, type(exc).__name__)
        raise UploadRefused(UNREADABLE) from None
    finally:
        image.close()
    return Inspected(kind=KIND_IMAGE, mime=mime, size=len(data), width=width, height=height, pages=None)


# -------------------------------------------------------------------------------------- PDFs
def _inspect_pdf(data: bytes, limits: UploadLimits) -> Inspected:
    from pypdf import PdfReader  # imported on first PDF: keeps the module light for images
    from pypdf.generic import IndirectObject

    if b"%%EOF" not in data[-2048:]:
        raise UploadRefused(UNREADABLE)  # truncated: a complete PDF ends with %%EOF
    if _raw_active_content(data):
        raise UploadRefused(PDF_ACTIVE_CONTENT)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise UploadRefused(PDF_ENCRYPTED)
        pages = len(reader.pages)
        if pages > limits.max_pages:
            raise UploadRefused(TOO_MANY_PAGES, max_pages=limits.max_pages)
        if pages == 0:
            raise UploadRefused(UNREADABLE)
        if _has_active_content(reader.trailer, IndirectObject):
            raise UploadRefused(PDF_ACTIVE_CONTENT)
    except UploadRefused:
        raise
    except Exception as exc:  # pypdf's PdfReadError and friends, recursion, bad numbers ...
        logger.info("materials.inspect.pdf_failed error=%s", type(exc).__name__)
        raise UploadRefused(UNREADABLE) from None
    return Inspected(kind=KIND_PDF, mime=MIME_PDF, size=len(data), width=None, height=None, pages=pages)


def _raw_active_content(data: bytes) -> bool:
    """Active-content names in the raw bytes outside stream data (escaped names decoded first)."""
    data = _STREAM_RE.sub(b"stream endstream", data)
    if _RAW_ACTIVE_RE.search(data):
        return True
    if b"#" in data:
        decoded = _NAME_ESCAPE_RE.sub(lambda m: bytes([int(m.group(1), 16)]), data)
        return bool(_RAW_ACTIVE_RE.search(decoded))
    return False


def _has_active_content(root: Any, indirect_type: type) -> bool:
    """Walk every object reachable from the trailer (iteratively, bounded) looking for actions.

    Catches what the raw scan cannot see: names inside compressed object streams.
    """
    seen: Set[tuple] = set()
    stack = [(root, 0)]
    visited = 0
    while stack:
        obj, depth = stack.pop()
        if isinstance(obj, indirect_type):
            key = (obj.idnum, obj.generation)
            if key in seen:
                continue
            seen.add(key)
            obj = obj.get_object()
        visited += 1
        if visited > _MAX_PDF_OBJECTS or depth > _MAX_PDF_DEPTH:
            raise ValueError("PDF object graph too large")
        if isinstance(obj, dict):
            for key, value in obj.items():
                if key in _ACTIVE_KEYS:
                    return True
                if key == "/S" and str(value) in _ACTIVE_ACTIONS:
                    return True
                if isinstance(value, (dict, list, indirect_type)):
                    stack.append((value, depth + 1))
        elif isinstance(obj, list):
            stack.extend((value, depth + 1) for value in obj if isinstance(value, (dict, list, indirect_type)))
    return False
