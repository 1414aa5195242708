"""NLU accuracy on held-out sets that no training data was written from.

Prints, per set and per style: intent accuracy, item top-1 / top-3 (any score) and
"answered" (top-1 right *and* strong enough for the assistant to answer it), and the
false-item rate on lines that belong to no catalog item (out of scope, small talk,
not covered: an item strong enough to be answered counts as false). A row
``situation-only`` gathers the lines that never name the service. A jieba + BM25 search
over the official item names is printed beside it as a floor.

Sets (``bench/data/``; none is used for training):

* ``test``: ``v4/test.tsv`` — written by a writer who saw only the ids, official names
  and one-line descriptions, frozen before anyone looked at it;
* ``test3``: ``v3/test_a.tsv`` + ``v3/test_b.tsv`` — the same, by two other writers; their
  totals were measured while tuning, their lines never looked at;
* ``real``: ``v2/real_citizens.tsv`` — questions and complaints real citizens wrote on
  public pages (with their addresses), frozen before any tuning, never looked at;
* ``dev``: ``v2/dev.tsv`` — written the same blind way, *looked at while tuning*;
* ``dev2``: ``v2/test_a.tsv`` + ``v2/test_b.tsv`` — the first blind test sets; measured
  once as a test set, then looked at while tuning, so it is now dev;
* ``old-dev`` / ``old-test``: the first round's sets (they name the service in almost
  every line and resemble the training data; kept for comparison).

    .venv/bin/python bench/nlu.py [--model models/banshi-xxx.tar.gz] [--sets test,real]
                                  [--errors] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
DATA = ROOT / "bench" / "data"
# name -> (files, kind): "test" sets were frozen before tuning; "dev" sets were looked at.
DATASETS: Dict[str, Tuple[List[Path], str]] = {
    "test": ([DATA / "v4" / "test.tsv"], "test"),
    "real": ([DATA / "v2" / "real_citizens.tsv"], "test"),
    "dev": ([DATA / "v2" / "dev.tsv"], "dev"),
    "dev2": ([DATA / "v2" / "test_a.tsv", DATA / "v2" / "test_b.tsv"], "dev"),
    "test3": ([DATA / "v3" / "test_a.tsv", DATA / "v3" / "test_b.tsv"], "test"),
    "old-dev": ([DATA / "dev.tsv"], "dev"),
    "old-test": ([DATA / "test.tsv"], "dev"),
}
DEFAULT_SETS = ("test", "test3", "real", "dev", "dev2")
SITUATION_ONLY = "situation-only"
NO_ITEM_STYLES = {"out_of_scope", "not_covered"}


def load_heldout(path: Path) -> List[Dict[str, str]]:
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


def answer_threshold() -> float:
    """The score from which the dialogue answers an item (actions/config.yml)."""
    import yaml

    data = yaml.safe_load((ROOT / "actions" / "config.yml").read_text(encoding="utf-8"))
    return float(data["item"]["min_score"])


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
        self.bm25 = BM25Okapi([self._tokens(r.name) for r in catalog.items()])

    def _tokens(self, text: str) -> List[str]:
        return [t for t in self._jieba.lcut_for_search(text) if t.strip()]

    def rank(self, text: str) -> List[Tuple[str, float]]:
        scores = self.bm25.get_scores(self._tokens(text))
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        return [(self.ids[i], 1.0) for i in order if scores[i] > 0][:5]


def evaluate(
    rows: Sequence[Dict[str, str]], predict: Callable[[str], Dict], threshold: float
) -> Dict[str, Dict]:
    """Per style (and situation-only, and ALL): counts for the table."""
    stats: Dict[str, Dict] = defaultdict(lambda: defaultdict(float))
    errors: List[str] = []
    for row in rows:
        result = predict(row["text"])
        items: List[Tuple[str, float]] = result["items"]
        ids = [i for i, _ in items]
        answered = ids[0] if items and items[0][1] >= threshold else None
        keys = [row.get("style") or "-", "ALL"]
        if row.get("named") == "0":
            keys.append(SITUATION_ONLY)
        for key in keys:
            s = stats[key]
            s["n"] += 1
            if result.get("intent") is not None:
                s["intent_n"] += 1
                s["intent_ok"] += result["intent"] == row["intent"]
            if row["item"]:
                s["item_n"] += 1
                s["top1"] += bool(ids) and ids[0] == row["item"]
                s["top3"] += row["item"] in ids[:3]
                s["answered"] += answered == row["item"]
            elif row.get("style") in NO_ITEM_STYLES or row["intent"] == "out_of_scope":
                s["none_n"] += 1
                s["false_item"] += answered is not None
        if row["item"] and answered != row["item"]:
            errors.append(f"item   [{row.get('style')}] {row['text']} → {items[:3]} (want {row['item']})")
        elif not row["item"] and answered and (row.get("style") in NO_ITEM_STYLES):
            errors.append(f"false  [{row.get('style')}] {row['text']} → {items[:2]}")
        if result.get("intent") is not None and result["intent"] != row["intent"]:
            errors.append(f"intent [{row.get('style')}] {row['text']} → {result['intent']} (want {row['intent']})")
    stats["ALL"]["errors"] = errors
    return stats


def pct(num: float, den: float) -> str:
    return f"{100 * num / den:5.1f}%" if den else "    -"


def print_table(ours: Dict, base: Dict) -> None:
    styles = sorted(k for k in ours if k not in ("ALL", SITUATION_ONLY))
    styles += [k for k in (SITUATION_ONLY, "ALL") if k in ours]
    header = (
        f"{'style':<17}{'lines':>6}  {'intent':>7}  {'item@1':>7}  {'item@3':>7}  {'answered':>8}  "
        f"{'false item':>10}  |  {'BM25@1':>7}"
    )
    print(header)
    print("-" * len(header))
    for style in styles:
        o, b = ours[style], base[style]
        print(
            f"{style:<17}{int(o['n']):>6}  {pct(o['intent_ok'], o['intent_n']):>7}  "
            f"{pct(o['top1'], o['item_n']):>7}  {pct(o['top3'], o['item_n']):>7}  "
            f"{pct(o['answered'], o['item_n']):>8}  {pct(o['false_item'], o['none_n']):>10}  |  "
            f"{pct(b['top1'], b['item_n']):>7}"
        )


def load_parser(model: Optional[str]) -> Callable[[str], Dict]:
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    from assistant.config.settings import get_settings
    from assistant.dialogue.runtime import newest_model

    path = model or str(newest_model(get_settings()))
    agent = Agent.load(path)
    configure_structlog(logging.WARNING)  # no per-message debug lines in the tables
    logging.getLogger("rasa").setLevel(logging.WARNING)
    loop = asyncio.new_event_loop()

    def predict(text: str) -> Dict:
        data = loop.run_until_complete(agent.parse_message(text))
        return {
            "intent": (data.get("intent") or {}).get("name"),
            "items": [(i["id"], float(i["score"])) for i in data.get("service_items") or []],
        }

    predict.model_name = Path(path).name  # type: ignore[attr-defined]
    return predict


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model archive (default: newest in models/)")
    parser.add_argument("--sets", default=",".join(DEFAULT_SETS), help=f"of {', '.join(DATASETS)}")
    parser.add_argument("--errors", action="store_true", help="list every wrong prediction")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)

    predict = load_parser(args.model)
    baseline = Bm25Baseline()
    threshold = answer_threshold()
    summary = {}
    for name in args.sets.split(","):
        files, kind = DATASETS[name]
        rows = [row for path in files if path.exists() for row in load_heldout(path)]
        if not rows:
            continue
        started = time.perf_counter()
        ours = evaluate(rows, predict, threshold)
        seconds = time.perf_counter() - started
        base = evaluate(rows, lambda t: {"intent": None, "items": baseline.rank(t)}, 0.0)
        where = " + ".join(str(p.relative_to(ROOT)) for p in files)
        print(f"\n== {name} ({kind}): {where} ({len(rows)} lines); model {predict.model_name}; "
              f"{1000 * seconds / len(rows):.1f} ms per line")
        print_table(ours, base)
        if args.errors:
            print("\nerrors:")
            for line in ours["ALL"]["errors"]:
                print("  " + line)
        summary[name] = {
            "kind": kind,
            "styles": {k: {m: v for m, v in s.items() if m != "errors"} for k, s in ours.items()},
        }
    if args.json:
        Path(args.json).write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
