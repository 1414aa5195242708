"""The review queue fed by the running service (real gateway, model and action
server, on SQLite or PostgreSQL): a turn the assistant did not understand, a handoff,
a 差评 (the question it rated read from the tracker store) and an operator's "wrong"
mark reach /api/v1/admin/reviews, masked."""

from __future__ import annotations

import json
import time
from typing import Dict, List

import httpx
import pytest
from sqlalchemy import select

from assistant.security import accounts
from assistant.services.reviews import collect
from assistant.storage.database import session_factory
from assistant.storage.review_tables import ReviewItem
from assistant.storage.tables import HandoffTicket

pytestmark = pytest.mark.model

PASSWORD = "reviews-flow-password-1"
API = "/api/v1/admin/reviews"
PHONE = "13612345678"


@pytest.fixture(scope="module")
def staff(live_server, settings):
    clients = {}
    for name, role in (("rvflow.admin", "admin"), ("rvflow.op", "operator")):
        accounts.create_operator(settings.db_url, name, PASSWORD, role=role)
        http = httpx.Client(base_url=live_server, timeout=30)
        reply = http.post("/api/v1/desk/login", json={"username": name, "password": PASSWORD})
        assert reply.status_code == 200
        http.headers["X-CSRF-Token"] = reply.json()["csrf_token"]
        clients[role] = http
    yield clients
    for http in clients.values():
        http.close()


class Citizen:
    def __init__(self, client: httpx.Client):
        session = client.post("/api/v1/chat/sessions")
        assert session.status_code == 201
        self.sender_id, self.token = session.json()["sender_id"], session.json()["token"]
        self.client = client

    def say(self, text: str) -> Dict:
        body = {"sender_id": self.sender_id, "text": text, "channel": "web", "token": self.token}
        reply = self.client.post("/api/v1/chat", json=body)
        assert reply.status_code == 200, reply.text
        return reply.json()


def queue_until(admin: httpx.Client, found, **params) -> List[Dict]:
    """The queue's reviews once ``found(items)`` is true (turns are noted in the background)."""
    deadline = time.monotonic() + 15
    while True:
        reply = admin.get(API, params={"state": "all", "limit": 200, **params})
        assert reply.status_code == 200, reply.text
        items = reply.json()["items"]
        if found(items) or time.monotonic() > deadline:
            return items
        time.sleep(0.3)


def no_raw_personal_data(db_url: str, *secrets: str) -> None:
    with session_factory(db_url)() as db:
        stored = "\n".join(f"{r.text}|{r.detail}" for r in db.execute(select(ReviewItem)).scalars())
    for secret in secrets:
        assert secret not in stored


def test_a_turn_not_understood_appears_masked(client, staff, settings):
    said = f"我叫赵六，电话{PHONE}，今天天气怎么样"
    reply = Citizen(client).say(said)
    masked = collect.clip(said)
    assert "136****5678" in masked
    items = queue_until(staff["admin"], lambda items: any(i["text"] == masked for i in items))
    (review,) = [i for i in items if i["text"] == masked]
    assert review["reason"] == "not_understood", (review, reply)
    assert review["reason"] == collect.turn_reason(reply["intent"], review["confidence"], reply.get("answer"))
    assert review["channel"] == "web" and review["intent"] == reply["intent"]
    no_raw_personal_data(settings.db_url, PHONE, "赵六")


def test_a_handoff_appears_with_the_question(client, staff, settings):
    citizen = Citizen(client)
    citizen.say(f"我的电话是{PHONE}，办护照要带什么材料")
    opened = citizen.say("转人工")
    ticket_id = opened["handoff"]["ticket_id"]
    with session_factory(settings.db_url)() as db:
        summary = json.loads(db.get(HandoffTicket, ticket_id).summary)
    expected = collect.clip(summary["question"]) or collect.NO_TEXT
    items = queue_until(staff["admin"], lambda items: any(i["source"] == f"ticket:{ticket_id}" for i in items),
                        reason="handoff")
    (review,) = [i for i in items if i["source"] == f"ticket:{ticket_id}"]
    assert review["text"] == expected and review["detail"] == "request_human" and review["channel"] == "web"
    no_raw_personal_data(settings.db_url, PHONE)


def test_a_bad_rating_appears_with_the_question_it_rated(client, staff):
    citizen = Citizen(client)
    question = "办居住证需要什么条件"
    citizen.say(question)
    rated = citizen.say("差评，答非所问")
    assert rated["answer"] in ("feedback", "handoff"), rated
    items = queue_until(staff["admin"], lambda items: any(i["text"] == question for i in items), reason="bad_rating")
    (review,) = [i for i in items if i["text"] == question]
    assert review["source"].startswith("feedback:") and "答非所问" in review["detail"]


def test_a_wrong_mark_on_the_desk_appears(staff, settings):
    query = f"我叫钱八，手机{PHONE}，社保卡丢了怎么补"
    marked = staff["operator"].post("/api/v1/desk/marks", json={
        "query": query, "rank": 2, "mark": "wrong", "item_id": "social_security_card", "question_type": "materials",
        "confidence": 0.55})
    assert marked.status_code == 201, marked.text
    items = queue_until(staff["admin"], lambda items: any(i["source"] == f"mark:{marked.json()['id']}" for i in items),
                        reason="wrong_mark")
    (review,) = [i for i in items if i["source"] == f"mark:{marked.json()['id']}"]
    assert review["text"] == "我叫钱*，手机136****5678，社保卡丢了怎么补"
    assert review["item_id"] == "social_security_card" and "第2条" in review["detail"]
    no_raw_personal_data(settings.db_url, PHONE, "钱八")
