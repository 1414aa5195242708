"""Progress lookups and human handoff through the real gateway, model and action server.

Citizen side: POST /api/v1/chat with a web-chat session; operator replies arrive on
the server-sent event stream. Operator side: the desk API with a real login.
"""

from __future__ import annotations

import json
import queue
import threading
from typing import Dict, List

import httpx
import pytest

from assistant.security import accounts
from assistant.services.progress.importer import load_demo_data

pytestmark = pytest.mark.model

PASSWORD = "flow-password-123"


@pytest.fixture(scope="module")
def demo(settings):
    load_demo_data(settings.db_url, settings.secret())


@pytest.fixture(scope="module")
def desk(live_server, settings):
    accounts.create_operator(settings.db_url, "flow-op", PASSWORD, display_name="坐席")
    with httpx.Client(base_url=live_server, timeout=30) as http:
        response = http.post("/api/v1/desk/login", json={"username": "flow-op", "password": PASSWORD})
        assert response.status_code == 200
        http.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield http


class Citizen:
    """A web-chat conversation with its token, and a reader of its event stream."""

    def __init__(self, client: httpx.Client, live_server: str):
        session = client.post("/api/v1/chat/sessions")
        assert session.status_code == 201
        self.sender_id, self.token = session.json()["sender_id"], session.json()["token"]
        self.client, self.base = client, live_server
        self.events: "queue.Queue[Dict]" = queue.Queue()

    def say(self, text: str) -> Dict:
        body = {"sender_id": self.sender_id, "text": text, "channel": "web", "token": self.token}
        response = self.client.post("/api/v1/chat", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def texts(self, text: str) -> str:
        return "\n".join(m.get("text") or "" for m in self.say(text)["messages"])

    def listen(self) -> None:
        def read() -> None:
            params = {"sender_id": self.sender_id, "token": self.token}
            url = f"{self.base}/api/v1/chat/events"
            try:
                with httpx.stream("GET", url, params=params, timeout=None) as stream:
                    event = None
                    for line in stream.iter_lines():
                        if line.startswith("event: "):
                            event = line[7:]
                        elif line.startswith("data: ") and event == "message":
                            self.events.put(json.loads(line[6:]))
            except httpx.HTTPError:  # the test server stops while the stream is open
                pass

        threading.Thread(target=read, daemon=True).start()

    def next_event(self, timeout: float = 10) -> Dict:
        return self.events.get(timeout=timeout)


@pytest.fixture
def citizen(client, live_server):
    return Citizen(client, live_server)


def test_web_conversations_need_their_token(client, citizen):
    body = {"sender_id": citizen.sender_id, "text": "你好", "channel": "web"}
    for token in (None, "0" * 64, citizen.token[:-1]):
        response = client.post("/api/v1/chat", json={**body, "token": token} if token else body)
        assert response.status_code == 403 and response.json()["detail"] == "会话已失效，请刷新页面后重试"
    stream = client.get("/api/v1/chat/events", params={"sender_id": citizen.sender_id, "token": "x"})
    assert stream.status_code == 403


def test_progress_for_a_verified_citizen(citizen, demo):
    assert "办件编号" in citizen.texts("我的护照办好了没")
    assert "ZW 开头" in citizen.texts("我忘了编号")  # where to find it
    assert "没有找到编号为 ZW20991231999 的办件" in citizen.texts("ZW20991231999")
    assert "手机号的后四位" in citizen.texts("ZW20251102004")
    answer = citizen.texts("4004")
    assert "普通护照签发" in answer and "目前已办结" in answer and "领取方式：邮寄" in answer


def test_progress_with_the_number_said_at_once(citizen, demo):
    assert "手机号的后四位" in citizen.texts("帮我查一下ZW20251102003的进度")
    answer = citizen.texts("尾号3003")
    assert "需补正材料" in answer and "请补交这些材料" in answer and "近期免冠证件照片" in answer


def test_a_number_given_out_of_the_blue_starts_the_lookup(citizen, demo):
    citizen.texts("你好")
    reply = citizen.texts("ZW20251102001")
    assert "查一下这件办件的进度" in reply and "手机号的后四位" in reply
    assert "居住证申领" in citizen.texts("1001")


def test_three_wrong_verifications_lock_the_number(citizen, client, live_server, demo):
    citizen.texts("查一下办件进度")
    citizen.texts("ZW20251102001")
    assert "还可以再试 2 次" in citizen.texts("0000")
    assert "还可以再试 1 次" in citizen.texts("1111")
    assert "已锁定" in citizen.texts("2222")
    # Another conversation cannot try the locked number either.
    other = Citizen(client, live_server)
    other.texts("查进度")
    assert "已锁定" in other.texts("ZW20251102001")


def test_handoff_relay_and_hand_back(citizen, desk):
    assert "社会保障卡" in citizen.texts("社保卡要带什么材料")
    citizen.listen()
    opened = citizen.say("转人工")
    assert opened["handoff"]["status"] == "waiting" and opened["handoff"]["position"] >= 1
    assert "转接人工服务" in opened["messages"][0]["text"]

    # While the ticket is open the bot stays quiet; the message reaches the desk.
    relayed = citizen.say("我的照片不合格怎么办")
    assert relayed["messages"] == [] and relayed["handoff"]["ticket_id"] == opened["handoff"]["ticket_id"]
    ticket_id = opened["handoff"]["ticket_id"]
    tickets = {t["id"]: t for t in desk.get("/api/v1/desk/queue").json()["tickets"]}
    summary = tickets[ticket_id]["summary"]
    assert summary["item_name"] == "社会保障卡申领" and summary["question"] == "社保卡要带什么材料"
    assert "社会保障卡" in summary["bot_answer"]
    messages = desk.get(f"/api/v1/desk/tickets/{ticket_id}").json()["messages"]
    assert [m["text"] for m in messages] == ["我的照片不合格怎么办"]

    # The operator's reply reaches the citizen live.
    assert desk.post(f"/api/v1/desk/tickets/{ticket_id}/messages", json={"text": "请到窗口重拍。"}).status_code == 201
    event = citizen.next_event()
    assert (event["role"], event["text"], event["author"]) == ("operator", "请到窗口重拍。", "flow-op")

    assert desk.post(f"/api/v1/desk/tickets/{ticket_id}/handback").status_code == 200
    assert citizen.next_event()["text"].startswith("工作人员已把对话转回智能助手")
    answer = citizen.say("社保卡要带什么材料")
    assert "handoff" not in answer and "1. " in answer["messages"][0]["text"]


def test_a_waiting_citizen_can_go_back_to_the_bot(citizen, desk):
    ticket_id = citizen.say("我要找真人")["handoff"]["ticket_id"]
    back = citizen.say("取消人工")
    assert back["messages"][0]["text"].startswith("已取消人工服务")
    assert ticket_id not in {t["id"] for t in desk.get("/api/v1/desk/queue").json()["tickets"]}
    assert "handoff" not in citizen.say("护照在哪里办")


def test_a_complaint_opens_a_ticket(citizen, desk):
    reply = citizen.say("窗口工作人员态度太差了我要投诉")
    assert "投诉已记录" in reply["messages"][0]["text"] and reply["handoff"]["status"] == "waiting"
    ticket = next(t for t in desk.get("/api/v1/desk/queue").json()["tickets"] if t["id"] == reply["handoff"]["ticket_id"])
    assert ticket["reason"] == "complaint"


def test_assist_for_the_desk(desk):
    response = desk.post("/api/v1/assist", json={"text": "身份证丢了怎么补办"})
    assert response.status_code == 200, response.text
    top = response.json()["suggestions"][0]
    assert top["item_id"] == "id_card_reissue"
