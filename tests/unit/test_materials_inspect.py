"""Upload inspection (assistant/services/materials/inspect.py): the type comes from the content,
every bound holds, hostile files are refused with a code and a Chinese message."""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib

import pytest
from PIL import Image
from pypdf import PdfWriter
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject, NumberObject, StreamObject, TextStringObject

from assistant.services.materials.inspect import (
    EMPTY,
    MIME_JPEG,
    MIME_PDF,
    MIME_PNG,
    MIME_WEBP,
    NOT_ALLOWED_TYPE,
    PDF_ACTIVE_CONTENT,
    PDF_ENCRYPTED,
    TOO_LARGE,
    TOO_MANY_PAGES,
    TOO_MANY_PIXELS,
    UNREADABLE,
    UploadLimits,
    UploadRefused,
    _has_active_content,
    inspect_upload,
)

CJK = re.compile(r"[\u4e00-\u9fff]")


def image_bytes(fmt: str, size=(640, 480), **save) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 220, 240)).save(buffer, fmt, **save)
    return buffer.getvalue()


def pdf_bytes(pages: int = 1, build=None) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    if build:
        build(writer)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose header declares ``width`` x ``height`` (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    data = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def refused(data: bytes, limits: UploadLimits = UploadLimits()) -> UploadRefused:
    with pytest.raises(UploadRefused) as info:
        inspect_upload(data, limits)
    error = info.value
    assert CJK.search(error.message), error.message  # the citizen reads Chinese
    assert "您" in error.message or "只能" in error.message
    return error


# ----------------------------------------------------------------------------- accepted
@pytest.mark.parametrize(
    "fmt, mime", [("JPEG", MIME_JPEG), ("PNG", MIME_PNG), ("WEBP", MIME_WEBP)]
)
def test_photos_are_accepted_with_their_size(fmt, mime):
    data = image_bytes(fmt, (800, 600))
    result = inspect_upload(data)
    assert (result.kind, result.mime, result.width, result.height, result.pages) == ("image", mime, 800, 600, None)
    assert result.size == len(data)


def test_a_pdf_is_accepted_with_its_page_count():
    result = inspect_upload(pdf_bytes(pages=3))
    assert (result.kind, result.mime, result.pages, result.width) == ("pdf", MIME_PDF, 3, None)


def test_a_photo_saved_as_pdf_is_accepted():
    buffer = io.BytesIO()
    Image.new("RGB", (600, 800), "white").save(buffer, "PDF")
    assert inspect_upload(buffer.getvalue()).pages == 1


# ---------------------------------------------------------------------- type by content
def test_an_empty_file_is_refused():
    assert refused(b"").code == EMPTY


@pytest.mark.parametrize(
    "data",
    [
        "这不是照片，是一段文字。".encode(),  # a text file named photo.jpg
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200,  # a Windows program
        b"\x7fELF\x02\x01\x01" + b"\x00" * 200,  # a Linux program
        b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        b"<!DOCTYPE html><html><body>hi</body></html>",
    ],
    ids=["text", "exe", "elf", "svg", "html"],
)
def test_files_that_are_not_photos_or_pdfs_are_refused_whatever_their_name(data):
    error = refused(data)
    assert error.code == NOT_ALLOWED_TYPE
    assert "JPG" in error.message and "PDF" in error.message


def test_a_zip_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.jpg", image_bytes("JPEG"))
    assert refused(buffer.getvalue()).code == NOT_ALLOWED_TYPE


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_other_image_formats_are_refused(fmt):
    assert refused(image_bytes(fmt)).code == NOT_ALLOWED_TYPE


def test_jpeg_magic_followed_by_garbage_is_unreadable():
    assert refused(b"\xff\xd8\xff\xe0" + b"garbage" * 100).code == UNREADABLE


def test_a_program_behind_a_jpeg_header_is_unreadable():
    assert refused(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"MZ\x90\x00" + b"\x00" * 500).code == UNREADABLE


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_photos_are_unreadable(fmt):
    # noise makes the compressed data long enough to cut in the middle
    noisy = Image.effect_noise((1200, 900), 60).convert("RGB")
    buffer = io.BytesIO()
    noisy.save(buffer, fmt)
    data = buffer.getvalue()
    assert refused(data[: len(data) // 2]).code == UNREADABLE


def test_a_png_with_a_broken_checksum_is_unreadable():
    data = bytearray(image_bytes("PNG"))
    data[30] ^= 0xFF  # inside the IHDR chunk: its CRC no longer matches
    assert refused(bytes(data)).code == UNREADABLE


# ----------------------------------------------------------------------------- bounds
def test_a_file_over_the_byte_limit_is_refused_before_parsing():
    data = image_bytes("PNG", (400, 400))
    error = refused(data, UploadLimits(max_bytes=len(data) - 1))
    assert error.code == TOO_LARGE
    assert refused(b"\xff\xd8\xff" + b"\x00" * 2048, UploadLimits(max_bytes=1024)).code == TOO_LARGE


def test_a_decompression_bomb_is_refused_from_its_header():
    bomb = png_declaring(100_000, 100_000)  # 10 gigapixels declared in a few hundred bytes
    assert len(bomb) < 1000
    assert refused(bomb).code == TOO_MANY_PIXELS


def test_an_image_over_the_pixel_limit_is_refused_before_decoding():
    # 48 megapixels: under Pillow's own guard (89 M), over ours (40 M)
    assert refused(png_declaring(8000, 6000)).code == TOO_MANY_PIXELS
    assert refused(png_declaring(4000, 3000), UploadLimits(max_pixels=10_000_000)).code == TOO_MANY_PIXELS


def test_an_extremely_long_image_is_refused():
    assert refused(png_declaring(13_000, 10)).code == TOO_MANY_PIXELS


def test_too_many_pages_are_refused():
    error = refused(pdf_bytes(pages=11))
    assert error.code == TOO_MANY_PAGES
    assert "10" in error.message
    assert inspect_upload(pdf_bytes(pages=10)).pages == 10


# --------------------------------------------------------------------------------- PDFs
def _js_action():
    return DictionaryObject({NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("app.alert(1)")})


def _javascript(writer):  # document-level script (the /Names /JavaScript tree)
    tree = DictionaryObject({NameObject("/Names"): ArrayObject([TextStringObject("hello"), writer._add_object(_js_action())])})
    writer._root_object[NameObject("/Names")] = DictionaryObject({NameObject("/JavaScript"): writer._add_object(tree)})


def _annotation_js(writer):  # a link on the page that runs a script
    link = DictionaryObject({
        NameObject("/Type"): NameObject("/Annot"), NameObject("/Subtype"): NameObject("/Link"),
        NameObject("/Rect"): ArrayObject([NumberObject(0), NumberObject(0), NumberObject(100), NumberObject(100)]),
        NameObject("/A"): _js_action(),
    })
    writer.pages[0][NameObject("/Annots")] = ArrayObject([writer._add_object(link)])


def _open_action_js(writer):
    writer._root_object[NameObject("/OpenAction")] = writer._add_object(_js_action())


def _launch(writer):
    action = DictionaryObject({NameObject("/S"): NameObject("/Launch"), NameObject("/F"): TextStringObject("cmd.exe")})
    writer._root_object[NameObject("/OpenAction")] = writer._add_object(action)


def _attachment(writer):
    writer.add_attachment("readme.txt", b"an embedded file")


@pytest.mark.parametrize(
    "build", [_javascript, _open_action_js, _annotation_js, _launch, _attachment],
    ids=["document-js", "open-action-js", "annotation-js", "launch", "attachment"],
)
def test_pdfs_with_active_content_are_refused(build):
    error = refused(pdf_bytes(build=build))
    assert error.code == PDF_ACTIVE_CONTENT
    assert "安全" in error.message


def test_active_content_with_an_escaped_name_is_refused():
    data = pdf_bytes(build=_open_action_js).replace(b"/JavaScript", b"/J#61vaScript").replace(b"/JS ", b"/J#53 ")
    assert b"/JavaScript" not in data
    assert refused(data).code == PDF_ACTIVE_CONTENT


@pytest.mark.parametrize("build", [_javascript, _annotation_js, _launch, _attachment])
def test_the_structural_walk_finds_actions_the_raw_scan_might_miss(build):
    # Inside a compressed object stream the names are invisible to a byte scan: the walk over the
    # parsed objects must find them on its own.
    reader = PdfReader(io.BytesIO(pdf_bytes(build=build)))
    assert _has_active_content(reader.trailer, IndirectObject)
    assert not _has_active_content(PdfReader(io.BytesIO(pdf_bytes(pages=2))).trailer, IndirectObject)


def test_script_like_bytes_inside_stream_data_are_not_active_content():
    # Compressed image or page data holds "/JS" by chance about once in 16 MB: only names in the
    # object structure count.
    def content(writer):
        stream = StreamObject()
        stream.set_data(b"q 1 0 0 1 0 0 cm /JS /JavaScript /Launch Q")
        writer.pages[0][NameObject("/Contents")] = writer._add_object(stream)

    assert inspect_upload(pdf_bytes(build=content)).pages == 1


def test_an_encrypted_pdf_is_refused():
    def encrypt(writer):
        writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-128")

    assert refused(pdf_bytes(build=encrypt)).code == PDF_ENCRYPTED


@pytest.mark.parametrize(
    "mangle",
    [lambda d: d[: len(d) // 2], lambda d: d[:200] + b"\x00" * 50 + d[250:-30] + b"%%EOF\n", lambda d: b"%PDF-1.7\n%%EOF\n"],
    ids=["truncated", "corrupted", "header-only"],
)
def test_broken_pdfs_are_unreadable(mangle):
    assert refused(mangle(pdf_bytes(pages=2))).code == UNREADABLE
