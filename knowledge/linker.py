"""Link a message to ranked service items of the catalog.

Two signals are combined:

* **Alias rules.** Every official name and alias of an item is looked for in the
  normalised message: exactly, by (fuzzy) pinyin — which catches speech-recognition
  homophones such as 射保卡 → 社保卡 — or with one wrong character (typos). An alias
  ``A+B`` needs all its parts. Longer aliases are more specific, and an item whose
  matched text lies inside another item's match is demoted (社保卡 inside 社保卡+丢).
* **A classifier** (logistic regression) over character and pinyin n-grams (TF-IDF) and,
  when a sentence model is configured (``knowledge.embedding``), the message's
  pretrained sentence embedding; trained on the catalog's names, aliases, sample
  questions and ``situations`` (how citizens describe the need), the ``not_this``
  near-misses, self-labelled training sentences and "no item" sentences.
* **Semantic retrieval**: the embedding's cosine similarity to each item's names,
  summary, sample questions and situations (best matches per item), for descriptions
  of a need that share no characters with any alias ("人不在了" / "去世").

The result is a list of ``(item_id, score)``; nothing is returned when nothing is
close enough, so out-of-scope messages are not forced onto an item.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from knowledge.catalog import Catalog
from knowledge.embedding import Encoder, EmbeddingError, load_encoder
from knowledge.schema import short_name
from knowledge.text import compact, content_of, normalize, syllables

NONE_LABEL = "__none__"
# A government-service question that no catalog record covers (``not_this`` with item null).
UNCOVERED_LABEL = "__uncovered__"
OUT_LABELS = (NONE_LABEL, UNCOVERED_LABEL)
INDEX_FILE = "linker_index.json"
WEIGHTS_FILE = "linker_weights.npz"

EXACT, PINYIN, FUZZY = 1.0, 0.92, 0.75
FUZZY_MIN_SYLLABLES = 4
FIRST_TIME_RE = re.compile(r"第一次|头一次|这一次|上一次|下一次")
# Three or more spoken digits in a row: a number said aloud (a phone or ID number), never
# part of a service name. By pinyin, "一八九一零" would otherwise pass for 异地就医.
SPOKEN_NUMBER_RE = re.compile(r"[零〇一二三四五六七八九幺两]{3,}")


# Words that ask for several procedures at once ("一件事" bundles).
JOINT_CUES = (
    "一件事", "一起办", "一起申请", "一块办", "一次办", "一次性办", "一次全办", "一次提交",
    "一次搞定", "联办", "一个窗口", "一窗", "一站式", "一并办", "同时办", "全办了", "打包办",
)


@dataclass(frozen=True)
class LinkerConfig:
    min_score: float = 0.3
    top_k: int = 5
    # Share of the alias rules in the combined score (the rest: the classifier).
    rule_weight: float = 0.6
    # Demotion of an item whose matched text lies inside another item's match.
    subsumed_factor: float = 0.6
    # Weak supervision: a training sentence whose best alias match reaches this,
    # with no competitor within the margin, becomes a classifier example of that item.
    self_label_score: float = 0.9
    self_label_margin: float = 0.2
    # Inverse regularisation of the classifier.
    classifier_c: float = 20.0
    # Weight of the (unit-length) embedding beside the TF-IDF blocks in the classifier.
    embedding_weight: float = 2.0
    # Share of semantic retrieval in the model score (the rest: the classifier).
    retrieval_weight: float = 0.0
    # Retrieval: cosine similarities are sharpened by this temperature into a distribution.
    retrieval_temperature: float = 0.05
    # Retrieval: an item's similarity is the mean of its best this-many matches.
    retrieval_top: int = 2
    # Texts published after training (new situations and sample questions,
    # ``with_catalog``): a message this similar to one (the larger of the character
    # bigram overlap and the sentence embedding's cosine) is linked to its item.
    live_match_min: float = 0.7


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


def _find_pinyin(
    part: _Part, syl: Sequence[str], max_diff: int, numbers: FrozenSet[int] = frozenset()
) -> Optional[Tuple[int, int]]:
    """Where the part's syllables occur; with ``max_diff`` differing inner syllables
    (the first and last must agree: they carry the meaning, e.g. 换社保卡 vs 个射保卡).
    Windows touching ``numbers`` (positions of spoken numbers) are skipped."""
    n = len(part.syl)
    if n < 2 or n > len(syl):
        return None
    for start in range(len(syl) - n + 1):
        if numbers and any(i in numbers for i in range(start, start + n)):
            continue
        window = syl[start:start + n]
        if max_diff and (window[0] != part.syl[0] or window[-1] != part.syl[-1]):
            continue
        diff = 0
        for a, b in zip(part.syl, window):
            if a != b:
                diff += 1
                if diff > max_diff:
                    break
        if diff <= max_diff:
            return (start, start + n)
    return None


class AliasMatcher:
    """Exact, pinyin and one-syllable-off matching of the catalog's names and aliases."""

    def __init__(self, aliases: Sequence[Tuple[str, str]], subsumed_factor: float = 0.6):
        self.specs = [tuple(a) for a in aliases]
        self.subsumed_factor = subsumed_factor
        self._aliases: List[_Alias] = []
        self._by_key: Dict[str, List[int]] = {}
        for item_id, alias in self.specs:
            parts = [_Part(p, tuple(syllables(p))) for p in (compact(x) for x in alias.split("+")) if p]
            if not parts:
                continue
            idx = len(self._aliases)
            self._aliases.append(_Alias(item_id, parts, sum(len(p.text) for p in parts)))
            for key in {c for p in parts for c in p.text} | {s for p in parts for s in p.syl}:
                self._by_key.setdefault(key, []).append(idx)

    @staticmethod
    def _possible(alias: _Alias, present: set) -> bool:
        """Cheap pre-check: enough of every part's syllables occur in the text."""
        for part in alias.parts:
            missing = sum(1 for s in part.syl if s not in present)
            allowed = 1 if len(part.syl) >= FUZZY_MIN_SYLLABLES else 0
            if missing > allowed and part.text[0] not in present:
                return False
        return True

    def _match(
        self, alias: _Alias, norm: str, syl: Sequence[str], numbers: FrozenSet[int] = frozenset()
    ) -> Tuple[float, set]:
        quality = 1.0
        covered: set = set()
        for part in alias.parts:
            span, q = _find_exact(part, norm), EXACT
            if span is None:
                span, q = _find_pinyin(part, syl, 0, numbers), PINYIN
            if span is None and len(part.syl) >= FUZZY_MIN_SYLLABLES:
                span, q = _find_pinyin(part, syl, 1, numbers), FUZZY
            if span is None:
                return 0.0, covered
            quality = min(quality, q)
            covered.update(range(*span))
        return quality * min(1.0, 0.6 + 0.1 * alias.length), covered

    def scores(self, text: str, syl: Optional[Sequence[str]] = None) -> Dict[str, float]:
        """Best alias match per item; a match inside another item's longer match is demoted."""
        norm = compact(text)
        if not norm:
            return {}
        syl = syl if syl is not None else syllables(norm)
        present = set(norm) | set(syl)
        numbers = frozenset(i for m in SPOKEN_NUMBER_RE.finditer(norm) for i in range(m.start(), m.end()))
        candidates = {i for key in present for i in self._by_key.get(key, ())}
        best: Dict[str, Tuple[float, set]] = {}
        for idx in candidates:
            alias = self._aliases[idx]
            if not self._possible(alias, present):
                continue
            score, covered = self._match(alias, norm, syl, numbers)
            if score <= 0:
                continue
            current = best.get(alias.item_id)
            if current is None or (score, len(covered)) > (current[0], len(current[1])):
                best[alias.item_id] = (score, covered)
        result: Dict[str, float] = {}
        for item_id, (score, covered) in best.items():
            subsumed = any(
                other != item_id and covered < other_cov for other, (_, other_cov) in best.items()
            )
            result[item_id] = score * (self.subsumed_factor if subsumed else 1.0)
        return result


class ItemLinker:
    """Rank catalog items for a message. Build with :meth:`train`, persist with :meth:`save`."""

    def __init__(
        self,
        aliases: Sequence[Tuple[str, str]],
        names: Dict[str, str],
        bundles: Dict[str, List[str]],
        vectorizers: Tuple[TfidfVectorizer, TfidfVectorizer],
        classifier: LogisticRegression,
        config: LinkerConfig = LinkerConfig(),
        encoder: Optional[Encoder] = None,
        prototypes: Optional[Tuple[np.ndarray, List[str]]] = None,
    ):
        self.names = names
        self.bundles = bundles
        self.config = config
        self.encoder = encoder
        self.matcher = AliasMatcher(aliases, config.subsumed_factor)
        self._char_vec, self._syl_vec = vectorizers
        self._clf = classifier
        # Inference reads these arrays directly (sklearn re-checks fitted state per call).
        n_char, n_syl = len(self._char_vec.vocabulary_), len(self._syl_vec.vocabulary_)
        coef = np.asarray(classifier.coef_)
        self._char_coef = coef[:, :n_char].T.copy()
        self._syl_coef = coef[:, n_char:n_char + n_syl].T.copy()
        self._emb_coef = coef[:, n_char + n_syl:].T.copy() if encoder is not None else None
        self._char_idf = np.asarray(self._char_vec.idf_)
        self._syl_idf = np.asarray(self._syl_vec.idf_)
        self._intercept = np.asarray(classifier.intercept_, dtype=float)
        self._classes = [str(c) for c in classifier.classes_]
        self._char_features = (self._char_vec.build_analyzer(), self._char_vec.vocabulary_)
        self._syl_features = (self._syl_vec.build_analyzer(), self._syl_vec.vocabulary_)
        self._joint_cues = tuple(compact(c) for c in JOINT_CUES)
        self._proto_vectors: Optional[np.ndarray] = None
        self._proto_owner: Optional[np.ndarray] = None
        self._proto_items: List[str] = []
        self._live: List[Tuple[str, str, frozenset]] = []  # (item, text, bigrams): with_catalog
        self._live_vectors: Optional[np.ndarray] = None
        if encoder is not None and prototypes is not None:
            vectors, owners = prototypes
            self._proto_items = sorted(set(owners))
            index = {item: i for i, item in enumerate(self._proto_items)}
            self._proto_vectors = np.asarray(vectors, dtype=np.float32)
            self._proto_owner = np.array([index[o] for o in owners], dtype=np.int64)

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
            for situation in record.situations:
                texts.append((situation, record.id))
            for near in record.not_this:
                if near.item is None or near.item in catalog:
                    texts.append((near.text, near.item or UNCOVERED_LABEL))
        return aliases, texts

    @staticmethod
    def prototype_texts(catalog: Catalog) -> List[Tuple[str, str]]:
        """What semantic retrieval compares a message with: ``(text, item_id)``."""
        out: List[Tuple[str, str]] = []
        for record in catalog.items():
            out.append((short_name(record.name), record.id))
            out.append((record.summary, record.id))
            out += [(t, record.id) for t in (*record.examples, *record.situations)]
        return out

    @staticmethod
    def self_label(
        matcher: AliasMatcher, sentences: Iterable[str], config: LinkerConfig
    ) -> List[Tuple[str, str]]:
        """Sentences whose item is unmistakable by alias, labelled with that item."""
        labelled = []
        for sentence in sentences:
            ranked = sorted(matcher.scores(sentence).items(), key=lambda kv: -kv[1])
            if not ranked or ranked[0][1] < config.self_label_score:
                continue
            if len(ranked) > 1 and ranked[0][1] - ranked[1][1] < config.self_label_margin:
                continue
            labelled.append((sentence, ranked[0][0]))
        return labelled

    @classmethod
    def train(
        cls,
        catalog: Catalog,
        none_texts: Iterable[str] = (),
        question_texts: Iterable[str] = (),
        config: LinkerConfig = LinkerConfig(),
        encoder: Optional[Encoder] = None,
        uncovered_texts: Iterable[str] = (),
    ) -> "ItemLinker":
        """Fit on the catalog, "no item" sentences, (self-labelled) question sentences and
        government questions that the catalog does not cover."""
        aliases, texts = cls.training_corpus(catalog)
        matcher = AliasMatcher(aliases, config.subsumed_factor)
        question_texts = list(question_texts)
        texts += cls.self_label(matcher, question_texts, config)
        # Follow-ups that name nothing ("网上能办吗", "要带啥") belong to no item by themselves.
        texts += [(t, NONE_LABEL) for t in question_texts if len(content_of(t)) < 2]
        texts += [(t, NONE_LABEL) for t in none_texts]
        texts += [(t, UNCOVERED_LABEL) for t in uncovered_texts]
        corpus = [compact(t) for t, _ in texts]
        labels = [label for _, label in texts]
        char_vec, syl_vec = _vectorizers()
        blocks = [char_vec.fit_transform(corpus), syl_vec.fit_transform([_pinyin_text(t) for t in corpus])]
        prototypes = None
        if encoder is not None:
            dense = encoder.encode([normalize_for_embedding(t) for t, _ in texts])
            blocks.append(sp.csr_matrix(dense * config.embedding_weight))
            proto = cls.prototype_texts(catalog)
            prototypes = (
                encoder.encode([normalize_for_embedding(t) for t, _ in proto]),
                [item for _, item in proto],
            )
        x = sp.hstack(blocks).tocsr()
        clf = LogisticRegression(C=config.classifier_c, max_iter=3000)
        clf.fit(x, labels)
        names = {r.id: r.name for r in catalog.items()}
        bundles = {r.id: list(r.members) for r in catalog.items() if r.kind == "bundle"}
        return cls(aliases, names, bundles, (char_vec, syl_vec), clf, config, encoder, prototypes)

    # ------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        index = {
            "aliases": self.matcher.specs,
            "names": self.names,
            "bundles": self.bundles,
            "char_vocabulary": {k: int(v) for k, v in self._char_vec.vocabulary_.items()},
            "syl_vocabulary": {k: int(v) for k, v in self._syl_vec.vocabulary_.items()},
            "classes": [str(c) for c in self._clf.classes_],
            "embedding": (
                {"spec": self.encoder.spec, "digest": self.encoder.digest, "items": self._proto_items}
                if self.encoder is not None
                else None
            ),
        }
        (directory / INDEX_FILE).write_text(json.dumps(index, ensure_ascii=False), encoding="utf-8")
        arrays = {
            "char_idf": self._char_vec.idf_,
            "syl_idf": self._syl_vec.idf_,
            "coef": self._clf.coef_,
            "intercept": self._clf.intercept_,
        }
        if self._proto_vectors is not None:
            arrays["proto_vectors"] = self._proto_vectors.astype(np.float16)
            arrays["proto_owner"] = self._proto_owner
        np.savez_compressed(directory / WEIGHTS_FILE, **arrays)

    @classmethod
    def load(cls, directory: Path, config: LinkerConfig = LinkerConfig()) -> "ItemLinker":
        index = json.loads((directory / INDEX_FILE).read_text(encoding="utf-8"))
        weights = np.load(directory / WEIGHTS_FILE, allow_pickle=False)
        char_vec, syl_vec = _vectorizers()
        char_vec.vocabulary_ = index["char_vocabulary"]
        char_vec.idf_ = weights["char_idf"]
        syl_vec.vocabulary_ = index["syl_vocabulary"]
        syl_vec.idf_ = weights["syl_idf"]
        clf = LogisticRegression()
        clf.classes_ = np.array(index["classes"])
        clf.coef_ = weights["coef"]
        clf.intercept_ = weights["intercept"]
        encoder, prototypes = None, None
        meta = index.get("embedding")
        if meta:
            encoder = load_encoder(meta["spec"])
            if encoder is None or encoder.digest != meta["digest"]:
                raise EmbeddingError(
                    f"the item linker was trained with {meta['spec']} ({meta['digest']}): retrain"
                )
            items = meta["items"]
            owners = [items[i] for i in weights["proto_owner"]]
            prototypes = (weights["proto_vectors"].astype(np.float32), owners)
        return cls(
            [tuple(a) for a in index["aliases"]],
            index["names"],
            index["bundles"],
            (char_vec, syl_vec),
            clf,
            config,
            encoder,
            prototypes,
        )

    # ------------------------------------------------------------ live catalog
    def with_catalog(self, catalog: Catalog, added: Sequence[Tuple[str, str]] = ()) -> "ItemLinker":
        """This trained linker on an edited catalog, without retraining: the alias rules,
        names and bundles rebuilt from ``catalog``; ``added`` ``(text, item_id)`` (situations
        and sample questions published since training) linked by similarity."""
        clone = copy.copy(self)
        aliases, _ = self.training_corpus(catalog)
        clone.matcher = AliasMatcher(aliases, self.config.subsumed_factor)
        clone.names = {r.id: r.name for r in catalog.items()}
        clone.bundles = {r.id: list(r.members) for r in catalog.items() if r.kind == "bundle"}
        clone._live = [(item, text, _bigrams(text)) for text, item in added if compact(text)]
        clone._live_vectors = None
        if clone._live and self.encoder is not None:
            clone._live_vectors = np.asarray(
                self.encoder.encode([normalize_for_embedding(t) for _, t, _ in clone._live]), dtype=np.float32
            )
        return clone

    def live_scores(self, text: str, vector: Optional[np.ndarray]) -> Dict[str, float]:
        """Items whose published-since-training texts the message is close to."""
        if not self._live:
            return {}
        grams = _bigrams(text)
        cosines = self._live_vectors @ vector if self._live_vectors is not None and vector is not None else None
        found: Dict[str, float] = {}
        for i, (item, _, live_grams) in enumerate(self._live):
            overlap = 2 * len(grams & live_grams) / max(1, len(grams) + len(live_grams))
            similarity = max(overlap, float(cosines[i]) if cosines is not None else 0.0)
            if similarity >= self.config.live_match_min:
                found[item] = max(found.get(item, 0.0), min(0.95, similarity))
        return found

    # -------------------------------------------------------------- inference
    def rule_scores(self, text: str, syl: Optional[Sequence[str]] = None) -> Dict[str, float]:
        return self.matcher.scores(text, syl)

    def embed(self, text: str) -> Optional[np.ndarray]:
        if self.encoder is None or not compact(text):
            return None
        return self.encoder.encode_one(normalize_for_embedding(text))

    def model_scores(
        self, text: str, syl: Optional[Sequence[str]] = None, vector: Optional[np.ndarray] = None
    ) -> Dict[str, float]:
        norm = compact(text)
        if not norm:
            return {}
        syl = syl if syl is not None else syllables(norm)
        pinyin = " ".join(s for s in syl if s.strip())
        logits = self._intercept.copy()
        logits += _tfidf_dot(self._char_features, self._char_idf, self._char_coef, norm)
        logits += _tfidf_dot(self._syl_features, self._syl_idf, self._syl_coef, pinyin)
        if self._emb_coef is not None and vector is not None:
            logits += (vector * self.config.embedding_weight) @ self._emb_coef
        logits -= logits.max()
        probs = np.exp(logits)
        probs /= probs.sum()
        return {c: float(p) for c, p in zip(self._classes, probs)}

    def retrieval_scores(self, vector: Optional[np.ndarray]) -> Dict[str, float]:
        """Per item: the mean of its best cosine similarities, as a softmax over items."""
        if vector is None or self._proto_vectors is None:
            return {}
        sims = self._proto_vectors @ vector
        top = self.config.retrieval_top
        best = np.full((len(self._proto_items), top), -1.0, dtype=np.float32)
        order = np.argsort(-sims)
        filled = np.zeros(len(self._proto_items), dtype=np.int64)
        for i in order:
            owner = self._proto_owner[i]
            if filled[owner] < top:
                best[owner, filled[owner]] = sims[i]
                filled[owner] += 1
                if filled.min() >= top:
                    break
        item_sims = best.mean(axis=1)
        logits = (item_sims - item_sims.max()) / self.config.retrieval_temperature
        probs = np.exp(logits)
        probs /= probs.sum()
        return {item: float(p) for item, p in zip(self._proto_items, probs)}

    def _joint_bundles(self, text: str, rules: Dict[str, float]) -> Dict[str, float]:
        """Bundles asked for as a whole: a joint cue plus member items, or 3+ members."""
        norm = FIRST_TIME_RE.sub("", compact(text))  # "第一次办" is not "一次办"
        cue = any(c in norm for c in self._joint_cues)
        found = {}
        for bundle_id, members in self.bundles.items():
            hits = sum(1 for m in members if rules.get(m, 0) > 0)
            if (cue and hits >= 1) or hits >= 3:
                found[bundle_id] = min(1.0, 0.85 + 0.05 * hits)
        return found

    def link(self, text: str, top_k: Optional[int] = None) -> List[Tuple[str, float]]:
        """Ranked ``(item_id, score)`` pairs above ``min_score`` (possibly empty)."""
        return self.link_details(text, top_k)[0]

    def link_details(
        self, text: str, top_k: Optional[int] = None
    ) -> Tuple[List[Tuple[str, float]], Dict[str, float]]:
        """The ranked items and the scope: ``{"none": p, "uncovered": p, "named": [ids]}`` —
        how likely the message is about no service at all, or about a service the catalog
        lacks, and which items an alias rule found in the text (named, not only inferred)."""
        cfg = self.config
        syl = syllables(compact(text))
        rules = self.rule_scores(text, syl)
        if len(content_of(text)) < 2 and not rules:
            # Nothing but question words ("网上能办吗", "我想办个证"): no item by itself.
            return [], {"none": 1.0, "uncovered": 0.0, "named": []}
        vector = self.embed(text)
        model = self.model_scores(text, syl, vector)
        none_prob = model.pop(NONE_LABEL, 0.0)
        uncovered_prob = model.pop(UNCOVERED_LABEL, 0.0)
        scope = {"none": round(none_prob, 4), "uncovered": round(uncovered_prob, 4), "named": sorted(rules)}
        none_prob += uncovered_prob
        in_domain = max(1e-6, 1.0 - none_prob)
        retrieval = self.retrieval_scores(vector)
        if retrieval:
            # Retrieval has no "none" class: it only redistributes the in-domain mass.
            for item_id in set(model) | set(retrieval):
                model[item_id] = (1 - cfg.retrieval_weight) * model.get(item_id, 0.0) + (
                    cfg.retrieval_weight * in_domain * retrieval.get(item_id, 0.0)
                )
        combined: Dict[str, float] = {}
        for item_id in set(rules) | {k for k, v in model.items() if v > 0.02}:
            rule = rules.get(item_id, 0.0)
            share = model.get(item_id, 0.0) / in_domain  # among items only
            if rule > 0:
                score = cfg.rule_weight * rule + (1 - cfg.rule_weight) * share
            else:
                score = model.get(item_id, 0.0)
            combined[item_id] = score
        for item_id, score in self.live_scores(text, vector).items():
            combined[item_id] = max(combined.get(item_id, 0.0), score)
        # A bundle asked for as a whole outranks its members.
        for bundle_id, score in self._joint_bundles(text, rules).items():
            for member in self.bundles[bundle_id]:
                if member in combined:
                    combined[member] *= 0.8
            share = model.get(bundle_id, 0.0) / in_domain  # breaks ties between bundles
            combined[bundle_id] = max(combined.get(bundle_id, 0.0), 0.9 * score + 0.1 * share)
        combined = {k: round(float(v), 4) for k, v in combined.items()}
        ranked = sorted(combined.items(), key=lambda kv: (-kv[1], kv[0]))
        ranked = [(i, s) for i, s in ranked if s >= cfg.min_score]
        return ranked[: top_k or cfg.top_k], scope


def normalize_for_embedding(text: str) -> str:
    """What the sentence model reads: simplified characters, original spacing kept."""
    return normalize(text, lower=False).strip()


def _bigrams(text: str) -> frozenset:
    norm = compact(text)
    return frozenset(norm[i:i + 2] for i in range(len(norm) - 1)) or frozenset([norm])


def _tfidf_dot(features: Tuple, idf: np.ndarray, weights: np.ndarray, doc: str) -> np.ndarray:
    """``tfidf(doc) @ weights`` exactly as TfidfVectorizer(sublinear_tf=True, norm="l2")."""
    analyzer, vocabulary = features
    counts: Dict[int, int] = {}
    for gram in analyzer(doc):
        index = vocabulary.get(gram)
        if index is not None:
            counts[index] = counts.get(index, 0) + 1
    if not counts:
        return np.zeros(weights.shape[1])
    indices = np.fromiter(counts.keys(), dtype=np.int64)
    values = (1.0 + np.log(np.fromiter(counts.values(), dtype=float))) * idf[indices]
    values /= np.sqrt(np.dot(values, values))
    return values @ weights[indices]


def _vectorizers() -> Tuple[TfidfVectorizer, TfidfVectorizer]:
    char_vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
    syl_vec = TfidfVectorizer(
        analyzer="word", ngram_range=(1, 2), token_pattern=r"\S+", sublinear_tf=True
    )
    return char_vec, syl_vec
