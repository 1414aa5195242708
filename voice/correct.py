"""Correct speech-recognition homophones of catalog terms in a transcript.

A recogniser that does not know 社保卡 writes what it heard: 设保卡, 社宝卡; 户口
becomes 护口. :func:`correct_transcript` replaces such spans with the catalog term
and leaves everything else alone. A span becomes a term when

* every character sounds like the term's character: the same toneless pinyin,
  by any reading of a polyphone, with the usual Mandarin confusions (zh/z, ch/c,
  sh/s, n/l, -ng/-n: the fuzzy syllables of :mod:`knowledge.text` that the item
  linker uses too);
* and enough of its characters are already right: one of two or three, two of
  four, half of longer terms. A span with no right character (一包 for 医保, 虎口
  for 户口) is another word, not a mishearing.

A character is never changed when

* it belongs to a term already in the text (社保卡 stays; in 个人所得税会算 only
  会 changes),
* it belongs to a common word of the text (jieba's dictionary, frequency
  ``COMMON_WORD_FREQ`` or more): 可以保证 keeps its 以保 (可以 is a word), 这个等级
  stays, and so does 生育等级 — conservative; the item linker still links that one,
* or it is a function character (的, 了, 不, 那, 呢 …): 不办了 is not 补办了.

Two-character terms must be established words (护照, 户口, 低保; not the slang 扯证,
which would turn 车证 into 扯证).

:func:`catalog_terms` gives the catalog's terms: names and aliases without the
homophone miswritings the catalog lists for the text linker (设保卡 is an alias of
社会保障卡申领 so that typed text links; as a correction term it would protect
the very mistake it should fix).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple

from pypinyin import Style, pinyin

from knowledge.text import _fuzzy_syllable, compact, normalize, syllables

if TYPE_CHECKING:
    from knowledge.catalog import Catalog

# A word of jieba's dictionary this frequent is a real word, not a mishearing
# (等级 2010, 公示 119, 上传 98, 离异 97 are; rare entries such as 高领 21 are not).
COMMON_WORD_FREQ = 50
# The recogniser hears these reliably and people say them all the time: never changed
# (不办了 is not 补办了, 那结婚证 is not 拿结婚证).
FUNCTION_CHARS = frozenset(
    "的地得了着过不没也都就还又才很太最更是在有这那哪个么吗呢吧啊呀哦嘛和与跟或而"
    "给把被让对从到向为以于我你他她它们"
)
# Two characters sound alike too often: a two-character term is corrected towards
# only when it is an established word (护照, 户口, 低保; not the slang 扯证, which
# would turn 车证 into 扯证).
TWO_CHAR_TERM_FREQ = 20
MIN_TERM_CHARS, MAX_TERM_CHARS = 2, 16

_common_words: Optional[Dict[str, int]] = None
_common_lock = threading.Lock()


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


def common_words() -> Dict[str, int]:
    """Words of 2-4 characters of jieba's *default* dictionary with their frequency
    (at least ``TWO_CHAR_TERM_FREQ``), read from the file: the global tokenizer may
    also hold the catalog's user words."""
    global _common_words
    with _common_lock:
        if _common_words is None:
            from jieba import get_module_res

            words: Dict[str, int] = {}
            with get_module_res("dict.txt") as handle:
                for raw in handle:
                    parts = raw.decode("utf-8").split(" ")
                    if len(parts) >= 2 and 2 <= len(parts[0]) <= 4:
                        freq = int(parts[1])
                        if freq >= TWO_CHAR_TERM_FREQ:
                            words[normalize(parts[0])] = freq
            _common_words = words
        return _common_words


@lru_cache(maxsize=16384)
def _readings(ch: str) -> FrozenSet[str]:
    """All toneless fuzzy readings of one character (polyphones have several)."""
    found = pinyin(ch, style=Style.NORMAL, heteronym=True, errors=lambda c: [c])
    return frozenset(_fuzzy_syllable(s) for s in (found[0] if found else [ch]))


def _required_right(n: int) -> int:
    return max(1, n // 2)


@dataclass(frozen=True)
class _Term:
    text: str
    syl: Tuple[str, ...]
    order: int


class TermCorrector:
    """Corrects transcripts towards a fixed list of terms (see the module doc)."""

    def __init__(self, terms: Iterable[str]):
        common = common_words()
        self._common = {w for w, f in common.items() if f >= COMMON_WORD_FREQ}
        self.protected: List[str] = []
        self._targets: Dict[str, List[_Term]] = {}
        seen_text: Set[str] = set()
        seen_sound: Set[Tuple[str, ...]] = set()
        for term in terms:
            if "+" in term:  # linker rules ("A+B"): not a phrase
                continue
            text = compact(term)
            if not text or text in seen_text:
                continue
            seen_text.add(text)
            self.protected.append(text)
            if not (MIN_TERM_CHARS <= len(text) <= MAX_TERM_CHARS) or not all(map(_is_han, text)):
                continue
            if len(text) == 2 and common.get(text, 0) < TWO_CHAR_TERM_FREQ:
                continue
            syl = tuple(syllables(text))
            if syl in seen_sound:  # a homophone of an earlier term: the earlier one wins
                continue
            seen_sound.add(syl)
            entry = _Term(text, syl, len(seen_sound))
            self._targets.setdefault(syl[0], []).append(entry)

    # ------------------------------------------------------------------ matching
    def _match(self, term: _Term, norm: str, start: int) -> Optional[List[int]]:
        """The positions to change when the span sounds like the term, else None."""
        n = len(term.text)
        changed: List[int] = []
        for k in range(n):
            ch = norm[start + k]
            if ch == term.text[k]:
                continue
            if term.syl[k] not in _readings(ch) or ch in FUNCTION_CHARS:
                return None
            changed.append(start + k)
        if not changed or n - len(changed) < _required_right(n):
            return None
        return changed

    def _in_common_word(self, norm: str, positions: Sequence[int]) -> bool:
        """A common word of the text contains one of the positions."""
        for pos in positions:
            for i in range(max(0, pos - 3), pos + 1):
                for j in range(max(i + 2, pos + 1), min(len(norm), i + 4) + 1):
                    if norm[i:j] in self._common:
                        return True
        return False

    def candidates(self, text: str) -> List[Tuple[int, int, str]]:
        """``(start, end, term)`` of every span that may be replaced (overlapping)."""
        norm = normalize(text)
        protected = [False] * len(norm)
        for term in self.protected:
            pos = norm.find(term)
            while pos >= 0:
                for k in range(pos, pos + len(term)):
                    protected[k] = True
                pos = norm.find(term, pos + 1)
        found: List[Tuple[int, int, int, str]] = []
        for start, ch in enumerate(norm):
            if not _is_han(ch):
                continue
            for first in _readings(ch):
                for term in self._targets.get(first, ()):
                    end = start + len(term.text)
                    if end > len(norm):
                        continue
                    if not all(map(_is_han, norm[start:end])):
                        continue
                    changed = self._match(term, norm, start)
                    # Characters that belong to a term or to a common word are never changed.
                    if changed is None or any(protected[k] for k in changed):
                        continue
                    if self._in_common_word(norm, changed):
                        continue
                    found.append((start, end, term.order, term.text))
        found.sort(key=lambda c: (-(c[1] - c[0]), c[2], c[0]))
        return [(s, e, t) for s, e, _, t in found]

    def correct(self, text: str) -> str:
        taken = [False] * len(text)
        chosen: List[Tuple[int, int, str]] = []
        for start, end, term in self.candidates(text):
            if any(taken[start:end]):
                continue
            for k in range(start, end):
                taken[k] = True
            chosen.append((start, end, term))
        out = text
        for start, end, term in sorted(chosen, reverse=True):
            out = out[:start] + term + out[end:]
        return out


@lru_cache(maxsize=8)
def _corrector(terms: Tuple[str, ...]) -> TermCorrector:
    return TermCorrector(terms)


def correct_transcript(text: str, terms: Iterable[str]) -> str:
    """Replace the spans of ``text`` that sound like one of ``terms`` by that term.

    ``terms`` are plain strings (earlier terms win among homophones); the prepared
    form of the last few term lists is cached, so pass the same list each time.
    """
    if not text:
        return text
    return _corrector(tuple(terms)).correct(text)


def catalog_terms(catalog: "Catalog", parts: bool = True) -> List[str]:
    """The catalog's terms: per record its name (without the bracketed note) and
    aliases, in file order.

    Left out: an alias that sounds like an earlier alias of the same record (the
    miswritings 设保卡, 社宝卡 of 社保卡; 公基金提取 after 公积金+提取) and rule
    aliases ``A+B``. With ``parts``,
    the parts of rule aliases are added when they also occur inside a plain
    alias (户口 from 去世+户口 and 户口迁入; not 坏了 from 身份证+坏了).
    """
    from knowledge.schema import short_name

    terms: List[str] = []
    seen: Set[str] = set()

    def add(value: str) -> None:
        if value and value not in seen:
            seen.add(value)
            terms.append(value)

    part_lists: List[Sequence[str]] = []
    plain_all: List[str] = []
    for record in catalog.items():
        sounds: Set[Tuple[str, ...]] = set()
        plain: List[str] = []
        for name in (short_name(record.name), *record.aliases):
            if "+" in name:
                rule = [compact(p) for p in name.split("+")]
                part_lists.append(rule)
                sounds.add(tuple(syllables("".join(rule))))  # 公基金提取 after 公积金+提取
                continue
            text = compact(name)
            sound = tuple(syllables(text))
            if sound in sounds:
                continue
            sounds.add(sound)
            plain.append(name.strip())
        for name in plain:
            add(name)
        plain_all.extend(compact(p) for p in plain)
    if parts:
        for rule in part_lists:
            for part in rule:
                if len(part) >= MIN_TERM_CHARS and any(part in p for p in plain_all):
                    add(part)
    return terms
