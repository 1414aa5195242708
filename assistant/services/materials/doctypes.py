"""The document rules of ``doctypes.yml`` and what they read from OCR text: the document type
(keywords found exactly or with one OCR error, and patterns), the validity dates, the names.

Pure functions on normalised OCR text; used by :mod:`assistant.services.materials.precheck`.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import yaml

DOCTYPES_PATH = Path(__file__).with_name("doctypes.yml")

_FULLWIDTH_DIGITS = str.maketrans({"Ｏ": "0", "O": "0", "o": "0", "〇": "0", "l": "1", "I": "1", "|": "1"})
_PUNCT_RE = re.compile(r"[\s:：,，;；、\"'“”‘’()（）\[\]【】<>《》]+")
_DATE_RE = re.compile(r"((?:19|20)[0-9]{2})[^0-9长]{0,2}?([0-9]{1,2})[^0-9长]{0,2}?([0-9]{1,2})日?")
_LONG_TERM_RE = re.compile(r"长期|长朝|长其|永久")
_RANGE_SEP_RE = re.compile(r"[\s\-－—–一~～_至起到]+")  # 一: OCR's reading of a dash
MAX_RANGE_GAP = 4  # characters between the two dates of a range ("-", " 至 ", "起至")
_CJK_NAME_RE = re.compile(r"[\u4e00-\u9fff][\u4e00-\u9fff·•]{1,5}")

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


def accepted_doc_types(material: Optional[str]) -> Tuple[str, ...]:
    """Every document type that is a proper part of a material (``"居民身份证"`` → both sides)."""
    rule = material_rule(material)
    return (rule.doc_type, *rule.also) if rule else ()


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


def find_word(text: str, word: str, fuzzy_text: Optional[str] = None) -> Tuple[int, bool]:
    """Where ``word`` is in ``text``: (index, exact). Index -1 when absent.

    Words of three or more characters are also found with one OCR error (a wrong, missing or extra
    character), as long as the first or the last character is right. ``fuzzy_text`` (same length
    as ``text``) is where that approximate search looks; characters blanked to ``"\0"`` there
    (other known words, read exactly) are never part of an approximate hit: "结婚证" read right is
    not "离婚证" read wrong.
    """
    index = text.find(word)
    if index >= 0:
        return index, True
    size = len(word)
    if size < 3:
        return -1, False
    haystack = text if fuzzy_text is None else fuzzy_text
    # Candidate windows start at the word's first character or end at its last one.
    starts = set(_positions(haystack, word[0]))
    for end in _positions(haystack, word[-1]):
        starts.update(end + 1 - length for length in (size, size - 1, size + 1))
    for start in sorted(starts):
        for length in (size, size - 1, size + 1):
            if start < 0 or start + length > len(haystack):
                continue
            window = haystack[start : start + length]
            if "\n" in window or "\0" in window:
                continue
            if (window[0] == word[0] or window[-1] == word[-1]) and _within_one_edit(window, word):
                return start, False
    return -1, False


def _positions(text: str, char: str) -> List[int]:
    found, index = [], text.find(char)
    while index >= 0:
        found.append(index)
        index = text.find(char, index + 1)
    return found


def blank_known_words(text: str, words: Sequence[str]) -> str:
    """``text`` with every exact occurrence of ``words`` (3+ characters) blanked to ``"\0"``."""
    blanked = list(text)
    for word in words:
        if len(word) < 3:
            continue
        start = text.find(word)
        while start >= 0:
            blanked[start : start + len(word)] = "\0" * len(word)
            start = text.find(word, start + 1)
    return "".join(blanked)


def score_types(text: str) -> Dict[str, float]:
    """The score of every document type for a normalised OCR text."""
    config = load_doctypes()
    fuzzy_text = blank_known_words(text, config.field_labels)
    scores: Dict[str, float] = {}
    for key, spec in config.types.items():
        score = 0.0
        for word, weight in spec.keywords.items():
            if weight < 0:  # a veto word counts only when read exactly
                score += weight if word in text else 0.0
                continue
            index, exact = find_word(text, word, fuzzy_text)
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

    After ``label`` (found approximately), the first date and what follows it at once (a second
    date or 长期, a few characters away at most); without the label, only an explicit range
    (``date - date``, ``date 至 长期``) anywhere. Two unrelated dates (成立日期 and the issue date
    of a licence) are never taken for a range.
    """
    segment, labelled = text, False
    if label:
        index, _exact = find_word(text, label)
        if index >= 0:
            segment = "".join(text[index + len(label) - 1 :].split("\n")[:3])  # the value may be on the next lines
            labelled = True
    segment = segment.translate(_FULLWIDTH_DIGITS)
    dates = [(m, _date(*m.groups())) for m in _DATE_RE.finditer(segment)]
    if labelled and not dates:
        # The value was read before its label (a turned photo puts the boxes in another order):
        # only an explicit range anywhere then.
        return read_validity(text, None)
    for number, (match, start) in enumerate(dates[:1] if labelled else dates):
        after = segment[match.end() : match.end() + 8]
        if _LONG_TERM_RE.match(_RANGE_SEP_RE.sub("", after)[:3]) and (labelled or _RANGE_SEP_RE.match(after)):
            return True, start, None
        if number + 1 >= len(dates):
            break
        end_match, end = dates[number + 1]
        gap = segment[match.end() : end_match.start()]
        if len(gap) > MAX_RANGE_GAP or not (_RANGE_SEP_RE.fullmatch(gap) or (labelled and not gap)):
            continue
        if end is None and start is not None:
            # An impossible month/day in the end date is an OCR error: on ID cards the end keeps
            # the start's month and day.
            end = _date(end_match.group(1), str(start.month), str(start.day))
        if end is not None and (start is None or end > start):
            return True, start, end
    return False, None, None


# ------------------------------------------------------------------------------- names
def masked_like(name: str, masked: str) -> Optional[str]:
    """``name`` masked in the shape of ``masked`` ("张三丰", "张*丰" → "张*丰"), None when the
    lengths differ."""
    if len(name) != len(masked):
        return None
    return "".join("*" if m == "*" else c for c, m in zip(name, masked))


def mask_name(name: str) -> str:
    return name[:1] + "*" * (len(name) - 1) if name else name


def _geometry(box) -> Optional[Tuple[float, float, float, float, float, float]]:
    """(centre x, centre y, cos, sin of the text direction, width, height) of a 4-corner box."""
    if not box or len(box) != 4:
        return None
    (x0, y0), (x1, y1), _, (x3, y3) = box
    width = math.hypot(x1 - x0, y1 - y0)
    height = math.hypot(x3 - x0, y3 - y0)
    if width <= 0 or height <= 0:
        return None
    cx = sum(x for x, _ in box) / 4
    cy = sum(y for _, y in box) / 4
    return cx, cy, (x1 - x0) / width, (y1 - y0) / width, width, height


def value_right_of(lines: Sequence[Tuple[str, tuple]], index: int) -> Optional[str]:
    """The text of the box just right of ``lines[index]`` on the same text row (rotation-aware)."""
    here = _geometry(lines[index][1])
    if here is None:
        return lines[index + 1][0] if index + 1 < len(lines) else None
    cx, cy, cos, sin, width, height = here
    best, best_dx = None, None
    for number, (text, box) in enumerate(lines):
        other = _geometry(box) if number != index else None
        if other is None:
            continue
        vx, vy = other[0] - cx, other[1] - cy
        dx, dy = vx * cos + vy * sin, -vx * sin + vy * cos  # in the label's text frame
        if dx <= 0 or abs(dy) > 0.6 * max(height, other[5]):
            continue
        gap = dx - width / 2 - other[4] / 2
        if gap > 8 * height:
            continue
        if best_dx is None or dx < best_dx:
            best, best_dx = text, dx
    return best


def _strip_labels(rest: str, labels: Sequence[str]) -> str:
    """Leading labels off ("乙方张伟" → "张伟"), the value cut at the next label ("张伟性别男" → "张伟")."""
    changed = True
    while changed and rest:
        changed = False
        for label in labels:
            if rest.startswith(label):
                rest, changed = rest[len(label) :], True
    for label in labels:
        cut = rest.find(label)
        if cut > 0:
            rest = rest[:cut]
    return rest


def extract_names(lines: Sequence[Tuple[str, tuple]], labels: Sequence[str]) -> List[str]:
    """Names that follow one of ``labels``: in the same OCR box, else the box to its right on the
    same text row (or the next line when there are no boxes, e.g. a PDF text layer).

    ``lines``: (normalised text, four corners or ()) in reading order.
    """
    config = load_doctypes()
    names: List[str] = []
    for label in labels:
        for number, (line, _box) in enumerate(lines):
            index, _exact = find_word(line, label) if len(label) >= 3 else (line.find(label), True)
            if index < 0:
                continue
            rest = _strip_labels(_PUNCT_RE.sub("", line[index + len(label) :]), config.field_labels)
            if not rest:
                rest = _strip_labels(_PUNCT_RE.sub("", value_right_of(lines, number) or ""), config.field_labels)
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
