"""What to say for a reply text: the written answer rewritten for the ear.

espeak-ng (like most offline engines) reads digits as cardinals ("12367" becomes
"一万二千三百六十七"), reads Latin runs as pinyin, drops "¥" and cannot read a
URL. ``speech_text`` rewrites a reply so that a Mandarin voice reads it right:

* application numbers letter by letter and digit by digit
  (ZW20250318007 → "Z W 二零二五零三一八零零七"); hotlines, phone numbers, phone
  tails and other codes digit by digit (12367 → 一二三六七, 尾号1001 → 一零零一);
* dates in words (2026年12月7日, 2026-12-07 → 二零二六年十二月七日), times
  (9:00-17:00 → 九点到十七点), amounts (¥20, 20元 → 二十元), percentages,
  ranges (3-5个 → 三到五个), every other number as a cardinal (a lone 2 before
  a measure word is 两: 两个, 两年);
* numbered lists ("1. …" lines, "1、", "（1）", "①") → "第一，…。第二，…。";
* URLs and e-mail addresses are not read out ("网址见屏幕" / "邮箱见屏幕");
* brackets are dropped or read as a pause (【标题】 → "标题，", （说明） →
  "，说明，"), emoji and other symbols removed, whitespace collapsed, every
  line ends with a full stop (a pause, and a sentence boundary for chunking).

Number words come from ``cn2an`` (Arabic → Chinese numerals); the rules that
decide *how* a number is read are ours. The result contains no ASCII digits.
"""

from __future__ import annotations

import re
import unicodedata
from typing import List, Match, Optional, Tuple

from cn2an import an2cn

URL_SPOKEN = "网址见屏幕"
EMAIL_SPOKEN = "邮箱见屏幕"

DIGITS = "零一二三四五六七八九"
# Full-width digits, letters and a few symbols → ASCII (Chinese punctuation stays).
_FULLWIDTH = {code: code - 0xFEE0 for code in range(0xFF10, 0xFF5B) if chr(code - 0xFEE0).isalnum()}
_FULLWIDTH.update({ord(a): ord(b) for a, b in zip("％．－＋＄～／＠：", "%.-+$~/@:")})

# Measure words after which a lone 2 is read 两 (两个, 两份, 两年), not 二.
_LIANG_UNITS = "个份张本次天年周名位人元种项件页寸岁套台辆间户类步趟"
# Cue words after which a number is a code read digit by digit.
_CODE_CUES = "尾号|后四位|后4位|号码|电话|热线|拨打|致电|编号|单号|邮编|验证码"
# Units that make a long number a quantity (12000人), not a code (12345).
_QUANTITY_UNITS = "元万亿人个份天年月日次户名位件平米公里斤克吨岁"

# Unit symbols read in words (after a number or a Chinese word).
_UNIT_WORDS = {
    "㎡": "平方米",
    "m²": "平方米",
    "km": "公里",
    "kg": "公斤",
    "cm": "厘米",
    "℃": "摄氏度",
}
# Latin words read in Chinese; other capital runs are spelt letter by letter.
_WORDS = {"app": "应用", "wifi": "无线网络", "wi-fi": "无线网络"}

_URL_CHARS = r"[A-Za-z0-9\-._~:/?#@!$&*+=%,;]"
_URL_RE = re.compile(
    rf"(?:https?://|ftp://|www\.){_URL_CHARS}+"
    r"|(?<![@\w.])[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:cn|com|net|org|gov|edu|info)"
    rf"(?![a-z0-9])(?:/{_URL_CHARS}*)?",
    re.IGNORECASE,
)
# An address to read out (an office's mailbox), not pii.EMAIL: it must end in a letter
# domain, so "v1.2@3.4" is not spelled as one.
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")

# A list marker: "1. xx" / "1.xx" (not "1.5"), "1、", "（1）", "①".
_MARKER = (
    r"(?:(?P<n1>\d{1,2})[.．](?:[ \t]+|(?=[^\d\s]))"
    r"|(?P<n2>\d{1,2})、"
    r"|[（(](?P<n3>\d{1,2})[）)]"
    r"|(?P<circled>[①-⑳]))"
)
_LINE_MARKER_RE = re.compile(r"^(?P<lead>[ \t]*)" + _MARKER)
_INLINE_MARKER_RE = re.compile(r"(?P<lead>[：:；;。！？])[ \t]*" + _MARKER)
_BULLET_RE = re.compile(r"^[ \t]*[-•●○■□◆◇▪·*][ \t]+")

# What may be left in spoken text: these pause marks, letters, CJK, spaces.
_PAUSES = "，。！？；：、"
_CJK = r"\u3400-\u9fff"


def _digits(number: str) -> str:
    """Digit by digit: "1001" → "一零零一"."""
    return "".join(DIGITS[int(ch)] for ch in number if ch.isdigit())


def _cardinal(number: str) -> str:
    """A number as a quantity: "120" → "一百二十", "12.50" → "十二点五"."""
    whole, _, fraction = number.partition(".")
    fraction = fraction.rstrip("0")
    whole = whole.lstrip("0") or "0"
    if len(whole) > 12:  # beyond the numbers people say: read the digits
        return _digits(number)
    return an2cn(f"{whole}.{fraction}" if fraction else whole)


def _quantity(number: str, before: str = "", after: str = "") -> str:
    """A cardinal; a lone 2 before a measure word is 两 (两个, 两年; not 第两)."""
    if number == "2" and after and after[0] in _LIANG_UNITS and before[-1:] != "第":
        return "两"
    return _cardinal(number)


def _around(match: Match[str]) -> Tuple[str, str]:
    """The character before and after a match (for 第 and measure words)."""
    text = match.string
    return text[max(match.start() - 1, 0) : match.start()], text[match.end() : match.end() + 1]


def _digit_groups(value: str) -> str:
    """"0571-12345678" / "138 0013 8000" → each group digit by digit, a pause between."""
    return "，".join(_digits(group) for group in re.split(r"[\s-]+", value) if group)


def _urls_and_emails(text: str) -> str:
    def url(match: Match[str]) -> str:
        # Sentence punctuation after a URL is not part of it.
        trailing = re.search(r"[.,;:!?]*$", match.group(0)).group(0)  # type: ignore[union-attr]
        return URL_SPOKEN + trailing

    text = _EMAIL_RE.sub(EMAIL_SPOKEN, text)
    text = _URL_RE.sub(url, text)
    return re.sub(rf"[ \t]*({URL_SPOKEN}|{EMAIL_SPOKEN})[ \t]*", r"\1", text)


def _list_markers(text: str) -> str:
    """Numbered list items → "第一，…" (a line's start, or after a clause break)."""

    def marker(match: Match[str]) -> str:
        number = match.group("n1") or match.group("n2") or match.group("n3")
        if number is None:
            number = str(unicodedata.digit(match.group("circled")))
        return f"{match.group('lead')}第{_cardinal(number)}，"

    lines = []
    for line in text.split("\n"):
        line = _BULLET_RE.sub("", line)
        line = _LINE_MARKER_RE.sub(marker, line, count=1)
        lines.append(_INLINE_MARKER_RE.sub(marker, line))
    return "\n".join(lines)


def _codes(text: str) -> str:
    """Application numbers and codes: letters spaced, digits one by one."""

    def code(match: Match[str]) -> str:
        letters = " ".join(match.group(1).upper())
        return f" {letters} {_digit_groups(match.group(2))} "

    # ZW20250318007, ZW-2025-001 (at least 4 digits, so "A4" stays a word).
    text = re.sub(r"(?<![A-Za-z])([A-Za-z]{1,4})[-_]?(\d{4,}(?:-\d+)*)(?!\d)", code, text)
    # Numbers after cue words: 尾号1001, 拨打12345, 电话：0571-12345678.
    return re.sub(
        rf"(?P<cue>{_CODE_CUES})(?P<sep>\s*(?:是|为|:)?\s*)(?P<num>\d+(?:[ -]\d+)*)",
        lambda m: f"{m.group('cue')}{m.group('sep')}{_digit_groups(m.group('num'))}",
        text,
    )


def _dates(text: str) -> str:
    def full(match: Match[str]) -> str:
        year, month, day = match.group(1), int(match.group(2)), int(match.group(3))
        if not (1 <= month <= 12 and 1 <= day <= 31):
            return match.group(0)
        return f"{_digits(year)}年{_cardinal(str(month))}月{_cardinal(str(day))}日"

    # 2026-12-07, 2026/12/7, 2026.12.7, 2026年12月7日 (号).
    text = re.sub(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?![\d.])", full, text)
    text = re.sub(r"(?<!\d)(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]", full, text)
    # Years (2019年, 2019-2020年) digit by digit; "1000年以上" stays a quantity.
    text = re.sub(
        r"(?<!\d)(\d{4})\s*[-~—–至到]\s*(\d{4})\s*年",
        lambda m: f"{_digits(m.group(1))}到{_digits(m.group(2))}年",
        text,
    )
    text = re.sub(
        r"(?<!\d)(\d{4})\s*年(?!以上|以下|以内|内|之内|左右|多)",
        lambda m: f"{_digits(m.group(1))}年",
        text,
    )
    return re.sub(
        r"(?<!\d)(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]",
        lambda m: f"{_cardinal(m.group(1))}月{_cardinal(m.group(2))}日",
        text,
    )


def _times(text: str) -> str:
    def clock(hour: str, minute: str) -> str:
        spoken = f"{_cardinal(hour)}点"
        if int(minute) == 30:
            return spoken + "半"
        return spoken + (f"{_cardinal(minute)}分" if int(minute) else "")

    time = r"(\d{1,2})\s*:\s*([0-5]\d)"
    text = re.sub(
        rf"(?<![\d.]){time}\s*(?:-|~|—|–|至|到)\s*{time}(?!\d)",
        lambda m: f"{clock(m.group(1), m.group(2))}到{clock(m.group(3), m.group(4))}",
        text,
    )
    return re.sub(rf"(?<![\d.:]){time}(?![\d:])", lambda m: clock(m.group(1), m.group(2)), text)


def _amounts(text: str) -> str:
    number = r"(\d+(?:,\d{3})*(?:\.\d+)?)"

    def money(match: Match[str]) -> str:
        before, _ = _around(match)
        return f"{_quantity(match.group(1).replace(',', ''), before, '元')}元"

    text = re.sub(rf"[¥￥]\s*{number}\s*元?", money, text)
    text = re.sub(rf"(?i)\b(?:RMB|CNY)\s*{number}\s*元?", money, text)
    text = re.sub(rf"(?<![\d.]){number}\s*(?:元|块钱)", money, text)
    return re.sub(
        rf"(?<![\d.]){number}\s*%",
        lambda m: f"百分之{_cardinal(m.group(1).replace(',', ''))}",
        text,
    )


def _numbers(text: str) -> str:
    """Ranges, hyphenated codes, then every remaining number."""

    def hyphenated(match: Match[str]) -> str:
        groups = re.split(r"\s*-\s*", match.group(0))
        before, after = _around(match)
        small = all(len(g) <= 4 and not (len(g) > 1 and g.startswith("0")) for g in groups)
        if len(groups) == 2 and small and int(groups[0]) < int(groups[1]):
            return f"{_quantity(groups[0], before)}到{_quantity(groups[1], '', after)}"
        return "，".join(_digits(g) for g in groups)  # 26341-2010, 010-12345678

    def spoken_range(match: Match[str]) -> str:
        before, after = _around(match)
        return f"{_quantity(match.group(1), before)}到{_quantity(match.group(2), '', after)}"

    def number(match: Match[str]) -> str:
        value = match.group(0).replace(",", "")
        before, after = _around(match)
        whole = value.partition(".")[0]
        leading_zero = len(whole) > 1 and whole.startswith("0")
        long_code = "." not in value and "," not in match.group(0) and len(whole) >= 5
        if leading_zero or (long_code and not (after and after in _QUANTITY_UNITS)):
            return _digits(value)  # hotlines, phone numbers, postcodes, 0571
        return _quantity(value, before, after)

    text = re.sub(r"(?<![\d.])\d+(?:\s*-\s*\d+)+(?![\d.])", hyphenated, text)
    text = re.sub(r"(?<![\d.])(\d+)\s*[~—–至到]\s*(\d+)(?![\d.])", spoken_range, text)
    return re.sub(r"\d+(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?", number, text)


def _latin(match: Match[str]) -> str:
    word = match.group(0)
    if word.lower() in _WORDS:
        return _WORDS[word.lower()]
    if word.isupper() and len(word) <= 8:
        return f" {' '.join(word)} "  # GB → G B: letters by name
    return f" {word} "


def _symbols(text: str) -> str:
    # Brackets: a title becomes a phrase, an aside a clause, quotes disappear.
    text = re.sub(r"【([^【】]*)】", r"\1，", text)
    previous = None
    while previous != text:  # inner brackets first
        previous = text
        text = re.sub(r"[（(]([^（）()]*)[）)]", r"，\1，", text)
    text = re.sub(r"[\[［]([^\]］]*)[\]］]", r"\1", text)
    text = re.sub(r"[《》〈〉“”‘’\"「」『』]", "", text)
    for unit, word in _UNIT_WORDS.items():
        text = re.sub(rf"(?<![A-Za-z]){re.escape(unit)}(?![A-Za-z])", word, text)
    text = re.sub(r"(?<=元)\s*/\s*", "每", text)  # 一百二十元/本 → 一百二十元每本
    text = re.sub(rf"(?<=[{_CJK}])\s*/\s*(?=[{_CJK}])", "或", text)  # 身份证/户口簿
    text = text.replace("&", "和").replace("+", "加")
    text = re.sub(r"\s*(?:→|->|⇒|=>|——|—|……|…)\s*", "，", text)
    text = re.sub(r"[A-Za-z]+(?:-[A-Za-z]+)?", _latin, text)
    # ASCII punctuation → Chinese pause marks; a "." is a full stop only after Chinese.
    text = text.translate(str.maketrans({",": "，", ";": "；", ":": "：", "!": "！", "?": "？"}))
    text = re.sub(rf"(?<=[{_CJK}])\.(?=\s|$|[{_CJK}])", "。", text)
    # Keep letters, marks, CJK, pause marks and blanks; drop emoji and other symbols.
    return "".join(ch if _spoken(ch) else " " for ch in text)


def _spoken(ch: str) -> bool:
    if ch in _PAUSES or ch in " \t\n":
        return True
    category = unicodedata.category(ch)
    return category[0] in "LN" or category == "Mn" and not ("\ufe00" <= ch <= "\ufe0f")


def _tidy(text: str) -> str:
    """One pause mark where several were, no stray blanks, each line a sentence."""
    sentences = []
    for line in text.split("\n"):
        line = re.sub(r"[ \t\u3000\u00a0]+", " ", line).strip()
        line = re.sub(rf"(?<=[{_CJK}]) (?=[{_CJK}])", "，", line)  # a blank between words: a pause
        line = re.sub(rf" ?([{_PAUSES}]) ?", r"\1", line)
        line = re.sub(r"[，、]+([。！？；：])", r"\1", line)  # "，。" → "。"
        line = re.sub(r"([：；])[，、]+", r"\1", line)  # "：，" → "："
        line = re.sub(r"([，、])[，、]+", r"\1", line)
        line = re.sub(r"([。！？；])[。！？；，、]+", r"\1", line)
        line = re.sub(rf"^[{_PAUSES} ]+|[，、：; ]+$", "", line)
        if line:
            sentences.append(line if line[-1] in "。！？；" else line + "。")
    return "".join(sentences)


def speech_text(text: str) -> str:
    """What to say for ``text`` (a reply as shown on screen): see the module doc."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text).translate(_FULLWIDTH)
    text = re.sub(r"\r\n?|[\u2028\u2029]", "\n", text)
    for step in (_urls_and_emails, _list_markers, _codes, _dates, _times, _amounts, _numbers, _symbols):
        text = step(text)
    return _tidy(text)


def split_sentences(spoken: str, max_chars: int = 80) -> List[str]:
    """Spoken text → sentences (cut after 。！？；; over ``max_chars`` at a comma).

    A piece shorter than 6 characters joins the next one, so that each chunk is
    worth a synthesis call.
    """
    pieces = [p for p in re.split(r"(?<=[。！？；])", spoken) if p.strip()]
    sentences: List[str] = []
    for piece in pieces:
        while len(piece) > max_chars:
            cut = max(piece.rfind(mark, 0, max_chars) for mark in "，、：")
            cut = cut + 1 if cut > 0 else max_chars
            sentences.append(piece[:cut])
            piece = piece[cut:]
        if piece:
            sentences.append(piece)
    merged: List[str] = []
    pending: Optional[str] = None
    for sentence in sentences:
        sentence = pending + sentence if pending else sentence
        pending = None
        if len(sentence) < 6:
            pending = sentence
        else:
            merged.append(sentence)
    if pending:
        if merged and len(merged[-1]) + len(pending) <= max_chars:
            merged[-1] += pending
        else:
            merged.append(pending)
    return merged


__all__ = ["speech_text", "split_sentences", "URL_SPOKEN", "EMAIL_SPOKEN"]
