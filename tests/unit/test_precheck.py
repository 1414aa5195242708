"""The offline pre-check (预审) on synthetic document photos, with the real OCR (no mocks).

Images come from tests/materials_images.py (fake people, CJK fonts of this machine). Each photo
is read once per test session (module fixture) to keep the file well under a minute.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import re

import pytest
from PIL import Image, ImageFilter

from assistant.services.materials.doctypes import mask_name
from assistant.services.materials.inspect import inspect_upload
from assistant.services.materials.ocr import ocr_upload_sync
from assistant.services.materials.precheck import (
    EXPIRED,
    NAME_MISMATCH,
    OTHER_SIDE,
    UNKNOWN_TYPE,
    UNREADABLE,
    VERDICT_DOUBTFUL,
    VERDICT_OK,
    WRONG_TYPE,
    evaluate,
    expected_doc_type,
    precheck_upload,
)
from assistant.services.materials.reading import application_numbers_in, read_text
from tests.materials_images import LONG_TERM, TODAY, make_sample

CJK = re.compile(r"[\u4e00-\u9fff]")


def sample_where(doc_type, quality, accept, first_seed=0):
    """The first generated sample (seeds counted from ``first_seed``) whose truth passes ``accept``."""
    for seed in range(first_seed, first_seed + 200):
        sample = make_sample(doc_type, quality, random.Random(f"test:{seed}"))
        if accept(sample.truth):
            return sample
    raise AssertionError("no such sample")


class Read:
    """A sample and its OCR result, read once."""

    def __init__(self, sample):
        self.sample = sample
        self.truth = sample.truth
        self.inspected = inspect_upload(sample.data)
        self.ocr = ocr_upload_sync(sample.data, self.inspected)

    def check(self, material, masked_name=None, today=TODAY):
        return evaluate(self.ocr, material, masked_name, today)


@pytest.fixture(scope="module")
def front():
    return Read(sample_where("id_card_front", "rotated", lambda t: True))


@pytest.fixture(scope="module")
def back_dated():
    return Read(sample_where("id_card_back", "low_light", lambda t: t.expiry not in (None, LONG_TERM)))


@pytest.fixture(scope="module")
def back_long_term():
    return Read(sample_where("id_card_back", "jpeg", lambda t: t.expiry == LONG_TERM))


@pytest.fixture(scope="module")
def household():
    return Read(sample_where("household_register", "blurred", lambda t: True))


def test_material_names_map_to_document_types():
    assert expected_doc_type("居民身份证") == "id_card_front"
    assert expected_doc_type("监护人居民身份证") == "id_card_front"
    assert expected_doc_type("身份证背面") == "id_card_back"
    assert expected_doc_type("居民户口簿") == "household_register"
    assert expected_doc_type("结婚证") == "marriage_certificate"
    assert expected_doc_type("出生医学证明") == "birth_certificate"
    assert expected_doc_type("营业执照") == "business_license"
    assert expected_doc_type("房屋租赁合同") == "rental_contract"
    assert expected_doc_type("离婚登记申请受理回执单") == "acceptance_receipt"
    assert expected_doc_type("申请表") is None


def test_id_card_front_type_name_and_masking(front):
    truth = front.truth
    result = front.check("居民身份证", mask_name(truth.name))
    assert result.doc_type == "id_card_front"
    assert result.readable and result.verdict == VERDICT_OK and result.reasons == []
    assert result.name_matches is True
    assert "身份证的正面" in result.message and CJK.search(result.message)
    # the ID number and the name never leave the pre-check in clear
    assert truth.id_number not in result.text_masked
    assert truth.id_number[:6] in result.text_masked  # masked, not dropped: the operator sees the shape
    assert truth.name not in result.text_masked
    assert result.expired is None and result.expiry is None


def test_a_different_applicant_name_is_flagged_not_refused(front):
    other_surname = "欧" if not front.truth.name.startswith("欧") else "司"
    masked = other_surname + "*" * (len(front.truth.name) - 1)
    result = front.check("居民身份证", masked)
    assert result.name_matches is False
    assert result.verdict == VERDICT_DOUBTFUL and NAME_MISMATCH in result.reasons
    assert "姓名" in result.message and "工作人员会核对" in result.message
    # a name of another length cannot be the same person either
    assert front.check("居民身份证", mask_name(front.truth.name) + "*").name_matches is False
    # no masked name to compare with: no judgement
    assert front.check("居民身份证", None).name_matches is None


def test_the_name_is_not_compared_for_someone_elses_card(front):
    assert front.check("监护人居民身份证", "欧**").name_matches is None


def test_id_card_back_expiry_read_and_judged(back_dated):
    truth = back_dated.truth
    before = back_dated.check("身份证背面", today=truth.expiry - dt.timedelta(days=1))
    assert before.doc_type == "id_card_back"
    assert before.expiry == truth.expiry
    assert before.expired is False and before.verdict == VERDICT_OK
    assert f"{truth.expiry.year}年{truth.expiry.month}月{truth.expiry.day}日" in before.message
    after = back_dated.check("身份证背面", today=truth.expiry + dt.timedelta(days=1))
    assert after.expired is True and EXPIRED in after.reasons
    assert after.verdict == VERDICT_DOUBTFUL and "过期" in after.message


def test_long_term_validity(back_long_term):
    result = back_long_term.check("身份证背面")
    assert result.doc_type == "id_card_back"
    assert result.long_term is True and result.expired is False and result.expiry is None
    assert "长期" in result.message


def test_the_other_side_of_the_card_is_accepted_with_a_hint(back_long_term):
    result = back_long_term.check("居民身份证")
    assert result.expected == "id_card_front" and result.doc_type == "id_card_back"
    assert OTHER_SIDE in result.reasons and result.verdict == VERDICT_OK
    assert "正面" in result.message


def test_the_wrong_document_is_accepted_with_a_flag_and_plain_words(household):
    result = household.check("居民身份证", mask_name(household.truth.name))
    assert result.doc_type == "household_register"
    assert result.verdict == VERDICT_DOUBTFUL and WRONG_TYPE in result.reasons
    assert "户口簿" in result.message and "身份证" in result.message
    assert "也可以先提交" in result.message
    right = household.check("居民户口簿", mask_name(household.truth.name))
    assert right.verdict == VERDICT_OK and right.name_matches is True
    assert household.truth.id_number not in right.text_masked


def test_an_unreadable_photo_is_flagged(front):
    image = Image.open(io.BytesIO(front.sample.data)).filter(ImageFilter.GaussianBlur(9))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=60)
    data = buffer.getvalue()
    result = evaluate(ocr_upload_sync(data, inspect_upload(data)), "居民身份证", None, TODAY)
    assert result.readable is False
    assert result.verdict == VERDICT_DOUBTFUL and UNREADABLE in result.reasons
    assert "看不清" in result.message


def test_a_photo_without_a_document_is_not_taken_for_one():
    image = Image.radial_gradient("L").resize((900, 700)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    data = buffer.getvalue()
    result = evaluate(ocr_upload_sync(data, inspect_upload(data)), "营业执照", None, TODAY)
    assert result.doc_type is None and result.verdict == VERDICT_DOUBTFUL
    assert UNREADABLE in result.reasons or UNKNOWN_TYPE in result.reasons


async def test_business_licence_through_the_async_entry_from_a_scanned_pdf():
    sample = sample_where("business_license", "clean", lambda t: t.expiry not in (None, LONG_TERM))
    buffer = io.BytesIO()
    Image.open(io.BytesIO(sample.data)).save(buffer, "PDF", resolution=150)  # a scan without a text layer
    data = buffer.getvalue()
    inspected = inspect_upload(data)
    assert inspected.kind == "pdf"
    result = await precheck_upload(data, inspected, "营业执照", mask_name(sample.truth.name), today=TODAY)
    assert result.doc_type == "business_license"
    assert result.expiry == sample.truth.expiry
    assert result.name_matches is True


async def test_a_receipt_photo_gives_its_application_number():
    sample = sample_where("acceptance_receipt", "phone", lambda t: True)
    text = await read_text(sample.data, inspect_upload(sample.data))
    assert application_numbers_in(text) == [sample.truth.application_number]


def test_application_numbers_survive_ocr_confusions():
    assert application_numbers_in("受理编号：ZW 2025-1102-001") == ["ZW20251102001"]
    assert application_numbers_in("受理编号 2W20251102OO2\nzw20251102003 ZW20251102001") == [
        "ZW20251102002", "ZW20251102003", "ZW20251102001"]
    assert application_numbers_in("ZW2025110200") == []  # ten digits
    assert application_numbers_in("ZW202511020011") == []  # twelve


# ------------------------------------------------------------- the rules on text (no OCR)
@pytest.mark.parametrize(
    "text, end, long_term",
    [
        ("有效期限2015.03.01-2035.03.01", dt.date(2035, 3, 1), False),
        ("有效期限 2015.03.01—2035.03.01", dt.date(2035, 3, 1), False),
        ("有效期限\n2015.03.01-2035.03.01", dt.date(2035, 3, 1), False),  # the value on its own line
        ("有效朗限2015.O3.01-2035.03.0l", dt.date(2035, 3, 1), False),  # OCR: 朗 for 期, O for 0, l for 1
        ("有效期限20150301-20350301", dt.date(2035, 3, 1), False),  # dots lost
        ("有效期限2015.03.01-2035.13.01", dt.date(2035, 3, 1), False),  # impossible month: the start's kept
        ("有效期限2019.07.19-长期", None, True),
        ("营业期限2014年03月28日至2034年03月27日", dt.date(2034, 3, 27), False),
        ("营业期限2014年03月28日至长期", None, True),
    ],
)
def test_validity_fields_as_ocr_reads_them(text, end, long_term):
    from assistant.services.materials.doctypes import read_validity

    label = "营业期限" if text.startswith("营业") else "有效期限"
    found, _start, read_end = read_validity(text, label)
    assert found and read_end == end
    assert (read_end is None) == long_term


def test_unreadable_validity_is_not_guessed():
    from assistant.services.materials.doctypes import read_validity

    assert read_validity("有效期限2015.03.01-", "有效期限")[0] is False
    assert read_validity("签发机关某某公安局", "有效期限")[0] is False


def test_keywords_are_found_with_one_ocr_error():
    from assistant.services.materials.doctypes import classify, find_word

    assert find_word("常住人口登记卞", "常住人口登记卡") == (0, False)
    assert find_word("统一社会信用代玛91110105", "统一社会信用代码")[0] == 0
    assert find_word("姓名", "公民身份号码")[0] == -1
    doc_type, _scores = classify("中华人民共和国\n居民身份证\n签发机关北京市公安局\n有效期很2015.03.01-2035.03.01")
    assert doc_type == "id_card_back"


def test_look_alikes_are_not_taken_for_the_requested_document():
    from assistant.services.materials.doctypes import classify

    permit = "北京市居住证\n姓名张伟\n性别男民族汉\n出生1988年5月12日\n住址北京市朝阳区建设路1号\n公民身份号码110105198805120031\n签发机关朝阳公安分局\n有效期限2025.01.01-2026.01.01"
    assert classify(permit)[0] == "residence_permit"
    assert classify("离婚证\n持证人张伟\n登记日期2020年01月02日\n离婚证字号L110105-2020-000123")[0] == "divorce_certificate"
    notice = "补正材料告知书\n您申请的居住证申领事项，经审查，请补正以下材料：\n1.居民户口簿\n2.结婚证\n逾期未补正的，视为放弃申请。"
    assert classify(notice)[0] == "notice"


def test_names_are_compared_in_their_masked_form_only():
    from assistant.services.materials.doctypes import compare_name, masked_like

    assert masked_like("张三丰", "张*丰") == "张*丰"
    assert masked_like("张三", "张*丰") is None
    assert compare_name("张*", ["张伟"]) is True
    assert compare_name("张*丰", ["张三丰"]) is True
    assert compare_name("张*丰", ["张三峰"]) is False
    assert compare_name("李*", ["张伟", "李娜"]) is True  # a marriage certificate has two names
    assert compare_name("张伟", ["张伟"]) is None  # not a masked name: nothing compared
    assert compare_name("张*", []) is None


def test_names_beside_their_label_even_when_the_photo_is_turned():
    from assistant.services.materials.doctypes import extract_names

    def box(x, y, w, h, angle=0.0):
        import math

        c, s = math.cos(angle), math.sin(angle)
        corners = [(0, 0), (w, 0), (w, h), (0, h)]
        return tuple((x + u * c - v * s, y + u * s + v * c) for u, v in corners)

    turned = 0.2  # about 11 degrees
    lines = [("王五", box(300, 90, 80, 30, turned)), ("姓名", box(100, 50, 60, 30, turned)), ("户主", box(500, 130, 60, 30, turned))]
    assert extract_names(lines, ["姓名"]) == ["王五"]
    assert extract_names([("承租方(乙方):赵六", ())], ["承租方"]) == ["赵六"]
    assert extract_names([("姓名", ()), ("孙七", ())], ["姓名"]) == ["孙七"]  # no boxes (PDF text): the next line


def test_identity_numbers_and_names_are_masked_in_the_kept_text():
    from assistant.services.materials.precheck import mask_text

    text = "姓名张伟\n公民身份号码 1101 0519 8805 1200 34\n电话13800001001\n受理编号ZW20251102001\n卡号6222021234567890123"
    masked = mask_text(text, ["张伟"])
    assert "110105198805120034" not in masked.replace(" ", "")
    assert "张伟" not in masked and "张*" in masked
    assert "13800001001" not in masked
    assert "6222021234567890123" not in masked
    assert "ZW20251102001" in masked  # application numbers are not personal data
    assert len(mask_text("字" * 5000)) <= 2001


def test_two_unrelated_dates_are_not_a_validity():
    from assistant.services.materials.doctypes import read_validity

    licence = "营业执照\n成立日期2012年09月22日\n法定代表人张*\n登记机关\n2018年04月16日"  # 营业期限 not read
    assert read_validity(licence, "营业期限") == (False, None, None)
    labelled = "营业期限2012年09月22日\n登记机关\n2018年04月16日"  # the end was lost, the issue date is not it
    assert read_validity(labelled, "营业期限")[0] is False
    unlabelled = "居民身份证\n签发机关某某公安局\n2015.03.01-2035.03.01"  # the label lost, the range kept
    assert read_validity(unlabelled, "有效期限")[2] == dt.date(2035, 3, 1)


def test_a_validity_read_before_its_label_is_still_found():
    from assistant.services.materials.doctypes import read_validity

    turned = "中华人民共和国\n居民身份证\n贵阳市公安局南明区分局\n签发机关\n2009.01.24-长期\n有效期限"
    assert read_validity(turned, "有效期限") == (True, dt.date(2009, 1, 24), None)


def test_a_name_read_unsurely_is_not_called_a_mismatch():
    from assistant.services.materials.ocr import OcrLine, OcrResult

    def read(score):
        return OcrResult(lines=[OcrLine("房屋租赁合同", 0.99), OcrLine("出租方（甲方）：黄英", 0.99),
                                OcrLine("承租方（乙方）：鉴丽", score), OcrLine("租金每月人民币5300元，押金1个月租金", 0.99)])

    assert evaluate(read(0.99), "房屋租赁合同", "黎*", TODAY).name_matches is False
    unsure = evaluate(read(0.93), "房屋租赁合同", "黎*", TODAY)
    assert unsure.name_matches is None and NAME_MISMATCH not in unsure.reasons
