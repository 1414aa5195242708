"""Generate intent training examples from the catalog's ``situations`` (and from the
government questions it does not cover, ``knowledge/not_covered.yml``).

People describe their situation and then ask something: "老伴走了，听说能领一笔钱，去哪弄"
is ``ask_location``, "…咋办" is ``ask_service``. The hand-written NLU data names the
service in short messages, so the classifier also needs long descriptions ending in each
kind of question. Each situation of the catalog is used once, with a question ending
picked deterministically (the same catalog gives the same file, so the model fingerprint
is stable). The generated file is committed like the jieba dictionary; ``banshi train``
regenerates it and a test checks that it is up to date.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml

from knowledge.catalog import KNOWLEDGE_DIR, Catalog

GENERATED_FILE = KNOWLEDGE_DIR.parent / "nlu_data" / "generated" / "situations.yml"
HAND_WRITTEN_DIR = KNOWLEDGE_DIR.parent / "nlu_data" / "nlu"
ENDINGS_FILE = Path(__file__).with_name("nlu_endings.yml")
QUESTION_END = re.compile(r"([?？吗呢么嘛]|咋办|怎么办|咋弄|怎么弄|咋整|去哪弄|在哪办|去哪办|要带啥|多久|几天|多少钱)$")
HEADER = (
    "# Generated from the catalog's situations by knowledge/nlu_examples.py"
    " (banshi train / banshi kb nlu). Do not edit.\n"
)


def _pick(key: str, options: List[str]) -> str:
    digest = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16)
    return options[digest % len(options)]


def _load_endings(
    path: Path = ENDINGS_FILE,
) -> Tuple[
    List[Tuple[str, int]], Dict[str, List[str]], List[str], List[Tuple[str, re.Pattern]], List[str]
]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    weights = [(str(intent), int(weight)) for intent, weight in data["weights"].items()]
    asked = [(str(intent), re.compile(pattern)) for intent, pattern in data["asked"].items()]
    endings = {k: list(v) for k, v in data["endings"].items()}
    return weights, endings, list(data["openings"]), asked, list(data["closings"])


def asked_intent(text: str, asked: List[Tuple[str, re.Pattern]]) -> Optional[str]:
    """The intent of a situation that already ends in a question (first matching cue)."""
    for intent, pattern in asked:
        if pattern.search(text):
            return intent
    return None


def examples(catalog: Catalog, endings_file: Path = ENDINGS_FILE) -> Dict[str, List[str]]:
    """``{intent: [text, ...]}``: every situation once, with a question ending."""
    weights, endings, openings, asked, closings = _load_endings(endings_file)
    wheel = [intent for intent, weight in weights for _ in range(weight)]
    out: Dict[str, List[str]] = {intent: [] for intent, _ in weights}
    for record in sorted(catalog.items(), key=lambda r: r.id):
        for situation in record.situations:
            base = situation.rstrip("。.!！")
            key = f"{record.id}:{situation}"
            if QUESTION_END.search(base):
                # Already a question: keep it when its kind is plain, else leave it out.
                intent = asked_intent(base, asked)
                if intent is None:
                    continue
                text = base
            else:
                intent = _pick(key, wheel)
                text = f"{base}，{_pick(key + ':end', endings[intent])}"
            text = _pick(key + ":open", openings) + text + _pick(key + ":close", closings)
            out[intent].append(text)
    return {intent: sorted(set(texts)) for intent, texts in out.items() if texts}


def file_texts(path: Path) -> set:
    """Every example of one NLU file."""
    texts = set()
    for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu") or []:
        for line in str(block.get("examples") or "").splitlines():
            line = line.strip()
            if line.startswith("- "):
                texts.add(line[2:].strip())
    return texts


def hand_written_texts(nlu_dir: Path = HAND_WRITTEN_DIR) -> set:
    """Every example of the hand-written NLU files."""
    texts = set()
    for path in sorted(nlu_dir.rglob("*.yml")):
        texts |= file_texts(path)
    return texts


def render(catalog: Catalog, endings_file: Path = ENDINGS_FILE) -> str:
    from knowledge.not_covered import load_not_covered

    found = examples(catalog, endings_file)
    for question in load_not_covered():  # questions the catalog lacks still ask something
        found.setdefault(question.intent, []).append(question.text)
    taken = hand_written_texts()
    blocks = []
    for intent, texts in found.items():
        texts = sorted(set(texts) - taken)  # Rasa refuses one example under two intents
        taken.update(texts)
        lines = "".join(f"    - {t}\n" for t in texts)
        blocks.append(f"- intent: {intent}\n  examples: |\n{lines}")
    return HEADER + 'version: "3.1"\nnlu:\n' + "".join(blocks)


def write(catalog: Catalog, path: Path = GENERATED_FILE) -> bool:
    """Write the generated examples; return True when the file changed."""
    text = render(catalog)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True
