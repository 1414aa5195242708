"""The call mode's tunables, read once from ``callmode.yml`` beside this file."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Tuple

import yaml

CONFIG_PATH = Path(__file__).resolve().parent / "callmode.yml"


@dataclass(frozen=True)
class RankingTunables:
    min_phrase_score: float
    decay: float
    min_evidence: float
    switch_margin: float
    min_question_confidence: float
    k: int
    context_phrases: int
    bundle_min_evidence: float


@dataclass(frozen=True)
class AsrTunables:
    phrase_end_silence_s: float
    silence_rms: int
    max_frame_bytes: int


@dataclass(frozen=True)
class DraftTunables:
    summary_need_chars: int
    answer_chars: int
    categories: Tuple[Tuple[str, Tuple[str, ...]], ...]
    default_category: str
    address_cues: Tuple[str, ...]
    surnames: str
    compound_surnames: Tuple[str, ...]


@dataclass(frozen=True)
class PhoneTunables:
    from_audio: bool
    digit_words: Tuple[str, ...]
    cue_words: Tuple[str, ...]
    cues: Tuple[str, ...]
    window_s: float
    settle_s: float
    endpoint_silence_s: float


@dataclass(frozen=True)
class CallTunables:
    ranking: RankingTunables
    asr: AsrTunables
    draft: DraftTunables
    phone: PhoneTunables


@lru_cache(maxsize=None)
def load_tunables(path: Path = CONFIG_PATH) -> CallTunables:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    draft = dict(data["draft"])
    draft["categories"] = tuple((name, tuple(words)) for name, words in draft["categories"])
    draft["address_cues"] = tuple(sorted(draft["address_cues"], key=len, reverse=True))
    draft["compound_surnames"] = tuple(draft["compound_surnames"])
    return CallTunables(
        ranking=RankingTunables(**data["ranking"]),
        asr=AsrTunables(**data["asr"]),
        draft=DraftTunables(**draft),
        phone=PhoneTunables(**{k: tuple(v) if isinstance(v, list) else v for k, v in data["phone"].items()}),
    )


TUNABLES = load_tunables()
