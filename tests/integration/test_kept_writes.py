"""Nothing is lost while PostgreSQL restarts: feedback and complaints, handoff tickets
and messages, audit rows and WeChat replies written while the server is down wait in
the storage spool (``assistant.storage.spool``) and arrive exactly once after it is
back; a replay cut short does not write twice; integrity errors are not kept.

A real PostgreSQL server (``postgres_server``), crashed (``kill``) and started again
(``restart``, always in a ``finally``); this module writes to its own database."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import secrets
import stat
import subprocess
import sys
import time
import uuid
from types import SimpleNamespace
from typing import Iterator, List

import pytest
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

import actions.feedback
import actions.handoff
from actions.common import CATALOG
from actions.feedback import COMPLAINT_LEAD_KEPT, THANKS_BAD, ActionRecordComplaint, ActionRecordFeedback
from actions.handoff import COMPLAINT_FOLLOW_UP_TEXT, KEPT_TEXT, ActionRequestHuman
from assistant.channels import wechat_delivery, wechat_kept
from assistant.channels import wechat_store as store
from assistant.channels.wechat import WeChatChannel
from assistant.channels.wechat_format import sender_of
from assistant.channels.wechat_sim import FakeWeChatApi
from assistant.channels.wechat_xml import Inbound
from assistant.config.hours import ServiceHours
from assistant.security.audit import record_audit, record_audit_async, record_audit_safely
from assistant.services.conversation import relay_to_operator
from assistant.services.handoff import relay, tickets
from assistant.services.live import ChangeFeed
from assistant.storage import database, spool, spool_file
from assistant.storage.tables import (
    TICKET_CLOSED,
    WX_PASSIVE,
    WX_QUEUED,
    WX_REPLIED,
    AuditRecord,
    HandoffMessage,
    HandoffTicket,
    WeChatOutgoing,
)
from knowledge import db
from tests.actions.conftest import make_tracker
from tests.conftest import ROOT, serve_in_thread

# One event loop for the tests and the WeChat channel's HTTP client.
pytestmark = pytest.mark.asyncio(loop_scope="session")

FAIL_FAST_S = database.PG_CONNECT_TIMEOUT_S + 2


@pytest.fixture(scope="module")
def pg(postgres_server) -> str:
    url = postgres_server.create_database(f"kept_{uuid.uuid4().hex[:10]}")
    database.get_engine(url)  # migrated while the server is up
    return url


@contextlib.contextmanager
def database_down(server) -> Iterator[None]:
    """The server crashes now and is started again when the block ends."""
    server.kill()
    try:
        yield
    finally:
        server.restart()


def waiting(url: str) -> int:
    return spool.default_spool().waiting(spool.target_of(url))


def settle(url: str, timeout_s: float = 30.0) -> None:
    """Deliver what waits for ``url`` (the replayer thread may do it first)."""
    deadline = time.monotonic() + timeout_s
    while waiting(url):
        spool.replay(url, wait=True)
        assert time.monotonic() < deadline, f"{waiting(url)} writes still waiting"
        time.sleep(0.1)


def rows(url: str, query) -> list:
    with database.session_factory(url)() as session:
        return session.execute(query).scalars().all()


def conversation() -> str:
    return f"kept-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def on_pg(pg, settings, monkeypatch):
    """The actions write to this module's database."""
    local = settings.copy(update={"database_url": pg, "service_hours": "always"})
    monkeypatch.setattr(actions.feedback, "get_settings", lambda: local)
    monkeypatch.setattr(actions.handoff, "get_settings", lambda: local)
    return local


# ------------------------------------------------------------------ feedback, complaints, tickets
async def test_feedback_complaint_and_ticket_arrive_once(pg, postgres_server, on_pg):
    sender = conversation()
    await CATALOG.get()  # the actions' catalog is cached before the crash
    rating = make_tracker("太差了，答非所问。我的电话13812345678", intent="feedback", sender_id=sender)
    complaint = make_tracker("我要投诉窗口工作人员态度差", intent="complain", sender_id=sender)
    with database_down(postgres_server):
        started = time.monotonic()
        said = CollectingDispatcher()
        await ActionRecordFeedback().run(said, rating, {})
        assert said.messages[0]["text"] == THANKS_BAD  # the citizen is thanked as usual
        said = CollectingDispatcher()
        await ActionRecordComplaint().run(said, complaint, {})
        assert said.messages[0]["text"] == COMPLAINT_LEAD_KEPT + COMPLAINT_FOLLOW_UP_TEXT
        assert time.monotonic() - started < 2 * FAIL_FAST_S
        assert waiting(pg) == 3  # the rating, the complaint and its follow-up ticket
    settle(pg)
    stored = rows(pg, select(db.Feedback).where(db.Feedback.conversation_id == sender).order_by(db.Feedback.id))
    assert [(r.kind, r.rating) for r in stored] == [("feedback", "bad"), ("complaint", "bad")]
    assert "138****5678" in stored[0].text and "13812345678" not in stored[0].text
    opened = rows(pg, select(HandoffTicket).where(HandoffTicket.conversation_id == sender))
    assert [(t.reason, t.status) for t in opened] == [("complaint", "waiting")]
    assert spool.replay(pg, wait=True) == 0  # nothing left, nothing written twice
    assert len(rows(pg, select(db.Feedback).where(db.Feedback.conversation_id == sender))) == 2


async def test_a_request_for_a_person_waits_and_opens_one_ticket(pg, postgres_server, on_pg, monkeypatch):
    sender = conversation()
    cached = await CATALOG.get()
    asked = make_tracker("转人工", intent="request_human", sender_id=sender)
    with database_down(postgres_server):
        # The cache is due for its fingerprint check, which fails on PostgreSQL: the
        # catalog already loaded still answers (CI once failed here on a slow machine).
        monkeypatch.setattr(CATALOG, "_checked", float("-inf"))
        assert await CATALOG.get() is cached
        for _ in range(2):  # asked twice while the server is down
            said = CollectingDispatcher()
            await ActionRequestHuman().run(said, asked, {})
            assert said.messages[0]["text"] == KEPT_TEXT
            assert "custom" not in said.messages[0] or not said.messages[0]["custom"]
    settle(pg)
    opened = rows(pg, select(HandoffTicket).where(HandoffTicket.conversation_id == sender))
    assert [(t.reason, t.status) for t in opened] == [("request_human", "waiting")]
    info = tickets.relaying_ticket(pg, sender)
    assert info is not None and info.id == opened[0].id  # it holds the conversation now


# ------------------------------------------------------------------ handoff messages
async def test_handoff_messages_and_finish_arrive_once_in_order(pg, postgres_server, settings):
    sender = conversation()
    ticket = tickets.open_ticket(pg, conversation_id=sender, channel="web", reason="request_human", item_id=None,
                                 summary={}, hours=ServiceHours.parse("always"))
    conn = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(live=ChangeFeed(pg))))
    local = settings.copy(update={"database_url": pg})
    with database_down(postgres_server):
        for text in ("我的社保卡丢了", "能补办吗"):
            relayed = await relay_to_operator(conn, local, sender, text, ticket)
            assert relayed["messages"] == [] and relayed["handoff"]["ticket_id"] == ticket.id
        reply = relay.operator_reply(pg, ticket.id, "wang", "您好，可以补办。")
        assert reply["id"] is None and reply["text"] == "您好，可以补办。"
        notice = tickets.finish_ticket(pg, ticket.id, status=TICKET_CLOSED, operator="wang")
        assert notice["id"] is None and notice["text"] == tickets.CLOSED_NOTICE
    settle(pg)
    said = rows(pg, select(HandoffMessage).where(HandoffMessage.ticket_id == ticket.id).order_by(HandoffMessage.id))
    assert [(m.role, m.text) for m in said] == [
        ("citizen", "我的社保卡丢了"), ("citizen", "能补办吗"), ("operator", "您好，可以补办。"),
        ("system", tickets.CLOSED_NOTICE),
    ]
    [row] = rows(pg, select(HandoffTicket).where(HandoffTicket.id == ticket.id))
    assert (row.status, row.operator) == (TICKET_CLOSED, "wang")


async def test_a_message_replayed_after_the_ticket_closed_is_kept_without_reopening_it(pg, postgres_server):
    sender = conversation()
    ticket = tickets.open_ticket(pg, conversation_id=sender, channel="web", reason="request_human", item_id=None,
                                 summary={}, hours=ServiceHours.parse("always"))
    try:
        with database_down(postgres_server):
            relay.operator_reply(pg, ticket.id, "wang", "还在吗？")
            spool.stop_replayer()  # so that the ticket is closed elsewhere before the replay
        with database.session_factory(pg)() as session:  # e.g. by a replica on another machine
            session.get(HandoffTicket, ticket.id).status = TICKET_CLOSED
            session.commit()
    finally:
        spool.start_replayer()
    settle(pg)
    [row] = rows(pg, select(HandoffTicket).where(HandoffTicket.id == ticket.id))
    assert row.status == TICKET_CLOSED  # not made active again by the late message
    texts = [m.text for m in rows(pg, select(HandoffMessage).where(HandoffMessage.ticket_id == ticket.id))]
    assert texts == ["还在吗？"]


# ------------------------------------------------------------------ audit
async def test_audit_rows_arrive_once_with_their_own_time(pg, postgres_server):
    actor = f"operator:kept{secrets.token_hex(3)}"
    before = database.utcnow()
    with database_down(postgres_server):
        assert record_audit(pg, actor=actor, action="desk.ticket.view", subject="ticket:1", result="ok") is None
        assert await record_audit_async(pg, actor=actor, action="desk.login", channel="desk", result="ok") is None
        record_audit_safely(pg, actor=actor, action="desk.logout", channel="desk", result="ok")
        written = database.utcnow()
        with pytest.raises(ValueError):  # refused as before, never kept
            record_audit(pg, actor=actor, action="progress.lookup", subject="13812345678", result="ok")
    settle(pg)
    audit = rows(pg, select(AuditRecord).where(AuditRecord.actor == actor).order_by(AuditRecord.id))
    assert [r.action for r in audit] == ["desk.ticket.view", "desk.login", "desk.logout"]
    assert all(before <= r.at <= written for r in audit)


# ------------------------------------------------------------------ the mechanism
async def test_a_replay_cut_short_after_a_commit_does_not_write_twice(pg, postgres_server, tmp_path, monkeypatch):
    private = spool_file.SpoolFile(tmp_path / "spool" / "writes.db", b"k" * 32)
    sender = conversation()
    with database_down(postgres_server):
        for n in range(3):
            payload = {"conversation_id": sender, "kind": "feedback", "rating": None, "text": f"第{n}条",
                       "item_id": None, "channel": "web", "at": spool.now_iso()}
            assert spool.keep(pg, db.KIND_FEEDBACK, payload, spool=private).spooled
    forget, calls = private.forget, []

    def crash_after_the_commit(row_id: int) -> None:
        calls.append(row_id)
        if len(calls) == 2:  # the second write committed, then the process "died"
            raise RuntimeError("crash between the commit and the spool's delete")
        forget(row_id)

    monkeypatch.setattr(private, "forget", crash_after_the_commit)
    with pytest.raises(RuntimeError):
        spool.replay_file(private, pg, wait=True)
    assert private.waiting() == 2
    monkeypatch.setattr(private, "forget", forget)
    assert spool.replay_file(private, pg, wait=True) == 2  # one applied before, one now
    stored = rows(pg, select(db.Feedback.text).where(db.Feedback.conversation_id == sender).order_by(db.Feedback.id))
    assert stored == ["第0条", "第1条", "第2条"]


async def test_writes_kept_by_a_process_that_ended_are_delivered_by_another(pg, postgres_server):
    """E.g. an action server stopped while its writes waited: the gateway delivers them."""
    sender = conversation()
    code = f"from knowledge import db; print(db.keep_feedback({pg!r}, {sender!r}, 'feedback', '好评', 'good'))"
    with database_down(postgres_server):
        ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert ran.returncode == 0 and ran.stdout.strip().splitlines()[-1] == "None", ran.stderr[-2000:]
    settle(pg)
    stored = rows(pg, select(db.Feedback.rating).where(db.Feedback.conversation_id == sender))
    assert stored == ["good"]


async def test_integrity_errors_are_raised_not_kept(pg):
    before = waiting(pg)
    with pytest.raises(IntegrityError):
        db.keep_feedback(pg, None, "feedback", "没有会话")  # conversation_id is NOT NULL
    with pytest.raises(tickets.TicketNotFound):
        relay.operator_reply(pg, 10**9, "wang", "没有这个工单")
    assert waiting(pg) == before


async def test_a_write_that_can_never_apply_is_set_aside(pg, postgres_server, tmp_path):
    private = spool_file.SpoolFile(tmp_path / "spool" / "writes.db", b"k" * 32)
    sender = conversation()
    with database_down(postgres_server):
        for who in (None, sender):  # the first one breaks NOT NULL: it must not block the second
            payload = {"conversation_id": who, "kind": "feedback", "rating": None, "text": "好",
                       "item_id": None, "channel": "web", "at": spool.now_iso()}
            spool.keep(pg, db.KIND_FEEDBACK, payload, spool=private)
    assert spool.replay_file(private, pg, wait=True) == 1
    assert private.snapshot()["waiting"] == 0 and private.snapshot()["dead"] == 1
    assert len(rows(pg, select(db.Feedback).where(db.Feedback.conversation_id == sender))) == 1


async def test_the_spool_is_private_encrypted_bounded_and_reports_its_depth(pg, postgres_server, tmp_path,
                                                                           monkeypatch):
    private = spool_file.SpoolFile(tmp_path / "spool" / "writes.db", b"k" * 32)
    monkeypatch.setattr(spool_file, "MAX_WAITING", 1)
    payload = {"conversation_id": conversation(), "kind": "feedback", "rating": "bad",
               "text": "差评 138****5678", "item_id": None, "channel": "web", "at": spool.now_iso()}
    with database_down(postgres_server):
        assert spool.keep(pg, db.KIND_FEEDBACK, payload, spool=private).spooled
        with pytest.raises(OperationalError):  # full: the write fails as it would without a spool
            spool.keep(pg, db.KIND_FEEDBACK, payload, spool=private)
        assert private.snapshot()["waiting"] == 1 and private.snapshot()["oldest_seconds"] is not None
        assert isinstance(spool.depth(), int) and set(spool.snapshot()) == {"waiting", "dead", "oldest_seconds"}
    assert stat.S_IMODE(os.stat(private.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(private.path.parent).st_mode) == 0o700
    raw = b"".join(p.read_bytes() for p in private.path.parent.glob("writes.db*"))
    assert "差评".encode() not in raw and b"138****" not in raw
    assert spool.replay_file(private, pg, wait=True) == 1 and private.waiting() == 0


# ------------------------------------------------------------------ WeChat
@pytest.fixture(scope="module")
def fake_api(settings):
    api = FakeWeChatApi(settings.wechat_app_id, settings.wechat_app_secret)
    with serve_in_thread(api.app) as url:
        yield api, url


@pytest.fixture
async def channel(pg, settings, fake_api):
    """A WeChat channel on this module's database and the fake API (worker not started)."""
    app = SimpleNamespace(state=SimpleNamespace(pushers={}))
    channel = WeChatChannel(app, settings.copy(update={"database_url": pg, "wechat_api_base": fake_api[1]}))
    yield channel
    await channel.api.close()


def text_message(openid: str, content: str) -> Inbound:
    return Inbound.from_fields({"ToUserName": "gh_test", "FromUserName": openid, "CreateTime": str(int(time.time())),
                                "MsgType": "text", "Content": content, "MsgId": str(secrets.randbelow(10**15))})


def new_openid() -> str:
    return "oKept" + secrets.token_hex(10)


def outgoing(url: str, sender: str) -> List[str]:
    return rows(url, select(WeChatOutgoing.content).where(WeChatOutgoing.sender_id == sender)
                .order_by(WeChatOutgoing.id))


async def deliver(channel: WeChatChannel) -> None:
    for _ in range(10):
        if not await channel.delivery.run_once():
            return


async def test_wechat_reply_ready_while_the_database_is_down_goes_passively_once(
        pg, postgres_server, channel, fake_api):
    api, openid = fake_api[0], new_openid()
    sender, inbound = sender_of(openid), text_message(openid, "护照要带什么")
    turns = []

    async def reply_parts(conn, message, who) -> List[str]:
        turns.append(who)
        await asyncio.to_thread(postgres_server.kill)  # the server crashes during the turn
        return ["第一部分", "第二部分"]

    channel.reply_parts = reply_parts
    try:
        assert await channel.handle(None, inbound, time.monotonic()) == "第一部分"
        assert waiting(pg) >= 2  # the stored reply and the passive claim
    finally:
        postgres_server.restart()
    settle(pg)
    state = store.state(pg, inbound.dedup_key)
    assert (state.status, state.delivery, state.reply) == (WX_REPLIED, WX_PASSIVE, ["第一部分", "第二部分"])
    assert outgoing(pg, sender) == ["第二部分"]  # the rest, by the customer-service API, once
    assert await channel.handle(None, inbound, time.monotonic()) == "第一部分"  # WeChat's retry: same answer
    await asyncio.sleep(store.AFTER_PASSIVE.total_seconds() + 0.2)
    await deliver(channel)
    assert api.messages_to(openid) == ["第二部分"] and turns == [sender]


async def test_wechat_late_reply_while_the_database_is_down_is_sent_once_later(
        pg, postgres_server, channel, fake_api):
    api, openid = fake_api[0], new_openid()
    sender, inbound = sender_of(openid), text_message(openid, "社保卡怎么办")
    channel.passive_seconds = 1.5

    async def reply_parts(conn, message, who) -> List[str]:
        await asyncio.to_thread(postgres_server.kill)
        await asyncio.sleep(2.5)  # later than the passive window
        return ["稍后的回答"]

    channel.reply_parts = reply_parts
    try:
        assert await channel.handle(None, inbound, time.monotonic()) is None  # "success"
        await asyncio.wait_for(asyncio.gather(*channel._turns.values()), 10)
        assert waiting(pg) >= 1  # the reply (and "stopped waiting" when the crash came first)
    finally:
        postgres_server.restart()
    settle(pg)
    state = store.state(pg, inbound.dedup_key)
    assert (state.status, state.delivery) == (WX_REPLIED, WX_QUEUED)
    assert outgoing(pg, sender) == ["稍后的回答"]
    await deliver(channel)
    await deliver(channel)
    assert api.messages_to(openid) == ["稍后的回答"]


async def test_wechat_sent_mark_lost_with_the_database_does_not_send_twice(
        pg, postgres_server, channel, fake_api, monkeypatch):
    api, openid = fake_api[0], new_openid()
    sender = sender_of(openid)
    wechat_kept.note_inbound(pg, sender)
    await channel.push(sender, "您好，我是人工客服。")  # an operator's reply, queued
    monkeypatch.setattr(wechat_delivery, "LEASE", dt.timedelta(seconds=0.2))  # due again at once if unmarked
    send = channel.api.send_text

    async def send_then_crash(to: str, content: str) -> None:
        await send(to, content)
        await asyncio.to_thread(postgres_server.kill)  # sent; the database goes before the "sent" mark

    monkeypatch.setattr(channel.api, "send_text", send_then_crash)
    try:
        assert await channel.delivery.run_once() == 1
        assert waiting(pg) >= 1  # the "sent" mark
    finally:
        postgres_server.restart()
    monkeypatch.setattr(channel.api, "send_text", send)
    await asyncio.sleep(0.3)
    # Due again by now, but not claimed while its "sent" mark waits in the spool (a
    # restarted server may refuse connections for a moment: no claim meanwhile either).
    await deliver(channel)
    assert api.messages_to(openid) == ["您好，我是人工客服。"]
    settle(pg)  # the mark reaches the database once it accepts connections again
    await deliver(channel)
    [row] = rows(pg, select(WeChatOutgoing).where(WeChatOutgoing.sender_id == sender))
    assert row.sent_at is not None
    assert api.messages_to(openid) == ["您好，我是人工客服。"]


async def test_wechat_message_arriving_while_the_database_is_down_is_answered_and_processed_once_later(
        pg, postgres_server, channel):
    openid = new_openid()
    inbound, turns = text_message(openid, "营业执照在哪里办"), []

    async def reply_parts(conn, message, who) -> List[str]:
        turns.append(who)
        return ["营业执照的回答"]

    channel.reply_parts = reply_parts
    with database_down(postgres_server):
        started = time.monotonic()
        assert await channel.handle(None, inbound, time.monotonic()) == channel.texts.db_down
        assert time.monotonic() - started < FAIL_FAST_S
    assert turns == []  # nothing was processed
    assert await channel.handle(None, inbound, time.monotonic()) == "营业执照的回答"  # WeChat's retry
    assert await channel.handle(None, inbound, time.monotonic()) == "营业执照的回答"
    assert len(turns) == 1


async def test_depth_counts_the_waiting_writes(pg, postgres_server):
    before = spool.depth()
    with database_down(postgres_server):
        record_audit(pg, actor="operator:depth", action="desk.login", channel="desk", result="ok")
        assert spool.depth() == before + 1
    settle(pg)
    assert waiting(pg) == 0
    assert count_audit(pg, "operator:depth") == 1


def count_audit(url: str, actor: str) -> int:
    with database.session_factory(url)() as session:
        return session.execute(select(func.count(AuditRecord.id)).where(AuditRecord.actor == actor)).scalar_one()


# ------------------------------------------------------------------ background training
def test_a_training_goes_on_through_a_database_restart(pg, postgres_server, settings, tmp_path):
    """Progress and heartbeat writes fail while PostgreSQL is down; the training process
    is not stopped for it, and its end is written once the server is back."""
    from assistant.services import retrain
    from assistant.storage import training_tables

    hold, model = tmp_path / "go-on", tmp_path / "banshi-kept.tar.gz"
    script = ROOT / "tests" / "retrain_script.py"
    local = settings.copy(update={"database_url": pg,
                                  "retrain_command": f"{sys.executable} {script} --hold {hold} --model {model}"})
    trainer = retrain.Retrainer(local)
    run = trainer.start("operator:kept")
    assert run is not None
    with database_down(postgres_server):
        time.sleep(retrain.HEARTBEAT_SECONDS + 1)  # a heartbeat falls in the outage
        assert trainer._process is not None and trainer._process.poll() is None  # still training
    hold.touch()
    deadline = time.monotonic() + 60
    while (done := training_tables.get_run(pg, run.id)).status == training_tables.STATUS_RUNNING:
        assert time.monotonic() < deadline, "the run's end was not written"
        time.sleep(0.2)
    assert (done.status, done.model_path) == (training_tables.STATUS_SUCCEEDED, str(model))
