"""5-fold cross-validation of the NLU on its own training data (a second view beside
the held-out sets: it shows how consistent the training data is, not how the assistant
does on new wording — the held-out sets in bench/nlu.py do that).

Runs ``rasa test nlu --cross-validation`` with config.yml and prints intent accuracy,
macro F1 and the per-intent F1 from Rasa's report.

    .venv/bin/python bench/crossval.py [--folds 5] [--config config.yml]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parent.parent


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--config", default="config.yml")
    args = parser.parse_args(argv)
    out = Path(tempfile.mkdtemp(prefix="banshi-crossval-"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "RASA_TELEMETRY_ENABLED": "false"}
    command = [
        sys.executable, "-m", "rasa", "test", "nlu", "--nlu", "nlu_data", "--config", args.config,
        "--cross-validation", "--folds", str(args.folds), "--out", str(out),
    ]
    subprocess.run(command, cwd=ROOT, check=True, env=env, stdout=subprocess.DEVNULL)
    report = json.loads((out / "intent_report.json").read_text(encoding="utf-8"))
    print(f"\n{args.folds}-fold cross-validation of {args.config} on nlu_data (test folds):\n")
    print(f"intent accuracy {100 * report['accuracy']:.1f}%, macro F1 {100 * report['macro avg']['f1-score']:.1f}%\n")
    print("| intent | examples | precision | recall | F1 |\n| --- | ---: | ---: | ---: | ---: |")
    for name, row in sorted(report.items()):
        if isinstance(row, dict) and "support" in row and name not in ("macro avg", "weighted avg", "micro avg"):
            print(f"| {name} | {row['support']} | {100 * row['precision']:.1f}% | {100 * row['recall']:.1f}% "
                  f"| {100 * row['f1-score']:.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
