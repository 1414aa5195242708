"""The desk API: queue, ticket, reply, close, hand back, marks, live events; and who
may call it. The real app without the model (the desk does not need it), real SQLite.
"""

from __future__ import annotations

import itertools
from typing import Dict, List, Tuple

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from assistant.api.app import create_app
from assistant.config.hours import ServiceHours
from assistant.security import accounts
from assistant.services.handoff import relay, tickets
from assistant.storage.database import session_factory
from assistant.storage.tables import AuditRecord, SuggestionMark
from tests import staff
from tests.conftest import isolated_settings, routes_under

DESK_PREFIX = "/api/v1/desk"
PUBLIC = {("POST", f"{DESK_PREFIX}/login")}
PASSWORD = "desk-password-123"
_ids = itertools.count(1)


def _desk_routes() -> List[Tuple[str, str]]:
    """Every (method, path) under /api/v1/desk except login, read from the app itself."""
    found = [
        (method, path.replace("{ticket_id}", "1"))
        for method, path in routes_under(DESK_PREFIX)
        if (method, path) not in PUBLIC
    ]
    assert len(found) >= 9
    return found


DESK_ROUTES = _desk_routes()


@pytest.fixture(scope="module")
def app_settings(settings, tmp_path_factory):
    return isolated_settings(settings, tmp_path_factory.mktemp("desk"))


@pytest.fixture(scope="module")
def app(app_settings):
    application = create_app(app_settings, load_model=False)
    with TestClient(application):
        yield application


@pytest.fixture(scope="module")
def operator(app_settings):
    name = "desk-op"
    accounts.create_operator(app_settings.db_url, name, PASSWORD, display_name="坐席一")
    return name


def login(app, username: str) -> Tuple[TestClient, Dict[str, str]]:
    return staff.login(app, username, PASSWORD)


def new_ticket(app_settings, conversation_id=None):
    return tickets.open_ticket(
        app_settings.db_url,
        conversation_id=conversation_id or f"desk-citizen-{next(_ids)}",
        channel="web",
        reason="request_human",
        item_id="passport",
        summary={"item_name": "普通护照签发", "question": "护照要带什么"},
        hours=ServiceHours.parse("always"),
    )


@pytest.mark.parametrize("method, path", DESK_ROUTES)
def test_every_desk_route_needs_a_login(app, method, path):
    response = TestClient(app).request(method, path, json={})
    assert response.status_code == 401, (method, path, response.text)
    assert response.json()["detail"] == "请先登录"


@pytest.mark.parametrize("method, path", [r for r in DESK_ROUTES if r[0] == "POST"])
def test_every_desk_post_needs_the_csrf_token(app, operator, method, path):
    client, _ = login(app, operator)
    response = client.request(method, path, json={"text": "x"}, headers={"X-CSRF-Token": "forged"})
    assert response.status_code == 403, (method, path, response.text)


def test_desk_page_is_served(app):
    response = TestClient(app).get("/desk")
    assert response.status_code == 200 and 'lang="zh-CN"' in response.text


def test_queue_reply_and_hand_back(app, app_settings, operator):
    client, csrf = login(app, operator)
    ticket = new_ticket(app_settings, "desk-flow")
    queue = client.get(f"{DESK_PREFIX}/queue").json()["tickets"]
    assert queue[0]["id"] == ticket.id and queue[0]["summary"]["item_name"] == "普通护照签发"
    relay.add_citizen_message(app_settings.db_url, ticket.id, "您好，我的照片不合格")

    detail = client.get(f"{DESK_PREFIX}/tickets/{ticket.id}").json()
    assert [m["text"] for m in detail["messages"]] == ["您好，我的照片不合格"]

    sent = client.post(f"{DESK_PREFIX}/tickets/{ticket.id}/messages", json={"text": "请到窗口重拍。"}, headers=csrf)
    assert sent.status_code == 201 and sent.json()["role"] == "operator"
    assert relay.messages_for_citizen(app_settings.db_url, "desk-flow")[0]["text"] == "请到窗口重拍。"

    back = client.post(f"{DESK_PREFIX}/tickets/{ticket.id}/handback", headers=csrf)
    assert back.status_code == 200 and back.json()["status"] == "handed_back"
    assert tickets.relaying_ticket(app_settings.db_url, "desk-flow") is None
    again = client.post(f"{DESK_PREFIX}/tickets/{ticket.id}/close", headers=csrf)
    assert again.status_code == 409 and again.json()["detail"] == "该工单已结束"
    gone = client.post(f"{DESK_PREFIX}/tickets/{ticket.id}/messages", json={"text": "在吗"}, headers=csrf)
    assert gone.status_code == 409

    with session_factory(app_settings.db_url)() as session:
        actions = [
            r.action
            for r in session.execute(select(AuditRecord).where(AuditRecord.subject == f"ticket:{ticket.id}")).scalars()
        ]
    assert actions == ["desk.ticket.view", "desk.ticket.handed_back"]


def test_bad_input_is_refused_in_chinese(app, app_settings, operator):
    client, csrf = login(app, operator)
    ticket = new_ticket(app_settings)
    url = f"{DESK_PREFIX}/tickets/{ticket.id}/messages"
    for body in [{"text": "   "}, {"text": "x" * 2001}, {"text": 1}, {}, {"text": "ok", "extra": 1}]:
        response = client.post(url, json=body, headers=csrf)
        assert response.status_code == 422, body
        assert any("\u4e00" <= ch <= "\u9fff" for ch in response.json()["detail"])
    missing = client.get(f"{DESK_PREFIX}/tickets/999999")
    assert missing.status_code == 404 and missing.json()["detail"] == "没有找到该工单"
    bad_mark = client.post(f"{DESK_PREFIX}/marks", json={"query": "q", "rank": 1, "mark": "great"}, headers=csrf)
    assert bad_mark.status_code == 422


def test_marks_are_stored_masked(app, app_settings, operator):
    client, csrf = login(app, operator)
    body = {
        "query": "我手机13912345678，社保卡要带什么",
        "rank": 1,
        "mark": "edited",
        "item_id": "social_security_card",
        "question_type": "materials",
        "confidence": 0.91,
    }
    assert client.post(f"{DESK_PREFIX}/marks", json=body, headers=csrf).status_code == 201
    with session_factory(app_settings.db_url)() as session:
        row = session.execute(select(SuggestionMark).order_by(SuggestionMark.id.desc())).scalars().first()
    assert (row.operator, row.mark, row.item_id, row.rank) == (operator, "edited", "social_security_card", 1)
    assert "13912345678" not in row.query and "139****5678" in row.query
