"""Personal data (ID numbers, phone numbers, names, …) in text: masked for logs and analytics
(:func:`mask_pii`), cut out of text published as data (:func:`strip_pii`)."""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata

# ------------------------------------------------------------------ building blocks
# Each kind of personal datum is defined once here, as a regex string; mask_pii (logs,
# analytics) and strip_pii (text published as data) are both built from these, and so are
# the checks other modules make (MOBILE_RE, is_id_number, is_mobile_number). ``\d`` is any
# decimal digit, full-width ones (１３８…) included, as an input method types them.
_SEP = r"[- ]?"  # a dash or space people put inside a number (138 1234 5678, 010-62345678)
_COUNTRY = r"(?:[+＋]?[8８][6６][- ]?)?"  # +86 before a phone number
# 18-digit resident ID (6-8-4, the last character may be X) and 15-digit legacy IDs.
ID_NUMBER = (
    rf"(?<!\d)(?P<id_head>\d{{6}})"
    rf"(?:{_SEP}\d{{8}}{_SEP}(?P<id_tail>\d{{3}}[\dXxＸｘ])|\d{{6}}(?P<id15_tail>\d{{3}}))(?!\d)"
)
# Mainland mobile numbers (1[3-9] + 9 digits), optionally with +86 and separators.
MOBILE = (
    rf"(?<!\d){_COUNTRY}(?P<number>(?P<head>[1１][3-9３-９]\d){_SEP}\d{{4}}{_SEP}(?P<tail>\d{{4}}))(?!\d)"
)
# Landlines with their area code (010-62345678, 0755 12345678, (0571)87654321),
# optionally with +86.
LANDLINE = rf"(?<!\d){_COUNTRY}(?P<landline>[(（]?[0０]\d{{2,3}}[)）]?{_SEP}\d{{7,8}})(?!\d)"
# Bank card numbers: 16 to 19 digits, maybe in groups of four.
BANK_CARD = r"(?<!\d)\d{4}(?:[- ]?\d{4}){3}(?:[- ]?\d){0,3}(?!\d)"
EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
# Passport and permit numbers (E12345678, EA1234567, C12345678).
PASSPORT = r"(?<![A-Za-z0-9])[A-Za-z]{1,2}\d{7,9}(?!\d)"
# The cues before a stated name ("我叫张三", "名字是李四", "姓名：王五"). "我是" is a cue
# too, but one that is often followed by no name ("我是退休职工"): each family says how
# it takes it.
NAME_CUE = r"我叫|名字是|名字叫|姓名[:：]?\s*|叫做"
_HAN = "\u4e00-\u9fff"
# Application numbers (ZW + 11 digits) and kiosk receipt numbers of pre-applications
# (``KS`` + the kiosk's code + date + sequence, e.g. KSHALL3-20261205-0001;
# assistant/services/prefill/receipts.py) are not personal data, even when their digits
# happen to look like a mobile number: both families keep them.
APPLICATION_NUMBER = r"ZW[0-9]{11}"
RECEIPT_NUMBER = r"KS[A-Z0-9]{1,8}-[0-9]{8}-[0-9]{4}"
_KEPT = rf"(?P<kept>{APPLICATION_NUMBER}|{RECEIPT_NUMBER})"

ID_NUMBER_RE = re.compile(ID_NUMBER)
# The one pattern of a mobile number (masking here; the call mode's ticket draft and the
# progress dialogue's phone check find numbers with it too).
MOBILE_RE = re.compile(MOBILE)
LANDLINE_RE = re.compile(LANDLINE)
_NOT_DIGIT = re.compile(r"\D")
_APPLICATION_NUMBER_RE = re.compile(APPLICATION_NUMBER)
_RECEIPT_NUMBER_RE = re.compile(RECEIPT_NUMBER)

# ------------------------------------------------------------------ mask_pii
# A name after a cue, 我是 included (a log masks "我是退休职工" too: better too much).
_MASK_RE = re.compile(
    rf"{_KEPT}|{ID_NUMBER}|{MOBILE}|(?P<name_cue>{NAME_CUE}|我是)(?P<name>[{_HAN}]{{2,4}})"
)


def _mask(match: re.Match) -> str:
    if match.group("kept"):
        return match.group("kept")
    if match.group("id_tail"):
        return f"{match.group('id_head')}********{match.group('id_tail')}"
    if match.group("id15_tail"):
        return f"{match.group('id_head')}******{match.group('id15_tail')}"
    if match.group("number"):
        return f"{match.group('head')}****{match.group('tail')}"
    name = match.group("name")
    return match.group("name_cue") + name[0] + "*" * (len(name) - 1)


def mask_pii(text: str) -> str:
    """Return ``text`` with ID numbers, mobile numbers and stated names masked."""
    if not text:
        return text
    return _MASK_RE.sub(_mask, text)


# ------------------------------------------------------------------ strip_pii
# What :func:`strip_pii` cuts out. A cue before the data goes with it.
_CUE = r"(?:(?:我的|本人)?(?:手机号?码?|电话号?码?|联系电话|联系方式|座机|身份证号?码?|证件号码?|银行卡号?|卡号|护照号?码?|邮箱|电子邮箱)[:：是为]?\s*)?"
_STRIP_RE = re.compile(
    _KEPT + "|" + _CUE + r"(?:"
    + "|".join((EMAIL, PASSPORT, ID_NUMBER, MOBILE, LANDLINE, BANK_CARD))
    # Any other run of 7 or more digits (a local number without area code, a card, a date).
    + rf"|(?<!\d){_COUNTRY}\d(?:{_SEP}\d){{6,}}(?!\d)"
    + rf"|{_COUNTRY}[0-9A-Za-z]*\*{{2,}}[0-9A-Za-z]*"  # already masked (138****5678)
    + r")"
    # A name after a clear cue, raw or masked; after 我是 only when the name stands
    # alone ("我是张三，…"), not "我是退休职工…".
    + rf"|(?:{NAME_CUE})[{_HAN}][{_HAN}*]{{1,3}}"
    + rf"|我是[{_HAN}][{_HAN}*]{{1,2}}(?=[\s，,。.；;！!]|$)"
)
# Separators left dangling where personal data was cut out.
_DANGLING_RE = re.compile(r"^[\s，,。.；;：:、]+|[\s，,；;：:、]+$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]+")
_DOUBLED_RE = re.compile(r"([，,；;、])[\s，,；;、]+")


def strip_pii(text: str) -> str:
    """``text`` without personal data, raw or masked, for text that is published as
    data (situations, training examples): e-mail addresses, passport numbers, ID, phone
    and bank card numbers, any other run of 7 or more digits and names after a clear
    cue are cut out with their cue, and the separators left around them tidied; control
    characters become spaces. Names
    said without a cue cannot be told from words: the admin sees the text before it is
    published."""
    if not text:
        return text
    text = _CONTROL_RE.sub(" ", text)  # never in data (YAML refuses most of them)
    text = _STRIP_RE.sub(lambda m: m.group("kept") or "", text)
    text = _DOUBLED_RE.sub(r"\1", text)
    return _DANGLING_RE.sub("", text)


def _ascii_digits(value: str) -> str:
    return unicodedata.normalize("NFKC", _NOT_DIGIT.sub("", value))


def mobile_number(match: re.Match) -> str:
    """The 11 digits of a :data:`MOBILE_RE` match (no +86, no separators, ASCII digits)."""
    return _ascii_digits(match.group("number"))


def landline_number(match: re.Match) -> str:
    """The digits of a :data:`LANDLINE_RE` match, area code first (no +86, no separators)."""
    return _ascii_digits(match.group("landline"))


def is_id_number(value: str) -> bool:
    """True for a whole ID number as stored: ASCII digits (the last may be X), no separators."""
    value = value or ""
    return value.isascii() and value.isalnum() and bool(ID_NUMBER_RE.fullmatch(value))


def is_mobile_number(value: str) -> bool:
    """True for a whole mobile number as stored: 11 ASCII digits, no +86, no separators."""
    value = value or ""
    return value.isascii() and value.isdigit() and bool(MOBILE_RE.fullmatch(value))


def is_application_number(value: str) -> bool:
    """True for a canonical application number (``ZW`` + 11 digits, nothing else)."""
    return bool(_APPLICATION_NUMBER_RE.fullmatch(value or ""))


def is_receipt_number(value: str) -> bool:
    """True for a canonical kiosk receipt number (``KS`` + code + ``-YYYYMMDD-NNNN``)."""
    return bool(_RECEIPT_NUMBER_RE.fullmatch(value or ""))


def hash_id(value: str, salt: str = "banshi") -> str:
    """A stable, non-reversible short id for logs (conversation ids, OpenIDs)."""
    return hashlib.sha256(f"{salt}:{value}".encode()).hexdigest()[:12]


class PiiMaskingFilter(logging.Filter):
    """A logging filter that masks personal data in every formatted record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break logging
            return True
        masked = mask_pii(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install_log_masking() -> None:
    """Mask personal data in everything the root logger's handlers emit."""
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, PiiMaskingFilter) for f in handler.filters):
            handler.addFilter(PiiMaskingFilter())
