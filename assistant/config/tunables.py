"""The dialogue's tunables (thresholds and cue patterns), read once from
``actions/config.yml``: used by the actions and by the operators' suggested answers,
which follow the dialogue's item rules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

import yaml

from assistant.config.settings import PROJECT_ROOT

CONFIG_PATH = PROJECT_ROOT / "actions" / "config.yml"


@dataclass(frozen=True)
class Tunables:
    item_min_score: float
    ambiguity_margin: float
    max_choices: int
    out_of_scope_item_override: float
    ellipsis_pattern: str
    catalog_refresh_seconds: float
    possession_pattern: str
    eligibility_pattern: str
    request_pattern: str
    anaphora_pattern: str
    subject_pattern: str
    how_to_pattern: str
    introducer_pattern: str
    short_follow_up_chars: int
    inferred_switch_chars: int
    uncovered_score: float
    uncovered_score_in_context: float
    min_content_chars: int
    max_related: int
    departments: Tuple[Tuple[str, str], ...]
    max_other_items: int

    @classmethod
    def load(cls, path: Path = CONFIG_PATH) -> "Tunables":
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(
            item_min_score=float(data["item"]["min_score"]),
            ambiguity_margin=float(data["item"]["ambiguity_margin"]),
            max_choices=int(data["item"]["max_choices"]),
            out_of_scope_item_override=float(data["out_of_scope"]["item_override_score"]),
            ellipsis_pattern=str(data["ellipsis"]["pattern"]),
            catalog_refresh_seconds=float(data["catalog"]["refresh_seconds"]),
            possession_pattern=str(data["context"]["possession_pattern"]),
            eligibility_pattern=str(data["context"]["eligibility_pattern"]),
            request_pattern=str(data["context"]["request_pattern"]),
            anaphora_pattern=str(data["context"]["anaphora_pattern"]),
            subject_pattern=str(data["context"]["subject_pattern"]),
            how_to_pattern=str(data["context"]["how_to_pattern"]),
            introducer_pattern=str(data["context"]["introducer_pattern"]),
            short_follow_up_chars=int(data["context"]["short_follow_up_chars"]),
            inferred_switch_chars=int(data["context"]["inferred_switch_chars"]),
            uncovered_score=float(data["not_covered"]["uncovered_score"]),
            uncovered_score_in_context=float(data["not_covered"]["uncovered_score_in_context"]),
            min_content_chars=int(data["not_covered"]["min_content_chars"]),
            max_related=int(data["not_covered"]["max_related"]),
            departments=tuple((str(k), str(v)) for k, v in data["not_covered"]["departments"].items()),
            max_other_items=int(data["multi_intent"]["max_other_items"]),
        )


TUNABLES = Tunables.load()
