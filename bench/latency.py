"""Latency and throughput of the gateway vs `rasa run`'s REST channel on the same model.

Starts the real processes (action server, `banshi run`'s gateway, `rasa run`), one
system at a time, and measures:
  * start-up time (process start → ready) and RSS after the load,
  * sequential p50/p95 of a chat turn and of a parse,
  * 8 concurrent clients in 10-turn conversations: throughput and p50/p95,
  * three 50-turn conversations: turns 41-50 vs turns 1-10 (medians).

    .venv/bin/python bench/latency.py [--turns 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import httpx

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CONVERSATION = [
    "你好", "我想办社保卡", "要带什么材料", "多久能拿到", "在哪里办",
    "那护照呢", "要交钱吗", "身份证丢了怎么补办", "流程是什么", "谢谢",
]
PARSE_TEXTS = ["我想办社保卡要带什么", "身份证丢了怎么补办", "公积金怎么提取", "今天天气怎么样", "开饭店要办哪些证"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (from /proc)."""
    total = 0
    pids = [pid]
    try:
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        pids += [int(c) for c in children]
    except FileNotFoundError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 300) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited while waiting for {url}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"not ready after {timeout}s: {url}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def gateway_in_thread(settings, runtime) -> Iterator[str]:
    """The gateway app served by uvicorn in a thread, sharing an already loaded
    runtime (one copy of the model in the bench process); yields its base URL."""
    sys.path.insert(0, str(ROOT))
    from assistant.api.app import create_app
    from assistant.api.serving import serve_in_thread

    app = create_app(settings, load_model=False)
    app.state.runtime = runtime
    with serve_in_thread(app, start_timeout=120) as url:
        yield url


def pctl(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class System:
    """How to talk to one system under test."""

    def __init__(self, name: str, base: str, chat: Callable, parse: Callable):
        self.name, self.base, self.chat, self.parse = name, base, chat, parse


def gateway_system(base: str) -> System:
    async def chat(client: httpx.AsyncClient, sender: str, text: str) -> None:
        r = await client.post(f"{base}/api/v1/chat", json={"sender_id": sender, "text": text})
        r.raise_for_status()

    async def parse(client: httpx.AsyncClient, text: str) -> None:
        r = await client.post(f"{base}/api/v1/parse", json={"text": text})
        r.raise_for_status()

    return System("banshi gateway", base, chat, parse)


def rasa_system(base: str) -> System:
    async def chat(client: httpx.AsyncClient, sender: str, text: str) -> None:
        r = await client.post(f"{base}/webhooks/rest/webhook", json={"sender": sender, "message": text})
        r.raise_for_status()

    async def parse(client: httpx.AsyncClient, text: str) -> None:
        r = await client.post(f"{base}/model/parse", json={"text": text})
        r.raise_for_status()

    return System("rasa run (REST)", base, chat, parse)


async def timed(coro) -> float:
    started = time.perf_counter()
    await coro
    return 1000 * (time.perf_counter() - started)


async def measure(system: System, turns: int, rounds: int, tag: str) -> Dict[str, float]:
    out: Dict[str, float] = {}
    async with httpx.AsyncClient(timeout=60) as client:
        for i in range(10):  # warm-up
            await system.chat(client, f"{tag}-warm", CONVERSATION[i % len(CONVERSATION)])
            await system.parse(client, PARSE_TEXTS[i % len(PARSE_TEXTS)])
        chat_ms = []
        for i in range(turns):
            sender = f"{tag}-seq-{i // len(CONVERSATION)}"
            chat_ms.append(await timed(system.chat(client, sender, CONVERSATION[i % len(CONVERSATION)])))
        parse_ms = [await timed(system.parse(client, PARSE_TEXTS[i % len(PARSE_TEXTS)])) for i in range(turns)]
        out.update(
            chat_p50=statistics.median(chat_ms), chat_p95=pctl(chat_ms, 0.95),
            parse_p50=statistics.median(parse_ms), parse_p95=pctl(parse_ms, 0.95),
        )

        conc_ms: List[float] = []

        async def conversation(sender: str) -> None:
            for text in CONVERSATION:
                conc_ms.append(await timed(system.chat(client, sender, text)))

        started = time.perf_counter()
        for r in range(rounds):
            await asyncio.gather(*(conversation(f"{tag}-c{r}-{k}") for k in range(8)))
        elapsed = time.perf_counter() - started
        out.update(conc_tps=len(conc_ms) / elapsed, conc_p50=statistics.median(conc_ms), conc_p95=pctl(conc_ms, 0.95))

        first, last = [], []
        for rep in range(3):  # three 50-turn conversations; medians of turns 1-10 and 41-50
            long_ms = [await timed(system.chat(client, f"{tag}-long{rep}", CONVERSATION[1:][i % 9])) for i in range(50)]
            first += long_ms[:10]
            last += long_ms[-10:]
        out.update(turn1=statistics.median(first), turn50=statistics.median(last))
    return out


def start(cmd: List[str], env: Dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from assistant.config.settings import get_settings
    from assistant.dialogue.runtime import newest_model

    model = newest_model(get_settings())
    data_dir = Path(tempfile.mkdtemp(prefix="banshi-bench-"))
    action_port, gw_port, rasa_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "BANSHI_DATA_DIR": str(data_dir),
        "BANSHI_ACTION_PORT": str(action_port),
        "BANSHI_ACTION_ENDPOINT": f"http://127.0.0.1:{action_port}/webhook",
        "BANSHI_PORT": str(gw_port),
        "BANSHI_MODEL_PATH": str(model),
        "SANIC_HOST": "127.0.0.1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    results: Dict[str, Tuple[float, float, Dict[str, float]]] = {}

    # 1. banshi run: action server + gateway, as users start it.
    proc = start([PY, "-m", "assistant.cli", "run"], env)
    try:
        ready = wait_ready(f"http://127.0.0.1:{gw_port}/healthz", proc)
        rss = rss_mb(proc.pid)
        results["banshi"] = (ready, rss, asyncio.run(measure(gateway_system(f"http://127.0.0.1:{gw_port}"), args.turns, args.rounds, "gw")))
    finally:
        stop(proc)

    # 2. rasa run with the REST channel on the same model and a fresh action server.
    endpoints = data_dir / "endpoints.yml"
    endpoints.write_text(f'action_endpoint:\n  url: "http://127.0.0.1:{action_port}/webhook"\n')
    actions = start([PY, "-m", "rasa_sdk", "--actions", "actions", "--port", str(action_port)], env)
    rasa_proc = start(
        [PY, "-m", "rasa", "run", "--enable-api", "-m", str(model), "--endpoints", str(endpoints),
         "--credentials", "credentials.yml", "-p", str(rasa_port), "-i", "127.0.0.1"],
        env,
    )
    try:
        wait_ready(f"http://127.0.0.1:{action_port}/health", actions)
        ready = wait_ready(f"http://127.0.0.1:{rasa_port}/status", rasa_proc)
        rss = rss_mb(rasa_proc.pid) + rss_mb(actions.pid)
        results["rasa"] = (ready, rss, asyncio.run(measure(rasa_system(f"http://127.0.0.1:{rasa_port}"), args.turns, args.rounds, "rs")))
    finally:
        stop(rasa_proc)
        stop(actions)

    (g_ready, g_rss, g), (r_ready, r_rss, r) = results["banshi"], results["rasa"]
    rows = [
        ("start-up to ready (s)", g_ready, r_ready, "{:.1f}"),
        ("RSS after load (MB, incl. action server)", g_rss, r_rss, "{:.0f}"),
        ("chat turn p50, sequential (ms)", g["chat_p50"], r["chat_p50"], "{:.1f}"),
        ("chat turn p95, sequential (ms)", g["chat_p95"], r["chat_p95"], "{:.1f}"),
        ("parse p50, sequential (ms)", g["parse_p50"], r["parse_p50"], "{:.1f}"),
        ("parse p95, sequential (ms)", g["parse_p95"], r["parse_p95"], "{:.1f}"),
        ("8 clients x 10 turns: turns/s", g["conc_tps"], r["conc_tps"], "{:.1f}"),
        ("8 clients: turn p50 (ms)", g["conc_p50"], r["conc_p50"], "{:.1f}"),
        ("8 clients: turn p95 (ms)", g["conc_p95"], r["conc_p95"], "{:.1f}"),
        ("50-turn chats: turns 1-10 median (ms)", g["turn1"], r["turn1"], "{:.1f}"),
        ("50-turn chats: turns 41-50 median (ms)", g["turn50"], r["turn50"], "{:.1f}"),
    ]
    print(f"model {model.name}; {args.turns} sequential requests; {args.rounds} rounds of 8 concurrent conversations\n")
    print(f"{'measure':<42}{'banshi':>10}{'rasa run':>10}{'ratio':>8}")
    print("-" * 70)
    for label, a, b, fmt in rows:
        ratio = a / b if b else float("nan")
        print(f"{label:<42}{fmt.format(a):>10}{fmt.format(b):>10}{ratio:>8.2f}")
    print(f"\nthroughput ratio at 8 clients: {g['conc_tps'] / r['conc_tps']:.2f}x; "
          f"turn 50 / turn 1: banshi {g['turn50'] / g['turn1']:.2f}, rasa run {r['turn50'] / r['turn1']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
