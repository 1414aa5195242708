"""Status notices end to end: from a signed status event to the subscriber.

Starts gateway processes (``create_app`` under uvicorn, the notice scheduler on, no
dialogue model: neither the events endpoint nor the chat's event stream needs it)
on a fresh SQLite file or a throw-away PostgreSQL server (``assistant/cli/
instances.py``), with the WeChat API and an SMS gateway faked in this process, then

* **latency**: for each run a fresh application with one subscriber; the clock
  starts before the signed ``POST /api/v1/applications/{n}/events`` and stops when
  (a) the notice arrives on the subscribed web chat's open event stream
  (``GET /api/v1/chat/events``, event ``notice``), (b) the fake WeChat API receives
  the customer-service message (user inside the 48-hour window) or (c) the template
  message (outside it), (d) the fake SMS gateway receives it;
* **burst**: ``--events`` events (two per application: 需补正 then 办结) posted by 8
  clients at once over ``events/2`` applications with one subscriber each (web
  chat, WeChat, SMS in turn); every expected notice must arrive exactly once —
  duplicates and misses are counted (web chat: the notices kept for the
  conversation). With ``--gateways 2`` (PostgreSQL) the two events of an
  application go to different gateways.

    .venv/bin/python bench/notify.py [--backend sqlite|postgresql|both] [--runs 20] [--events 1000]

Targets: (a) ≤ 2 s, (b) ≤ 5 s; the burst delivered exactly once (0 duplicates, 0 missing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.api.serving import free_port, serve_in_thread  # noqa: E402
from assistant.channels.wechat_sim import FakeWeChatApi  # noqa: E402
from assistant.services.progress import events as cms_events  # noqa: E402
from bench.latency import pctl  # noqa: E402

APP_ID = "wxbench0000000001"
APP_SECRET = "bench-secret"
WECHAT_TOKEN = "benchToken"
CMS_SECRET = "bench-cms-secret-0123456789"
SECRET_KEY = "bench-secret-key-" + "0" * 32
TEMPLATE_ID = "TPL_bench_progress"
CLIENTS = 8
LABELS = {"supplement": "需补正材料", "completed": "已办结"}


# ------------------------------------------------------------------ fakes
class FakeSms:
    """A local SMS gateway: POST {"phone", "text"} → recorded with the time it came."""

    def __init__(self) -> None:
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        self.received: List[Tuple[str, str, float]] = []
        self.cond = threading.Condition()

        async def sms(request):
            body = await request.json()
            with self.cond:
                self.received.append((body["phone"], body["text"], time.monotonic()))
                self.cond.notify_all()
            return JSONResponse({"ok": True})

        self.app = Starlette(routes=[Route("/sms", sms, methods=["POST"])])

    def wait_for(self, phone: str, timeout: float) -> Optional[float]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for got, _, at in self.received:
                    if got == phone:
                        return at
                if time.monotonic() > deadline:
                    return None
                self.cond.wait(max(0.0, deadline - time.monotonic()))


def daytime_zone() -> str:
    """A fixed-offset zone where it is about 14:00 now (quiet hours never hold a notice)."""
    offset = 14 - dt.datetime.now(dt.timezone.utc).hour
    return f"Etc/GMT{-offset:+d}"


# ------------------------------------------------------------------ system under test
class Deployment:
    """Gateway processes on one database, the fakes in this process."""

    def __init__(self, backend: str, gateways: int, work: Path, wechat_url: str, sms_url: str) -> None:
        self.backend, self.work = backend, work
        self.pg = None
        if backend == "postgresql":
            from assistant.cli.instances import PostgresInstance

            self.pg = PostgresInstance(work / "postgres")
            self.db_url = self.pg.start()
        else:
            self.db_url = f"sqlite:///{work / 'banshi.db'}"
        self.env = {
            **os.environ,
            "BANSHI_DATA_DIR": str(work), "BANSHI_DATABASE_URL": self.db_url, "BANSHI_SECRET_KEY": SECRET_KEY,
            "BANSHI_CMS_WEBHOOK_SECRET": CMS_SECRET, "BANSHI_TIMEZONE": daytime_zone(),
            "BANSHI_SMS_URL": sms_url, "BANSHI_WECHAT_TOKEN": WECHAT_TOKEN, "BANSHI_WECHAT_APP_ID": APP_ID,
            "BANSHI_WECHAT_APP_SECRET": APP_SECRET, "BANSHI_WECHAT_MODE": "plain",
            "BANSHI_WECHAT_API_BASE": wechat_url, "BANSHI_WECHAT_NOTICE_TEMPLATE_ID": TEMPLATE_ID,
            "BANSHI_NOTICE_INTERVAL_SECONDS": "5", "BANSHI_TRACKER_STORE": "memory",
            "BANSHI_VOSK_MODEL_PATH": str(work / "no-vosk"), "BANSHI_LOG_LEVEL": "WARNING",
        }
        from assistant.config.settings import Settings

        self.settings = Settings(data_dir=work, database_url=self.db_url, secret_key=SECRET_KEY)
        self.settings.secret()
        from assistant.storage.database import get_engine

        get_engine(self.db_url)  # migrated before the gateways start
        self.procs: List[subprocess.Popen] = []
        self.urls: List[str] = []
        try:
            for _ in range(gateways):  # one after the other: each loads the catalog at start
                self._start_gateway()
        except BaseException:
            self.stop()
            raise

    def _start_gateway(self) -> None:
        port = free_port()
        log_path = self.work / f"gateway-{port}.log"
        proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=self.env, cwd=ROOT,
                                stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"gateway exited:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/healthz/live", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("gateway did not start")
            time.sleep(0.2)
        self.urls.append(url)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.pg is not None:
            self.pg.stop()

    # -------------------------------------------------------------- data
    def add_applications(self, numbers: List[str]) -> None:
        from assistant.storage.database import session_factory
        from assistant.storage.tables import Application

        with session_factory(self.db_url)() as session:
            for number in numbers:
                session.add(Application(number=number, item_id="passport", applicant_masked="张*", salt="s" * 8,
                                        phone_hash="0" * 64, phone_last4="0000", status="reviewing"))
            session.commit()

    def subscribe(self, number: str, channel: str, recipient: str) -> None:
        from assistant.services.progress import subscriptions

        subscriptions.subscribe(self.db_url, self.settings.secret(), number, channel, recipient, "reviewing")

    def inside_window(self, openid: str) -> None:
        from assistant.channels import wechat_store

        wechat_store.note_inbound(self.db_url, f"wx-{openid}")

    def web_notices(self) -> Dict[str, List[str]]:
        """Texts kept per conversation key (web chat)."""
        from sqlalchemy import select

        from assistant.storage.database import session_factory
        from assistant.storage.tables import ChatNotice

        with session_factory(self.db_url)() as session:
            rows = session.execute(select(ChatNotice.conversation_hash, ChatNotice.text)).all()
        found: Dict[str, List[str]] = {}
        for key, text in rows:
            found.setdefault(key, []).append(text)
        return found


def post_event(client: httpx.Client, base: str, number: str, event_id: str, status: str) -> Tuple[int, float]:
    body = json.dumps({"event_id": event_id, "status": status,
                       "at": dt.datetime.now(dt.timezone.utc).isoformat()}).encode()
    stamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Banshi-Timestamp": stamp,
               "X-Banshi-Signature": cms_events.sign(CMS_SECRET, stamp, body)}
    started = time.monotonic()
    reply = client.post(f"{base}/api/v1/applications/{number}/events", content=body, headers=headers)
    return reply.status_code, time.monotonic() - started


# ------------------------------------------------------------------ latency
def sse_notice(base: str, sender_id: str, token: str, opened: threading.Event, out: "queue.Queue") -> None:
    params = {"sender_id": sender_id, "token": token}
    try:
        with httpx.stream("GET", f"{base}/api/v1/chat/events", params=params, timeout=15) as response:
            event = None
            for line in response.iter_lines():
                if line.startswith("retry:"):
                    opened.set()
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "notice":
                    out.put(time.monotonic())
                    return
    except httpx.HTTPError:
        pass
    opened.set()
    out.put(None)


def latency(deployment: Deployment, wechat: FakeWeChatApi, sms: FakeSms, runs: int, tag: str) -> Dict[str, List]:
    base = deployment.urls[0]
    paths = ("web", "wechat", "template", "sms")
    numbers = {path: [f"ZW2098{i:02d}{j:05d}" for j in range(runs)] for i, path in enumerate(paths)}
    deployment.add_applications([n for ns in numbers.values() for n in ns])
    times: Dict[str, List] = {path: [] for path in paths}
    with httpx.Client(timeout=30) as client:
        for j in range(runs):
            # (a) web chat, stream open
            session = client.post(f"{base}/api/v1/chat/sessions").json()
            deployment.subscribe(numbers["web"][j], "web", session["sender_id"])
            opened, out = threading.Event(), queue.Queue()
            reader = threading.Thread(target=sse_notice, args=(base, session["sender_id"], session["token"], opened,
                                                               out), daemon=True)
            reader.start()
            opened.wait(10)
            time.sleep(0.05)
            started = time.monotonic()
            post_event(client, base, numbers["web"][j], f"{tag}-lat-web-{j}", "supplement")
            try:
                arrived = out.get(timeout=10)
            except queue.Empty:
                arrived = None
            times["web"].append(None if arrived is None else arrived - started)
            # (b) WeChat customer-service message, (c) template message
            for path, inside in (("wechat", True), ("template", False)):
                openid = f"oBench{tag}{path}{j:05d}"
                if inside:
                    deployment.inside_window(openid)
                deployment.subscribe(numbers[path][j], "wechat", f"wx-{openid}")
                started = time.monotonic()
                post_event(client, base, numbers[path][j], f"{tag}-lat-{path}-{j}", "supplement")
                arrived = None
                deadline = time.monotonic() + 10
                while arrived is None and time.monotonic() < deadline:
                    with wechat._cond:
                        found = [s.at for s in wechat.sent if s.touser == openid] if inside else \
                            [t.at for t in wechat.templates if t.touser == openid]
                        if not found:
                            wechat._cond.wait(0.5)
                    arrived = found[0] if found else None
                times[path].append(None if arrived is None else arrived - started)
            # (d) SMS
            phone = f"137{tag}{j:06d}"
            deployment.subscribe(numbers["sms"][j], "sms", phone)
            started = time.monotonic()
            post_event(client, base, numbers["sms"][j], f"{tag}-lat-sms-{j}", "supplement")
            arrived = sms.wait_for(phone, 10)
            times["sms"].append(None if arrived is None else arrived - started)
    return times


# ------------------------------------------------------------------ burst
def burst(deployment: Deployment, wechat: FakeWeChatApi, sms: FakeSms, total_events: int, tag: str) -> Dict:
    from assistant.services.progress.notices import notice_text
    from assistant.services.progress.webchat import conversation_key

    secret = deployment.settings.secret()
    count = total_events // 2
    numbers = [f"ZW2097{tag}{i:05d}" for i in range(count)]
    deployment.add_applications(numbers)
    expected: Dict[Tuple[str, str], int] = {}  # (channel, recipient-or-key, text) → 1
    recipients = []
    for i, number in enumerate(numbers):
        channel = ("web", "wechat", "sms")[i % 3]
        if channel == "web":
            recipient = f"web-bench-{tag}-{i:05d}"
            key = conversation_key(secret, recipient)
        elif channel == "wechat":
            recipient = f"oBurst{tag}{i:05d}"
            deployment.inside_window(recipient)
            key = recipient
            recipient = f"wx-{recipient}"
        else:
            recipient = f"136{tag}{i:06d}"
            key = recipient
        deployment.subscribe(number, channel, recipient)
        recipients.append((number, channel, key))
        for status in ("supplement", "completed"):
            expected[(channel, key, notice_text(number, status))] = 1

    statuses: Counter = Counter()
    post_times: List[float] = []
    lock = threading.Lock()

    def one_application(index: int) -> None:
        number = numbers[index]
        with httpx.Client(timeout=60) as client:
            for k, status in enumerate(("supplement", "completed")):
                base = deployment.urls[(index + k) % len(deployment.urls)]
                code, took = post_event(client, base, number, f"{tag}-burst-{index}-{k}", status)
                with lock:
                    statuses[code] += 1
                    post_times.append(took)

    sms_before = len(sms.received)
    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(one_application, range(count)))
    posted = time.monotonic() - started

    def delivered() -> Counter:
        got: Counter = Counter()
        with wechat._cond:
            for sent in wechat.sent:
                got[("wechat", sent.touser, sent.content)] += 1
        with sms.cond:
            for phone, text, _ in sms.received[sms_before:]:
                got[("sms", phone, text)] += 1
        for key, texts in deployment.web_notices().items():
            for text in texts:
                got[("web", key, text)] += 1
        return got

    all_in = None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        got = delivered()
        if sum(got[k] for k in expected) >= len(expected):
            all_in = time.monotonic() - started
            break
        time.sleep(0.2)
    time.sleep(3.0)  # anything more would be a duplicate
    got = delivered()
    keys = {r[2] for r in recipients}
    relevant = {k: v for k, v in got.items() if k in expected or k[1] in keys}
    return {
        "events": sum(statuses.values()), "stored": statuses.get(201, 0), "other_status": {
            k: v for k, v in statuses.items() if k != 201}, "expected": len(expected),
        "delivered": sum(1 for k in expected if got[k] >= 1),
        "duplicates": sum(v - 1 for v in relevant.values() if v > 1) + sum(
            v for k, v in relevant.items() if k not in expected),
        "missing": sum(1 for k in expected if got[k] == 0),
        "post_p50": pctl(post_times, 0.5), "post_p95": pctl(post_times, 0.95), "posted_s": posted,
        "all_delivered_s": all_in,
    }


# ------------------------------------------------------------------ main
def serve(port: int) -> None:
    """A gateway process of the bench (``--serve PORT``): settings from the environment."""
    import uvicorn

    from assistant.api.app import create_app
    from assistant.config.settings import get_settings

    uvicorn.run(create_app(get_settings(), load_model=False), host="127.0.0.1", port=port, ws="wsproto",
                log_level="warning")


def fmt_ms(values: List[Optional[float]]) -> Tuple[str, str, str, int]:
    ok = [v * 1000 for v in values if v is not None]
    lost = sum(1 for v in values if v is None)
    if not ok:
        return "—", "—", "—", lost
    return f"{pctl(ok, 0.5):.0f}", f"{pctl(ok, 0.95):.0f}", f"{max(ok):.0f}", lost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--runs", type=int, default=20, help="latency runs per path")
    parser.add_argument("--events", type=int, default=1000, help="events in the burst (two per application)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    wechat = FakeWeChatApi(APP_ID, APP_SECRET)
    sms = FakeSms()
    latency_rows, burst_rows, failed = [], [], []
    with serve_in_thread(wechat.app) as wechat_url, serve_in_thread(sms.app) as sms_base:
        for index, backend in enumerate(backends):
            setups = [(1, True)] + ([(2, False)] if backend == "postgresql" else [])
            for gateways, measure_latency in setups:
                tag = f"{index + 1}{gateways}"  # digits: part of application numbers and phone numbers
                with tempfile.TemporaryDirectory(prefix="banshi-notify-") as tmp:
                    try:
                        deployment = Deployment(backend, gateways, Path(tmp), wechat_url, f"{sms_base}/sms")
                    except SystemExit as exc:  # report what was measured so far
                        print(f"{backend} x{gateways}: {exc}", file=sys.stderr)
                        failed.append(f"{backend} x{gateways}")
                        continue
                    try:
                        if measure_latency:
                            times = latency(deployment, wechat, sms, args.runs, tag)
                            latency_rows.append((backend, gateways, times))
                        burst_rows.append((backend, gateways, burst(deployment, wechat, sms, args.events, tag)))
                    finally:
                        deployment.stop()
                print(f"done: {backend} x{gateways}", file=sys.stderr, flush=True)

    names = {"web": ("event → open web chat (SSE)", "≤ 2000"),
             "wechat": ("event → WeChat API, customer-service message", "≤ 5000"),
             "template": ("event → WeChat API, template message (outside 48 h)", "≤ 5000"),
             "sms": ("event → SMS gateway", "—")}
    print(f"\nLatency from the signed event POST to the subscriber ({args.runs} runs per path, one gateway)\n")
    print("| backend | path | p50 ms | p95 ms | max ms | lost | target ms |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for backend, _, times in latency_rows:
        for path, values in times.items():
            p50, p95, worst, lost = fmt_ms(values)
            print(f"| {backend} | {names[path][0]} | {p50} | {p95} | {worst} | {lost} | {names[path][1]} |")
    print(f"\nBurst: {args.events} events from {CLIENTS} clients, two per application, one subscriber each "
          "(web chat / WeChat / SMS in turn)\n")
    print("| backend | gateways | events (201) | notices expected | delivered | duplicates | missing "
          "| POST p50 / p95 ms | all posted s | all delivered s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for backend, gateways, r in burst_rows:
        done = f"{r['all_delivered_s']:.1f}" if r["all_delivered_s"] is not None else "not all"
        other = f" ({r['other_status']})" if r["other_status"] else ""
        print(f"| {backend} | {gateways} | {r['events']} ({r['stored']}){other} | {r['expected']} | {r['delivered']} "
              f"| {r['duplicates']} | {r['missing']} | {r['post_p50'] * 1000:.0f} / {r['post_p95'] * 1000:.0f} "
              f"| {r['posted_s']:.1f} | {done} |")
    if failed:
        print(f"\nnot measured (the gateways did not start): {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
