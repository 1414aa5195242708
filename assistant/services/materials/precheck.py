"""The offline pre-check (预审) of a material photo or PDF: is it the requested document, can it
be read, has it expired, does the name fit the applicant.

The answer is advice, never a silent rejection: ``verdict`` is ``"ok"`` or ``"doubtful"``; a
doubtful upload is accepted with a flag for the operator, and the citizen is told in plain words
what we saw and what they can do.

How it works (everything offline, rules in ``doctypes.yml`` beside this file):

- the text is read by :mod:`assistant.services.materials.ocr` (PP-OCRv4 via rapidocr);
- the document type is the type whose keywords (exact, or with one OCR error) and patterns score
  highest, if the score is high enough and clearly ahead of the runner-up;
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
import functools
import logging
import re
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from assistant.security.pii import mask_pii
from assistant.services.materials.inspect import Inspected
from assistant.services.materials.ocr import OcrLine, OcrResult, ocr_upload

logger = logging.getLogger(__name__)

DOCTYPES_PATH = Path(__file__).with_name("doctypes.yml")
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

TEXT_MASKED_MAX = 2000  # characters of masked text kept
MIN_READABLE_CHARS = 8  # fewer characters than this: not readable
MIN_READABLE_SCORE = 0.7  # mean recogniser confidence below this: not readable

_FULLWIDTH_DIGITS = str.maketrans({"Ｏ": "0", "O": "0", "o": "0", "〇": "0", "l": "1", "I": "1", "|": "1"})
_PUNCT_RE = re.compile(r"[\s:：,，;；、\"'“”‘’()（）\[\]【】<>《》]+")
_DATE_RE = re.compile(r"((?:19|20)[0-9]{2})[^0-9长]{0,2}?([0-9]{1,2})[^0-9长]{0,2}?([0-9]{1,2})日?")
_LONG_TERM_RE = re.compile(r"长期|长朝|长其|永久")
# Identity numbers as OCR reads them: 17 digits + digit/X, maybe with spaces inside.
_ID_LIKE_RE = re.compile(r"(?<![0-9])([0-9]{6})(?:[ ]?[0-9]){8}(?:[ ]?[0-9]){3}[ ]?([0-9Xx])(?![0-9])")
# Any other long run of digits (certificate numbers, bank cards): keep the ends only.
_LONG_DIGITS_RE = re.compile(r"(?<![0-9A-Za-z])([0-9]{3})[0-9]{7,}([0-9]{2})(?![0-9])")
_CJK_NAME_RE = re.compile(r"[\u4e00-\u9fff][\u4e00-\u9fff·•]{1,5}")


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


# ------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class DocType:
    key: str
    label: str
    short: str
    keywords: Dict[str, float]
    patterns: Tuple[Tuple[re.Pattern, float], ...]
    name_labels: Tuple[str, ...]
    expiry_label: Optional[str]
    side_of: Optional[str]


@dataclass(frozen=True)
class MaterialRule:
    pattern: re.Pattern
    doc_type: str
    also: Tuple[str, ...]
    check_name: bool


@dataclass(frozen=True)
class DocTypes:
    types: Dict[str, DocType]
    materials: Tuple[MaterialRule, ...]
    min_score: float
    margin: float
    fuzzy_factor: float
    field_labels: Tuple[str, ...]  # every keyword: where a name value stops


@functools.lru_cache(maxsize=None)
def load_doctypes(path: str = str(DOCTYPES_PATH)) -> DocTypes:
    with open(path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    types: Dict[str, DocType] = {}
    for key, spec in raw["types"].items():
        expiry = spec.get("expiry") or {}
        types[key] = DocType(
            key=key,
            label=spec["label"],
            short=spec.get("short", spec["label"]),
            keywords={str(k): float(v) for k, v in (spec.get("keywords") or {}).items()},
            patterns=tuple((re.compile(p), float(w)) for p, w in (spec.get("patterns") or {}).items()),
            name_labels=tuple(spec.get("name_labels") or ()),
            expiry_label=expiry.get("label"),
            side_of=spec.get("side_of"),
        )
    rules = []
    for rule in raw.get("materials") or []:
        doc_type = rule["doc_type"]
        also = tuple(rule.get("also") or ())
        for name in (doc_type, *also):
            if name not in types:
                raise ValueError(f"doctypes.yml: material rule names unknown type {name!r}")
        rules.append(MaterialRule(re.compile(rule["match"]), doc_type, also, bool(rule.get("check_name", True))))
    labels = sorted({k for t in types.values() for k in t.keywords} | {"性别", "民族", "出生", "住址"}, key=len, reverse=True)
    return DocTypes(
        types=types,
        materials=tuple(rules),
        min_score=float(raw.get("min_score", 3.0)),
        margin=float(raw.get("margin", 1.0)),
        fuzzy_factor=float(raw.get("fuzzy_factor", 0.6)),
        field_labels=tuple(labels),
    )


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text or ""))


def material_rule(material: Optional[str]) -> Optional[MaterialRule]:
    name = _compact(material or "")
    if not name:
        return None
    for rule in load_doctypes().materials:
        if rule.pattern.search(name):
            return rule
    return None


def expected_doc_type(material: str) -> Optional[str]:
    """The document type a catalogue material needs (``"居民身份证"`` → ``"id_card_front"``), or None."""
    rule = material_rule(material)
    return rule.doc_type if rule else None


def doc_type_label(doc_type: Optional[str]) -> Optional[str]:
    """What the citizen reads for a type (``"身份证的背面（国徽面）"``)."""
    spec = load_doctypes().types.get(doc_type or "")
    return spec.label if spec else None


# ----------------------------------------------------------------------------- matching
def normalize_text(text: str) -> str:
    """NFKC (full-width to half-width), no spaces inside lines, one line per OCR line."""
    lines = (re.sub(r"\s+", "", unicodedata.normalize("NFKC", line)) for line in (text or "").splitlines())
    return "\n".join(line for line in lines if line)


def _within_one_edit(a: str, b: str) -> bool:
    """Levenshtein distance of ``a`` and ``b`` is at most 1."""
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        return sum(x != y for x, y in zip(a, b)) <= 1
    if la > lb:
        a, b, la, lb = b, a, lb, la
    i = 0
    while i < la and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1 :]


def find_word(text: str, word: str) -> Tuple[int, bool]:
    """Where ``word`` is in ``text``: (index, exact). Index -1 when absent.

    Words of three or more characters are also found with one OCR error (a wrong, missing or extra
    character), as long as the first or the last character is right.
    """
    index = text.find(word)
    if index >= 0:
        return index, True
    size = len(word)
    if size < 3:
        return -1, False
    for length in (size, size - 1, size + 1):
        for start in range(0, len(text) - length + 1):
            window = text[start : start + length]
            if "\n" in window:
                continue
            if (window[0] == word[0] or window[-1] == word[-1]) and _within_one_edit(window, word):
                return start, False
    return -1, False


def score_types(text: str) -> Dict[str, float]:
    """The score of every document type for a normalised OCR text."""
    config = load_doctypes()
    scores: Dict[str, float] = {}
    for key, spec in config.types.items():
        score = 0.0
        for word, weight in spec.keywords.items():
            index, exact = find_word(text, word)
            if index >= 0:
                score += weight if exact else weight * config.fuzzy_factor
        for pattern, weight in spec.patterns:
            if pattern.search(text):
                score += weight
        scores[key] = round(score, 2)
    return scores


def classify(text: str) -> Tuple[Optional[str], Dict[str, float]]:
    """The document type of a normalised OCR text, or None when no type is clearly ahead."""
    config = load_doctypes()
    scores = score_types(text)
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    if not ranked:
        return None, scores
    best, best_score = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    if best_score < config.min_score or best_score - runner_up < config.margin:
        return None, scores
    return best, scores


# ------------------------------------------------------------------------------ expiry
def _date(year: str, month: str, day: str) -> Optional[dt.date]:
    try:
        return dt.date(int(year), int(month), int(day))
    except ValueError:
        return None


def read_validity(text: str, label: Optional[str]) -> Tuple[bool, Optional[dt.date], Optional[dt.date]]:
    """Read a validity field: (found, start, end). ``found`` with ``end`` None means 长期.

    The field is looked for after ``label`` (approximately); without the label, anywhere.
    """
    segment = text
    if label:
        index, _exact = find_word(text, label)
        if index >= 0:
            segment = text[index + len(label) - 1 :]
            segment = "".join(segment.split("\n")[:3])  # the value may be on the next lines
    segment = segment.translate(_FULLWIDTH_DIGITS)
    dates = [(m, _date(*m.groups())) for m in _DATE_RE.finditer(segment)]
    if not dates:
        return False, None, None
    start_match, start = dates[0]
    rest = segment[start_match.end() :]
    if len(dates) >= 2:
        end_match, end = dates[1]
        gap = segment[start_match.end() : end_match.start()]
        if _LONG_TERM_RE.search(gap):
            return True, start, None
        if end is None and start is not None:
            # An impossible month/day in the end date is an OCR error: on ID cards and licences
            # the end keeps the start's month and day.
            end = _date(end_match.group(1), str(start.month), str(start.day))
        if end is not None and (start is None or end > start):
            return True, start, end
        return False, start, None
    if _LONG_TERM_RE.search(rest[:8]):
        return True, start, None
    return False, start, None


# ------------------------------------------------------------------------------- names
def masked_like(name: str, masked: str) -> Optional[str]:
    """``name`` masked in the shape of ``masked`` ("张三丰", "张*丰" → "张*丰"), None when the
    lengths differ."""
    if len(name) != len(masked):
        return None
    return "".join("*" if m == "*" else c for c, m in zip(name, masked))


def mask_name(name: str) -> str:
    return name[:1] + "*" * (len(name) - 1) if name else name


def extract_names(lines: Sequence[str], labels: Sequence[str]) -> List[str]:
    """Names that follow one of ``labels`` on the document (same line, or the next line)."""
    config = load_doctypes()
    names: List[str] = []
    for label in labels:
        for number, line in enumerate(lines):
            index, _exact = find_word(line, label) if len(label) >= 3 else (line.find(label), True)
            if index < 0:
                continue
            rest = _PUNCT_RE.sub("", line[index + len(label) :])
            if not rest and number + 1 < len(lines):
                rest = _PUNCT_RE.sub("", lines[number + 1])
            for other in config.field_labels:  # "张伟性别男" → "张伟"
                cut = rest.find(other)
                if cut > 0:
                    rest = rest[:cut]
            match = _CJK_NAME_RE.match(rest)
            if match:
                candidate = match.group(0)[:4]
                if candidate not in names and candidate not in config.field_labels:
                    names.append(candidate)
    return names


def compare_name(masked_name: Optional[str], names: Sequence[str]) -> Optional[bool]:
    """True/False when a name on the document could be compared with the masked applicant name."""
    masked = _compact(masked_name or "")
    if not masked or "*" not in masked or not names:
        return None
    return any(masked_like(name, masked) == masked for name in names)


# ----------------------------------------------------------------------------- masking
def mask_text(text: str, names: Sequence[str] = ()) -> str:
    """OCR text with identity numbers, phone numbers, long digit runs and the names found masked."""
    masked = _ID_LIKE_RE.sub(lambda m: f"{m.group(1)}********{'*' * 3}{m.group(2)}", text or "")
    masked = mask_pii(masked)
    masked = _LONG_DIGITS_RE.sub(lambda m: m.group(1) + "*" * 6 + m.group(2), masked)
    for name in sorted(set(names), key=len, reverse=True):
        if len(name) >= 2:
            masked = masked.replace(name, mask_name(name))
    if len(masked) > TEXT_MASKED_MAX:
        masked = masked[:TEXT_MASKED_MAX] + "…"
    return masked


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
    lines = [normalize_text(line.text) for line in ocr.lines]
    lines = [line for line in lines if line]
    text = "\n".join(lines)
    readable = ocr.chars >= MIN_READABLE_CHARS and ocr.mean_score >= MIN_READABLE_SCORE
    doc_type, scores = classify(text) if text else (None, {})
    rule = material_rule(material)
    expected = rule.doc_type if rule else None

    expiry: Optional[dt.date] = None
    expired: Optional[bool] = None
    long_term = False
    spec = config.types.get(doc_type or "")
    if spec and spec.expiry_label:
        found, _start, end = read_validity(text, spec.expiry_label)
        if found:
            if end is None:
                long_term, expired = True, False
            else:
                expiry, expired = end, end < today

    names: List[str] = []
    name_matches: Optional[bool] = None
    if spec and spec.name_labels:
        names = extract_names(lines, spec.name_labels)
        if rule is None or rule.check_name:
            name_matches = compare_name(masked_name, names)

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


_SUBMIT_ANYWAY = "您可以重新拍一张，也可以先提交，工作人员会核对。"


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
    parts: List[str] = []
    if UNREADABLE in reasons:
        parts.append("这张照片不太清楚，我们看不清上面的字。")
        parts.append("请您在光线好的地方把证件放平，对准后重新拍一张。也可以先提交，工作人员会核对。")
        return "".join(parts)
    if WRONG_TYPE in reasons:
        parts.append(f"这张照片看起来是{found}，我们需要的是{wanted}。{_SUBMIT_ANYWAY}")
    elif UNKNOWN_TYPE in reasons:
        parts.append(f"我们没有认出这是{wanted}。请您确认拍的是{wanted}，并且整张都在照片里。{_SUBMIT_ANYWAY}")
    elif OTHER_SIDE in reasons:
        parts.append(f"收到了，这是{found}。如果还没有上传{wanted}，请您再拍一张。")
    elif found:
        parts.append(f"收到了，这是{found}，字迹清楚。")
    else:
        parts.append("收到了，字迹清楚。")
    if EXPIRED in reasons and expiry:
        parts.append(f"上面的有效期到{_format_date(expiry)}，已经过期了。过期的证件可能不能用，工作人员会核对。")
    elif expiry:
        parts.append(f"有效期到{_format_date(expiry)}。")
    elif long_term:
        parts.append("有效期是长期。")
    if NAME_MISMATCH in reasons:
        parts.append("证件上的姓名和申请人对不上。如果是替别人办理，请一并提交委托书。工作人员会核对。")
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
    from assistant.services.materials.ocr import ocr_upload_sync

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
    "evaluate",
    "VERDICT_OK",
    "VERDICT_DOUBTFUL",
    "OcrLine",
]
