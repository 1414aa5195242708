"""Without a model or an action server the gateway says so clearly (no 500s)."""

from fastapi.testclient import TestClient

from assistant.app import create_app
from tests.conftest import free_port


def test_not_ready_gateway(settings, tmp_path):
    degraded = settings.copy(
        update={
            "data_dir": tmp_path,
            "action_endpoint": f"http://127.0.0.1:{free_port()}/webhook",
        }
    )
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
