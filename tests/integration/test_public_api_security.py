"""The public API's defences: progress lookups limited per client IP across every
conversation (through the real gateway, model and action server), and signed tokens
for every conversation id when ``BANSHI_REQUIRE_CHAT_TOKEN`` is on."""

from __future__ import annotations

import itertools
from typing import Dict, Optional

import httpx
import pytest
from fastapi.testclient import TestClient
from limits import parse as parse_limit
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from assistant.api.app import create_app
from assistant.api.serving import serve_in_thread
from assistant.security import chat_session
from assistant.security.audit import citizen_actor
from assistant.security.client import client_key
from assistant.security.client_limits import client_of
from assistant.services.progress.importer import load_demo_data
from assistant.storage.database import session_factory
from assistant.storage.tables import AuditRecord

IP_THROTTLED = "您所在网络的查询次数过多"
_ids = itertools.count()


@pytest.fixture(scope="module")
def demo(settings):
    load_demo_data(settings.db_url, settings.secret())


def say(client: httpx.Client, sender_id: str, text: str, ip: Optional[str] = None) -> str:
    headers = {"X-Forwarded-For": ip} if ip else {}
    body = {"sender_id": sender_id, "text": text, "channel": "api"}
    response = client.post("/api/v1/chat", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return "\n".join(m.get("text") or "" for m in response.json()["messages"])


def audit_results(settings, sender_id: str) -> list:
    with session_factory(settings.db_url)() as session:
        rows = session.execute(
            select(AuditRecord.action, AuditRecord.result)
            .where(AuditRecord.actor == citizen_actor(sender_id))
            .order_by(AuditRecord.id)
        ).all()
    return [tuple(row) for row in rows]


def fresh(prefix: str) -> str:
    return f"ipl-{prefix}-{next(_ids)}"


# ------------------------------------------------------------ per client IP
@pytest.mark.model
def test_rotating_conversation_ids_does_not_escape_the_ip_limit(client, settings, demo):
    amount = parse_limit(settings.progress_ip_rate_limit).amount
    assert amount <= 60, "the test makes one lookup per allowed attempt"
    attacker, neighbour = "203.0.113.77", "198.51.100.23"  # via the trusted local proxy
    # The first conversation looks a number up (1 attempt) and waits for the phone tail.
    waiting = fresh("a")
    assert "手机号的后四位" in say(client, waiting, "帮我查一下ZW20251102003的进度", attacker)
    assert client_of(settings, waiting) == client_key(settings.secret(), attacker)
    # Every further attempt from a new conversation id, up to the limit.
    for _ in range(amount - 1):
        reply = say(client, fresh("a"), "帮我查一下ZW20251102004的进度", attacker)
        assert "手机号的后四位" in reply, reply
    # Over the limit: a new conversation gets the notice, and nothing is looked up.
    refused = fresh("a")
    reply = say(client, refused, "帮我查一下ZW20251102004的进度", attacker)
    assert IP_THROTTLED in reply and "分钟后再试" in reply and "手机号的后四位" not in reply
    assert audit_results(settings, refused) == [("progress.lookup", "ip_throttled")]
    # The verification of the waiting conversation is refused as well, unchecked.
    reply = say(client, waiting, "3003", attacker)
    assert IP_THROTTLED in reply and "需补正材料" not in reply
    assert audit_results(settings, waiting) == [("progress.lookup", "found"), ("progress.verify", "ip_throttled")]
    # Another client is not affected.
    other = fresh("b")
    assert "手机号的后四位" in say(client, other, "帮我查一下ZW20251102005的进度", neighbour)
    assert "不予受理" in say(client, other, "5005", neighbour)


def test_forwarded_for_from_an_untrusted_peer_is_ignored(settings):
    """The gateway believes X-Forwarded-For only from BANSHI_TRUSTED_PROXIES."""
    strict = settings.copy(update={"trusted_proxies": "10.255.255.1"})
    with serve_in_thread(create_app(strict, load_model=False)) as url:
        sender = fresh("c")
        # 503: this app has no model; the client was remembered before the turn.
        httpx.post(f"{url}/api/v1/chat", json={"sender_id": sender, "text": "你好"},
                   headers={"X-Forwarded-For": "203.0.113.5"}, timeout=30)
        assert client_of(settings, sender) == client_key(settings.secret(), "127.0.0.1")


# ------------------------------------------------------------ signed tokens
@pytest.fixture(scope="module")
def strict_client(settings):
    """An app that requires a token for every conversation id (no model loaded:
    a request that passes the token check ends in 503)."""
    required = settings.copy(update={"require_chat_token": True})
    with TestClient(create_app(required, load_model=False)) as test_client:
        yield test_client


def chat(client: TestClient, sender_id: str, token: Optional[str] = None) -> httpx.Response:
    body: Dict = {"sender_id": sender_id, "text": "社保卡要带什么"}
    if token is not None:
        body["token"] = token
    return client.post("/api/v1/chat", json=body)


def test_required_tokens_on_chat(strict_client, settings):
    missing = chat(strict_client, "hotline-42")
    assert missing.status_code == 401 and missing.json() == {"detail": "请先创建会话（缺少会话令牌）"}
    forged = chat(strict_client, "hotline-42", "0" * 64)
    assert forged.status_code == 403 and forged.json() == {"detail": "会话已失效，请刷新页面后重试"}
    # A token for another id does not fit.
    session = strict_client.post("/api/v1/chat/sessions").json()
    assert chat(strict_client, "hotline-42", session["token"]).status_code == 403
    # Its own token passes (503 only because this app has no model).
    assert chat(strict_client, session["sender_id"], session["token"]).status_code == 503
    signed = chat_session.sign(settings.secret(), "hotline-42")
    assert chat(strict_client, "hotline-42", signed).status_code == 503


def test_tokens_stay_optional_by_default(settings):
    with TestClient(create_app(settings, load_model=False)) as test_client:
        assert chat(test_client, "hotline-43").status_code == 503  # past the token check
        assert chat(test_client, "web-forged").status_code == 403  # web- ids always need theirs


def test_required_tokens_on_voice(strict_client, settings):
    wav = b"RIFF0000WAVEfmt "
    headers = {"content-type": "audio/wav"}
    missing = strict_client.post("/api/v1/voice/turn", params={"sender_id": "kiosk-x"}, content=wav, headers=headers)
    assert missing.status_code == 401 and "会话" in missing.json()["detail"]
    forged = strict_client.post(
        "/api/v1/voice/turn", params={"sender_id": "desk7", "token": "bad"}, content=wav, headers=headers
    )
    assert forged.status_code == 403
    session = strict_client.post("/api/v1/voice/sessions").json()
    allowed = strict_client.post("/api/v1/voice/turn", params=session, content=wav, headers=headers)
    assert allowed.status_code not in (401, 403, 500)
    # The streaming endpoint says why and closes with 1008.
    with strict_client.websocket_connect("/api/v1/voice/stream?sender_id=kiosk-y") as ws:
        error = ws.receive_json()
        assert error["type"] == "error" and error["code"] == "forbidden" and "会话" in error["message"]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1008
