"""POST/GET/DELETE /api/v1/chat/{conversation_id}/reminders: the conversation's token
(401 without, 403 wrong), bounded input, refusals in Chinese, never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from assistant.api.app import create_app
from assistant.security import chat_session
from tests.conftest import isolated_settings

CJK = "\u4e00"


@pytest.fixture(scope="module")
def api(settings, tmp_path_factory):
    app_settings = isolated_settings(settings, tmp_path_factory.mktemp("reminders-api"), wechat_token=None)
    with TestClient(create_app(app_settings, load_model=False)) as client:
        session = client.post("/api/v1/chat/sessions").json()
        yield client, session["sender_id"], session["token"], app_settings


def chinese(reply) -> str:
    detail = reply.json()["detail"]
    assert isinstance(detail, str) and any("\u4e00" <= ch <= "\u9fff" for ch in detail), detail
    return detail


def test_create_list_and_cancel_with_the_conversation_token(api):
    client, sender_id, token, _ = api
    path = f"/api/v1/chat/{sender_id}/reminders"
    made = client.post(path, json={"kind": "id_card_expiry", "expiry_month": "2030-03", "token": token})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["created"] is True and body["reminder"]["kind"] == "id_card_expiry"
    assert body["reminder"]["due_on"] == "2030-03" and body["reminder"]["title"] == "身份证到期提醒"
    again = client.post(path, json={"kind": "id_card_expiry", "expiry_month": "2030-3"},
                        headers={"X-Chat-Token": token})
    assert again.status_code == 200 and again.json()["id"] == body["id"] and again.json()["created"] is False
    second = client.post(path, json={"kind": "supplement_deadline", "number": "zw20251102003",
                                     "due_on": "2030-01-15"}, headers={"X-Chat-Token": token})
    assert second.status_code == 422  # more than 400 days ahead
    assert chinese(second) == "这个日期不对，请换一个从今天起400天以内的日期。"
    listed = client.get(path, headers={"X-Chat-Token": token}).json()["reminders"]
    assert [r["id"] for r in listed] == [body["id"]]
    assert client.delete(f"{path}/{body['id']}", headers={"X-Chat-Token": token}).json() == {"cancelled": 1}
    gone = client.delete(f"{path}/{body['id']}", headers={"X-Chat-Token": token})
    assert gone.status_code == 404 and chinese(gone) == "没有找到这条提醒，可能已经取消或发送过了。"
    assert client.get(path, headers={"X-Chat-Token": token}).json() == {"reminders": [], "subscriptions": []}
    client.post(path, json={"kind": "passport_expiry", "expiry_month": "2031-01"}, headers={"X-Chat-Token": token})
    assert client.delete(path, headers={"X-Chat-Token": token}).json() == {"cancelled": 1}


def test_tokens_are_required_and_checked(api):
    client, sender_id, token, app_settings = api
    path = f"/api/v1/chat/{sender_id}/reminders"
    body = {"kind": "id_card_expiry", "expiry_month": "2030-03"}
    assert client.post(path, json=body).status_code == 401
    assert client.get(path).status_code == 401
    assert client.delete(path).status_code == 401
    wrong = client.get(path, headers={"X-Chat-Token": "0" * 64})
    assert wrong.status_code == 403 and chinese(wrong) == "会话已失效，请刷新页面后重试"
    other = client.post("/api/v1/chat/sessions").json()
    # Another conversation's token does not open this one.
    assert client.get(path, headers={"X-Chat-Token": other["token"]}).status_code == 403
    kiosk = chat_session.new_sender_id(chat_session.KIOSK_PREFIX)
    kiosk_token = chat_session.sign(app_settings.secret(), kiosk)
    refused = client.post(f"/api/v1/chat/{kiosk}/reminders", json=body, headers={"X-Chat-Token": kiosk_token})
    assert refused.status_code == 422 and chinese(refused) == "这里不能发送提醒，请在微信公众号或网页上设置。"


@pytest.mark.parametrize("payload, status, message", [
    ({"kind": "lottery"}, 422, "暂时不支持这种提醒。"),
    ({"kind": "id_card_expiry"}, 422, "请告诉我到期的年份和月份，例如 2027-03。"),
    ({"kind": "id_card_expiry", "expiry_month": "下个月"}, 422, "请告诉我到期的年份和月份，例如 2027-03。"),
    ({"kind": "pension_certification", "due_on": "2026-02-30"}, 422, "请告诉我日期，例如 2027-03-15。"),
    ({"kind": "ready_for_pickup", "number": "ZW1"}, 422, "请提供正确的办件编号（ZW开头，后面是11位数字）。"),
    ({"kind": "id_card_expiry", "expiry_month": "2030-03", "name": "张三"}, 422, None),
    ({"kind": 5}, 422, None),
    ({"kind": "x" * 33}, 422, None),
    ({"kind": "id_card_expiry", "expiry_month": "2" * 17}, 422, None),
    ([], 422, None),
])
def test_bad_bodies_are_refused_in_chinese(api, payload, status, message):
    client, sender_id, token, _ = api
    reply = client.post(f"/api/v1/chat/{sender_id}/reminders", json=payload, headers={"X-Chat-Token": token})
    assert reply.status_code == status, reply.text
    detail = chinese(reply)
    if message:
        assert detail == message


def test_bad_paths_headers_and_bytes_are_4xx(api):
    client, sender_id, token, _ = api
    base = f"/api/v1/chat/{sender_id}/reminders"
    headers = {"X-Chat-Token": token}
    for path in (f"{base}/0", f"{base}/99999999999", f"{base}/abc", f"{base}/-1"):
        reply = client.delete(path, headers=headers)
        assert reply.status_code == 422, (path, reply.status_code)
        chinese(reply)
    assert client.get(f"/api/v1/chat/{'w' * 129}/reminders", headers=headers).status_code == 422
    bad_id = client.get("/api/v1/chat/web-a%20b/reminders", headers=headers)
    assert bad_id.status_code == 422 and chinese(bad_id) == "会话编号格式不正确"
    assert client.get(base, headers={"X-Chat-Token": "t" * 200}).status_code == 422
    not_json = client.post(base, content=b"\xff\xfe not json", headers={**headers, "Content-Type": "application/json"})
    assert not_json.status_code == 400 and chinese(not_json)
    huge = client.post(base, content=b"{" + b" " * 70000 + b"}", headers={**headers, "Content-Type": "application/json"})
    assert huge.status_code == 413
    assert client.put(base, json={}, headers=headers).status_code == 405


def test_status_subscriptions_are_listed_beside_reminders_and_cancelled(api):
    from assistant.services.progress import subscriptions

    client, _, _, app_settings = api
    session = client.post("/api/v1/chat/sessions").json()
    sender_id, headers = session["sender_id"], {"X-Chat-Token": session["token"]}
    db_url, secret = app_settings.db_url, app_settings.secret()
    for number in ("ZW20251102003", "ZW20251102004"):
        subscriptions.subscribe(db_url, secret, number, "web", sender_id, "reviewing")
    listed = client.get(f"/api/v1/chat/{sender_id}/reminders", headers=headers).json()
    assert [(s["number"], s["title"]) for s in listed["subscriptions"]] == [
        ("ZW2025****003", "办件状态提醒"), ("ZW2025****004", "办件状态提醒")]
    assert "ZW20251102003" not in str(listed)
    first = listed["subscriptions"][0]["id"]
    base = f"/api/v1/chat/{sender_id}/subscriptions"
    assert client.delete(f"{base}/{first}", headers=headers).json() == {"cancelled": 1}
    gone = client.delete(f"{base}/{first}", headers=headers)
    assert gone.status_code == 404 and chinese(gone) == "没有找到这条提醒，可能已经取消或发送过了。"
    # Another conversation cannot cancel this one's subscriptions.
    other = client.post("/api/v1/chat/sessions").json()
    second = listed["subscriptions"][1]["id"]
    stranger = client.delete(f"/api/v1/chat/{other['sender_id']}/subscriptions/{second}",
                             headers={"X-Chat-Token": other["token"]})
    assert stranger.status_code == 404
    assert client.delete(base, headers={"X-Chat-Token": other["token"]}).status_code == 403
    assert client.delete(f"/api/v1/chat/{other['sender_id']}/subscriptions",
                         headers={"X-Chat-Token": other["token"]}).json() == {"cancelled": 0}
    assert client.delete(base).status_code == 401
    assert client.delete(base, headers={"X-Chat-Token": "0" * 64}).status_code == 403
    assert client.delete(f"{base}/0", headers=headers).status_code == 422
    assert client.delete(base, headers=headers).json() == {"cancelled": 1}
    assert subscriptions.numbers_of(db_url, secret, "web", sender_id) == []
