"""A Vosk model that waits longer before it ends an utterance.

Vosk (the Python API of this version) has no per-recogniser setting for its
end-of-utterance rules; they come from the model's ``conf/model.conf``
(``--endpoint.rule2.min-trailing-silence=0.5`` in the Chinese small model). A
phone number read digit by digit has pauses of that length between the digits, and
a digit said just after a cut is often lost ("一三九 | 七二六…", the 零 gone).
:func:`with_trailing_silence` builds a view of a model directory (symlinks to its
files) whose ``model.conf`` waits longer, under a writable folder; the model files are
shared on disk, and loading the view costs one more model in memory (about 70 MB for
the small Chinese model).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

_RULES = ("rule2", "rule3", "rule4")
_RULE_RE = re.compile(r"^--endpoint\.(rule[234])\.min-trailing-silence=.*$", re.MULTILINE)


def endpoint_conf(conf: str, trailing_silence_s: float) -> str:
    """``conf`` (a model.conf's text) with its end-of-utterance rules 2-4 waiting at
    least ``trailing_silence_s``, ``+0.5`` and ``+1.5`` seconds of silence."""
    wanted = dict(zip(_RULES, (trailing_silence_s, trailing_silence_s + 0.5, trailing_silence_s + 1.5)))
    kept = _RULE_RE.sub("", conf).rstrip("\n").splitlines()
    lines = [line for line in kept if line.strip()]
    lines.extend(f"--endpoint.{rule}.min-trailing-silence={value:g}" for rule, value in wanted.items())
    return "\n".join(lines) + "\n"


def with_trailing_silence(model_dir: Path, work_dir: Path, trailing_silence_s: float) -> Path:
    """A view of ``model_dir`` under ``work_dir`` whose utterances end only after
    ``trailing_silence_s`` of silence (built once; rebuilt when the model's conf
    changes). Safe when several processes build it at once (built aside, then renamed)."""
    model_dir = Path(model_dir).resolve()
    conf = endpoint_conf((model_dir / "conf" / "model.conf").read_text(encoding="utf-8"), trailing_silence_s)
    target = Path(work_dir) / f"{model_dir.name}-endpoint-{trailing_silence_s:g}s"
    current = target / "conf" / "model.conf"
    if current.is_file() and current.read_text(encoding="utf-8") == conf:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        for entry in model_dir.iterdir():
            if entry.name != "conf":
                (staging / entry.name).symlink_to(entry)
        (staging / "conf").mkdir()
        for entry in (model_dir / "conf").iterdir():
            if entry.name != "model.conf":
                (staging / "conf" / entry.name).symlink_to(entry)
        (staging / "conf" / "model.conf").write_text(conf, encoding="utf-8")
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(staging, target)
        except OSError:
            if not (target / "conf" / "model.conf").is_file():  # another process won the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
