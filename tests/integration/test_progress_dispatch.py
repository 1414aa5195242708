"""Queued status notices sent through an SMS gateway over HTTP (a local fake), retried
with back-off when it fails, never twice."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from assistant.api.serving import serve_in_thread
from assistant.services.progress import dispatch, notices
from assistant.services.progress import subscriptions as subs
from assistant.storage.database import session_factory
from assistant.storage.tables import ProgressNotice
from tests.conftest import isolated_settings

NUMBER = "ZW20251102002"
NOON = dt.datetime(2026, 12, 5, 4, 0, tzinfo=dt.timezone.utc)  # 12:00 in Beijing


class FakeSms:
    def __init__(self) -> None:
        self.received = []
        self.down = False
        self.app = FastAPI()

        @self.app.post("/sms")
        async def sms(request: Request):
            if self.down:
                return JSONResponse({"error": "busy"}, status_code=503)
            self.received.append((request.headers.get("authorization"), await request.json()))
            return {"ok": True}


@pytest.fixture
def sms():
    fake = FakeSms()
    with serve_in_thread(fake.app) as url:
        fake.url = f"{url}/sms"
        yield fake


async def test_due_notices_go_out_once_and_failures_are_retried(settings, tmp_path, sms):
    isolated = isolated_settings(settings, tmp_path)
    url, secret = isolated.db_url, isolated.secret()
    subs.subscribe(url, secret, NUMBER, "sms", "13800138000", "reviewing")
    assert notices.enqueue(url, NUMBER, "supplement", "Asia/Shanghai", NOON) == 1
    sender = dispatch.HttpSmsSender(sms.url, token="sms-token")
    now = NOON.replace(tzinfo=None)

    sms.down = True
    nothing = {"sent": 0, "retry": 0, "failed": 0, "held": 0}
    assert await dispatch.dispatch_due(url, secret, {"sms": sender}, now) == {**nothing, "retry": 1}
    assert await dispatch.dispatch_due(url, secret, {"sms": sender}, now) == nothing
    sms.down = False
    later = now + dt.timedelta(minutes=2)
    assert await dispatch.dispatch_due(url, secret, {"sms": sender}, later) == {**nothing, "sent": 1}
    assert (await dispatch.dispatch_due(url, secret, {"sms": sender}, later + dt.timedelta(hours=1)))["sent"] == 0
    assert sms.received == [("Bearer sms-token", {
        "phone": "13800138000", "text": "您的办件ZW2025****002有新进展：需补正材料。可在“办事助手”里输入办件编号查看详情。"})]
    with session_factory(url)() as session:
        notice = session.execute(select(ProgressNotice)).scalars().one()
    assert notice.state == "sent" and notice.attempts == 2


async def test_a_channel_without_a_sender_here_stays_pending_and_kiosk_notices_are_held(settings, tmp_path):
    isolated = isolated_settings(settings, tmp_path)
    url, secret = isolated.db_url, isolated.secret()
    subs.subscribe(url, secret, NUMBER, "kiosk", "kiosk-conversation-1", "reviewing")
    subs.subscribe(url, secret, NUMBER, "sms", "13800138000", "reviewing")
    notices.enqueue(url, NUMBER, "completed", "Asia/Shanghai", NOON)
    # No SMS sender in this process: that notice waits for one; nothing is pushed to a kiosk.
    assert await dispatch.dispatch_due(url, secret, {}, NOON.replace(tzinfo=None)) == {
        "sent": 0, "retry": 0, "failed": 0, "held": 1}
    with session_factory(url)() as session:
        states = dict(session.execute(select(ProgressNotice.channel, ProgressNotice.state)).all())
    assert states == {"kiosk": "held", "sms": "pending"}


async def test_wechat_subscribers_get_a_customer_service_message(settings, tmp_path, wechat_api):
    from assistant.channels.wechat_api import WeChatApi
    from assistant.channels.wechat_notices import WeChatNoticeSender

    isolated = isolated_settings(settings, tmp_path)
    url, secret = isolated.db_url, isolated.secret()
    openid = "oNoticeUser0001"
    subs.subscribe(url, secret, NUMBER, "wechat", f"wx-{openid}", "reviewing")
    notices.enqueue(url, NUMBER, "completed", "Asia/Shanghai", NOON)
    api = WeChatApi(settings.wechat_api_base, settings.wechat_app_id, settings.wechat_app_secret)
    try:
        sent = await dispatch.dispatch_due(url, secret, {"wechat": WeChatNoticeSender(api)}, NOON.replace(tzinfo=None))
    finally:
        await api.close()
    assert sent["sent"] == 1
    assert wechat_api.messages_to(openid) == ["您的办件ZW2025****002有新进展：已办结。可在“办事助手”里输入办件编号查看详情。"]


async def test_two_dispatchers_at_once_send_each_notice_once(settings, tmp_path, sms):
    import asyncio

    isolated = isolated_settings(settings, tmp_path)
    url, secret = isolated.db_url, isolated.secret()
    for i in range(5):
        subs.subscribe(url, secret, NUMBER, "sms", f"1380013800{i}", "reviewing")
    assert notices.enqueue(url, NUMBER, "completed", "Asia/Shanghai", NOON) == 5
    senders = {"sms": dispatch.HttpSmsSender(sms.url)}
    now = NOON.replace(tzinfo=None)
    results = await asyncio.gather(*(dispatch.dispatch_due(url, secret, senders, now) for _ in range(3)))
    assert sum(r["sent"] for r in results) == 5
    assert sorted(body["phone"] for _, body in sms.received) == [f"1380013800{i}" for i in range(5)]
