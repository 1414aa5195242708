"""Dictation into a form field (the kiosk's pre-application): what the recogniser heard,
made fit for the field's kind. Vosk writes Chinese words apart and numbers in words;
a phone number is said digit by digit ("幺三九…"), an ID number may end in "叉" (X).
No catalog correction here: names and addresses are not catalog terms."""

from __future__ import annotations

import re

from cn2an import transform

DIGITS = {"零": "0", "〇": "0", "洞": "0", "一": "1", "幺": "1", "二": "2", "两": "2", "三": "3", "四": "4",
          "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
X_WORDS = ("艾克斯", "爱克斯", "叉", "x", "X")
DIGIT_KINDS = ("phone", "id_number")
MAX_CHARS = 500
_CJK_GAP = re.compile(r"(?<=[\u3400-\u9fff])\s+(?=[\u3400-\u9fff])")


def _digits(text: str) -> str:
    for word in X_WORDS:
        text = text.replace(word, "X")
    return "".join(DIGITS.get(ch, ch) for ch in text if ch in DIGITS or ch.isdigit() or ch == "X")


def _numerals(text: str) -> str:
    try:
        return transform(text, "cn2an")
    except (ValueError, KeyError, IndexError):  # cn2an refuses odd mixtures
        return text


def dictation_text(transcript: str, kind: str = "text") -> str:
    """``transcript`` as a value of a field of ``kind`` (``knowledge.prefill`` kinds)."""
    text = " ".join((transcript or "").split())[:MAX_CHARS]
    if kind in DIGIT_KINDS:
        digits = _digits(text.replace(" ", ""))
        return digits.replace("X", "") + ("X" if kind == "id_number" and digits.endswith("X") else "")
    text = _CJK_GAP.sub("", text)
    if kind == "number":
        return re.sub(r"\D", "", _numerals(text.replace(" ", "")))
    if kind == "date":
        return _numerals(text.replace(" ", ""))
    if kind == "name":
        return text.replace(" ", "")
    return text
