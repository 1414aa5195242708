"""POST /api/v1/assist against the live gateway with the real model."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.model

API_KEY = "test-assist-key"  # BANSHI_ASSIST_API_KEYS in tests/conftest.py
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def assist(client, body, headers=AUTH):
    return client.post("/api/v1/assist", json=body, headers=headers)


def suggestions_of(client, text, context=None):
    body = {"text": text} if context is None else {"text": text, "context": context}
    reply = assist(client, body)
    assert reply.status_code == 200, reply.text
    return reply.json()


def has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_materials_question_top_suggestion_with_card(client, catalog):
    body = suggestions_of(client, "社保卡要带什么材料")
    assert set(body) == {"suggestions", "intent", "items", "needs_item"}
    assert body["needs_item"] is False
    assert body["items"][0]["id"] == "social_security_card"
    top = body["suggestions"][0]
    assert (top["rank"], top["item_id"], top["question_type"], top["intent"]) == (
        1, "social_security_card", "materials", "ask_materials"
    )
    assert top["item_name"] == "社会保障卡申领"
    for material in catalog.materials_for("social_security_card"):
        assert material.name in top["answer"]
        assert any(line.startswith(material.name) for line in top["card"]["materials"])
    record = catalog.records["social_security_card"]
    assert top["card"]["fees"] == record.fees and top["card"]["time_limit"] == record.time_limit
    assert top["card"]["where"]["window"] == record.where.window and top["card"]["where"]["online"]


def test_at_most_three_suggestions_sorted_by_confidence(client):
    for text in ["社保卡要带什么材料", "身份证", "喂 你好 嗯 那个我想问一下 我家老人身份证丢了 要去哪里补办 要钱吗"]:
        suggestions = suggestions_of(client, text)["suggestions"]
        assert 1 <= len(suggestions) <= 3
        confidences = [s["confidence"] for s in suggestions]
        assert confidences == sorted(confidences, reverse=True)
        assert all(0 <= c <= 1 for c in confidences)
        assert [s["rank"] for s in suggestions] == list(range(1, len(suggestions) + 1))
        assert len({(s["item_id"], s["question_type"]) for s in suggestions}) == len(suggestions)


def test_elliptical_question_uses_the_context_item(client, catalog):
    body = suggestions_of(client, "那要多少钱", {"item_id": "passport"})
    top = body["suggestions"][0]
    assert (top["item_id"], top["question_type"]) == ("passport", "fee")
    assert catalog.records["passport"].fees in top["answer"]
    assert body["needs_item"] is False


def test_item_in_the_text_beats_the_context(client):
    body = suggestions_of(client, "身份证丢了补办要多少钱", {"item_id": "passport", "question_type": "materials"})
    top = body["suggestions"][0]
    assert (top["item_id"], top["question_type"]) == ("id_card_reissue", "fee")


def test_question_without_item_needs_the_item(client):
    body = suggestions_of(client, "那要多少钱")
    assert body["suggestions"] == [] and body["needs_item"] is True


def test_out_of_scope_text_gets_no_suggestion(client):
    body = suggestions_of(client, "今天天气怎么样")
    assert body["suggestions"] == [] and body["needs_item"] is False
    assert body["intent"] == "out_of_scope"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": "Bearer"}, {"Authorization": f"Basic {API_KEY}"}],
    ids=["none", "wrong", "empty", "not-bearer"],
)
def test_unauthenticated_is_401(client, headers):
    reply = assist(client, {"text": "社保卡要带什么材料"}, headers=headers)
    assert reply.status_code == 401
    assert has_chinese(reply.json()["detail"])


def test_unauthenticated_bad_body_is_still_401(client):
    assert assist(client, {"text": ""}, headers={}).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"text": ""},
        {"text": "   "},
        {"text": "社保卡" * 200},
        {},
        {"text": 123},
        {"text": "那要多少钱", "context": {"item_id": "no_such_item"}},
        {"text": "那要多少钱", "context": {"item_id": "Bad Id!"}},
        {"text": "那要多少钱", "context": {"question_type": "price"}},
        {"text": "那要多少钱", "context": {"item_id": "passport", "user": "x"}},
        {"text": "社保卡要带什么材料", "sender_id": "abc"},
    ],
    ids=[
        "empty", "blank", "too-long", "missing", "not-string", "unknown-item", "bad-item-id",
        "unknown-question", "extra-context-field", "extra-field",
    ],
)
def test_bad_body_is_422_in_chinese(client, body):
    reply = assist(client, body)
    assert reply.status_code == 422, reply.text
    detail = reply.json()["detail"]
    assert isinstance(detail, str) and has_chinese(detail)


def test_unknown_context_item_is_named(client):
    reply = assist(client, {"text": "那要多少钱", "context": {"item_id": "no_such_item"}})
    assert reply.json()["detail"] == "context.item_id 不是已知的事项：no_such_item"


def test_text_at_the_limit_is_accepted(client, settings):
    text = ("我想问一下社保卡要带什么材料" * 100)[: settings.max_text_chars]
    assert suggestions_of(client, text)["suggestions"]


def test_assist_is_in_the_openapi_spec(client):
    spec = client.get("/openapi.json").json()
    assert "/api/v1/assist" in spec["paths"]
