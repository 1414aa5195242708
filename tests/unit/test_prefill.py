"""Pre-application forms, values, receipt numbers, photo bounds and dictation, without servers."""

from __future__ import annotations

import datetime as dt
import io
import struct
import zlib

import pytest
from cryptography.exceptions import InvalidTag
from PIL import Image

from assistant.security.audit import _holds_pii
from assistant.security.pii import is_receipt_number
from assistant.security.sealed import seal_bytes, unseal_bytes
from assistant.services.prefill import receipts
from assistant.services.prefill.photos import PhotoLimits, PhotoRefused, check_photo
from knowledge.catalog import load_catalog
from knowledge.prefill import FORMS_FILE, FormField, PrefillError, check_fields, check_value, id_number_ok, load_forms
from voice.dictation import dictation_text

LIMITS = PhotoLimits(max_bytes=2 * 1024 * 1024, max_pixels=5_000_000)
ID_NUMBER = "11010519491231002X"  # the standard's example: a valid check character


@pytest.fixture(scope="module")
def forms():
    return load_forms(load_catalog())


def image_bytes(fmt="JPEG", size=(800, 600), color=(250, 250, 245)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width × height pixels (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")


# ------------------------------------------------------------------ forms
def test_the_forms_file_fits_the_catalog(forms):
    assert {"residence_permit", "social_security_card", "subsistence_allowance"} <= set(forms)
    permit = forms["residence_permit"]
    assert permit.item_name == "居住证申领"
    assert [f.kind for f in permit.fields][:3] == ["name", "id_number", "phone"]
    assert "居民身份证" in permit.photos and "申请表" not in permit.photos
    public = permit.public()
    assert public["fields"][0] == {"id": "name", "label": "姓名", "kind": "name", "required": True, "max_length": 20}


def test_a_broken_forms_file_names_every_problem(tmp_path):
    path = tmp_path / "prefill.yml"
    path.write_text(
        "version: 1\nitems:\n"
        "  no_such_item:\n    fields: [{id: name, label: 姓名, kind: name}]\n"
        "  passport:\n    fields: [{id: a, label: A, kind: shoe}]\n",
        encoding="utf-8",
    )
    with pytest.raises(PrefillError) as caught:
        load_forms(load_catalog(), path)
    assert any("kind" in p and "must be one of" in p for p in caught.value.problems), caught.value.problems
    path.write_text(
        "version: 1\nitems:\n"
        "  no_such_item:\n    fields: [{id: name, label: 姓名, kind: name}]\n"
        "  passport:\n    fields: [{id: a, label: A, kind: text}]\n    photos: [驾驶证]\n",
        encoding="utf-8",
    )
    with pytest.raises(PrefillError) as caught:
        load_forms(load_catalog(), path)
    problems = caught.value.problems
    assert any("no_such_item: not an item" in p for p in problems)
    assert any("'驾驶证' is not a material of passport" in p for p in problems)
    assert FORMS_FILE.name == "prefill.yml"


def test_kb_validate_checks_the_forms_too():
    from tests.conftest import run_cli

    result = run_cli(["kb", "validate"])
    assert result.returncode == 0, result.stderr
    assert "catalog ok" in result.stdout


# ------------------------------------------------------------------ values
def field(kind, **extra):
    return FormField(id="f", label="字段", kind=kind, **extra)


@pytest.mark.parametrize(
    "kind, extra, raw, expected",
    [
        ("name", {}, " 张 三 ", "张三"),
        ("name", {}, "Li Ming", "Li Ming"),
        ("id_number", {}, "110105 19491231 002x", ID_NUMBER),
        ("phone", {}, "139-1234-5678", "13912345678"),
        ("phone", {}, "+86 13912345678", "13912345678"),
        ("phone", {}, "010-12345678", "01012345678"),
        ("phone", {}, "１３９１２３４５６７８", "13912345678"),
        ("date", {}, "2025年3月1日", "2025-03-01"),
        ("date", {}, "20250301", "2025-03-01"),
        ("number", {"min": 1, "max": 20}, "3", "3"),
        ("number", {"min": 0, "max": 100000}, "2,500", "2500"),
        ("choice", {"options": ["丢失", "损坏"]}, "损坏", "损坏"),
        ("address", {}, "北京市 朝阳区 建国路88号", "北京市朝阳区建国路88号"),
        ("text", {"required": False}, "   ", None),
    ],
)
def test_values_are_normalised(kind, extra, raw, expected):
    assert check_value(field(kind, **extra), raw) == expected


@pytest.mark.parametrize(
    "kind, extra, raw, message",
    [
        ("name", {}, "", "请填写字段。"),
        ("name", {}, "张", "2到20个汉字"),
        ("name", {}, "张三123", "2到20个汉字"),
        ("id_number", {}, "110105194912310021", "不正确"),  # wrong check character
        ("id_number", {}, "110105194913310029", "不正确"),  # no 13th month
        ("phone", {}, "12912345678", "11位手机号码"),
        ("date", {}, "2025-02-30", "年-月-日"),
        ("number", {"min": 1, "max": 20}, "21", "1到20之间"),
        ("number", {"min": 1, "max": 20}, "三", "请填写数字"),
        ("choice", {"options": ["丢失", "损坏"]}, "被偷", "丢失、损坏"),
        ("address", {}, "北京", "太短"),
        ("text", {"max_length": 10}, "很" * 11, "最多10个字"),
        ("text", {}, "x" * 5000, "太长"),
        ("text", {}, 12, "格式不正确"),
    ],
)
def test_values_that_do_not_fit_are_told_in_chinese(kind, extra, raw, message):
    with pytest.raises(ValueError) as caught:
        check_value(field(kind, **extra), raw)
    assert message in str(caught.value)


def test_check_fields_reports_each_field_and_unknown_ones(forms):
    clean, problems = check_fields(
        forms["id_card_reissue"],
        {"name": "王五", "id_number": "123", "reason": "丢失", "pickup": "窗口领取", "shoe_size": "42"},
    )
    assert clean == {"name": "王五", "reason": "丢失", "pickup": "窗口领取"}
    assert set(problems) == {"id_number", "phone", "shoe_size"}
    assert check_fields(forms["id_card_reissue"], ["not", "a", "dict"])[1] == {"_": "填写的内容格式不正确。"}
    assert check_fields(forms["id_card_reissue"], {f"f{n}": "x" for n in range(500)})[1] == {"_": "填写的项目太多了，最多20项。"}


def test_id_number_check_character():
    assert id_number_ok(ID_NUMBER)
    assert not id_number_ok(ID_NUMBER[:-1] + "1")
    assert not id_number_ok("11010520991231002X".replace("2099", "2999"))  # born in the future


# ----------------------------------------------------------------- receipts
def test_receipt_numbers_format_parse_and_are_found_in_text():
    receipt = receipts.format_receipt("HALL3", "20261205", 1)
    assert receipt == "KSHALL3-20261205-0001" and is_receipt_number(receipt)
    assert receipts.parse_receipt(receipt) == ("HALL3", "20261205", 1)
    for text in ("我的回执 ks hall3 2026-1205-0001", "KSHALL3202612050001", "回执号：ＫＳＨＡＬＬ３－２０２６１２０５－０００１。"):
        assert receipts.normalize_receipt(text) == receipt, text
    # A code ending in digits: the last twelve digits are the date and the sequence.
    assert receipts.normalize_receipt("KSK123202612050042") == "KSK123-20261205-0042"
    for text in ("thanks20261205 0001", "KSHALL3-20261305-0001", "KSHALL3-20261205-0000", "ZW20251102001", ""):
        assert receipts.normalize_receipt(text) is None, text
    with pytest.raises(ValueError):
        receipts.format_receipt("HALL3", "20261205", 10000)


def test_receipt_numbers_are_not_personal_data_in_audit_rows():
    # Code digits next to the date can look like a mobile number to the masking.
    receipt = "KSK139-20261205-0001"
    assert not _holds_pii("subject", receipt)
    assert _holds_pii("subject", "13912345678")


def test_local_day_is_the_kiosks_date():
    late = dt.datetime(2026, 12, 5, 17, 30)  # 01:30 on the 6th in Beijing
    assert receipts.local_day(late, "Asia/Shanghai") == "20261206"
    assert receipts.local_day(late, "UTC") == "20261205"


def test_the_default_kiosk_code_comes_from_the_kiosk_id(settings):
    assert settings.copy(update={"kiosk_id": "hall-3", "kiosk_code": None}).receipt_code == "HALL3"
    assert settings.copy(update={"kiosk_id": "hall-3-kiosk-12", "kiosk_code": None}).receipt_code == "3KIOSK12"
    assert settings.copy(update={"kiosk_id": "x", "kiosk_code": "H3"}).receipt_code == "H3"


# ------------------------------------------------------------------- photos
def test_a_jpeg_and_a_png_pass():
    for fmt, content_type in (("JPEG", "image/jpeg"), ("PNG", "image/png")):
        data = image_bytes(fmt)
        photo = check_photo(data, LIMITS)
        assert (photo.content_type, photo.width, photo.height, photo.size) == (content_type, 800, 600, len(data))


@pytest.mark.parametrize(
    "data, code",
    [
        (b"", "empty"),
        (b"%PDF-1.7\n" + b"0" * 2000, "unsupported"),
        (b"GIF89a" + b"0" * 2000, "unsupported"),
        (image_bytes("JPEG")[:1500], "broken"),
        (png_claiming(50000, 50000), "too_many_pixels"),
        (png_claiming(3000, 2000), "too_many_pixels"),
        (image_bytes("PNG", size=(120, 90)), "too_small"),
        (b"\xff\xd8\xff" + b"\x00" * (3 * 1024 * 1024), "too_large"),
    ],
    ids=["empty", "pdf", "gif", "truncated", "bomb", "over-pixels", "tiny", "oversize"],
)
def test_photos_out_of_bounds_are_refused_with_a_clear_message(data, code):
    with pytest.raises(PhotoRefused) as caught:
        check_photo(data, LIMITS)
    assert caught.value.code == code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in caught.value.message)
    assert caught.value.status in (413, 415, 422)


def test_a_png_with_a_bad_checksum_is_broken():
    data = bytearray(image_bytes("PNG"))
    data[-20] ^= 0xFF  # inside the image data: its CRC no longer matches
    with pytest.raises(PhotoRefused) as caught:
        check_photo(bytes(data), LIMITS)
    assert caught.value.code == "broken"


# ------------------------------------------------------------------- sealing
def test_sealed_bytes_open_only_with_their_key_purpose_and_context():
    secret = b"k" * 32
    sealed = seal_bytes(secret, "prefill.photo", b"photo bytes", "id-1")
    assert b"photo bytes" not in sealed
    assert unseal_bytes(secret, "prefill.photo", sealed, "id-1") == b"photo bytes"
    for args in ((b"x" * 32, "prefill.photo", "id-1"), (secret, "other", "id-1"), (secret, "prefill.photo", "id-2")):
        with pytest.raises(InvalidTag):
            unseal_bytes(args[0], args[1], sealed, args[2])
    with pytest.raises(ValueError):
        unseal_bytes(secret, "prefill.photo", b"plain", "id-1")


# ----------------------------------------------------------------- dictation
@pytest.mark.parametrize(
    "heard, kind, value",
    [
        ("一 三 九 一 二 三 四 五 六 七 八", "phone", "13912345678"),
        ("幺 三 九 零 零 零 零 幺 幺 幺 幺", "phone", "13900001111"),
        ("一 一 零 一 零 五 一 九 四 九 一 二 三 一 零 零 二 叉", "id_number", ID_NUMBER),
        ("一九八零 年 三 月 五 日", "date", "1980年3月5日"),
        ("两千 五百", "number", "2500"),
        ("张 三", "name", "张三"),
        ("北京 市 朝阳 区 建国 路 八十八 号", "address", "北京市朝阳区建国路八十八号"),
        ("", "text", ""),
    ],
)
def test_dictation_fits_the_field(heard, kind, value):
    assert dictation_text(heard, kind) == value
    if kind in ("phone", "id_number", "date", "number", "name") and value:
        spec = field(kind, **({"min": 0, "max": 10**6} if kind == "number" else {}))
        assert check_value(spec, value)  # what voice gives is accepted by the form
