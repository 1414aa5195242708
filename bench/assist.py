"""Operator assist (POST /api/v1/assist): accuracy of the suggestions and latency.

Every held-out question with an item label (the sets of bench/nlu.py, never
used for training) goes through ``assistant.services.assist.suggest`` with the model loaded
in-process. A suggestion is correct when its item and its question type match the
labels (the label intent mapped to a question type as the dialogue does; for an
``ask_service`` line the item alone counts). Lines whose intent is not a question
(check_progress, complain with an item) are left out and counted.

Then the real gateway (uvicorn in a thread, as tests/conftest.py's live_server, with
an API key) answers sequential ``POST /api/v1/assist`` requests; the gateway shares
the runtime already loaded (the model is loaded once).

    .venv/bin/python bench/assist.py [--model models/banshi-xxx.tar.gz] [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("SQLALCHEMY_WARN_20", "0")

from bench.latency import gateway_in_thread, pctl  # noqa: E402
from bench.nlu import DATASETS, DEFAULT_SETS, load_heldout  # noqa: E402

API_KEY = "bench-assist-key"
TARGET_P95_MS = 150.0
WARMUP = 10


def is_correct(suggestion, row: Dict[str, str]) -> bool:
    from assistant.services.assist import question_of

    if suggestion.item_id != row["item"]:
        return False
    return row["intent"] == "ask_service" or suggestion.question_type == question_of(row["intent"])


def question_rows(rows: Sequence[Dict[str, str]]) -> Tuple[List[Dict[str, str]], int]:
    """Rows with an item label and a question intent; and how many item rows were left out."""
    from knowledge.answers import QUESTION_TYPES

    with_item = [r for r in rows if r["item"]]
    kept = [r for r in with_item if r["intent"] in QUESTION_TYPES]
    return kept, len(with_item) - len(kept)


async def evaluate(runtime, catalog, rows: Sequence[Dict[str, str]]) -> Dict[str, float]:
    from assistant.services.assist import suggest

    top1 = top3 = needs = 0
    times: List[float] = []
    for row in rows:
        started = time.perf_counter()
        result = await suggest(runtime, catalog, row["text"])
        times.append(1000 * (time.perf_counter() - started))
        suggestions = result.suggestions
        top1 += bool(suggestions) and is_correct(suggestions[0], row)
        top3 += any(is_correct(s, row) for s in suggestions[:3])
        needs += result.needs_item
    n = len(rows)
    return {
        "n": n,
        "top1": top1 / n,
        "top3": top3 / n,
        "needs": needs / n,
        "p50": pctl(times, 0.5),
        "p95": pctl(times, 0.95),
    }


def http_latency(settings, runtime, texts: Sequence[str], requests: int) -> Dict[str, float]:
    """p50/p95 of POST /api/v1/assist over the real gateway (uvicorn on a free port)."""
    import httpx

    times: List[float] = []
    statuses: Dict[int, int] = {}

    # The async client, as bench/latency.py: httpx's sync client writes the headers and
    # the body of a POST separately, and Nagle + delayed ACK then add ~40 ms per request.
    async def run(base_url: str) -> None:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
            cycle = itertools.cycle(texts)
            for n in range(WARMUP + requests):
                started = time.perf_counter()
                reply = await client.post("/api/v1/assist", json={"text": next(cycle)})
                elapsed = 1000 * (time.perf_counter() - started)
                if n >= WARMUP:
                    times.append(elapsed)
                    statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1

    with gateway_in_thread(settings, runtime) as url:
        asyncio.run(run(url))
    if set(statuses) != {200}:
        raise RuntimeError(f"unexpected statuses: {statuses}")
    return {"n": len(times), "p50": pctl(times, 0.5), "p95": pctl(times, 0.95), "max": max(times)}


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model archive (default: newest in models/)")
    parser.add_argument("--requests", type=int, default=300, help="HTTP requests to time (default 300)")
    args = parser.parse_args(argv)
    logging.getLogger("assistant").setLevel(logging.WARNING)

    from assistant.config.settings import Settings
    from assistant.dialogue.runtime import AssistantRuntime, newest_model
    from knowledge.catalog import load_catalog

    data_dir = Path(tempfile.mkdtemp(prefix="banshi-bench-assist-"))
    overrides = {"model_path": Path(args.model)} if args.model else {}
    settings = Settings(data_dir=data_dir, tracker_store="memory", assist_api_keys=API_KEY, **overrides)
    settings = settings.copy(update={"model_path": newest_model(settings)})
    runtime = AssistantRuntime(settings)
    runtime.load()
    catalog = load_catalog(settings.catalog_dir, settings.region_override)

    sets = {}
    skipped = {}
    for name in DEFAULT_SETS:
        files, kind = DATASETS[name]
        rows = [row for path in files if path.exists() for row in load_heldout(path)]
        sets[f"{name} ({kind})"], skipped[f"{name} ({kind})"] = question_rows(rows)
    texts = [r["text"] for rows in sets.values() for r in rows]

    async def run_all() -> Dict[str, Dict[str, float]]:
        from assistant.services.assist import suggest

        for text in texts[:WARMUP]:
            await suggest(runtime, catalog, text)
        return {name: await evaluate(runtime, catalog, rows) for name, rows in sets.items()}

    results = asyncio.run(run_all())

    print(f"model {settings.model_path.name}; k = 3; in-process `suggest` latency\n")
    print("| set | n | top-1 | top-3 | needs item | p50 ms | p95 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        print(
            f"| {name} | {r['n']} | {pct(r['top1'])} | {pct(r['top3'])} | {pct(r['needs'])} "
            f"| {r['p50']:.1f} | {r['p95']:.1f} |"
        )
    print(
        "\nleft out (item label but not a question intent): "
        + ", ".join(f"{name} {count}" for name, count in skipped.items())
    )

    try:
        http = http_latency(settings, runtime, texts, args.requests)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    verdict = "meets" if http["p95"] <= TARGET_P95_MS else "MISSES"
    print(f"\nHTTP `POST /api/v1/assist`, {http['n']} sequential requests (held-out questions, API key)\n")
    print("| requests | p50 ms | p95 ms | max ms |")
    print("| ---: | ---: | ---: | ---: |")
    print(f"| {http['n']} | {http['p50']:.1f} | {http['p95']:.1f} | {http['max']:.1f} |")
    print(f"\np95 {http['p95']:.1f} ms {verdict} the target of {TARGET_P95_MS:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
