"""Scale and faults: simulated users (web chat, WeChat, desk) against `banshi run
--replicas` behind nginx with real PostgreSQL and Redis (throw-away servers from
Debian's packages), and the same load while an action server, a gateway replica and
PostgreSQL go down.

    .venv/bin/python bench/scale.py [--users 200] [--seconds 120] [--runs one two faults]

Every run: the users talk for the given time (closed loop: each waits for its answer,
then thinks 1–3 s), then every conversation's stored messages (the tracker store in
PostgreSQL) are compared with what got an answer: lost = answered but not stored;
"stored beyond answered" = stored more often than answered (a turn whose answer was
lost with a crashed replica, so the user saw an error and may send it again; or a
WeChat message whose turn ran again after its replica died). Errors are answers other
than HTTP 200, WeChat deliveries that got no answer after WeChat's retries, and
WeChat's "please send again" notice.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import httpx
from sqlalchemy import create_engine, text as sql_text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.api.serving import free_port, serve_in_thread  # noqa: E402
from assistant.channels.wechat_sim import FakeWeChatApi, WeChatSimulator  # noqa: E402
from assistant.cli.cluster import ReplicaCluster  # noqa: E402
from assistant.cli.instances import PostgresInstance, RedisInstance  # noqa: E402
from local_servers import bench_model, local_servers  # noqa: E402

QUESTIONS = [
    "办护照要带什么材料", "那要交多少钱", "在哪里办", "社保卡丢了怎么补办", "要多久能拿到",
    "身份证过期了怎么换", "营业执照怎么申请", "孩子出生了要办哪些手续", "低保怎么申请",
    "养老金资格认证在哪弄", "我想问一下公积金怎么提取", "结婚登记要带什么", "谢谢",
    "驾驶证到期换证需要什么", "不动产登记在哪个窗口", "居住证怎么办理",
]
WECHAT_TOKEN = "benchToken123"
WECHAT_APP_ID = "wx0123456789abcdef"
WECHAT_SECRET = "bench-app-secret"
OPERATOR_PASSWORD = "Bench-Passw0rd!"
CHAT, WECHAT, DESK = "chat", "wechat", "desk"
RESEND = "再发一次"  # the WeChat channel's notice when it could not take a message (wechat.yml)
SHARES = {CHAT: 0.7, WECHAT: 0.2, DESK: 0.1}


@dataclass
class Record:
    latencies: Dict[str, List[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter = field(default_factory=Counter)
    unavailable: int = 0
    sent: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # sender → texts answered
    events: List[Tuple[float, str, bool]] = field(default_factory=list)  # (time, kind, ok)
    answered_at: Dict[Tuple[str, str], List[float]] = field(default_factory=lambda: defaultdict(list))

    def ok(self, kind: str, started: float, t0: float) -> None:
        now = time.monotonic()
        self.latencies[kind].append(now - started)
        self.events.append((now - t0, kind, True))

    def fail(self, kind: str, what: str, t0: float) -> None:
        self.errors[f"{kind}:{what}"] += 1
        self.events.append((time.monotonic() - t0, kind, False))


async def chat_user(base: str, client: httpx.AsyncClient, until: float, record: Record, t0: float) -> None:
    sender = f"bench-{uuid.uuid4().hex[:12]}"
    rng = random.Random(sender)
    while time.monotonic() < until:
        text = rng.choice(QUESTIONS)
        started = time.monotonic()
        try:
            reply = await client.post(f"{base}/api/v1/chat", json={"sender_id": sender, "text": text})
        except httpx.HTTPError as exc:
            record.fail(CHAT, type(exc).__name__, t0)
        else:
            if reply.status_code == 200:
                record.ok(CHAT, started, t0)
                record.sent[sender][text] += 1
                record.answered_at[(sender, text)].append(time.monotonic() - t0)
                if reply.json().get("answer") == "unavailable":
                    record.unavailable += 1
            else:
                record.fail(CHAT, str(reply.status_code), t0)
        await asyncio.sleep(rng.uniform(1.0, 3.0))


async def wechat_user(base: str, until: float, record: Record, t0: float) -> None:
    openid = f"o{uuid.uuid4().hex[:20]}"
    rng = random.Random(openid)
    async with WeChatSimulator(f"{base}/channels/wechat", WECHAT_TOKEN, WECHAT_APP_ID) as sim:
        while time.monotonic() < until:
            text = rng.choice(QUESTIONS)
            started = time.monotonic()
            reply = await sim.send_text(openid, text)
            if reply.status == 200 and reply.text and RESEND in reply.text:
                record.fail(WECHAT, "asked to send again", t0)  # not processed: the user is told so
            elif reply.status == 200:
                record.ok(WECHAT, started, t0)
                record.sent[f"wx-{openid}"][text] += 1
                record.answered_at[(f"wx-{openid}", text)].append(time.monotonic() - t0)
            else:
                record.fail(WECHAT, str(reply.status), t0)
            await asyncio.sleep(rng.uniform(1.0, 3.0))


async def desk_user(base: str, username: str, until: float, record: Record, t0: float) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        login = await client.post(f"{base}/api/v1/desk/login", json={"username": username, "password": OPERATOR_PASSWORD})
        if login.status_code != 200:
            record.fail(DESK, f"login {login.status_code}", t0)
            return
        while time.monotonic() < until:
            started = time.monotonic()
            try:
                queue = await client.get(f"{base}/api/v1/desk/queue")
            except httpx.HTTPError as exc:
                record.fail(DESK, type(exc).__name__, t0)
            else:
                if queue.status_code == 200:
                    record.ok(DESK, started, t0)
                else:
                    record.fail(DESK, str(queue.status_code), t0)
            await asyncio.sleep(2.0)


async def load(base: str, users: int, seconds: float, operators: List[str], record: Record,
               faults: Optional["Faults"] = None) -> float:
    counts = {kind: round(users * share) for kind, share in SHARES.items()}
    t0 = time.monotonic()
    until = t0 + seconds
    limits = httpx.Limits(max_connections=users + 50, max_keepalive_connections=users + 50)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        tasks = [chat_user(base, client, until, record, t0) for _ in range(counts[CHAT])]
        tasks += [wechat_user(base, until, record, t0) for _ in range(counts[WECHAT])]
        tasks += [desk_user(base, operators[i % len(operators)], until, record, t0) for i in range(counts[DESK])]
        if faults is not None:
            tasks.append(faults.run(t0))
        await asyncio.gather(*tasks)
    return time.monotonic() - t0


def stored_user_texts(database_url: str, senders: List[str]) -> Dict[str, Counter]:
    import json

    engine = create_engine(database_url)
    found: Dict[str, Counter] = defaultdict(Counter)
    with engine.connect() as conn:
        for sender in senders:
            rows = conn.execute(
                sql_text("SELECT data FROM events WHERE sender_id = :s AND type_name = 'user'"), {"s": sender}
            ).scalars()
            for data in rows:
                found[sender][json.loads(data).get("text", "")] += 1
    engine.dispose()
    return found


def lost_and_duplicated(record: Record, database_url: str) -> Tuple[int, int]:
    stored = stored_user_texts(database_url, list(record.sent))
    lost = duplicated = 0
    examples = []
    for sender, texts in record.sent.items():
        for text, count in texts.items():
            have = stored[sender][text]
            lost += max(0, count - have)
            duplicated += max(0, have - count)
            if have != count and len(examples) < 8:
                times = ", ".join(f"{t:.0f}" for t in record.answered_at[(sender, text)])
                examples.append(f"{sender[:16]} {text}: answered {count} (at s {times}), stored {have}")
    if examples:
        print("differences:\n  " + "\n  ".join(examples), flush=True)
    return lost, duplicated


def pct(values: List[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Faults:
    """Kill an action server, a gateway, and crash PostgreSQL at given times of the load."""

    def __init__(self, cluster: ReplicaCluster, postgres: PostgresInstance, at: Tuple[float, float, float]):
        self.cluster = cluster
        self.postgres = postgres
        self.at = at
        self.rows: List[Dict[str, object]] = []

    async def _when(self, t0: float, offset: float) -> float:
        await asyncio.sleep(max(0.0, t0 + offset - time.monotonic()))
        return time.monotonic() - t0

    async def _recovered(self, condition, started: float, timeout: float = 300) -> float:
        while time.monotonic() - started < timeout:
            try:
                if await asyncio.to_thread(condition):
                    return time.monotonic() - started
            except Exception:
                pass
            await asyncio.sleep(0.2)
        return float("nan")

    async def run(self, t0: float) -> None:
        cluster = self.cluster
        at = await self._when(t0, self.at[0])
        pid = cluster.child("actions-1")["pid"]
        os.kill(pid, signal.SIGKILL)
        started = time.monotonic()
        back = await self._recovered(
            lambda: cluster.child("actions-1")["state"] == "running" and cluster.child("actions-1")["pid"] != pid,
            started)
        self.rows.append({"fault": "action server 1 killed (SIGKILL)", "at": at, "recovered": back})

        at = await self._when(t0, self.at[1])
        pid = cluster.child("gateway-1")["pid"]
        os.kill(pid, signal.SIGKILL)
        started = time.monotonic()
        back = await self._recovered(
            lambda: cluster.child("gateway-1")["pid"] not in (None, pid) and cluster.ready(cluster.gateway(1)), started)
        self.rows.append({"fault": "gateway 1 killed (SIGKILL)", "at": at, "recovered": back})

        at = await self._when(t0, self.at[2])
        await asyncio.to_thread(self.postgres.kill)
        started = time.monotonic()
        await asyncio.sleep(3.0)  # down for 3 s, then back
        await asyncio.to_thread(self.postgres.restart)
        back = await self._recovered(lambda: cluster.ready(cluster.url), started)
        self.rows.append({"fault": "PostgreSQL crashed (SIGQUIT), back after 3 s", "at": at, "recovered": back})


def run_setup(name: str, replicas: int, actions: int, args, postgres: PostgresInstance, redis: RedisInstance,
              model: Path, work: Path, faults: bool = False) -> Dict[str, object]:
    from assistant.security import accounts

    database = postgres.create_database(f"scale_{uuid.uuid4().hex[:8]}")
    env = {
        "BANSHI_WECHAT_TOKEN": WECHAT_TOKEN, "BANSHI_WECHAT_APP_ID": WECHAT_APP_ID,
        "BANSHI_WECHAT_APP_SECRET": WECHAT_SECRET, "BANSHI_WECHAT_MODE": "plain",
        "BANSHI_WECHAT_API_BASE": args.wechat_api, "BANSHI_LOGIN_RATE_LIMIT": "100000/minute",
        "BANSHI_SERVICE_HOURS": "always", "BANSHI_LOG_LEVEL": "WARNING",
    }
    cluster = ReplicaCluster(work / f"r{replicas}a{actions}{'-faults' if faults else ''}", database, redis.url, model,
                             replicas, actions, env=env)
    record = Record()
    started = time.monotonic()
    with cluster:
        ready_s = time.monotonic() - started
        operators = []
        for i in range(max(1, round(args.users * SHARES[DESK]))):
            operators.append(f"bench{i}")
            accounts.create_operator(database, f"bench{i}", OPERATOR_PASSWORD, display_name=f"坐席{i}")
        for i in range(1, replicas + 1):  # the first turns of a process build its graphs: not measured
            for text in QUESTIONS[:3]:
                httpx.post(f"{cluster.gateway(i)}/api/v1/chat", json={"sender_id": f"warm-{i}", "text": text}, timeout=120)
        plan = Faults(cluster, postgres, (args.seconds * 0.2, args.seconds * 0.45, args.seconds * 0.7)) if faults else None
        elapsed = asyncio.run(load(cluster.url, args.users, args.seconds, operators, record, plan))
        time.sleep(2.0)  # WeChat replies sent late by the customer-service API land
        health = [httpx.get(f"{cluster.gateway(i)}/healthz", timeout=10).json() for i in range(1, replicas + 1)]
        lost, duplicated = lost_and_duplicated(record, database)
    turns = sum(len(v) for k, v in record.latencies.items() if k != DESK)
    return {
        "name": name, "record": record, "elapsed": elapsed, "ready_s": ready_s, "turns": turns,
        "lost": lost, "duplicated": duplicated, "health": health, "faults": plan.rows if plan else [],
    }


def print_runs(runs: List[Dict[str, object]], users: int) -> None:
    print(f"\n== Load: {users} simulated users (70 % web chat, 20 % WeChat, 10 % desk), closed loop, think 1–3 s\n")
    print("| setup | seconds | turns | turns/s | errors | 'unavailable' answers | lost | stored beyond answered | chat p50 | chat p95 | chat p99 | WeChat p95 | desk p95 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run in runs:
        record: Record = run["record"]  # type: ignore[assignment]
        chat = record.latencies[CHAT]
        print(
            f"| {run['name']} | {run['elapsed']:.0f} | {run['turns']} | {run['turns'] / run['elapsed']:.1f} | "
            f"{sum(record.errors.values())} | {record.unavailable} | {run['lost']} | {run['duplicated']} | "
            f"{pct(chat, 0.5):.2f} | {pct(chat, 0.95):.2f} | {pct(chat, 0.99):.2f} | "
            f"{pct(record.latencies[WECHAT], 0.95):.2f} | {pct(record.latencies[DESK], 0.95):.2f} |"
        )
    for run in runs:
        record = run["record"]  # type: ignore[assignment]
        if record.errors:
            print(f"\nerrors in {run['name']}: " + ", ".join(f"{k} ×{v}" for k, v in record.errors.most_common()))
    named = {run["name"]: run for run in runs}
    one, two = named.get("1 gateway + 1 action server"), named.get("2 gateways + 2 action servers")
    if one and two:
        ratio = (two["turns"] / two["elapsed"]) / (one["turns"] / one["elapsed"])
        p95 = pct(two["record"].latencies[CHAT], 0.95) / pct(one["record"].latencies[CHAT], 0.95)
        print(f"\nthroughput ratio 2 replicas / 1 replica: {ratio:.2f}; chat p95 ratio: {p95:.2f} "
              f"({os.cpu_count()} CPUs: replicas share them)")


def print_faults(run: Dict[str, object]) -> None:
    record: Record = run["record"]  # type: ignore[assignment]
    print(f"\n== Faults during the load ({run['name']})\n")
    print("| fault | at s | recovered after s | failed answers in the next 30 s | answered in the next 30 s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in run["faults"]:  # type: ignore[union-attr]
        at = float(row["at"])
        window = [ok for t, kind, ok in record.events if at <= t < at + 30 and kind != DESK]
        print(f"| {row['fault']} | {at:.0f} | {float(row['recovered']):.1f} | {window.count(False)} | {window.count(True)} |")
    actions = [h.get("actions") or {} for h in run["health"]]  # type: ignore[union-attr]
    print(f"\nanswered from the catalog while an action server was unreachable: "
          f"{sum(a.get('fallback_answers', 0) for a in actions)}; 'unavailable' replies: {record.unavailable}; "
          f"lost: {run['lost']}; stored beyond answered: {run['duplicated']}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--runs", nargs="+", default=["one", "two", "faults"], choices=["one", "two", "faults"])
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args(argv)
    model = bench_model(args.model)
    with local_servers("banshi-scale-") as (work, postgres, redis):
        api = FakeWeChatApi(WECHAT_APP_ID, WECHAT_SECRET)
        port = free_port()
        args.wechat_api = f"http://127.0.0.1:{port}"
        print(f"model {model.name}; PostgreSQL {postgres.port}, Redis {redis.port}; {os.cpu_count()} CPUs; "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)
        runs = []
        with serve_in_thread(api.app, port=port):
            if "one" in args.runs:
                runs.append(run_setup("1 gateway + 1 action server", 1, 1, args, postgres, redis, model, work))
            if "two" in args.runs:
                runs.append(run_setup("2 gateways + 2 action servers", 2, 2, args, postgres, redis, model, work))
            fault_run = None
            if "faults" in args.runs:
                fault_run = run_setup("2 + 2, with faults", 2, 2, args, postgres, redis, model, work, faults=True)
                runs.append(fault_run)
    print_runs(runs, args.users)
    if fault_run:
        print_faults(fault_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
