"""Which sentence model the NLU uses: the spec strings (``use``, ``e5``, ``use+e5``,
``onnx:<dir>``, ``none``) and their validation, without loading anything (the
models themselves are in ``knowledge/embedding.py``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

NONE = "none"
USE = "use"
E5 = "e5"
ONNX_PREFIX = "onnx:"
DEFAULT_MODEL = USE
ENV_MODEL = "BANSHI_EMBEDDING_MODEL"


def check_spec(spec: str) -> str:
    """``spec`` if it names a model ``knowledge.embedding`` can load (not loading it); else ValueError."""
    value = spec.strip()
    if value == NONE:
        return value
    if value.startswith(ONNX_PREFIX):
        if not Path(value[len(ONNX_PREFIX):]).expanduser().is_dir():
            raise ValueError(f"{value[len(ONNX_PREFIX):]} is not a directory")
        return value
    unknown = [n for n in value.split("+") if n not in (USE, E5)]
    if unknown or not value:
        raise ValueError(f"unknown embedding model {value!r}: use, e5, use+e5, onnx:<dir> or none")
    return value


def resolve_spec(spec: Optional[str]) -> str:
    """The configured model: the argument, else ``BANSHI_EMBEDDING_MODEL``, else ``use``."""
    value = (spec or os.environ.get(ENV_MODEL) or DEFAULT_MODEL).strip()
    return value or DEFAULT_MODEL
