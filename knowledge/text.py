"""Chinese text normalisation and pinyin helpers shared by NLU, search and voice."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import List

from opencc import OpenCC
from pypinyin import Style, lazy_pinyin

_T2S = OpenCC("t2s")

# Initials and finals that Mandarin speakers (and speech recognisers) often confuse.
_FUZZY_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"))
_FUZZY_FINALS = (("ang", "an"), ("eng", "en"), ("ing", "in"))

_SPACE_RE = re.compile(r"\s+")
_PUNCT = set("，。！？、；：“”‘’（）《》【】,.!?;:'\"()[]<>~～…—-·")


@lru_cache(maxsize=4096)
def _t2s_char(ch: str) -> str:
    out = _T2S.convert(ch)
    return out if len(out) == 1 else ch


def to_simplified(text: str) -> str:
    """Traditional → simplified, character by character (keeps offsets stable)."""
    return "".join(_t2s_char(ch) if ord(ch) > 0x2E80 else ch for ch in text)


def normalize(text: str, lower: bool = True) -> str:
    """Full-width → half-width, traditional → simplified (and lower case): one character
    for one character, so offsets into the original text stay valid."""
    folded = "".join(
        unicodedata.normalize("NFKC", ch) if len(unicodedata.normalize("NFKC", ch)) == 1 else ch
        for ch in text
    )
    return to_simplified(folded.lower() if lower else folded)


def compact(text: str) -> str:
    """Normalised text without spaces and punctuation (for matching)."""
    return "".join(ch for ch in _SPACE_RE.sub("", normalize(text)) if ch not in _PUNCT)


@lru_cache(maxsize=8192)
def _fuzzy_syllable(syllable: str) -> str:
    for full, short in _FUZZY_INITIALS:
        if syllable.startswith(full):
            syllable = short + syllable[len(full):]
            break
    for full, short in _FUZZY_FINALS:
        if syllable.endswith(full):
            syllable = syllable[: -len(full)] + short
            break
    return syllable


def syllables(text: str, fuzzy: bool = True) -> List[str]:
    """One pinyin syllable (no tone) per character; other characters stay as they are."""
    out = lazy_pinyin(text, style=Style.NORMAL, errors=lambda chunk: list(chunk))
    if len(out) != len(text):  # pypinyin keeps unknown runs together in rare cases
        out = [lazy_pinyin(ch, style=Style.NORMAL, errors=lambda c: list(c))[0] for ch in text]
    return [_fuzzy_syllable(s) for s in out] if fuzzy else out


# Question words, fillers and generic verbs: what is left of a message without them is
# its content ("网上能办吗" has none; "单位公积金缴存基数怎么调" has plenty).
_FILLER_RE = re.compile(
    r"在哪里|去哪里|请问|你好|您好|我想|我要|想问|问一下|问问|一下|那个|这个|就是|嗯|啊|呀|吧|呢|吗|嘛|么|了|的|"
    r"怎么办|怎么弄|怎么|咋办|咋弄|咋整|咋|如何|办理|去哪|哪里|哪儿|在哪|什么|啥|多少|多久|需要|要|能|可以|"
    r"材料|手续|流程|步骤|条件|费用|收费|时间|地方|网上|手机上|窗口|在|办|弄|搞|整|我|你|他|她|还|也|都|"
    r"得|给|带|交|钱|几天|多长|一般|大概|现在|那|这|有|没有|是|不|个|些|呀|哦|喔"
)


def content_of(text: str) -> str:
    """The message without question words, fillers and generic verbs."""
    return _FILLER_RE.sub("", compact(text))
