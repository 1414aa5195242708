"""Mask personal data (ID numbers, phone numbers, names) in text for logs and analytics."""

from __future__ import annotations

import hashlib
import logging
import re

# 18-digit resident ID (last char may be X) and 15-digit legacy IDs.
_ID_RE = re.compile(r"(?<!\d)(\d{6})\d{8}(\d{3}[\dXx])(?!\d)|(?<!\d)(\d{6})\d{6}(\d{3})(?!\d)")
# Mainland mobile numbers, optionally with +86 and separators: the one pattern of a
# mobile number (masking here; the call mode's ticket draft finds numbers with it too).
MOBILE_RE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(?P<number>(?P<head>1[3-9]\d)[- ]?\d{4}[- ]?(?P<tail>\d{4}))(?!\d)")
_NOT_DIGIT = re.compile(r"\D")
# "我叫张三" / "名字是李四" / "姓名：王五": mask what follows the cue.
_NAME_RE = re.compile(r"(我叫|我是|名字是|名字叫|姓名[:：]?\s*|叫做)([\u4e00-\u9fff]{2,4})")
# Application numbers (ZW + 11 digits) are not personal data, even when their digits
# happen to look like a mobile number.
_APPLICATION_NUMBER_RE = re.compile(r"ZW[0-9]{11}")
# Kiosk receipt numbers of pre-applications (``KS`` + the kiosk's code + date + sequence,
# e.g. KSHALL3-20261205-0001; assistant/services/prefill/receipts.py) are not either.
_RECEIPT_NUMBER_RE = re.compile(r"KS[A-Z0-9]{1,8}-[0-9]{8}-[0-9]{4}")


def _mask_id(match: re.Match) -> str:
    if match.group(1):
        return f"{match.group(1)}********{match.group(2)}"
    return f"{match.group(3)}******{match.group(4)}"


def _mask_name(match: re.Match) -> str:
    name = match.group(2)
    return match.group(1) + name[0] + "*" * (len(name) - 1)


def mask_pii(text: str) -> str:
    """Return ``text`` with ID numbers, phone numbers and stated names masked."""
    if not text:
        return text
    text = _ID_RE.sub(_mask_id, text)
    text = MOBILE_RE.sub(lambda m: f"{m.group('head')}****{m.group('tail')}", text)
    return _NAME_RE.sub(_mask_name, text)


# What :func:`strip_pii` cuts out. A cue before the data goes with it.
_CUE = r"(?:(?:我的|本人)?(?:手机号?码?|电话号?码?|联系电话|联系方式|座机|身份证号?码?|证件号码?|银行卡号?|卡号|护照号?码?|邮箱|电子邮箱)[:：是为]?\s*)?"
_STRIP_RE = re.compile(
    _CUE + r"(?:"
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"  # e-mail
    r"|(?<![A-Za-z0-9])[A-Za-z]{1,2}\d{7,9}(?!\d)"  # passport / permit numbers (E12345678)
    r"|(?:\+?86[- ]?)?(?<!\d)\d(?:[- ]?\d){6,}(?!\d)"  # 7+ digits: phones, landlines, ID and card numbers
    r"|(?:\+?86[- ]?)?[0-9A-Za-z]*\*{2,}[0-9A-Za-z]*"  # already masked (138****5678)
    r")"
    # A name after a clear cue, raw or masked; after 我是 only when the name stands
    # alone ("我是张三，…"), not "我是退休职工…".
    r"|(?:我叫|名字是|名字叫|姓名[:：]?\s*|叫做)[\u4e00-\u9fff][\u4e00-\u9fff*]{1,3}"
    r"|我是[\u4e00-\u9fff][\u4e00-\u9fff*]{1,2}(?=[\s，,。.；;！!]|$)"
)
# Application and kiosk receipt numbers are no personal data: kept.
_KEPT_NUMBER_RE = re.compile(r"ZW[0-9]{11}|KS[A-Z0-9]{1,8}-[0-9]{8}-[0-9]{4}")
# Separators left dangling where personal data was cut out.
_DANGLING_RE = re.compile(r"^[\s，,。.；;：:、]+|[\s，,；;：:、]+$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]+")
_DOUBLED_RE = re.compile(r"([，,；;、])[\s，,；;、]+")


def strip_pii(text: str) -> str:
    """``text`` without personal data, raw or masked, for text that is published as
    data (situations, training examples): e-mail addresses, passport numbers, any run of
    7 or more digits (phone, landline, ID and bank card numbers) and names after a clear
    cue are cut out with their cue, and the separators left around them tidied; control
    characters become spaces. Names
    said without a cue cannot be told from words: the admin sees the text before it is
    published."""
    if not text:
        return text
    text = _CONTROL_RE.sub(" ", text)  # never in data (YAML refuses most of them)
    kept: list = []

    def keep(match: re.Match) -> str:
        kept.append(match.group(0))
        return f"\x00{len(kept) - 1}\x00"

    text = _KEPT_NUMBER_RE.sub(keep, text)
    text = _STRIP_RE.sub("", text)
    text = re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], text)
    text = _DOUBLED_RE.sub(r"\1", text)
    return _DANGLING_RE.sub("", text)


def mobile_number(match: re.Match) -> str:
    """The 11 digits of a :data:`MOBILE_RE` match (no +86, no separators)."""
    return _NOT_DIGIT.sub("", match.group("number"))


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
