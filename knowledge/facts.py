"""Facts under test: ``knowledge/facts.tsv`` pins the facts a citizen acts on.

One row per fact: ``item  field  expected  source``. ``expected`` is a text fragment
that the field must contain, both in the knowledge card (``GET /api/v1/items/{id}``)
and in the answer about that field; a leading ``!`` means it must *not* appear
(``materials.required  !居民户口簿``: the household register is not required).
``banshi kb validate`` checks every row, so an edit cannot silently bring an error back.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from knowledge.answers import CROSS_PROVINCE_ZH, MAIN_MATERIALS, answer, material_line, record_card
from knowledge.catalog import KNOWLEDGE_DIR, Catalog
from knowledge.schema import Material

FACTS_FILE = KNOWLEDGE_DIR / "facts.tsv"
NEGATION = "!"
COLUMNS = ["item", "field", "expected", "source"]


def _materials(card: Dict[str, Any]) -> str:
    materials = [Material.parse_obj(m) for m in card["materials"]]
    return "\n".join(material_line(i, m) for i, m in enumerate(materials, start=1))


def _required(card: Dict[str, Any]) -> str:
    return "、".join(m["name"] for m in card["materials"] if m["required"])


def _lines(key: str) -> Callable[[Dict[str, Any]], str]:
    return lambda card: "\n".join(card[key])


# field → (how to read it from a card, the question whose answer shows it, the answer
# line that shows it (None: the whole answer))
FIELDS: Dict[str, Tuple[Callable[[Dict[str, Any]], str], str, Optional[str]]] = {
    "fees": (lambda card: card["fees"], "fee", None),
    "time_limit": (lambda card: card["time_limit"], "time_limit", None),
    "cross_province": (
        lambda card: f"{CROSS_PROVINCE_ZH[card['cross_province']['available']]}。{card['cross_province']['note']}",
        "location",
        None,
    ),
    "phone": (lambda card: card["where"]["phone"], "location", None),
    "window": (lambda card: card["where"]["window"], "location", None),
    "materials": (_materials, "materials", None),
    "materials.required": (_required, "overview", MAIN_MATERIALS),
    "applicants": (lambda card: card["applicants"], "conditions", None),
    "conditions": (_lines("conditions"), "conditions", None),
    "legal_basis": (_lines("legal_basis"), "conditions", None),
    "steps": (_lines("steps"), "process", None),
    "summary": (lambda card: card["summary"], "overview", None),
    "national": (lambda card: card["national"], "fee", None),
    "local_variation": (lambda card: card["local_variation"], "fee", None),
}


@dataclass(frozen=True)
class Fact:
    line: int
    item: str
    field: str
    expected: str
    source: str

    @property
    def negated(self) -> bool:
        return self.expected.startswith(NEGATION)

    @property
    def fragment(self) -> str:
        return self.expected[len(NEGATION):] if self.negated else self.expected

    def holds(self, text: str) -> bool:
        return (self.fragment in text) != self.negated

    def __str__(self) -> str:
        return f"{self.item} {self.field}: {'must not contain' if self.negated else 'expected'} {self.fragment!r}"


def load_facts(path: Path = FACTS_FILE) -> List[Fact]:
    lines = path.read_text(encoding="utf-8").splitlines()
    numbered = [(n, ln) for n, ln in enumerate(lines, start=1) if ln.strip() and not ln.startswith("#")]
    rows = csv.reader((ln for _, ln in numbered), delimiter="\t")
    header = next(rows)
    if header != COLUMNS:
        raise ValueError(f"{path}: header must be {' '.join(COLUMNS)}")
    facts = []
    for (number, _), row in zip(numbered[1:], rows):
        if len(row) != len(COLUMNS) or not all(cell.strip() for cell in row):
            raise ValueError(f"{path}:{number}: expected {len(COLUMNS)} non-empty tab-separated cells")
        facts.append(Fact(number, *(cell.strip() for cell in row)))
    return facts


def card_text(card: Dict[str, Any], field: str) -> str:
    """The text of one field of a knowledge card (as served by the API)."""
    return FIELDS[field][0](card)


def answer_text(catalog: Catalog, item_id: str, field: str) -> str:
    """What the assistant says about one field: the answer, or its line showing the field."""
    _, question, line_prefix = FIELDS[field]
    text = answer(catalog, item_id, question)
    if line_prefix is None:
        return text
    return next((ln for ln in text.splitlines() if ln.startswith(line_prefix)), "")


def check_facts(catalog: Catalog, facts: List[Fact], path: Path = FACTS_FILE) -> List[str]:
    """``file:line: problem`` for every fact the card or the answer does not state."""
    problems = []
    for fact in facts:
        where = f"{path}:{fact.line}"
        if fact.item not in catalog:
            problems.append(f"{where}: {fact.item}: not in the catalog")
            continue
        if fact.field not in FIELDS:
            problems.append(f"{where}: {fact.field}: unknown field (one of {', '.join(FIELDS)})")
            continue
        if not fact.holds(card_text(record_card(catalog, fact.item), fact.field)):
            problems.append(f"{where}: {fact} (in the knowledge card; source: {fact.source})")
        if not fact.holds(answer_text(catalog, fact.item, fact.field)):
            problems.append(f"{where}: {fact} (in the answer; source: {fact.source})")
    return problems
