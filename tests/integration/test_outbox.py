"""Kiosk outbox → central inbox, for real: SQLite on both sides, the real gateways
served by uvicorn on free ports, the real actions in kiosk mode.

Acceptance: with the central endpoint down, three handoff requests queue; after a
kiosk restart and the endpoint coming back, each arrives exactly once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
import uuid
from typing import Iterator, List, Optional, Tuple

import httpx
import pytest
from sqlalchemy import select, update

from actions.feedback import ActionRecordFeedback
from actions.handoff import KIOSK_NOTIFIED_TEXT, ActionRequestHuman
from assistant.api.app import create_app
from assistant.services import conversation, outbox
from assistant.storage import database
from assistant.storage.review_tables import ReviewItem
from assistant.storage.tables import HandoffTicket, InboxMessage, OutboxMessage
from knowledge import db

from ..actions.conftest import DOMAIN, make_tracker
from ..conftest import free_port, serve_in_thread

KIOSK_KEY = "kiosk-key-1"
KIOSK_ID = "hall-3"


# ------------------------------------------------------------------ helpers
def serve(app, port: int):
    """A FastAPI app served by uvicorn in a thread (its lifespan included)."""
    return serve_in_thread(app, port)


def central_settings(settings, data_dir):
    return settings.copy(
        update={
            "data_dir": data_dir,
            "database_url": None,
            "kiosk_mode": False,
            "kiosk_api_keys": f"other-key, {KIOSK_KEY}",
            "service_hours": "always",
        }
    )


def kiosk_settings(settings, data_dir, central_url: str):
    return settings.copy(
        update={
            "data_dir": data_dir,
            "database_url": None,
            "kiosk_mode": True,
            "kiosk_id": KIOSK_ID,
            "central_url": central_url,
            "central_token": KIOSK_KEY,
        }
    )


def outbox_rows(db_url) -> List[OutboxMessage]:
    with database.session_factory(db_url)() as session:
        return session.execute(select(OutboxMessage).order_by(OutboxMessage.created_at)).scalars().all()


def tickets(db_url) -> List[HandoffTicket]:
    with database.session_factory(db_url)() as session:
        return session.execute(select(HandoffTicket).order_by(HandoffTicket.id)).scalars().all()


def inbox_rows(db_url) -> List[InboxMessage]:
    with database.session_factory(db_url)() as session:
        return session.execute(select(InboxMessage).order_by(InboxMessage.received_at)).scalars().all()


async def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def inbox_client(url: str, key: Optional[str] = KIOSK_KEY, timeout: float = 10) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout)


def message(kind="handoff", payload=None, **fields):
    body = {
        "id": str(uuid.uuid4()),
        "kiosk_id": KIOSK_ID,
        "kind": kind,
        "payload": payload
        if payload is not None
        else {"conversation_id": f"c-{uuid.uuid4().hex[:8]}", "reason": "request_human", "summary": {}},
        "created_at": "2026-03-02T09:00:00+00:00",
    }
    body.update(fields)
    return body


@pytest.fixture
def kiosk_actions(settings, tmp_path, monkeypatch):
    """The action server's settings switched to kiosk mode on a kiosk database of its own."""
    from assistant.config.settings import get_settings

    kiosk_dir = tmp_path / "kiosk"
    current = get_settings()
    for name, value in {
        "kiosk_mode": True,
        "kiosk_id": KIOSK_ID,
        "database_url": f"sqlite:///{kiosk_dir / 'banshi.db'}",
    }.items():
        monkeypatch.setattr(current, name, value)
    return kiosk_dir


@pytest.fixture(scope="module")
def central(settings, tmp_path_factory) -> Iterator[Tuple[str, str]]:
    """A central gateway (no model needed by the inbox): (URL, database URL)."""
    config = central_settings(settings, tmp_path_factory.mktemp("central"))
    with serve(create_app(config, load_model=False), free_port()) as url:
        yield url, config.db_url


# --------------------------------------------------------------- acceptance
async def test_handoffs_queued_while_central_is_down_arrive_exactly_once(settings, kiosk_actions, tmp_path):
    port = free_port()  # the central's port: nothing listens there yet
    kiosk = kiosk_settings(settings, kiosk_actions, f"http://127.0.0.1:{port}")
    kiosk_db = kiosk.db_url

    # Three citizens ask for a person at the kiosk; the central is unreachable.
    for n in (1, 2, 3):
        events = [
            {"event": "user", "text": f"护照要带什么，我手机1391234567{n}", "parse_data": {"intent": {"name": "ask_materials"}}},
            {"event": "bot", "text": "办理护照需要：1. 居民身份证"},
            {"event": "user", "text": "转人工", "parse_data": {"intent": {"name": "request_human"}}, "input_channel": "kiosk"},
        ]
        tracker = make_tracker("转人工", "request_human", slots={"service_item": "passport"}, sender_id=f"kiosk-conv-{n}", channel="kiosk")
        tracker.events = events
        from rasa_sdk.executor import CollectingDispatcher

        dispatcher = CollectingDispatcher()
        assert await ActionRequestHuman().run(dispatcher, tracker, DOMAIN) == []
        assert [m["text"] for m in dispatcher.messages] == [KIOSK_NOTIFIED_TEXT]
    queued = outbox_rows(kiosk_db)
    assert [r.kind for r in queued] == ["handoff"] * 3
    assert tickets(kiosk_db) == []  # no local ticket on a kiosk
    payload = json.loads(queued[0].payload)
    assert payload["conversation_id"] == "kiosk-conv-1" and payload["kiosk_id"] == KIOSK_ID
    assert "13912345671" not in queued[0].payload  # the summary is masked

    # The kiosk gateway runs its outbox worker; every attempt fails, nothing is lost.
    with serve(create_app(kiosk, load_model=False), free_port()) as kiosk_url:
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{kiosk_url}/healthz")).status_code in (200, 503)
        await wait_for(lambda: all(r.attempts >= 2 for r in outbox_rows(kiosk_db)), 20, "two failed attempts each")
    # The kiosk is switched off (gateway stopped). Each message waits for its next
    # attempt, later by the two back-offs (about 1 s and 2 s; the stop itself may take
    # longer than that on a loaded machine, so the wait is not compared with now).
    for row in outbox_rows(kiosk_db):
        assert row.delivered_at is None and row.failed_at is None
        waited = row.next_attempt_at - row.created_at
        assert row.attempts >= 2 and waited > dt.timedelta(seconds=2), (row.attempts, waited)
        assert row.last_error.startswith("network error")
    status = outbox.status(kiosk_db)
    assert status["counts"] == {"pending": 3, "delivered": 0, "failed": 0}

    # The central comes back on its address; the kiosk restarts (a new gateway, same database).
    central_config = central_settings(settings, tmp_path / "central")
    with serve(create_app(central_config, load_model=False), port) as central_url:
        started = time.monotonic()
        with serve(create_app(kiosk, load_model=False), free_port()):
            await wait_for(lambda: all(r.delivered_at for r in outbox_rows(kiosk_db)), 30, "delivery")
        elapsed = time.monotonic() - started
        central_db = central_config.db_url
        got = tickets(central_db)
        assert sorted(t.conversation_id for t in got) == [f"kiosk:{KIOSK_ID}:kiosk-conv-{n}" for n in (1, 2, 3)]
        assert {(t.channel, t.reason, t.item_id, t.status) for t in got} == {("kiosk", "request_human", "passport", "waiting")}
        summary = json.loads(got[0].summary)
        assert summary["item_name"] == "普通护照签发" and summary["kiosk_id"] == KIOSK_ID
        assert "13912345671" not in got[0].summary
        received = inbox_rows(central_db)
        assert sorted(r.id for r in received) == sorted(r.id for r in outbox_rows(kiosk_db))
        assert sorted(r.result_ref for r in received) == sorted(f"ticket:{t.id}" for t in got)

        # Sent again, by hand and by the kiosk: answered "duplicate", no second effect.
        async with inbox_client(central_url) as client:
            for row in outbox_rows(kiosk_db):
                body = outbox.body_of(
                    outbox.Pending(row.id, row.kind, json.loads(row.payload), row.created_at, row.attempts), KIOSK_ID
                )
                answer = await client.post(outbox.INBOX_PATH, json=body)
                assert answer.status_code == 200 and answer.json()["status"] == "duplicate"
            with database.session_factory(kiosk_db)() as session:
                session.execute(update(OutboxMessage).values(delivered_at=None))
                session.commit()
            assert await outbox.deliver_due(kiosk_db, client, kiosk_id=KIOSK_ID) == (3, 0)
        assert len(tickets(central_db)) == 3 and len(inbox_rows(central_db)) == 3
    print(f"\nkiosk outbox: 3 queued handoffs delivered {elapsed:.1f} s after the restart")


# ------------------------------------------------------------ lost answers
class LossyProxy:
    """A TCP proxy to the central: per request, ``drop`` (the central answers, the answer
    never reaches the kiosk: the connection closes), ``hold`` (the answer is held past the
    kiosk's timeout) or ``pass``. Logs (mode, the central's status code)."""

    def __init__(self, upstream_port: int, plan: List[str], hold_s: float = 3.0) -> None:
        self.upstream_port = upstream_port
        self.plan = list(plan)
        self.hold_s = hold_s
        self.log: List[Tuple[str, int]] = []
        self.server: Optional[asyncio.AbstractServer] = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @staticmethod
    async def _read_message(reader: asyncio.StreamReader) -> Optional[bytes]:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        return head + await reader.readexactly(length)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await self._read_message(reader)
                if request is None:
                    return
                mode = self.plan.pop(0) if self.plan else "pass"
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
                up_writer.write(request)
                await up_writer.drain()
                response = await self._read_message(up_reader)
                up_writer.close()
                assert response is not None
                self.log.append((mode, int(response.split(b" ", 2)[1])))
                if mode == "drop":
                    return
                if mode == "hold":
                    await asyncio.sleep(self.hold_s)
                    return
                writer.write(response)
                await writer.drain()
        finally:
            writer.close()


async def test_a_lost_answer_is_retried_and_applied_once(central, tmp_path):
    central_url, central_db = central
    kiosk_db = f"sqlite:///{tmp_path / 'kiosk.db'}"
    message_id = outbox.enqueue(
        kiosk_db,
        "handoff",
        {"conversation_id": "lost-1", "reason": "fallback", "item_id": None, "summary": {"question": "阿巴阿巴"}},
    )
    conversation = f"kiosk:{KIOSK_ID}:lost-1"

    def applied() -> int:
        return sum(1 for t in tickets(central_db) if t.conversation_id == conversation)

    port = int(central_url.rsplit(":", 1)[1])
    proxy = LossyProxy(port, ["drop", "hold"], hold_s=2.0)
    async with proxy as proxy_url:
        async with inbox_client(proxy_url, timeout=1.0) as client:
            # 1: the central commits, the connection closes before the answer arrives.
            assert await outbox.deliver_due(kiosk_db, client, kiosk_id=KIOSK_ID) == (0, 1)
            [row] = outbox_rows(kiosk_db)
            assert row.delivered_at is None and "RemoteProtocolError" in row.last_error
            assert applied() == 1 and any(r.id == message_id for r in inbox_rows(central_db))
            # 2: the central answers "duplicate", but after the kiosk's timeout.
            assert await outbox.deliver_due(kiosk_db, client, row.next_attempt_at, kiosk_id=KIOSK_ID) == (0, 1)
            [row] = outbox_rows(kiosk_db)
            assert row.delivered_at is None and row.last_error.startswith("timeout")
            # 3: the answer arrives: delivered.
            assert await outbox.deliver_due(kiosk_db, client, row.next_attempt_at, kiosk_id=KIOSK_ID) == (1, 0)
    assert proxy.log == [("drop", 201), ("hold", 200), ("pass", 200)]
    [row] = outbox_rows(kiosk_db)
    assert row.delivered_at is not None and row.attempts == 3
    assert applied() == 1
    assert sum(1 for r in inbox_rows(central_db) if r.id == message_id) == 1


async def test_concurrent_deliveries_of_one_id_apply_once(central):
    central_url, central_db = central
    body = message(payload={"conversation_id": "race-1", "reason": "request_human", "summary": {}})
    async with inbox_client(central_url) as client:
        answers = await asyncio.gather(*(client.post(outbox.INBOX_PATH, json=body) for _ in range(8)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 7 + [201], [a.text for a in answers]
    refs = {a.json()["ref"] for a in answers}
    assert len(refs) == 1 and refs.pop().startswith("ticket:")
    assert sum(1 for t in tickets(central_db) if t.conversation_id == f"kiosk:{KIOSK_ID}:race-1") == 1


# ----------------------------------------------------------- central inbox
async def test_inbox_needs_a_kiosk_key(central):
    central_url, _ = central
    for key in (None, "wrong-key", ""):
        async with inbox_client(central_url, key=key) as client:
            answer = await client.post(outbox.INBOX_PATH, json=message())
        assert answer.status_code == 401
        assert answer.json()["detail"] == "自助终端凭证无效"
        assert answer.headers["www-authenticate"] == "Bearer"
    async with httpx.AsyncClient(base_url=central_url) as client:
        answer = await client.post(outbox.INBOX_PATH, json=message(), headers={"Authorization": f"Basic {KIOSK_KEY}"})
        assert answer.status_code == 401
        # The key is checked before the body.
        answer = await client.post(outbox.INBOX_PATH, json={"id": "x"})
        assert answer.status_code == 401


@pytest.mark.parametrize(
    "body, detail",
    [
        (message(id="not-a-uuid"), "字段类型不正确：id"),
        (message(kind="email"), "kind 只能是 handoff, rating, appointment, preapplication, material, review 之一"),
        (message(kiosk_id="大厅/1"), "kiosk_id 只能包含字母、数字和 _.-，长度1到64"),
        (message(payload={"reason": "request_human"}), "payload.conversation_id 缺失或格式不正确"),
        (message(payload={"conversation_id": "c1", "reason": "bored"}), "payload.reason 只能是 request_human, complaint, fallback 之一"),
        (message(kind="rating", payload={"conversation_id": "c1", "rating": "meh"}), "payload.rating 只能是 good, bad 之一"),
        (message(kind="appointment", payload={"note": "x" * 17000}), "payload 太大，最多 16 KB"),
        (message(kind="review", payload={"reason": "handoff", "text": "办证"}), "payload.reason 只能是 low_confidence, not_covered, not_understood 之一"),
        (message(kind="review", payload={"reason": "not_understood", "text": " "}), "payload.text 须为不超过 200 字的文字"),
        (message(kind="review", payload={"reason": "not_understood", "text": "办证", "confidence": 7}), "payload.confidence 须为 0 到 1 之间的数"),
        (message(payload=["not", "an", "object"]), "字段类型不正确：payload"),
        (message(extra=1), "不支持的字段：extra"),
        ({"kiosk_id": KIOSK_ID, "kind": "handoff", "payload": {}}, "缺少字段：id"),
    ],
    ids=["id", "kind", "kiosk_id", "conversation", "reason", "rating", "too-big", "review-reason", "review-text",
         "review-confidence", "payload-type", "extra", "missing"],
)
async def test_inbox_refuses_bad_bodies_in_chinese(central, body, detail):
    central_url, central_db = central
    async with inbox_client(central_url) as client:
        answer = await client.post(outbox.INBOX_PATH, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == detail


async def test_ratings_and_appointments_reach_the_central(settings, central, kiosk_actions):
    central_url, central_db = central
    from rasa_sdk.executor import CollectingDispatcher

    from assistant.config.settings import get_settings

    kiosk_db = get_settings().db_url
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("回答没用，差评，我手机13912345678", "feedback", slots={"service_item": "passport"}, sender_id="kiosk-fb", channel="kiosk")
    assert await ActionRecordFeedback().run(dispatcher, tracker, DOMAIN) == []
    assert "抱歉" in dispatcher.messages[0]["text"]
    outbox.enqueue(kiosk_db, "appointment", {"conversation_id": "kiosk-fb", "item_id": "passport", "slot": "2026-03-03 10:00"})
    [rating, appointment] = outbox_rows(kiosk_db)
    assert rating.kind == "rating" and "13912345678" not in rating.payload
    async with inbox_client(central_url) as client:
        assert await outbox.deliver_due(kiosk_db, client, kiosk_id=KIOSK_ID) == (2, 0)
    refs = {r.id: r.result_ref for r in inbox_rows(central_db)}
    assert refs[appointment.id] == "stored"
    feedback_id = int(refs[rating.id].split(":")[1])
    with database.session_factory(central_db)() as session:
        row = session.get(db.Feedback, feedback_id)
    assert (row.conversation_id, row.kind, row.rating, row.item_id, row.channel) == (
        f"kiosk:{KIOSK_ID}:kiosk-fb",
        "feedback",
        "bad",
        "passport",
        "kiosk",
    )
    assert "13912345678" not in row.text and row.text.startswith("回答没用")


async def test_a_kiosk_turn_not_understood_reaches_the_central_review_queue_once(settings, central, tmp_path):
    """The kiosk's gateway notes the turn as it answers; the outbox carries it (masked)
    to the central server, whose review queue shows it once, however often it is sent."""
    central_url, central_db = central
    kiosk = kiosk_settings(settings, tmp_path / "kiosk", central_url)
    said = f"我那个东西{uuid.uuid4().hex[:4]}弄不了 电话13912345678"
    not_understood = {"intent": {"name": "nlu_fallback", "confidence": 0.31}}
    conversation.note_for_review(kiosk, said, "kiosk", not_understood, {"answer": None})
    conversation.note_for_review(kiosk, "办护照要带什么", "kiosk", {"intent": {"name": "ask_materials", "confidence": 0.98}},
                                 {"answer": "materials", "item": "passport"})
    await asyncio.gather(*list(conversation._noting))
    [row] = outbox_rows(kiosk.db_url)  # the understood turn is not worth a review
    assert row.kind == "review" and "13912345678" not in row.payload
    with database.session_factory(kiosk.db_url)() as session:
        assert session.execute(select(ReviewItem)).scalars().all() == []  # nothing kept at the kiosk
    async with inbox_client(central_url) as client:
        assert await outbox.deliver_due(kiosk.db_url, client, kiosk_id=KIOSK_ID) == (1, 0)
        again = await client.post(outbox.INBOX_PATH, json=message(
            kind="review", id=row.id, payload=json.loads(row.payload)))  # a lost answer: sent again
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    with database.session_factory(central_db)() as session:
        reviews = session.execute(select(ReviewItem).where(ReviewItem.text.like("我那个东西%"))).scalars().all()
    [review] = [r for r in reviews if r.text.startswith(said[:9])]
    assert (review.reason, review.channel, review.intent, review.seen) == ("not_understood", "kiosk", "nlu_fallback", 1)
    assert "13912345678" not in review.text and review.confidence == pytest.approx(0.31)


async def test_a_refused_message_is_given_up_and_shown(central, tmp_path):
    central_url, _ = central
    kiosk_db = f"sqlite:///{tmp_path / 'kiosk.db'}"
    message_id = outbox.enqueue(kiosk_db, "handoff", {"conversation_id": "k-bad-key", "reason": "request_human"})
    async with inbox_client(central_url, key="revoked-key") as client:
        assert await outbox.deliver_due(kiosk_db, client, kiosk_id=KIOSK_ID) == (0, 1)
    [shown] = outbox.status(kiosk_db)["messages"]
    assert (shown["id"], shown["state"], shown["last_error"]) == (message_id, "failed", "HTTP 401 自助终端凭证无效")


def test_a_delivery_racing_an_uncommitted_one_waits_and_is_a_duplicate(settings, central):
    """Deterministic version of the race: the first delivery holds its transaction open."""
    from assistant.api.routers.inbox import InboxRequest, apply_message

    _, central_db = central
    config = settings.copy(update={"database_url": central_db, "service_hours": "always"})
    body = InboxRequest.parse_obj(message(payload={"conversation_id": "race-2", "reason": "complaint", "summary": {}}))
    result: List = []
    with database.session_factory(central_db)() as first:
        first.add(InboxMessage(id=str(body.id), kiosk_id=KIOSK_ID, kind="handoff", payload="{}", result_ref="ticket:first"))
        first.flush()  # the key is taken, not yet committed
        second = threading.Thread(target=lambda: result.append(apply_message(config, body)))
        second.start()
        second.join(timeout=1.0)
        assert second.is_alive()  # waiting for the first transaction
        first.commit()
    second.join(timeout=20)
    assert result == [(False, "ticket:first")]
    assert not any(t.conversation_id == f"kiosk:{KIOSK_ID}:race-2" for t in tickets(central_db))


async def test_the_central_stores_no_raw_personal_data(central):
    central_url, central_db = central
    body = message(
        payload={
            "conversation_id": "pii-1",
            "reason": "request_human",
            "summary": {"question": "我手机13912345678，身份证110101199003071234", "turns": 2},
        }
    )
    async with inbox_client(central_url) as client:
        answer = await client.post(outbox.INBOX_PATH, json=body)
    assert answer.status_code == 201 and answer.json()["status"] == "accepted"
    [ticket] = [t for t in tickets(central_db) if t.conversation_id == f"kiosk:{KIOSK_ID}:pii-1"]
    [row] = [r for r in inbox_rows(central_db) if r.id == body["id"]]
    for stored in (ticket.summary, row.payload):
        assert "13912345678" not in stored and "110101199003071234" not in stored
    assert json.loads(ticket.summary)["turns"] == 2
