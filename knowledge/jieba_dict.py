"""Generate the jieba user dictionary from the catalog.

Rasa's JiebaTokenizer loads every file of its ``dictionary_path`` *directory*
(a file path is silently ignored) and stores them in the trained model.
The generated file is committed so that ``rasa train`` works on its own;
``banshi train`` regenerates it and a test checks that it is up to date.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

from knowledge.catalog import KNOWLEDGE_DIR, Catalog
from knowledge.schema import short_name
from knowledge.text import compact

JIEBA_DIR = KNOWLEDGE_DIR / "jieba"
USER_DICT = JIEBA_DIR / "catalog_words.txt"
# High enough that jieba keeps catalog terms in one piece.
WORD_FREQ = 2000
MIN_LEN, MAX_LEN = 2, 12


def dictionary_words(catalog: Catalog) -> List[str]:
    words = set()
    for record in catalog.items():
        for phrase in [short_name(record.name), *record.aliases]:
            for part in phrase.split("+"):
                word = compact(part)
                if MIN_LEN <= len(word) <= MAX_LEN and word.isalnum():
                    words.add(word)
    return sorted(words)


def render(catalog: Catalog) -> str:
    # jieba user dictionaries have no comment syntax: no header line.
    return "".join(f"{w} {WORD_FREQ} n\n" for w in dictionary_words(catalog))


def write(catalog: Catalog, path: Path = USER_DICT) -> bool:
    """Write the dictionary; return True when the file changed."""
    text = render(catalog)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True
