"""The gateway's notice scheduler: a signed status event reaches the subscribers by
itself (no manual dispatch) — SMS, WeChat, the web chat live or on return — once,
also with two gateways on one PostgreSQL; the periodic round runs in one process of
the deployment at a time (a lease in the database)."""

from __future__ import annotations

import datetime as dt
import threading
import time

import httpx
import pytest
from sqlalchemy import select

from assistant.api.app import create_app
from assistant.api.serving import serve_in_thread
from assistant.channels import wechat_store
from assistant.services.progress import subscriptions as subs
from assistant.services.progress.importer import load_demo_data
from assistant.services.progress.loop import LEASE_NAME, NoticeLoop
from assistant.storage import leases
from assistant.storage.database import session_factory
from assistant.storage.tables import ChatNotice, ProgressNotice
from tests.conftest import isolated_settings
from tests.notify_support import CMS_SECRET, FakeSms, add_applications, daytime_zone, read_notices, signed_event

NUMBER = "ZW20251102002"  # 审核中 in the demo data
TEXT = "您的办件ZW2025****002有新进展：需补正材料。可在“办事助手”里输入办件编号查看详情。"


@pytest.fixture
def sms():
    fake = FakeSms()
    with serve_in_thread(fake.app) as url:
        fake.url = f"{url}/sms"
        yield fake


def gateway_settings(settings, data_dir, sms_url, wechat=False, **updates):
    values = {"cms_webhook_secret": CMS_SECRET, "timezone": daytime_zone(), "sms_url": sms_url,
              "notice_interval_seconds": 600, **({} if wechat else {"wechat_token": None}), **updates}
    return isolated_settings(settings, data_dir, **values)


def post_event(base_url, number, event_id, status="需补正"):
    path, headers, body = signed_event(number, event_id, status)
    return httpx.post(base_url + path, content=body, headers=headers, timeout=10)


def new_conversation(base_url):
    session = httpx.post(f"{base_url}/api/v1/chat/sessions", timeout=10).json()
    return session["sender_id"], session["token"]


def test_an_event_reaches_sms_wechat_and_an_open_web_chat_without_manual_dispatch(settings, tmp_path, sms,
                                                                                  wechat_api):
    app_settings = gateway_settings(settings, tmp_path, sms.url, wechat=True)
    url, secret = app_settings.db_url, app_settings.secret()
    load_demo_data(url, secret)
    openid = "oLoopUser0001"
    wechat_store.note_inbound(url, f"wx-{openid}")  # wrote to the account a moment ago: inside the window
    subs.subscribe(url, secret, NUMBER, "sms", "13800138000", "reviewing")
    subs.subscribe(url, secret, NUMBER, "wechat", f"wx-{openid}", "reviewing")
    with serve_in_thread(create_app(app_settings, load_model=False)) as base:
        sender_id, token = new_conversation(base)
        subs.subscribe(url, secret, NUMBER, "web", sender_id, "reviewing")
        found = {}

        def listen():
            found["notices"] = read_notices(base, sender_id, token, wait_s=10)
            found["at"] = time.monotonic()

        listener = threading.Thread(target=listen)
        listener.start()
        time.sleep(1.0)  # the stream is open
        started = time.monotonic()
        reply = post_event(base, NUMBER, "loop-1")
        assert reply.status_code == 201 and reply.json()["notices"] == 3
        assert [body["text"] for body in sms.wait_for(1, timeout_s=5)] == [TEXT]
        assert wechat_api.wait_for(openid, 1, timeout_s=5) == [TEXT]
        listener.join(timeout=15)
        assert [n["text"] for n in found["notices"]] == [TEXT]
        assert found["at"] - started < 2.0  # live: well within the 2-second target
    with session_factory(url)() as session:
        states = session.execute(select(ProgressNotice.channel, ProgressNotice.state)).all()
    assert sorted(states) == [("sms", "sent"), ("web", "sent"), ("wechat", "sent")]


def test_a_closed_chat_gets_its_notice_when_it_comes_back_and_only_once(settings, tmp_path):
    app_settings = gateway_settings(settings, tmp_path, None)
    url, secret = app_settings.db_url, app_settings.secret()
    load_demo_data(url, secret)
    with serve_in_thread(create_app(app_settings, load_model=False)) as base:
        sender_id, token = new_conversation(base)
        subs.subscribe(url, secret, NUMBER, "web", sender_id, "reviewing")
        assert post_event(base, NUMBER, "return-1").status_code == 201  # nobody has the chat open
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with session_factory(url)() as session:
                if session.execute(select(ChatNotice.id)).first():
                    break
            time.sleep(0.1)
        back = read_notices(base, sender_id, token, wait_s=5)
        assert [n["text"] for n in back] == [TEXT] and back[0]["kind"] == "progress"
        assert read_notices(base, sender_id, token, wait_s=1.5) == []  # shown once
        other_id, other_token = new_conversation(base)
        assert read_notices(base, other_id, other_token, wait_s=1.0) == []  # not anybody else's
        refused = httpx.get(f"{base}/api/v1/chat/events", params={"sender_id": sender_id, "token": "0" * 64})
        assert refused.status_code == 403
    with session_factory(url)() as session:
        rows = session.execute(select(ChatNotice)).scalars().all()
    assert len(rows) == 1 and rows[0].delivered_at is not None and sender_id not in rows[0].conversation_hash


def test_two_gateways_on_one_postgresql_deliver_each_notice_once(settings, tmp_path, sms, postgres_server):
    import uuid

    db = postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    common = dict(database_url=db, tracker_db_url=db, secret_key="k" * 40, notice_interval_seconds=0.5)
    first = gateway_settings(settings, tmp_path / "a", sms.url, **common)
    second = gateway_settings(settings, tmp_path / "b", sms.url, **common)
    numbers = add_applications(db, 30)
    phones = []
    for i, number in enumerate(numbers):
        for j in range(2):
            phone = f"139{i:04d}{j:04d}"
            subs.subscribe(db, first.secret(), number, "sms", phone, "reviewing")
            phones.append(phone)
    with serve_in_thread(create_app(first, load_model=False)) as a, \
            serve_in_thread(create_app(second, load_model=False)) as b:
        results = []

        def push(number, index):
            # The case system sends each event to both gateways (a retry through the
            # load balancer): stored once, notices once.
            for base in (a, b) if index % 2 else (b, a):
                results.append(post_event(base, number, f"pg-{number}").status_code)

        threads = [threading.Thread(target=push, args=(n, i)) for i, n in enumerate(numbers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [200] * 30 + [201] * 30
        sms.wait_for(len(phones), timeout_s=20)
        time.sleep(2.0)  # both schedulers keep running: nothing more may come
    got = sms.phones()
    assert len(got) == len(phones) and sorted(got) == sorted(phones)  # each once, none missing
    with session_factory(db)() as session:
        states = session.execute(select(ProgressNotice.state)).scalars().all()
    assert states.count("sent") == len(phones)


def test_the_periodic_round_runs_in_one_process_at_a_time(settings, tmp_path):
    url = isolated_settings(settings, tmp_path).db_url
    ttl = dt.timedelta(seconds=30)
    now = dt.datetime(2026, 12, 5, 4, 0)
    assert leases.acquire(url, LEASE_NAME, "a", ttl, now)
    assert not leases.acquire(url, LEASE_NAME, "b", ttl, now + dt.timedelta(seconds=10))
    assert leases.acquire(url, LEASE_NAME, "a", ttl, now + dt.timedelta(seconds=20))  # renewed to +50 s
    assert not leases.acquire(url, LEASE_NAME, "b", ttl, now + dt.timedelta(seconds=45))
    assert leases.acquire(url, LEASE_NAME, "b", ttl, now + dt.timedelta(seconds=51))  # a died: b takes over
    assert leases.holder_of(url, LEASE_NAME, now + dt.timedelta(seconds=52)) == "b"
    leases.release(url, LEASE_NAME, "b")
    assert leases.acquire(url, LEASE_NAME, "a", ttl, now + dt.timedelta(seconds=53))  # handed over at once


async def test_two_loops_one_leader_and_the_other_takes_over_when_it_stops(settings, tmp_path):
    import asyncio

    app_settings = isolated_settings(settings, tmp_path)
    url, secret = app_settings.db_url, app_settings.secret()
    loops = [NoticeLoop(url, secret, {}, "Asia/Shanghai", interval=0.2, holder=name) for name in ("one", "two")]
    for loop in loops:
        loop.start()
    try:
        for _ in range(100):  # the first rounds take their time on a loaded machine
            await asyncio.sleep(0.1)
            if any(loop.leader for loop in loops) and all(loop.rounds for loop in loops):
                break
        assert sorted(loop.leader for loop in loops) == [False, True]
        leader = next(loop for loop in loops if loop.leader)
        other = next(loop for loop in loops if not loop.leader)
        await leader.stop()  # releases the lease
        for _ in range(100):
            await asyncio.sleep(0.1)
            if other.leader:
                break
        assert other.leader and leases.holder_of(url, LEASE_NAME) == other.holder
    finally:
        for loop in loops:
            await loop.stop()
