"""The domain grammar of the biased recogniser: what the catalog makes people say.

Free decoding with the small Chinese model loses the words that matter ("社保卡" →
"报考的"). Vosk's lookahead models take a runtime phrase list instead of the
model's language model: every phrase is a path of words, phrases follow one
another freely, and ``[unk]`` absorbs the rest. The list here is the catalog's
names, aliases and situations (how people describe their need) plus the question
and filler phrases of ``grammar.yml``; each phrase is cut into words of the
model's own vocabulary (fewest words; a character the model does not know
drops the phrase), because Vosk silently ignores unknown words.

The vocabulary is read from the model's ``graph/words.txt`` or, for models that
ship none (the small Chinese one), from the symbol table inside ``graph/Gr.fst``.
"""

from __future__ import annotations

import json
import logging
import re
import struct
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, FrozenSet, Iterable, List, Optional

import yaml

if TYPE_CHECKING:
    from knowledge.catalog import Catalog

logger = logging.getLogger("banshi.voice.grammar")

GRAMMAR_FILE = Path(__file__).with_name("grammar.yml")
UNKNOWN = "[unk]"
# OpenFst's symbol-table magic number.
_SYMBOL_TABLE_MAGIC = struct.pack("<i", 2125658996)
# Longest word looked up when segmenting (the model's words are up to ~6 characters).
MAX_WORD_CHARS = 6
_NOT_HAN = re.compile(r"[^\u3400-\u4dbf\u4e00-\u9fff]")


def _read_symbols(data: bytes) -> List[str]:
    position = data.find(_SYMBOL_TABLE_MAGIC)
    if position < 0:
        return []
    position += 4
    (name_length,) = struct.unpack_from("<i", data, position)
    position += 4 + name_length
    _available, size = struct.unpack_from("<qq", data, position)
    position += 16
    words = []
    for _ in range(size):
        (length,) = struct.unpack_from("<i", data, position)
        position += 4
        words.append(data[position : position + length].decode("utf-8"))
        position += length + 8  # the word's 64-bit key
    return words


@lru_cache(maxsize=4)
def model_vocabulary(model_dir: Path) -> FrozenSet[str]:
    """The words the model can recognise (empty when they cannot be read)."""
    graph = Path(model_dir) / "graph"
    words_txt = graph / "words.txt"
    try:
        if words_txt.is_file():
            words = [line.split()[0] for line in words_txt.read_text(encoding="utf-8").splitlines() if line.strip()]
        else:
            words = _read_symbols((graph / "Gr.fst").read_bytes())
    except (OSError, UnicodeDecodeError, struct.error) as exc:
        logger.warning("voice.grammar.vocabulary_unreadable path=%s error=%s", model_dir, exc)
        return frozenset()
    return frozenset(w for w in words if w and not w.startswith(("#", "<", "!")))


def segment(text: str, vocabulary: FrozenSet[str]) -> List[str]:
    """``text``'s Chinese characters as the fewest words of ``vocabulary`` ([] if impossible)."""
    text = _NOT_HAN.sub("", text)
    if not text:
        return []
    best: List[Optional[List[str]]] = [[]] + [None] * len(text)
    for start in range(len(text)):
        path = best[start]
        if path is None:
            continue
        for end in range(start + 1, min(len(text), start + MAX_WORD_CHARS) + 1):
            word = text[start:end]
            if word in vocabulary:
                known = best[end]
                if known is None or len(path) + 1 < len(known):
                    best[end] = path + [word]
    return best[len(text)] or []


def load_extra_phrases(path: Path = GRAMMAR_FILE) -> List[str]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [str(p) for key in ("questions", "fillers") for p in data.get(key) or []]


def catalog_phrases(catalog: "Catalog", situations: bool = True) -> List[str]:
    """The catalog's names and aliases (and situations), in file order."""
    from voice.correct import catalog_terms

    phrases = list(catalog_terms(catalog, parts=False))
    if situations:
        for record in catalog.items():
            phrases.extend(record.situations or [])
    return phrases


def grammar_json(phrases: Iterable[str], vocabulary: FrozenSet[str], unknown: bool = True) -> str:
    """A Vosk grammar (JSON list) of ``phrases`` cut into ``vocabulary`` words, deduplicated."""
    seen = set()
    paths = []
    for phrase in phrases:
        words = " ".join(segment(phrase, vocabulary))
        if words and words not in seen:
            seen.add(words)
            paths.append(words)
    if unknown:
        paths.append(UNKNOWN)
    return json.dumps(paths, ensure_ascii=False)


def domain_grammar(catalog: "Catalog", model_dir: Path) -> Optional[str]:
    """The grammar of the biased recogniser for ``model_dir`` (None if its vocabulary is unreadable)."""
    vocabulary = model_vocabulary(Path(model_dir))
    if not vocabulary:
        return None
    grammar = grammar_json(catalog_phrases(catalog) + load_extra_phrases(), vocabulary)
    logger.info("voice.grammar.built phrases=%d", grammar.count('", "') + 1)
    return grammar
