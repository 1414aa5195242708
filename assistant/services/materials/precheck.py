"""The offline pre-check (预审) of a material photo or PDF: is it the requested document, can it
be read, has it expired, does the name fit the applicant.

The answer is advice, never a silent rejection: ``verdict`` is ``"ok"`` or ``"doubtful"``; a
doubtful upload is accepted with a flag for the operator, and the citizen is told in plain words
what we saw and what they can do.

How it works (everything offline; the rules are in ``doctypes.yml`` beside this file, applied by
:mod:`assistant.services.materials.doctypes`):

- the text is read by :mod:`assistant.services.materials.ocr` (PP-OCRv4 via rapidocr);
- the document type is the type whose keywords (exact, or with one OCR error) and patterns score
  highest, if the score is high enough and clearly ahead of the runner-up; look-alike documents
  (居住证, 离婚证, 社会保障卡, 告知书) are types of their own, so they are named, not mistaken;
- the expiry comes from the validity field (ID card back 有效期限 ``2015.03.01-2035.03.01`` or
  ``…-长期``; business licence 营业期限), with common OCR digit confusions repaired;
- readability from the amount of text and the recogniser's confidence;
- the name: the name fields on the document are masked the way the applicant's name is masked
  (``张*明``: the visible positions kept) and only the masked forms are compared;
- identity numbers, phone numbers and names in the text are masked (``text_masked``) before the
  text leaves this module; logs carry codes and timings only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from assistant.security.pii import mask_pii
from assistant.services.materials.doctypes import (  # noqa: F401 (accepted_doc_types, doc_type_label: re-exported)
    accepted_doc_types,
    classify,
    compare_name,
    doc_type_label,
    expected_doc_type,
    extract_names,
    load_doctypes,
    mask_name,
    material_rule,
    normalize_text,
    read_validity,
)
from assistant.services.materials.inspect import Inspected
from assistant.services.materials.ocr import OcrResult, ocr_upload, ocr_upload_sync

logger = logging.getLogger(__name__)

CST = dt.timezone(dt.timedelta(hours=8))

VERDICT_OK = "ok"
VERDICT_DOUBTFUL = "doubtful"

# Reason codes.
WRONG_TYPE = "wrong_type"  # recognised as another document type
UNKNOWN_TYPE = "unknown_type"  # readable, but not recognised as the requested type (nor another)
OTHER_SIDE = "other_side"  # the other side of the requested card (a proper part of the material)
UNREADABLE = "unreadable"
EXPIRED = "expired"
NAME_MISMATCH = "name_mismatch"
EXPIRY_UNREAD = "expiry_unread"  # the document has a validity field that could not be read

TEXT_MASKED_MAX = 2000  # characters of masked text kept
MIN_READABLE_CHARS = 8  # fewer characters than this: not readable
MIN_READABLE_SCORE = 0.7  # mean recogniser confidence below this: not readable
NAME_MIN_SCORE = 0.95  # a name mismatch is claimed only for names read at least this surely

# Identity numbers as OCR reads them: 17 digits + digit/X, maybe with spaces inside.
# Wider than pii.ID_NUMBER on purpose: OCR puts a space anywhere, and a document's number
# keeps only its first 6 and last character (mask_pii runs after this, for the rest).
_ID_LIKE_RE = re.compile(r"(?<![0-9])[0-9](?:[ ]?[0-9]){16}[ ]?[0-9Xx](?![0-9])")
# Any other long run of digits (certificate numbers, bank cards): keep the ends only.
# Not pii.BANK_CARD: on a document any 12+ digit number is someone's, whatever its kind.
_LONG_DIGITS_RE = re.compile(r"(?<![0-9A-Za-z])([0-9]{3})[0-9]{7,}([0-9]{2})(?![0-9])")


@dataclass(frozen=True)
class Precheck:
    doc_type: Optional[str]
    expected: Optional[str]
    readable: bool
    expired: Optional[bool]
    expiry: Optional[dt.date]
    name_matches: Optional[bool]
    verdict: str  # VERDICT_OK | VERDICT_DOUBTFUL
    reasons: List[str]
    message: str
    text_masked: str
    long_term: bool = False  # validity "长期" (no expiry)
    seconds: float = 0.0  # OCR + analysis
    scores: Dict[str, float] = field(default_factory=dict)  # per type, for the operator and the bench


# ----------------------------------------------------------------------------- masking
def _mask_id_like(match: re.Match) -> str:
    digits = match.group(0).replace(" ", "")
    return digits[:6] + "*" * 11 + digits[-1]


def mask_text(text: str, names: Sequence[str] = ()) -> str:
    """OCR text with identity numbers, phone numbers, long digit runs and the names found masked."""
    masked = _ID_LIKE_RE.sub(_mask_id_like, text or "")
    masked = mask_pii(masked)
    masked = _LONG_DIGITS_RE.sub(lambda m: m.group(1) + "*" * 6 + m.group(2), masked)
    for name in sorted(set(names), key=len, reverse=True):
        if len(name) >= 2:
            masked = masked.replace(name, mask_name(name))
    if len(masked) > TEXT_MASKED_MAX:
        masked = masked[:TEXT_MASKED_MAX] + "…"
    return masked


def _all_read_surely(names: Sequence[str], lines) -> bool:
    """Every name was read on a line with confidence >= ``NAME_MIN_SCORE``."""
    for name in names:
        scores = [line.score for line in lines if name in normalize_text(line.text)]
        if not scores or max(scores) < NAME_MIN_SCORE:
            return False
    return True


# ----------------------------------------------------------------------------- verdict
def _format_date(value: dt.date) -> str:
    return f"{value.year}年{value.month}月{value.day}日"


def evaluate(
    ocr: OcrResult,
    material: Optional[str],
    masked_name: Optional[str],
    today: Optional[dt.date] = None,
) -> Precheck:
    """The pre-check of an OCR result (pure: no I/O)."""
    config = load_doctypes()
    today = today or dt.datetime.now(CST).date()
    boxed = [(normalize_text(line.text), line.box) for line in ocr.lines]
    boxed = [(line, box) for line, box in boxed if line]
    text = "\n".join(line for line, _box in boxed)
    readable = ocr.chars >= MIN_READABLE_CHARS and ocr.mean_score >= MIN_READABLE_SCORE
    doc_type, scores = classify(text) if text else (None, {})
    rule = material_rule(material)
    expected = rule.doc_type if rule else None

    expiry: Optional[dt.date] = None
    expired: Optional[bool] = None
    long_term = False
    validity_read: Optional[bool] = None  # None: this document has no validity field
    spec = config.types.get(doc_type or "")
    if spec and spec.expiry_label:
        found, _start, end = read_validity(text, spec.expiry_label)
        validity_read = found
        if found:
            if end is None:
                long_term, expired = True, False
            else:
                expiry, expired = end, end < today

    names: List[str] = []
    name_matches: Optional[bool] = None
    if spec and spec.name_labels:
        names = extract_names(boxed, spec.name_labels)
        if rule is None or rule.check_name:
            name_matches = compare_name(masked_name, names)
            if name_matches is False and not _all_read_surely(names, ocr.lines):
                name_matches = None  # a misread character is likelier than another person: not judged

    reasons: List[str] = []
    if not readable:
        reasons.append(UNREADABLE)
    if expected:
        if doc_type is None:
            if readable:
                reasons.append(UNKNOWN_TYPE)
        elif doc_type != expected:
            reasons.append(OTHER_SIDE if rule and doc_type in rule.also else WRONG_TYPE)
    if expired:
        reasons.append(EXPIRED)
    wanted = expected is None or doc_type == expected or (rule is not None and doc_type in rule.also)
    if validity_read is False and readable and wanted:
        reasons.append(EXPIRY_UNREAD)
    if name_matches is False:
        reasons.append(NAME_MISMATCH)
    verdict = VERDICT_OK if not (set(reasons) - {OTHER_SIDE}) else VERDICT_DOUBTFUL
    message = compose_message(doc_type, expected, reasons, expiry, long_term)
    return Precheck(
        doc_type=doc_type,
        expected=expected,
        readable=readable,
        expired=expired,
        expiry=expiry,
        name_matches=name_matches,
        verdict=verdict,
        reasons=reasons,
        message=message,
        text_masked=mask_text(text, names),
        long_term=long_term,
        seconds=ocr.seconds,
        scores=scores,
    )


_RETAKE_OR_SUBMIT = "您可以重新拍一张，也可以先提交。"
_STAFF_CHECK = "工作人员会核对。"


def compose_message(
    doc_type: Optional[str],
    expected: Optional[str],
    reasons: Sequence[str],
    expiry: Optional[dt.date],
    long_term: bool,
) -> str:
    """The answer to the citizen: what we saw, and what to do. Short sentences, 您."""
    found = doc_type_label(doc_type)
    wanted = doc_type_label(expected)
    if UNREADABLE in reasons:
        return "这张照片不太清楚，我们看不清上面的字。请您在光线好的地方把证件放平，对准后重新拍一张。也可以先提交，" + _STAFF_CHECK
    parts: List[str] = []
    staff_check = False
    if WRONG_TYPE in reasons:
        parts.append(f"这张照片看起来是{found}，我们需要的是{wanted}。{_RETAKE_OR_SUBMIT}")
        staff_check = True
    elif UNKNOWN_TYPE in reasons:
        parts.append(f"我们没有认出这是{wanted}。请您确认拍的是{wanted}，并且整张都在照片里。{_RETAKE_OR_SUBMIT}")
        staff_check = True
    elif OTHER_SIDE in reasons:
        parts.append(f"收到了，这是{found}。如果还没有上传{wanted}，请您再拍一张。")
    elif EXPIRY_UNREAD in reasons:
        parts.append(f"收到了，这是{found}。" if found else "收到了。")
    elif found:
        parts.append(f"收到了，这是{found}，字迹清楚。")
    else:
        parts.append("收到了，字迹清楚。")
    if EXPIRED in reasons and expiry:
        parts.append(f"上面的有效期到{_format_date(expiry)}，已经过期了，过期的证件可能不能用。")
        staff_check = True
    elif expiry:
        parts.append(f"有效期到{_format_date(expiry)}。")
    elif long_term:
        parts.append("有效期是长期。")
    elif EXPIRY_UNREAD in reasons:
        parts.append("我们没有看清有效期限，请您确认整张证件都拍进了照片。")
        staff_check = True
    if NAME_MISMATCH in reasons:
        parts.append("证件上的姓名和申请人对不上。如果是替别人办理，请一并提交委托书。")
        staff_check = True
    if staff_check:
        parts.append(_STAFF_CHECK)
    return "".join(parts)


# ------------------------------------------------------------------------------- entry
def precheck_sync(
    data: bytes,
    inspected: Inspected,
    material: Optional[str],
    masked_name: Optional[str],
    today: Optional[dt.date] = None,
) -> Precheck:
    """OCR + pre-check (blocking)."""
    started = time.perf_counter()
    ocr = ocr_upload_sync(data, inspected)
    result = evaluate(ocr, material, masked_name, today)
    return _logged(result, started)


async def precheck_upload(
    data: bytes,
    inspected: Inspected,
    material: Optional[str],
    masked_name: Optional[str],
    today: Optional[dt.date] = None,
) -> Precheck:
    """Read the upload offline and pre-check it against the requested material."""
    started = time.perf_counter()
    ocr = await ocr_upload(data, inspected)
    result = await asyncio.to_thread(evaluate, ocr, material, masked_name, today)
    return _logged(result, started)


def _logged(result: Precheck, started: float) -> Precheck:
    seconds = time.perf_counter() - started
    logger.info(
        "materials.precheck.done doc_type=%s expected=%s verdict=%s reasons=%s readable=%s seconds=%.2f",
        result.doc_type, result.expected, result.verdict, ",".join(result.reasons) or "-", result.readable, seconds,
    )
    return Precheck(**{**result.__dict__, "seconds": seconds})


__all__ = [
    "Precheck",
    "precheck_upload",
    "precheck_sync",
    "expected_doc_type",
    "accepted_doc_types",
    "doc_type_label",
    "evaluate",
    "VERDICT_OK",
    "VERDICT_DOUBTFUL",
]
