"""The review queue's tunables, read once from ``reviews.yml`` beside this file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

CONFIG_PATH = Path(__file__).resolve().parent / "reviews.yml"


@dataclass(frozen=True)
class ReviewTunables:
    low_confidence: float
    text_chars: int
    batch: int
    page_size: int
    max_page_size: int
    trend_days: int
    max_trend_days: int
    open_days: int
    dismissed_days: int
    situation_min_chars: int
    situation_max_chars: int
    max_situations: int

    @classmethod
    def load(cls, path: Path = CONFIG_PATH) -> "ReviewTunables":
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(
            low_confidence=float(data["collect"]["low_confidence"]),
            text_chars=int(data["collect"]["text_chars"]),
            batch=int(data["collect"]["batch"]),
            page_size=int(data["queue"]["page_size"]),
            max_page_size=int(data["queue"]["max_page_size"]),
            trend_days=int(data["queue"]["trend_days"]),
            max_trend_days=int(data["queue"]["max_trend_days"]),
            open_days=int(data["retention"]["open_days"]),
            dismissed_days=int(data["retention"]["dismissed_days"]),
            situation_min_chars=int(data["accept"]["situation_min_chars"]),
            situation_max_chars=int(data["accept"]["situation_max_chars"]),
            max_situations=int(data["accept"]["max_situations"]),
        )


TUNABLES = ReviewTunables.load()
