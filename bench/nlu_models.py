"""Compare sentence models for the NLU: which one does the shipped pipeline keep?

Trains config.yml once per embedding model (``BANSHI_EMBEDDING_MODEL``: none, use, e5,
use+e5, or a deployer's ``onnx:<dir>``; cached by data fingerprint under models/), then
prints per set: intent accuracy, item top-1, answered, false items on lines with no item,
item top-1 on situation-only lines, and parse time p50/p95 (one message at a time, the
model warm).

    .venv/bin/python bench/nlu_models.py [--models none use e5 use+e5] [--sets test,real,dev]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

from nlu import (  # noqa: E402
    DATASETS,
    SITUATION_ONLY,
    answer_threshold,
    evaluate,
    load_heldout,
    load_parser,
    pct,
)

DEFAULT_MODELS = ("none", "use", "e5", "use+e5")


def percentile(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--sets", default="test,real,dev")
    args = parser.parse_args(argv)

    os.chdir(ROOT)
    from assistant.config.settings import Settings
    from assistant.dialogue.training import data_fingerprint, model_path_for, train

    threshold = answer_threshold()
    sets = {}
    for name in args.sets.split(","):
        files, kind = DATASETS[name]
        sets[f"{name} ({kind})"] = [row for path in files for row in load_heldout(path)]
    print("| model | train s | set | lines | intent | item@1 | answered | false item | situation-only item@1 "
          "| parse p50 ms | parse p95 ms |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for spec in args.models:
        settings = Settings(embedding_model=spec)
        name = "banshi-" if spec == Settings().embedding_model else f"bench-{spec.replace('+', '-').replace(':', '-').replace('/', '_')}-"
        cached = model_path_for(settings, data_fingerprint(embedding=spec), name).exists()
        started = time.perf_counter()
        try:
            model = train(settings, name=name)
        except Exception as exc:  # keep measuring the other models
            print(f"{spec}: training failed: {exc}", file=sys.stderr)
            continue
        train_s = "cached" if cached else f"{time.perf_counter() - started:.0f}"
        predict = load_parser(str(model))
        for set_name, rows in sets.items():
            times = []

            def timed(text: str):
                t0 = time.perf_counter()
                out = predict(text)
                times.append(1000 * (time.perf_counter() - t0))
                return out

            stats = evaluate(rows, timed, threshold)
            a, s = stats["ALL"], stats.get(SITUATION_ONLY, {"top1": 0, "item_n": 0})
            print(f"| {spec} | {train_s} | {set_name} | {len(rows)} | {pct(a['intent_ok'], a['intent_n'])} "
                  f"| {pct(a['top1'], a['item_n'])} | {pct(a['answered'], a['item_n'])} "
                  f"| {pct(a['false_item'], a['none_n'])} | {pct(s['top1'], s['item_n'])} "
                  f"| {statistics.median(times):.1f} | {percentile(times, 0.95):.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
