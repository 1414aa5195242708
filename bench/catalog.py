"""Catalog edits without retraining: publish → visible on every replica.

`banshi run --replicas 2 --actions 2` behind nginx with real PostgreSQL and Redis
(throw-away servers from Debian's packages). Each round publishes a new passport fee
and a new alias on gateway 1's admin API, then polls every gateway directly (every
0.1 s) until (a) its catalog API shows the fee, (b) a chat answer (through the action
servers) shows the fee, (c) its item linker links a message with the new alias. The
table gives the delay after the publish answered, per gateway, p50 / p95 / max, and
how many rounds were within the 5-s target.

    .venv/bin/python bench/catalog.py [--rounds 10] [--poll 1.0] [--model models/x.tar.gz]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.cli.cluster import ReplicaCluster  # noqa: E402
from assistant.cli.instances import throwaway_postgres_redis  # noqa: E402

ITEM = "passport"
API = "/api/v1/admin/catalog"
PASSWORD = "Bench-Catalog-Passw0rd!"
FEE_QUESTION = "办护照要多少钱"
TARGET_S = 5.0
POLL_S = 0.1
GIVE_UP_S = 30.0
TODAY = time.strftime("%Y-%m-%d")
KINDS = ("catalog API", "chat answer", "alias linked")


async def _until(check, started: float) -> Optional[float]:
    """Seconds from ``started`` until ``check()`` is true (None after GIVE_UP_S)."""
    while time.monotonic() - started < GIVE_UP_S:
        try:
            if await check():
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        await asyncio.sleep(POLL_S)
    return None


async def _watch(base: str, fee: str, alias: str, started: float) -> Dict[str, Optional[float]]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        async def catalog() -> bool:
            return (await client.get(f"/api/v1/items/{ITEM}")).json().get("fees") == fee

        async def chat() -> bool:
            body = {"sender_id": f"bench-cat-{uuid.uuid4().hex[:10]}", "text": FEE_QUESTION}
            reply = (await client.post("/api/v1/chat", json=body)).json()
            return any(fee.rstrip("。") in (m.get("text") or "") for m in reply.get("messages", []))

        async def linked() -> bool:
            items = (await client.post("/api/v1/parse", json={"text": f"{alias}怎么办"})).json().get("items") or []
            return bool(items) and items[0]["id"] == ITEM

        found = await asyncio.gather(_until(catalog, started), _until(chat, started), _until(linked, started))
    return dict(zip(KINDS, found))


def _edit(doc: dict, fee: str, alias: str) -> dict:
    doc = dict(doc)
    doc["fees"] = fee
    doc["verified"] = max(doc["verified"], TODAY)
    doc["aliases"] = list(doc["aliases"]) + [alias]
    return doc


async def run_rounds(cluster: ReplicaCluster, admin: httpx.Client, rounds: int) -> List[Dict]:
    results = []
    for n in range(1, rounds + 1):
        fee = f"普通护照每本{120 + n}元（基准测试第{n}轮）。"
        alias = f"基准证件{uuid.uuid4().hex[:4]}"
        doc = admin.get(f"{API}/records/{ITEM}").json()["document"]
        sent = time.monotonic()
        reply = admin.post(f"{API}/records/{ITEM}/publish", json={"document": _edit(doc, fee, alias), "reason": f"基准测试第{n}轮"})
        answered = time.monotonic()
        if reply.status_code != 201:
            raise RuntimeError(f"publish refused: {reply.text}")
        seen = await asyncio.gather(*(_watch(cluster.gateway(i), fee, alias, answered)
                                      for i in range(1, cluster.replicas + 1)))
        results.append({"publish_s": answered - sent, "gateways": seen})
        print(f"round {n}: publish {answered - sent:.3f} s; " + "; ".join(
            f"gw{i + 1} " + " ".join(f"{k}={v:.2f}" if v is not None else f"{k}=never" for k, v in g.items())
            for i, g in enumerate(seen)), flush=True)
    return results


def _pct(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def print_table(results: List[Dict], replicas: int, poll: float) -> None:
    print(f"\nPublish → visible, {len(results)} rounds, {replicas} gateways, poll every {poll} s "
          f"(seconds after the publish answered)\n")
    print("| gateway | what | p50 | p95 | max | within 5 s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for i in range(replicas):
        for kind in KINDS:
            values = [r["gateways"][i][kind] for r in results]
            found = [v for v in values if v is not None]
            within = sum(1 for v in found if v <= TARGET_S)
            if found:
                print(f"| {i + 1} | {kind} | {statistics.median(found):.2f} | {_pct(found, 0.95):.2f} | "
                      f"{max(found):.2f} | {within}/{len(values)} |")
            else:
                print(f"| {i + 1} | {kind} | — | — | — | 0/{len(values)} |")
    publish = [r["publish_s"] for r in results]
    print(f"\npublish request itself: p50 {statistics.median(publish):.3f} s, max {max(publish):.3f} s")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--poll", type=float, default=1.0, help="BANSHI_CATALOG_POLL_SECONDS of the gateways")
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args(argv)
    from assistant.config.settings import get_settings
    from assistant.dialogue.runtime import newest_model
    from assistant.security import accounts

    model = args.model or newest_model(get_settings())
    with throwaway_postgres_redis("banshi-catalog-") as (work, postgres, redis):
        print(f"model {model.name}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}", flush=True)
        database = postgres.create_database(f"catalog_{uuid.uuid4().hex[:8]}")
        env = {"BANSHI_CATALOG_POLL_SECONDS": str(args.poll), "BANSHI_LOG_LEVEL": "WARNING",
               "BANSHI_SERVICE_HOURS": "always"}
        cluster = ReplicaCluster(work / "cluster", database, redis.url, model, args.replicas, args.replicas, env=env)
        with cluster:
            accounts.create_operator(database, "bench.admin", PASSWORD, role="admin")
            for i in range(1, args.replicas + 1):  # the first turns of a process build its graphs
                for text in ("你好", FEE_QUESTION):
                    httpx.post(f"{cluster.gateway(i)}/api/v1/chat", timeout=120,
                               json={"sender_id": f"bench-warm-{i}", "text": text})
            with httpx.Client(base_url=cluster.gateway(1), timeout=60) as admin:
                login = admin.post("/api/v1/desk/login", json={"username": "bench.admin", "password": PASSWORD})
                admin.headers["X-CSRF-Token"] = login.json()["csrf_token"]
                results = asyncio.run(run_rounds(cluster, admin, args.rounds))
                admin.post(f"{API}/records/{ITEM}/revert", json={"revision": 0, "reason": "基准测试结束"})
    print_table(results, args.replicas, args.poll)
    return 0


if __name__ == "__main__":
    sys.exit(main())
