"""Accepted reviews as reviewable data files, rewritten from the database after every
accept (``BANSHI_REVIEW_EXPORT_DIR``, default ``data_dir/reviews``):

- ``nlu_reviewed.yml``: intent examples (Rasa NLU YAML) from reviews assigned an
  intent, leaving out texts the NLU data already has under any intent (Rasa refuses
  one example under two intents) and rewriting ASCII brackets (Rasa's entity syntax);
- ``situations_reviewed.yml``: per catalog item, the accepted texts as situations
  (how citizens describe the need: what the item linker learns from);
- ``not_covered_reviewed.yml``: questions no catalog item covers, in the form of
  ``knowledge/not_covered.yml`` (the department is left for the maintainer).

The files are a readable record of what accepting did; they are not read back.
Accepting itself makes the data (after the admin's second look, the accept): a text
assigned to an item becomes a situation of it through a catalog revision, live on every
replica (``situations``); a text assigned an intent goes into the next ``banshi train``,
which writes the same examples into ``nlu_data/reviewed`` (``assistant.dialogue.reviewed``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Dict, List, Set

import yaml

from assistant.config.settings import PROJECT_ROOT, Settings
from assistant.dialogue import reviewed
from assistant.services.reviews import queue
from assistant.storage.review_tables import ReviewItem
from knowledge.catalog import Catalog

logger = logging.getLogger(__name__)

NLU_FILE = "nlu_reviewed.yml"
SITUATIONS_FILE = "situations_reviewed.yml"
NOT_COVERED_FILE = "not_covered_reviewed.yml"
FILES = (NLU_FILE, SITUATIONS_FILE, NOT_COVERED_FILE)
NLU_DATA_DIR = PROJECT_ROOT / "nlu_data"
HEADER = (
    "# Generated from the accepted reviews of the review queue (/admin/reviews) by\n"
    "# assistant/services/reviews/export.py. Check it, then copy what is right into {target}.\n"
)


def export_dir(settings: Settings) -> Path:
    return settings.review_export_dir or settings.data_dir / "reviews"


def nlu_yaml(rows: List[ReviewItem], taken: Set[str]) -> str:
    """What ``banshi train`` writes into ``nlu_data/reviewed`` (``assistant.dialogue.reviewed``)."""
    pairs = [(row.assigned_intent, row.text) for row in rows if row.assigned_intent]
    return reviewed.render(reviewed.examples_by_intent(pairs, taken), HEADER.format(target="nlu_data/"))


def situations_yaml(rows: List[ReviewItem], catalog: Catalog) -> str:
    items: Dict[str, List[str]] = {}
    for row in rows:
        if row.assigned_item and not row.text.startswith("（"):
            texts = items.setdefault(row.assigned_item, [])
            if row.text not in texts:
                texts.append(row.text)
    body = [
        {"id": item_id, "name": getattr(catalog.get(item_id), "name", None), "situations": texts}
        for item_id, texts in sorted(items.items())
    ]
    return HEADER.format(target="the items' situations in knowledge/catalog") + yaml.safe_dump(
        {"items": body}, allow_unicode=True, sort_keys=False
    )


def not_covered_yaml(rows: List[ReviewItem]) -> str:
    body = [
        {"text": row.text, "intent": row.assigned_intent or "ask_service"}
        for row in rows if row.not_covered and not row.text.startswith("（")
    ]
    return HEADER.format(target="knowledge/not_covered.yml (add the department)") + (
        yaml.safe_dump(body, allow_unicode=True, sort_keys=False) if body else "[]\n"
    )


def _write(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def write_exports(settings: Settings, catalog: Catalog, nlu_data: Path = NLU_DATA_DIR) -> Dict[str, str]:
    """Rewrite the three files from every accepted review (blocking); their paths."""
    rows = queue.accepted(settings.db_url)
    out = export_dir(settings)
    out.mkdir(parents=True, exist_ok=True)
    texts = {
        NLU_FILE: nlu_yaml(rows, reviewed.taken_texts(nlu_data)),
        SITUATIONS_FILE: situations_yaml(rows, catalog),
        NOT_COVERED_FILE: not_covered_yaml(rows),
    }
    for name, text in texts.items():
        _write(out / name, text)
    logger.info("reviews.export.written dir=%s accepted=%d", out, len(rows))
    return {name: str(out / name) for name in texts}
