"""Polling a case-management system that cannot push: a changed status of a subscribed
number queues the subscriber's notice (once per change), and the scheduler's round
sends it — against a real HTTP server (a tiny fake case system)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Dict, List, Tuple

import pytest
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse
from sqlalchemy import select

from assistant.services.progress import subscriptions as subs
from assistant.services.progress.loop import NoticeLoop
from assistant.services.progress.polling import Poller, poller_for
from assistant.services.progress.providers import HttpProvider
from assistant.storage.database import session_factory
from assistant.storage.tables import ProgressNotice
from tests.conftest import isolated_settings, serve_in_thread
from tests.notify_support import daytime_zone

TOKEN = "cms-poll-token"
NUMBER, OTHER, DOWN = "ZW20260101001", "ZW20260101002", "ZW20260101003"


def make_cms(statuses: Dict[str, str], calls: Counter) -> FastAPI:
    app = FastAPI()

    @app.get("/cms/applications/{number}")
    async def application(number: str, authorization: str = Header(default="")):
        calls[number] += 1
        if authorization != f"Bearer {TOKEN}" or number == DOWN:
            return JSONResponse({"error": "down"}, status_code=503)
        return {"number": number, "item_id": "passport", "applicant_masked": "张*", "phone_last4": "5678",
                "status": statuses[number],
                "steps": [{"status": statuses[number], "at": "2026-12-05T09:00:00+08:00", "note": ""}]}

    return app


@pytest.fixture
def cms():
    statuses, calls = {NUMBER: "reviewing", OTHER: "reviewing"}, Counter()
    with serve_in_thread(make_cms(statuses, calls)) as url:
        yield f"{url}/cms/", statuses, calls


class Recorder:
    def __init__(self) -> None:
        self.sent: List[Tuple[str, str]] = []

    async def send(self, recipient: str, text: str, detail=None) -> None:
        self.sent.append((recipient, text))


def queued(db_url: str) -> List[Tuple[str, str]]:
    with session_factory(db_url)() as session:
        return [(n.number, n.status) for n in session.execute(select(ProgressNotice)).scalars()]


async def test_a_changed_status_is_noticed_once_and_sent_by_the_round(settings, tmp_path, cms):
    url, statuses, calls = cms
    isolated = isolated_settings(settings, tmp_path)
    db_url, secret = isolated.db_url, isolated.secret()
    subs.subscribe(db_url, secret, NUMBER, "sms", "13800001111", "reviewing")
    subs.subscribe(db_url, secret, DOWN, "sms", "13800001111", "reviewing")
    zone = daytime_zone()
    poller = Poller(db_url, HttpProvider(url, TOKEN, retries=0, backoff_s=0.01), zone, every_s=0.0)

    nothing = await poller.poll()
    assert nothing == {"polled": 1, "changed": 0, "unavailable": 1} and queued(db_url) == []
    assert calls[OTHER] == 0  # nobody subscribed to it: never asked

    statuses[NUMBER] = "supplement"
    assert (await poller.poll())["changed"] == 1
    assert (await poller.poll())["changed"] == 0  # the same change is told once
    assert queued(db_url) == [(NUMBER, "supplement")]

    sms = Recorder()
    statuses[NUMBER] = "completed"
    loop = NoticeLoop(db_url, secret, {"sms": sms}, zone, interval=60, poller=poller)
    counts = await loop.scheduled_round()
    assert counts["polled"]["changed"] == 1
    texts = [text for _, text in sms.sent]
    assert len(texts) == 2 and "需补正" in texts[0] and "已办结" in texts[1]
    assert all(NUMBER not in text and "ZW2026****001" in text for text in texts)  # masked
    await loop.stop()


async def test_each_number_is_asked_at_most_once_per_interval(settings, tmp_path, cms):
    url, statuses, calls = cms
    isolated = isolated_settings(settings, tmp_path)
    subs.subscribe(isolated.db_url, isolated.secret(), OTHER, "web", "web-conversation-1", "reviewing")
    poller = Poller(isolated.db_url, HttpProvider(url, TOKEN, retries=0), "Asia/Shanghai", every_s=3600)
    now = dt.datetime.now(dt.timezone.utc)
    await poller.poll(now)
    await poller.poll(now)
    assert calls[OTHER] == 1


def test_only_the_http_provider_with_an_interval_polls(settings, tmp_path):
    base = isolated_settings(settings, tmp_path)
    assert poller_for(base) is None
    http = base.copy(update={"progress_provider": "http", "progress_url": "http://127.0.0.1:9/cms/"})
    assert poller_for(http) is None
    assert isinstance(poller_for(http.copy(update={"progress_poll_seconds": 300})), Poller)
