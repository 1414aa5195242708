"""Government-service questions that no catalog record covers (``not_covered.yml``).

They teach the item linker what "a real government question, but not one of ours"
looks like (its ``uncovered`` class, beside the records' own ``not_this`` near-misses),
so that such a question is answered honestly ("这个事项我这里还没有收录") instead of
with a similar-looking record; and they are intent examples of the question they ask.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

import yaml
from pydantic import BaseModel, Extra, validator

from knowledge.catalog import KNOWLEDGE_DIR, load_intent_names

NOT_COVERED_FILE = KNOWLEDGE_DIR / "not_covered.yml"


class UncoveredQuestion(BaseModel):
    text: str
    intent: str
    department: str

    class Config:
        extra = Extra.forbid

    @validator("text", "department")
    def _not_empty(cls, value: str) -> str:
        value = str(value).strip()
        if not value:
            raise ValueError("must not be empty")
        return value

    @validator("intent")
    def _known_intent(cls, value: str) -> str:
        if value not in load_intent_names():
            raise ValueError(f"unknown intent {value!r}")
        return value


def load_not_covered(path: Path = NOT_COVERED_FILE) -> List[UncoveredQuestion]:
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return [UncoveredQuestion.parse_obj(entry) for entry in data]
