"""The gateway API against the real model, the real action server and a real database."""


import pytest

pytestmark = pytest.mark.model


def chat(client, sender, text, **extra):
    reply = client.post("/api/v1/chat", json={"sender_id": sender, "text": text, **extra})
    assert reply.status_code == 200, reply.text
    return reply.json()


def all_text(body):
    return "\n".join(m.get("text") or "" for m in body["messages"])


def test_acceptance_social_security_card_materials(client, catalog):
    body = chat(client, "acc-1", "我想办社保卡要带什么")
    assert body["intent"] == "ask_materials"
    assert body["items"][0]["id"] == "social_security_card"
    text = all_text(body)
    assert "社会保障卡申领" in text
    for material in catalog.materials_for("social_security_card"):
        assert material.name in text
    assert "来源" in text


def test_parse_shape_and_top_item(client):
    reply = client.post("/api/v1/parse", json={"text": "身份证丢了怎么补办"})
    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {"intent", "items", "entities"}
    assert body["intent"]["name"] in {"ask_service", "ask_process"}
    assert 0 < body["intent"]["confidence"] <= 1
    assert body["items"][0]["id"] == "id_card_reissue"
    assert len(body["items"]) <= 5


def test_parse_extracts_regex_entities(client):
    body = client.post("/api/v1/parse", json={"text": "受理号是ZW20250318007，手机尾号1234"}).json()
    found = {e["entity"]: e["value"] for e in body["entities"]}
    assert found.get("application_number") == "ZW20250318007"
    assert found.get("phone_tail") == "1234"
    assert body["intent"]["name"] == "inform"


def test_out_of_scope_gets_no_item(client):
    body = client.post("/api/v1/parse", json={"text": "今天天气怎么样"}).json()
    assert body["intent"]["name"] == "out_of_scope"
    assert body["items"] == []


def test_items_list_and_detail(client):
    items = client.get("/api/v1/items").json()
    assert len(items) == 55
    bundles = client.get("/api/v1/items", params={"kind": "bundle"}).json()
    assert len(bundles) == 12 and all(b["kind"] == "bundle" for b in bundles)
    card = client.get("/api/v1/items/bundle_newborn").json()
    assert card["members"] and card["departments"][0] == "卫生健康"
    names = [m["name"] for m in card["materials"]]
    assert len(names) == len(set(names))


def test_healthz_reports_model_and_actions(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["model_loaded"] is True and body["action_server_reachable"] is True
    assert body["catalog_items"] == 55
    assert body["database_reachable"] is True
    assert body["actions"]["reachable"] is True and body["actions"]["fallback_answers"] >= 0
    assert body["spool"]["waiting"] == 0
    assert client.get("/healthz/live").json() == {"status": "ok"}
    ready = client.get("/healthz/ready")
    assert ready.status_code == 200 and ready.json()["model_loaded"] is True


def test_openapi_docs(client):
    spec = client.get("/openapi.json").json()
    assert "/api/v1/chat" in spec["paths"] and "/api/v1/parse" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_chat_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "办事助手" in page.text
    assert client.get("/static/chat/chat.js").status_code == 200


BAD_CHAT_BODIES = [
    ({"sender_id": "x1234567", "text": ""}, 422, "消息不能为空"),
    ({"sender_id": "x1234567", "text": "   "}, 422, "消息不能为空"),
    ({"sender_id": "x1234567", "text": "啊" * 10000}, 422, "消息太长"),
    ({"sender_id": "x1234567", "text": 123}, 422, "字段类型不正确"),
    ({"sender_id": "x1234567", "text": ["a"]}, 422, "字段类型不正确"),
    ({"sender_id": "x1234567"}, 422, "缺少字段：text"),
    ({"text": "你好"}, 422, "缺少字段：sender_id"),
    ({"sender_id": "bad id with spaces", "text": "你好"}, 422, "sender_id"),
    ({"sender_id": "x" * 500, "text": "你好"}, 422, "sender_id"),
    ({"sender_id": "x1234567", "text": "你好", "channel": "fax"}, 422, "channel"),
    ({"sender_id": "x1234567", "text": "你好", "extra": 1}, 422, "不支持的字段"),
]


@pytest.mark.parametrize("body, status, message", BAD_CHAT_BODIES)
def test_bad_chat_input_is_a_clear_4xx(client, body, status, message):
    reply = client.post("/api/v1/chat", json=body)
    assert reply.status_code == status
    assert message in reply.json()["detail"]


@pytest.mark.parametrize("path", ["/api/v1/chat", "/api/v1/parse"])
def test_invalid_json_and_wrong_shapes(client, path):
    reply = client.post(path, content=b"{not json", headers={"content-type": "application/json"})
    assert reply.status_code == 400 and reply.json()["detail"] == "请求体不是有效的 JSON"
    reply = client.post(path, json=["a", "list"])
    assert reply.status_code == 422 and "detail" in reply.json()
    reply = client.post(path, content="x" * 100_000, headers={"content-type": "application/json"})
    assert reply.status_code == 413
    assert client.get(path).status_code == 405


@pytest.mark.parametrize("text", ["", "啊" * 10000, None])
def test_bad_parse_input(client, text):
    reply = client.post("/api/v1/parse", json={"text": text})
    assert reply.status_code == 422
    assert isinstance(reply.json()["detail"], str)


def test_unknown_item_is_404_in_chinese(client):
    reply = client.get("/api/v1/items/no_such_item")
    assert reply.status_code == 404 and "没有找到该事项" in reply.json()["detail"]
    assert client.get("/api/v1/items/bad%20id").status_code == 422
    assert client.get("/api/v1/items", params={"kind": "nope"}).status_code == 422


def test_bad_requests_do_not_break_the_conversation(client):
    chat(client, "robust-1", "我想办护照")
    client.post("/api/v1/chat", json={"sender_id": "robust-1", "text": ""})
    client.post("/api/v1/chat", content=b"{", headers={"content-type": "application/json"})
    body = chat(client, "robust-1", "要带什么材料")
    assert "普通护照签发" in all_text(body)
