"""Accepted reviews as reviewable data files, rewritten from the database after every
accept (``BANSHI_REVIEW_EXPORT_DIR``, default ``data_dir/reviews``):

- ``nlu_reviewed.yml``: intent examples (Rasa NLU YAML) from reviews assigned an
  intent, leaving out texts the NLU data already has under any intent (Rasa refuses
  one example under two intents) and rewriting ASCII brackets (Rasa's entity syntax);
- ``situations_reviewed.yml``: per catalog item, the accepted texts as situations
  (how citizens describe the need: what the item linker learns from);
- ``not_covered_reviewed.yml``: questions no catalog item covers, in the form of
  ``knowledge/not_covered.yml`` (the department is left for the maintainer).

Nothing here changes what the running assistant answers: the files are exported for
a maintainer to read, then copy into ``nlu_data/`` and the catalog before the next
training (``rasa data validate`` accepts the NLU file beside ``nlu_data``). Writing
into the training data or the live catalog from a web request would change the model's
inputs without a second pair of eyes, and the gateway's data directory may be the only
writable place in a deployment.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Dict, List, Set

import yaml

from assistant.config.settings import PROJECT_ROOT, Settings
from assistant.services.reviews import queue
from assistant.storage.review_tables import ReviewItem
from knowledge.catalog import Catalog
from knowledge.nlu_examples import hand_written_texts

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
_BRACKETS = str.maketrans({"[": "［", "]": "］", "(": "（", ")": "）", "{": "｛", "}": "｝"})


def export_dir(settings: Settings) -> Path:
    return settings.review_export_dir or settings.data_dir / "reviews"


def example_text(text: str) -> str:
    """One line, no Rasa annotation syntax, no leading YAML list/comment marker."""
    line = " ".join(text.split()).translate(_BRACKETS)
    return line.lstrip("-#!&*|>%@` ").strip()


def nlu_yaml(rows: List[ReviewItem], taken: Set[str]) -> str:
    by_intent: Dict[str, List[str]] = {}
    seen = set(taken)
    for row in rows:
        text = example_text(row.text)
        if not row.assigned_intent or not text or text in seen or row.text.startswith("（"):
            continue
        seen.add(text)
        by_intent.setdefault(row.assigned_intent, []).append(text)
    blocks = "".join(
        f"- intent: {intent}\n  examples: |\n" + "".join(f"    - {t}\n" for t in texts)
        for intent, texts in sorted(by_intent.items())
    )
    return HEADER.format(target="nlu_data/") + 'version: "3.1"\nnlu:\n' + blocks


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
        NLU_FILE: nlu_yaml(rows, hand_written_texts(nlu_data)),
        SITUATIONS_FILE: situations_yaml(rows, catalog),
        NOT_COVERED_FILE: not_covered_yaml(rows),
    }
    for name, text in texts.items():
        _write(out / name, text)
    logger.info("reviews.export.written dir=%s accepted=%d", out, len(rows))
    return {name: str(out / name) for name in texts}
