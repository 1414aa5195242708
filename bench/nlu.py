"""NLU accuracy on the held-out sets (bench/data/dev.tsv and test.tsv, never used for training).

Prints intent accuracy and item top-1 / top-3, overall and per style, side by side
with a jieba + BM25 keyword search over the official item names; also the share of
no-item lines (out of scope, small talk) that wrongly got an item.

    .venv/bin/python bench/nlu.py [--model models/banshi-xxx.tar.gz] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Neither file is ever used for training. dev.tsv was looked at while tuning the
# linker and the training data; test.tsv was written independently and only measured.
DATASETS = {
    "dev": ROOT / "bench" / "data" / "dev.tsv",
    "test": ROOT / "bench" / "data" / "test.tsv",
}


def load_heldout(path: Path) -> List[Dict[str, str]]:
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


class Bm25Baseline:
    """jieba + BM25 over the official item names only (what a plain search box does)."""

    def __init__(self) -> None:
        import jieba
        from rank_bm25 import BM25Okapi

        from knowledge.catalog import load_catalog

        self._jieba = jieba
        jieba.setLogLevel(60)
        catalog = load_catalog()
        self.ids = [r.id for r in catalog.items()]
        docs = [self._tokens(r.name) for r in catalog.items()]
        self.bm25 = BM25Okapi(docs)

    def _tokens(self, text: str) -> List[str]:
        return [t for t in self._jieba.lcut_for_search(text) if t.strip()]

    def rank(self, text: str) -> List[str]:
        scores = self.bm25.get_scores(self._tokens(text))
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        return [self.ids[i] for i in order if scores[i] > 0][:5]


def evaluate(
    rows: Sequence[Dict[str, str]],
    predict: Callable[[str], Dict],
) -> Dict[str, Dict[str, float]]:
    """Per style and overall: intent acc, item top-1/top-3 on item lines, false items on no-item lines."""
    stats: Dict[str, Dict[str, float]] = defaultdict(lambda: defaultdict(float))
    errors = []
    for row in rows:
        result = predict(row["text"])
        items = result["items"]
        for key in (row["style"], "ALL"):
            s = stats[key]
            s["n"] += 1
            if result.get("intent") is not None:
                s["intent_ok"] += result["intent"] == row["intent"]
            if row["item"]:
                s["item_n"] += 1
                s["top1"] += bool(items) and items[0] == row["item"]
                s["top3"] += row["item"] in items[:3]
            elif row["intent"] in {"out_of_scope", "greet", "goodbye", "thank", "affirm", "deny"}:
                s["none_n"] += 1
                s["false_item"] += bool(items)
        if row["item"] and (not items or items[0] != row["item"]):
            errors.append(f"item  {row['text']} → {items[:3]} (want {row['item']})")
        if result.get("intent") is not None and result["intent"] != row["intent"]:
            errors.append(f"intent {row['text']} → {result['intent']} (want {row['intent']})")
    stats["ALL"]["errors"] = errors  # type: ignore[assignment]
    return stats


def pct(num: float, den: float) -> str:
    return f"{100 * num / den:5.1f}%" if den else "    -"


def print_table(ours: Dict, base: Dict) -> None:
    styles = sorted(k for k in ours if k != "ALL") + ["ALL"]
    header = f"{'style':<12}{'lines':>6}  {'intent':>7}  {'item@1':>7}  {'item@3':>7}  {'false item':>10}  |  {'BM25@1':>7}  {'BM25@3':>7}"
    print(header)
    print("-" * len(header))
    for style in styles:
        o, b = ours[style], base[style]
        print(
            f"{style:<12}{int(o['n']):>6}  {pct(o['intent_ok'], o['n']):>7}  {pct(o['top1'], o['item_n']):>7}  "
            f"{pct(o['top3'], o['item_n']):>7}  {pct(o['false_item'], o['none_n']):>10}  |  "
            f"{pct(b['top1'], b['item_n']):>7}  {pct(b['top3'], b['item_n']):>7}"
        )


def load_parser(model: Optional[str]) -> Callable[[str], Dict]:
    from rasa.core.agent import Agent

    from assistant.runtime import newest_model
    from assistant.settings import get_settings

    path = model or str(newest_model(get_settings()))
    agent = Agent.load(path)
    loop = asyncio.new_event_loop()

    def predict(text: str) -> Dict:
        data = loop.run_until_complete(agent.parse_message(text))
        return {
            "intent": (data.get("intent") or {}).get("name"),
            "items": [i["id"] for i in data.get("service_items") or []],
        }

    predict.model_name = Path(path).name  # type: ignore[attr-defined]
    return predict


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model archive (default: newest in models/)")
    parser.add_argument("--errors", action="store_true", help="list every wrong prediction")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)

    predict = load_parser(args.model)
    baseline = Bm25Baseline()
    summary = {}
    for name, path in DATASETS.items():
        if not path.exists():
            continue
        rows = load_heldout(path)
        started = time.perf_counter()
        ours = evaluate(rows, predict)
        seconds = time.perf_counter() - started
        base = evaluate(rows, lambda t: {"intent": None, "items": baseline.rank(t)})
        print(f"\n== {name}: {path.relative_to(ROOT)} ({len(rows)} lines); model {predict.model_name}; "
              f"{1000 * seconds / len(rows):.1f} ms per line")
        print_table(ours, base)
        if args.errors:
            print("\nerrors:")
            for line in ours["ALL"]["errors"]:
                print("  " + line)
        summary[name] = {k: {m: v for m, v in s.items() if m != "errors"} for k, s in ours.items()}
    if args.json:
        Path(args.json).write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
