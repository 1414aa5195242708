"""Accepted intent assignments of the review queue (``/admin/reviews``) as training data.

``banshi train`` — and so the background retraining started on ``/admin/catalog``,
which runs it — writes ``nlu_data/reviewed/accepted.yml`` from the accepted reviews in
the database before it fingerprints its inputs, as it regenerates
``nlu_data/generated/situations.yml`` from the catalog. The file lies inside the
training data Rasa is given (``--data nlu_data``) and that ``make validate`` checks, so
the data fingerprint changes when, and only when, the accepted examples change: with
none, the file is removed and the fingerprint is the one of the committed data. The
file is the deployment's data, not the project's (``.gitignore``).

Each example is the review's text without personal data (``strip_pii``: even masked
numbers and names are cut out), on one line, with Rasa's annotation brackets rewritten;
texts the rest of the NLU data already has (under any intent) are left out, because
Rasa refuses one example under two intents.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import AbstractSet, Dict, FrozenSet, Iterable, List, Optional, Set, Tuple

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from assistant.config.settings import PROJECT_ROOT
from assistant.security.pii import strip_pii
from assistant.storage.database import session_factory
from assistant.storage.review_tables import OUTCOME_ACCEPTED, REVIEW_DONE, ReviewItem
from knowledge.nlu_examples import file_texts

logger = logging.getLogger(__name__)

NLU_DATA_DIR = PROJECT_ROOT / "nlu_data"
REVIEWED_FILE = NLU_DATA_DIR / "reviewed" / "accepted.yml"
MIN_CHARS = 2  # shorter than this, a text says nothing to learn from
HEADER = (
    "# Written by banshi train from the accepted reviews of /admin/reviews\n"
    "# (assistant/dialogue/reviewed.py). Do not edit: assign and accept on the page.\n"
)
_BRACKETS = str.maketrans({"[": "［", "]": "］", "(": "（", ")": "）", "{": "｛", "}": "｝"})


def example_text(text: str) -> str:
    """One line without personal data, Rasa annotation syntax or a leading YAML marker
    ("" when nothing worth learning is left)."""
    line = " ".join(strip_pii(text or "").split()).translate(_BRACKETS)
    line = line.lstrip("-#!&*|>%@` ").strip()
    return line if len(line) >= MIN_CHARS and not line.startswith("（") else ""


def taken_texts(nlu_dir: Path = NLU_DATA_DIR, leave_out: Path = REVIEWED_FILE) -> Set[str]:
    """Every example of the NLU files under ``nlu_dir`` except ``leave_out``."""
    texts: Set[str] = set()
    for path in sorted(nlu_dir.rglob("*.yml")):
        if path.resolve() != leave_out.resolve():
            texts |= file_texts(path)
    return texts


@lru_cache(maxsize=2)
def _taken_at(nlu_dir: Path, leave_out: Path, stamp: Tuple[Tuple[str, int], ...]) -> FrozenSet[str]:
    return frozenset(taken_texts(nlu_dir, leave_out))


def taken_now(nlu_dir: Path = NLU_DATA_DIR, leave_out: Path = REVIEWED_FILE) -> FrozenSet[str]:
    """:func:`taken_texts`, read again only when a file changes (for pages)."""
    stamp = tuple((str(p), p.stat().st_mtime_ns) for p in sorted(nlu_dir.rglob("*.yml")))
    return _taken_at(nlu_dir, leave_out, stamp)


def examples_by_intent(pairs: Iterable[Tuple[str, str]], taken: AbstractSet[str]) -> Dict[str, List[str]]:
    """``{intent: [text, ...]}`` (sorted) from ``(intent, review text)`` pairs; each text
    once, none of ``taken``."""
    seen = set(taken)
    out: Dict[str, List[str]] = {}
    for intent, raw in pairs:
        text = example_text(raw)
        if not intent or not text or text in seen:
            continue
        seen.add(text)
        out.setdefault(intent, []).append(text)
    return {intent: sorted(texts) for intent, texts in sorted(out.items())}


def render(by_intent: Dict[str, List[str]], header: str = HEADER) -> str:
    """Rasa NLU YAML of the examples."""
    blocks = "".join(
        f"- intent: {intent}\n  examples: |\n" + "".join(f"    - {t}\n" for t in texts)
        for intent, texts in by_intent.items()
    )
    return header + 'version: "3.1"\nnlu:\n' + blocks


def _database_exists(db_url: str) -> bool:
    """False for a SQLite file that is not there yet (nothing accepted; not created here)."""
    url = make_url(db_url)
    return url.get_backend_name() != "sqlite" or not url.database or Path(url.database).exists()


def accepted_pairs(db_url: str) -> List[Tuple[str, str]]:
    """``(intent, text)`` of every accepted review assigned an intent, oldest first."""
    if not _database_exists(db_url):
        return []
    r = ReviewItem
    query = (
        select(r.assigned_intent, r.text)
        .where(r.status == REVIEW_DONE, r.outcome == OUTCOME_ACCEPTED, r.assigned_intent.isnot(None))
        .order_by(r.id)
    )
    with session_factory(db_url)() as session:
        return [(intent, text) for intent, text in session.execute(query).all()]


def write(db_url: str, path: Path = REVIEWED_FILE, nlu_dir: Path = NLU_DATA_DIR) -> Optional[int]:
    """Write (or, with no example, remove) the reviewed examples file; how many examples
    it has, or None when the database could not be read (the file is left as it was)."""
    try:
        pairs = accepted_pairs(db_url)
    except SQLAlchemyError as exc:
        logger.warning("train.reviewed.unreadable error=%s (the reviewed examples file is kept)", type(exc).__name__)
        return None
    by_intent = examples_by_intent(pairs, taken_texts(nlu_dir, path))
    count = sum(len(texts) for texts in by_intent.values())
    try:
        if not count:
            if path.exists():
                path.unlink()
                logger.info("train.generated.reviewed removed=%s", path)
            return 0
        text = render(by_intent)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".{path.name}.tmp")
            temp.write_text(text, encoding="utf-8")
            temp.replace(path)
            logger.info("train.generated.reviewed examples=%d file=%s", count, path)
    except OSError as exc:  # a read-only checkout: train on the data as it is
        logger.warning("train.reviewed.unwritable file=%s error=%s (the file is left as it was)", path, exc)
        return None
    return count
