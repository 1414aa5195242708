"""Link a message to ranked service items of the catalog.

Two signals are combined:

* **Alias rules.** Every official name and alias of an item is looked for in the
  normalised message: exactly, by (fuzzy) pinyin — which catches speech-recognition
  homophones such as 射保卡 → 社保卡 — or with one wrong character (typos). An alias
  ``A+B`` needs all its parts. Longer aliases are more specific, and an item whose
  matched text lies inside another item's match is demoted (社保卡 inside 社保卡+丢).
* **A character / pinyin n-gram classifier** (TF-IDF + logistic regression) trained on
  the catalog's names, aliases and sample questions, plus "no item" sentences, for
  paraphrases that contain no alias ("娃要上一年级了").

The result is a list of ``(item_id, score)``; nothing is returned when nothing is
close enough, so out-of-scope messages are not forced onto an item.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from knowledge.catalog import Catalog
from knowledge.schema import short_name
from knowledge.text import compact, syllables

NONE_LABEL = "__none__"
INDEX_FILE = "linker_index.json"
WEIGHTS_FILE = "linker_weights.npz"

EXACT, PINYIN, FUZZY = 1.0, 0.92, 0.8


@dataclass(frozen=True)
class LinkerConfig:
    min_score: float = 0.3
    top_k: int = 5
    rule_weight: float = 0.7
    # Demotion of an item whose matched text lies inside another item's match.
    subsumed_factor: float = 0.6


@dataclass
class _Part:
    text: str
    syl: Tuple[str, ...]


@dataclass
class _Alias:
    item_id: str
    parts: List[_Part]
    length: int


def _pinyin_text(text: str) -> str:
    return " ".join(s for s in syllables(text) if s.strip())


def _find_exact(part: _Part, text: str) -> Optional[Tuple[int, int]]:
    pos = text.find(part.text)
    return (pos, pos + len(part.text)) if pos >= 0 else None


def _find_pinyin(part: _Part, syl: Sequence[str], max_diff: int) -> Optional[Tuple[int, int]]:
    n = len(part.syl)
    if n < 2 or n > len(syl):
        return None
    for start in range(len(syl) - n + 1):
        diff = 0
        for a, b in zip(part.syl, syl[start:start + n]):
            if a != b:
                diff += 1
                if diff > max_diff:
                    break
        if diff <= max_diff:
            return (start, start + n)
    return None


class ItemLinker:
    """Rank catalog items for a message. Build with :meth:`train`, persist with :meth:`save`."""

    def __init__(
        self,
        aliases: List[Tuple[str, str]],
        names: Dict[str, str],
        vectorizers: Tuple[TfidfVectorizer, TfidfVectorizer],
        classifier: LogisticRegression,
        config: LinkerConfig = LinkerConfig(),
    ):
        self.names = names
        self.config = config
        self._alias_specs = aliases
        self._aliases: List[_Alias] = []
        self._by_char: Dict[str, List[int]] = {}
        for item_id, alias in aliases:
            parts = [_Part(p, tuple(syllables(p))) for p in (compact(x) for x in alias.split("+")) if p]
            if not parts:
                continue
            idx = len(self._aliases)
            self._aliases.append(_Alias(item_id, parts, sum(len(p.text) for p in parts)))
            for ch in {c for p in parts for c in p.text} | {s for p in parts for s in p.syl}:
                self._by_char.setdefault(ch, []).append(idx)
        self._char_vec, self._syl_vec = vectorizers
        self._clf = classifier

    # ---------------------------------------------------------------- training
    @staticmethod
    def training_corpus(catalog: Catalog) -> Tuple[List[Tuple[str, str]], List[Tuple[str, str]]]:
        """(aliases, labelled texts) derived from the catalog."""
        aliases: List[Tuple[str, str]] = []
        texts: List[Tuple[str, str]] = []
        for record in catalog.items():
            names = {record.name, short_name(record.name)}
            for alias in sorted(names) + list(record.aliases):
                aliases.append((record.id, alias))
                texts.append((alias.replace("+", ""), record.id))
            for example in record.examples:
                texts.append((example, record.id))
            texts.append((record.summary, record.id))
        return aliases, texts

    @classmethod
    def train(
        cls,
        catalog: Catalog,
        none_texts: Iterable[str] = (),
        config: LinkerConfig = LinkerConfig(),
    ) -> "ItemLinker":
        aliases, texts = cls.training_corpus(catalog)
        texts += [(t, NONE_LABEL) for t in none_texts]
        corpus = [compact(t) for t, _ in texts]
        labels = [label for _, label in texts]
        char_vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
        syl_vec = TfidfVectorizer(
            analyzer="word", ngram_range=(1, 2), token_pattern=r"\S+", sublinear_tf=True
        )
        x = sp.hstack(
            [char_vec.fit_transform(corpus), syl_vec.fit_transform([_pinyin_text(t) for t in corpus])]
        ).tocsr()
        clf = LogisticRegression(C=20.0, max_iter=2000)
        clf.fit(x, labels)
        names = {r.id: r.name for r in catalog.items()}
        return cls(aliases, names, (char_vec, syl_vec), clf, config)

    # ------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        index = {
            "aliases": self._alias_specs,
            "names": self.names,
            "char_vocabulary": {k: int(v) for k, v in self._char_vec.vocabulary_.items()},
            "syl_vocabulary": {k: int(v) for k, v in self._syl_vec.vocabulary_.items()},
            "classes": [str(c) for c in self._clf.classes_],
        }
        (directory / INDEX_FILE).write_text(json.dumps(index, ensure_ascii=False), encoding="utf-8")
        np.savez_compressed(
            directory / WEIGHTS_FILE,
            char_idf=self._char_vec.idf_,
            syl_idf=self._syl_vec.idf_,
            coef=self._clf.coef_,
            intercept=self._clf.intercept_,
        )

    @classmethod
    def load(cls, directory: Path, config: LinkerConfig = LinkerConfig()) -> "ItemLinker":
        index = json.loads((directory / INDEX_FILE).read_text(encoding="utf-8"))
        weights = np.load(directory / WEIGHTS_FILE, allow_pickle=False)
        char_vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
        char_vec.vocabulary_ = index["char_vocabulary"]
        char_vec.idf_ = weights["char_idf"]
        syl_vec = TfidfVectorizer(
            analyzer="word", ngram_range=(1, 2), token_pattern=r"\S+", sublinear_tf=True
        )
        syl_vec.vocabulary_ = index["syl_vocabulary"]
        syl_vec.idf_ = weights["syl_idf"]
        clf = LogisticRegression()
        clf.classes_ = np.array(index["classes"])
        clf.coef_ = weights["coef"]
        clf.intercept_ = weights["intercept"]
        aliases = [tuple(a) for a in index["aliases"]]
        return cls(aliases, index["names"], (char_vec, syl_vec), clf, config)  # type: ignore[arg-type]

    # -------------------------------------------------------------- inference
    def rule_scores(self, text: str) -> Dict[str, float]:
        """Best alias match per item, with matches inside a longer match demoted."""
        norm = compact(text)
        if not norm:
            return {}
        syl = syllables(norm)
        present = set(norm) | set(syl)
        candidates = {i for key in present for i in self._by_char.get(key, ())}
        best: Dict[str, Tuple[float, set]] = {}
        for idx in candidates:
            alias = self._aliases[idx]
            quality = 1.0
            covered: set = set()
            for part in alias.parts:
                span = _find_exact(part, norm)
                q = EXACT
                if span is None:
                    span = _find_pinyin(part, syl, 0)
                    q = PINYIN
                if span is None and len(part.syl) >= 3:
                    span = _find_pinyin(part, syl, 1)
                    q = FUZZY
                if span is None:
                    quality = 0.0
                    break
                quality = min(quality, q)
                covered.update(range(*span))
            if quality == 0.0:
                continue
            specificity = min(1.0, 0.6 + 0.1 * alias.length)
            score = quality * specificity
            current = best.get(alias.item_id)
            if current is None or score > current[0] or (
                score == current[0] and len(covered) > len(current[1])
            ):
                best[alias.item_id] = (score, covered)
        scores: Dict[str, float] = {}
        for item_id, (score, covered) in best.items():
            subsumed = any(
                other != item_id and covered < other_cov
                for other, (_, other_cov) in best.items()
            )
            scores[item_id] = score * (self.config.subsumed_factor if subsumed else 1.0)
        return scores

    def model_scores(self, text: str) -> Dict[str, float]:
        norm = compact(text)
        if not norm:
            return {}
        x = sp.hstack(
            [self._char_vec.transform([norm]), self._syl_vec.transform([_pinyin_text(norm)])]
        ).tocsr()
        probs = self._clf.predict_proba(x)[0]
        return {str(c): float(p) for c, p in zip(self._clf.classes_, probs)}

    def link(self, text: str, top_k: Optional[int] = None) -> List[Tuple[str, float]]:
        """Ranked ``(item_id, score)`` pairs above ``min_score`` (possibly empty)."""
        cfg = self.config
        rules = self.rule_scores(text)
        model = self.model_scores(text)
        none_prob = model.pop(NONE_LABEL, 0.0)
        combined: Dict[str, float] = {}
        for item_id in set(rules) | {k for k, v in model.items() if v > 0.02}:
            rule = rules.get(item_id, 0.0)
            ml = model.get(item_id, 0.0)
            if rule > 0:
                score = cfg.rule_weight * rule + (1 - cfg.rule_weight) * max(ml, 1 - none_prob)
            else:
                score = ml * (1 - cfg.rule_weight / 2)
            combined[item_id] = round(float(score), 4)
        ranked = sorted(combined.items(), key=lambda kv: (-kv[1], kv[0]))
        ranked = [(i, s) for i, s in ranked if s >= cfg.min_score]
        return ranked[: top_k or cfg.top_k]
