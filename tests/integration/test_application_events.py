"""Status events pushed by the case-management system: signed, once, on the timeline."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from assistant.api.app import create_app
from assistant.services.progress import events
from assistant.services.progress.importer import load_demo_data
from assistant.storage.database import session_factory
from assistant.storage.tables import Application, ApplicationEvent
from tests.conftest import isolated_settings

SECRET = "cms-shared-secret-0123456789"
NUMBER = "ZW20251102002"  # 审核中 in the demo data


@pytest.fixture(scope="module")
def served(settings, tmp_path_factory):
    app_settings = isolated_settings(settings, tmp_path_factory.mktemp("events"), cms_webhook_secret=SECRET)
    load_demo_data(app_settings.db_url, app_settings.secret())
    with TestClient(create_app(app_settings, load_model=False)) as client:
        yield client, app_settings


def push(client, number, payload, secret=SECRET, timestamp=None, signature=None):
    body = json.dumps(payload, ensure_ascii=False).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    headers = {"Content-Type": "application/json", "X-Banshi-Timestamp": stamp,
               "X-Banshi-Signature": signature or events.sign(secret, stamp, body)}
    return client.post(f"/api/v1/applications/{number}/events", content=body, headers=headers)


def timeline(app_settings, number):
    with session_factory(app_settings.db_url)() as session:
        rows = session.execute(select(ApplicationEvent).where(ApplicationEvent.number == number)
                               .order_by(ApplicationEvent.at)).scalars().all()
        status = session.get(Application, number).status
    return [(r.status, r.event_id) for r in rows], status


def test_an_event_is_stored_once_and_moves_the_status(served):
    client, app_settings = served
    event = {"event_id": "cms-1001", "status": "需补正", "at": "2026-12-05T09:30:00+08:00",
             "note": "请补交户口簿", "missing_materials": ["居民户口簿"]}
    first = push(client, NUMBER, event)
    assert first.status_code == 201 and first.json() == {"result": "stored", "event_id": "cms-1001", "notices": 0}
    again = push(client, NUMBER, event)  # a retry of the same event
    assert again.status_code == 200 and again.json()["result"] == "duplicate"
    steps, status = timeline(app_settings, NUMBER)
    assert steps.count(("supplement", "cms-1001")) == 1 and status == "supplement"
    older = push(client, NUMBER, {"event_id": "cms-0999", "status": "accepted", "at": "2025-01-01T08:00:00"})
    assert older.status_code == 201
    assert timeline(app_settings, NUMBER)[1] == "supplement"  # an older event does not move it back


def test_bad_signatures_stale_requests_and_bad_input_are_refused(served):
    client, _ = served
    event = {"event_id": "cms-2001", "status": "completed", "at": "2026-12-05T10:00:00"}
    assert push(client, NUMBER, event, secret="not-the-shared-secret-000").status_code == 401
    stale = push(client, NUMBER, event, timestamp=int(time.time()) - 3600)
    assert stale.status_code == 401 and stale.json()["detail"] == "签名无效或已过期"
    assert push(client, NUMBER, event, signature="sha256=00").status_code == 401
    unknown = push(client, "ZW20991231999", event)
    assert unknown.status_code == 404 and unknown.json()["detail"] == "没有找到该办件"
    bad = push(client, NUMBER, {"event_id": "cms-2002", "status": "飞走了", "at": "2026-12-05T10:00:00"})
    assert bad.status_code == 422 and bad.json()["detail"] == "状态事件格式不正确"
    huge = push(client, NUMBER, {**event, "note": "x" * 20000})
    assert huge.status_code == 413


def test_without_a_secret_the_endpoint_is_off(settings, tmp_path):
    with TestClient(create_app(isolated_settings(settings, tmp_path), load_model=False)) as client:
        reply = push(client, NUMBER, {"event_id": "x", "status": "completed", "at": "2026-12-05T10:00:00"})
        assert reply.status_code == 404 and reply.json()["detail"] == "未配置办件状态推送"


async def test_a_pushed_event_is_what_a_progress_lookup_answers(served):
    from assistant.services.progress.providers import LocalProvider

    client, app_settings = served
    number = "ZW20251102001"  # 已受理 in the demo data
    event = {"event_id": "cms-3001", "status": "需补正", "at": "2026-12-05T11:00:00+08:00",
             "missing_materials": ["户口簿原件"]}
    assert push(client, number, event).status_code == 201
    provider = LocalProvider(app_settings.db_url)
    view = await provider.lookup(number)
    await provider.aclose()
    assert view.status == "supplement" and view.label == "需补正材料"
    assert view.missing_materials == ["户口簿原件"]



def test_a_status_change_queues_one_notice_per_subscriber(served):
    import datetime as dt

    from assistant.services.progress import subscriptions as subs
    from assistant.storage.tables import ProgressNotice

    client, app_settings = served
    number = "ZW20251102005"
    subs.subscribe(app_settings.db_url, app_settings.secret(), number, "wechat", "oSubscriber1", "rejected")
    event = {"event_id": "cms-4001", "status": "completed", "at": "2026-12-05T12:00:00+08:00"}
    reply = push(client, number, event)
    assert reply.status_code == 201 and reply.json()["notices"] == 1
    assert push(client, number, {**event, "event_id": "cms-4002"}).json()["notices"] == 0  # told once
    with session_factory(app_settings.db_url)() as session:
        queued = session.execute(select(ProgressNotice).where(ProgressNotice.number == number)).scalars().all()
    assert len(queued) == 1 and queued[0].channel == "wechat" and queued[0].state == "pending"
    assert queued[0].text == "您的办件ZW2025****005有新进展：已办结。可在“办事助手”里输入办件编号查看详情。"
    assert "oSubscriber1" not in queued[0].text and queued[0].due_at <= dt.datetime.utcnow() + dt.timedelta(hours=12)


def test_event_times_are_kept_in_china_time_like_the_rest_of_the_timeline(served):
    client, app_settings = served
    number = "ZW20251102001"
    event = {"event_id": "cms-tz-1", "status": "审核中", "at": "2026-12-05T01:30:00Z"}
    assert push(client, number, event).status_code == 201
    with session_factory(app_settings.db_url)() as session:
        row = session.execute(select(ApplicationEvent).where(ApplicationEvent.event_id == "cms-tz-1")).scalar_one()
    assert row.at.isoformat(timespec="minutes") == "2026-12-05T09:30"
