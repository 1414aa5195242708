"""Without a model, an action server or Redis the gateway says so clearly (no 500s)."""

import pytest
from fastapi.testclient import TestClient

from assistant.api.app import create_app
from tests.conftest import free_port, isolated_settings


def test_not_ready_gateway(settings, tmp_path):
    degraded = isolated_settings(settings, tmp_path, action_endpoint=f"http://127.0.0.1:{free_port()}/webhook")
    with TestClient(create_app(degraded, load_model=False)) as client:
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "degraded"
        assert health.json()["model_loaded"] is False
        assert health.json()["action_server_reachable"] is False
        reply = client.post("/api/v1/chat", json={"sender_id": "x1234567", "text": "你好"})
        assert reply.status_code == 503 and reply.json()["detail"] == "助手正在启动，请稍后再试"
        assert client.post("/api/v1/parse", json={"text": "你好"}).status_code == 503
        # The catalog does not need the model.
        assert client.get("/api/v1/items/passport").status_code == 200
        assert client.get("/no/such/page").json()["detail"] == "没有找到该地址"


def test_relay_works_while_the_model_loads(settings, tmp_path):
    from assistant.config.hours import ServiceHours
    from assistant.services.handoff import relay, tickets

    degraded = isolated_settings(settings, tmp_path)
    with TestClient(create_app(degraded, load_model=False)) as client:
        ticket = tickets.open_ticket(
            degraded.db_url,
            conversation_id="held-1",
            channel="api",
            reason="request_human",
            item_id=None,
            summary={},
            hours=ServiceHours.parse("always"),
        )
        reply = client.post("/api/v1/chat", json={"sender_id": "held-1", "text": "还在吗"})
        assert reply.status_code == 200
        assert reply.json()["messages"] == [] and reply.json()["handoff"]["ticket_id"] == ticket.id
        cancelled = client.post("/api/v1/chat", json={"sender_id": "held-1", "text": "取消人工"})
        assert cancelled.json()["messages"][0]["text"].startswith("已取消人工服务")
        # The notice came in the reply; it is not stored for the event stream as well.
        assert relay.messages_for_citizen(degraded.db_url, "held-1") == []
        assert client.post("/api/v1/chat", json={"sender_id": "held-1", "text": "你好"}).status_code == 503


@pytest.mark.model
def test_without_redis_a_turn_fails_fast_in_chinese(settings, tmp_path, trained_model, action_server):
    """Redis holds the conversation lock with several replicas: while it is away a turn
    is refused at once with the outage message (not a 500, not a 'busy' answer)."""
    import time

    dead = f"redis://127.0.0.1:{free_port()}/0"
    with TestClient(create_app(isolated_settings(settings, tmp_path, redis_url=dead))) as client:
        started = time.monotonic()
        reply = client.post("/api/v1/chat", json={"sender_id": "no-redis-1", "text": "护照要带什么材料"})
        assert reply.status_code == 503 and reply.json()["detail"] == "系统正在恢复，请稍等几秒再试。", reply.text
        assert time.monotonic() - started < 15
