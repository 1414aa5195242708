"""Character error rate of Chinese transcripts (used by the speech benches and tests)."""

from __future__ import annotations

import re

_NOT_HAN = re.compile(r"[^\u3400-\u4dbf\u4e00-\u9fff]")


def han(text: str) -> str:
    """Only the Chinese characters of ``text`` (punctuation, spaces, Latin dropped)."""
    return _NOT_HAN.sub("", text)


def edit_distance(ref: str, hyp: str) -> int:
    """Levenshtein distance between two strings, in characters."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            cur = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
            prev = cur
    return row[len(hyp)]


def char_error_rate(said: str, heard: str) -> float:
    """Edits per character of ``said``, on the Chinese characters of both."""
    ref = han(said)
    return edit_distance(ref, han(heard)) / max(1, len(ref))
