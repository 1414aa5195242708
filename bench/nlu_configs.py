"""Compare intent classifiers on the held-out sets: which pipeline does config.yml keep?

Trains each variant once (cached by data fingerprint under models/), then prints
training time, load time, parse time, intent accuracy and item top-1 on the dev
and test sets.

    .venv/bin/python bench/nlu_configs.py [--variants logreg diet diet_entities]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from nlu import DATASETS, evaluate, load_heldout, load_parser, pct  # noqa: E402

VARIANTS: Dict[str, str] = {
    "logreg": "bench/configs/logreg.yml",
    "diet": "config.yml",  # the shipped pipeline
    "diet_entities": "bench/configs/diet_entities.yml",
}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args(argv)

    os.chdir(ROOT)
    from assistant.settings import get_settings
    from assistant.training import data_fingerprint, model_path_for, train

    settings = get_settings()
    sets = {name: load_heldout(path) for name, path in DATASETS.items() if path.exists()}
    rows = []
    for variant in args.variants:
        config = VARIANTS[variant]
        name = "banshi-" if config == "config.yml" else f"bench-{variant}-"
        cached = model_path_for(settings, data_fingerprint(config=config), name).exists()
        started = time.perf_counter()
        try:
            model = train(settings, config=config, name=name)
        except Exception as exc:  # keep measuring the other variants
            print(f"{variant}: training failed: {exc}", file=sys.stderr)
            continue
        train_s = None if cached else time.perf_counter() - started
        started = time.perf_counter()
        predict = load_parser(str(model))
        load_s = time.perf_counter() - started
        result = {"variant": variant, "train_s": train_s, "load_s": load_s}
        for set_name, data in sets.items():
            started = time.perf_counter()
            stats = evaluate(data, predict)["ALL"]
            result[f"{set_name}_ms"] = 1000 * (time.perf_counter() - started) / len(data)
            result[f"{set_name}_intent"] = pct(stats["intent_ok"], stats["n"])
            result[f"{set_name}_item1"] = pct(stats["top1"], stats["item_n"])
        rows.append(result)

    header = f"{'variant':<15}{'train s':>8}{'load s':>8}"
    for set_name in sets:
        header += f"  {set_name + ' intent':>12}{set_name + ' item@1':>12}{'ms/msg':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        train_s = f"{r['train_s']:.0f}" if r["train_s"] is not None else "cached"
        line = f"{r['variant']:<15}{train_s:>8}{r['load_s']:>8.1f}"
        for set_name in sets:
            line += f"  {r[set_name + '_intent']:>12}{r[set_name + '_item1']:>12}{r[set_name + '_ms']:>8.1f}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
