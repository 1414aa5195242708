"""Train the Rasa model once per change of its inputs (data fingerprint)."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterable, List, Optional

import rasa

from assistant.config.embedding_spec import ENV_MODEL, resolve_spec
from assistant.config.settings import PROJECT_ROOT, Settings
from assistant.dialogue import reviewed
from knowledge import jieba_dict, nlu_examples
from knowledge.catalog import load_catalog

logger = logging.getLogger(__name__)

MODEL_PREFIX = "banshi-"
# Everything a trained model depends on.
TRAINING_INPUTS = (
    "config.yml",
    "domain.yml",
    "nlu_data",
    "knowledge/catalog",
    "knowledge/jieba",
    "knowledge/linker.py",
    "knowledge/embedding.py",
    "knowledge/not_covered.yml",
    "knowledge/text.py",
    "assistant/dialogue/components",
)


def _files(root: Path, entries: Iterable[str]) -> List[Path]:
    out: List[Path] = []
    for entry in entries:
        path = root / entry
        if path.is_dir():
            out += [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        elif path.is_file():
            out.append(path)
    return sorted(out)


def data_fingerprint(
    root: Path = PROJECT_ROOT, config: str = "config.yml", embedding: Optional[str] = None
) -> str:
    # The sentence model is chosen by a setting at training time: part of the inputs.
    digest = hashlib.sha256(f"rasa={rasa.__version__};embedding={resolve_spec(embedding)}".encode())
    entries = [config if e == "config.yml" else e for e in TRAINING_INPUTS]
    for path in _files(root, entries):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def model_path_for(settings: Settings, fingerprint: str, name: str = MODEL_PREFIX) -> Path:
    return settings.models_dir / f"{name}{fingerprint}.tar.gz"


def refresh_dictionary(settings: Settings) -> bool:
    """Regenerate what the model is trained from the catalog: the jieba dictionary and
    the intent examples made from the situations. True when either changed."""
    catalog = load_catalog(settings.catalog_dir, settings.region_override)
    changed = jieba_dict.write(catalog)
    return nlu_examples.write(catalog) or changed


def rasa_command(settings: Settings, target: Path, config: str = "config.yml",
                 data: Optional[List[str]] = None) -> List[str]:
    """``rasa train`` of ``target``: the data directory holds the hand-written, the
    generated and the reviewed examples (``nlu_data/reviewed``)."""
    return [
        sys.executable, "-m", "rasa", "train",
        "--config", config,
        "--domain", "domain.yml",
        "--data", *(data or ["nlu_data"]),
        "--out", str(settings.models_dir),
        "--fixed-model-name", target.name[: -len(".tar.gz")],
    ]


def train(
    settings: Settings,
    force: bool = False,
    config: str = "config.yml",
    name: str = MODEL_PREFIX,
    data: Optional[List[str]] = None,
) -> Path:
    """Train unless a model for the current inputs exists; return the model path."""
    settings.ensure_dirs()
    if refresh_dictionary(settings):
        logger.info("train.generated.updated dictionary=%s examples=%s", jieba_dict.USER_DICT, nlu_examples.GENERATED_FILE)
    # After the examples made from the catalog: the reviewed ones leave out their texts.
    reviewed.write(settings.db_url, reviewed.REVIEWED_FILE, reviewed.NLU_DATA_DIR)
    fingerprint = data_fingerprint(config=config, embedding=settings.embedding_model)
    target = model_path_for(settings, fingerprint, name)
    if target.exists() and not force:
        logger.info("train.skipped model=%s (inputs unchanged)", target.name)
        return target
    command = rasa_command(settings, target, config, data)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", ENV_MODEL: settings.embedding_model}
    subprocess.run(command, cwd=PROJECT_ROOT, check=True, env=env)
    prune(settings, name, keep=target)
    return target


def prune(settings: Settings, name: str, keep: Path, count: int = 2) -> None:
    """Delete older models of the same name prefix, keeping the newest ``count``."""
    models = sorted(settings.models_dir.glob(f"{name}*.tar.gz"), key=lambda p: p.stat().st_mtime)
    for old in [m for m in models if m != keep][: max(0, len(models) - count)]:
        old.unlink(missing_ok=True)
