"""The analytics' tunables, read once from ``analytics.yml`` beside this file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

CONFIG_PATH = Path(__file__).resolve().parent / "analytics.yml"


@dataclass(frozen=True)
class AnalyticsTunables:
    max_days: int
    top: int
    top_topics: int
    fresh_seconds: float
    settle_minutes: float
    reply_grace_seconds: float
    topic_chars: int
    window_days: int
    days_per_pass: int
    catch_up_seconds: float

    @classmethod
    def load(cls, path: Path = CONFIG_PATH) -> "AnalyticsTunables":
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(
            max_days=int(data["report"]["max_days"]),
            top=int(data["report"]["top"]),
            top_topics=int(data["report"]["top_topics"]),
            fresh_seconds=float(data["rollup"]["fresh_seconds"]),
            settle_minutes=float(data["rollup"]["settle_minutes"]),
            reply_grace_seconds=float(data["rollup"]["reply_grace_seconds"]),
            topic_chars=int(data["rollup"]["topic_chars"]),
            window_days=int(data["background"]["window_days"]),
            days_per_pass=int(data["background"]["days_per_pass"]),
            catch_up_seconds=float(data["background"]["catch_up_seconds"]),
        )


TUNABLES = AnalyticsTunables.load()
