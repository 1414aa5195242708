"""The WeChat channel's database state: deduplication, who delivers a reply
(passive answer or customer-service queue, exactly once, also under races), the
customer-service window and the outgoing queue.

Tests of one message or one user use the session database with unique keys and
sender ids. Tests of the whole queue (``claim_due``, ``recover_orphans``,
``purge`` act on every row) use a private database of this module, so that rows
of other tests (or a running gateway's delivery worker, which polls the session
database) cannot change what they see."""

from __future__ import annotations

import datetime as dt
import random
import secrets
import threading
import time

import pytest
from sqlalchemy import delete, select, update

from assistant.channels import wechat_store as store
from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import (
    WX_ASYNC,
    WX_FAILED,
    WX_PASSIVE,
    WX_PENDING,
    WX_PROCESSING,
    WX_QUEUED,
    WX_REPLIED,
    WeChatInbound,
    WeChatOutgoing,
    WeChatUser,
)

PARTS = ["第一部分：办理材料", "第二部分：办理流程", "第三部分：办理地点"]
TTL_HOURS = 48.0


def new_key() -> str:
    return f"msg:{secrets.randbelow(10 ** 18)}{secrets.randbelow(1000):03d}"


def new_sender() -> str:
    return "wx-oTest" + secrets.token_hex(8)


def queued(db_url: str, sender: str) -> list:
    """Every outgoing row of a sender, in queue order."""
    with session_factory(db_url)() as session:
        rows = session.execute(
            select(WeChatOutgoing).where(WeChatOutgoing.sender_id == sender).order_by(WeChatOutgoing.id)
        ).scalars().all()
        return rows


def contents(db_url: str, sender: str) -> list:
    return [row.content for row in queued(db_url, sender)]


@pytest.fixture
def db(settings) -> str:
    return settings.db_url


@pytest.fixture(scope="module")
def private_url(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('wechat-store') / 'store.db'}"


@pytest.fixture
def private_db(private_url) -> str:
    with session_factory(private_url)() as session:
        for table in (WeChatOutgoing, WeChatInbound, WeChatUser):
            session.execute(delete(table))
        session.commit()
    return private_url


# ------------------------------------------------------------------ begin / dedup
def test_begin_records_once_then_returns_the_state(db):
    key, sender = new_key(), new_sender()
    assert store.state(db, key) is None
    assert store.begin(db, key, sender, TTL_HOURS) is None
    again = store.begin(db, key, sender, TTL_HOURS)
    assert again is not None
    assert (again.status, again.delivery, again.reply) == (WX_PROCESSING, WX_PENDING, [])
    assert abs((utcnow() - again.created_at).total_seconds()) < 60
    store.store_reply(db, key, sender, PARTS)
    third = store.begin(db, key, "wx-someone-else", TTL_HOURS)
    assert (third.status, third.reply) == (WX_REPLIED, PARTS)


def test_claim_passive_needs_a_reply(db):
    key, sender = new_key(), new_sender()
    store.begin(db, key, sender, TTL_HOURS)
    assert store.claim_passive(db, key, sender) is None
    assert store.state(db, key).delivery == WX_PENDING
    assert store.claim_passive(db, new_key(), sender) is None  # unknown key


# ------------------------------------------------------------------ who delivers
def test_a_reply_before_the_claim_goes_passively(db):
    key, sender = new_key(), new_sender()
    store.begin(db, key, sender, TTL_HOURS)
    before = utcnow()
    assert store.store_reply(db, key, sender, PARTS) is False
    assert contents(db, sender) == []
    assert store.claim_passive(db, key, sender) == PARTS
    rows = queued(db, sender)
    assert [r.content for r in rows] == PARTS[1:]  # the first part went in the HTTP answer
    assert all(r.source == "turn" and r.sent_at is None and r.attempts == 0 for r in rows)
    # the rest waits a moment so that WeChat shows the passive part first
    assert all(r.next_attempt_at > before for r in rows)
    assert store.claim_passive(db, key, sender) is None
    assert store.give_up_waiting(db, key, sender) == (WX_ASYNC, [])
    state = store.state(db, key)
    assert (state.status, state.delivery, state.reply) == (WX_REPLIED, WX_PASSIVE, PARTS)
    assert contents(db, sender) == PARTS[1:]


def test_a_single_part_reply_queues_nothing(db):
    key, sender = new_key(), new_sender()
    store.begin(db, key, sender, TTL_HOURS)
    store.store_reply(db, key, sender, ["只有一段"])
    assert store.claim_passive(db, key, sender) == ["只有一段"]
    assert contents(db, sender) == []


def test_a_late_reply_after_the_handler_gave_up_is_queued_once(db):
    key, sender = new_key(), new_sender()
    store.begin(db, key, sender, TTL_HOURS)
    assert store.give_up_waiting(db, key, sender) == (WX_ASYNC, [])
    assert store.state(db, key).delivery == WX_ASYNC
    assert store.claim_passive(db, key, sender) is None
    assert store.store_reply(db, key, sender, PARTS) is True
    assert contents(db, sender) == PARTS
    assert [r.source for r in queued(db, sender)] == ["turn"] * 3
    state = store.state(db, key)
    assert (state.status, state.delivery) == (WX_REPLIED, WX_QUEUED)
    # nothing more can claim it
    assert store.claim_passive(db, key, sender) is None
    assert store.give_up_waiting(db, key, sender) == (WX_ASYNC, [])
    assert store.store_reply(db, key, sender, PARTS) is False
    assert contents(db, sender) == PARTS


def test_a_reply_stored_before_giving_up_still_goes_passively(db):
    key, sender = new_key(), new_sender()
    store.begin(db, key, sender, TTL_HOURS)
    assert store.store_reply(db, key, sender, PARTS) is False
    assert store.give_up_waiting(db, key, sender) == (WX_PASSIVE, PARTS)
    assert store.state(db, key).delivery == WX_PASSIVE
    assert contents(db, sender) == PARTS[1:]
    assert store.claim_passive(db, key, sender) is None


def test_a_reply_stored_between_the_claim_and_giving_up_is_queued_by_the_handler(db, monkeypatch):
    """give_up_waiting's own claim_passive missed the reply (stored just after it):
    the handler's second step queues the reply itself."""
    key, sender = new_key(), new_sender()
    store.begin(db, key, sender, TTL_HOURS)
    store.store_reply(db, key, sender, PARTS)
    monkeypatch.setattr(store, "claim_passive", lambda *_args: None)
    assert store.give_up_waiting(db, key, sender) == (WX_QUEUED, PARTS)
    monkeypatch.undo()
    assert contents(db, sender) == PARTS
    assert store.state(db, key).delivery == WX_QUEUED
    assert store.claim_passive(db, key, sender) is None
    assert store.store_reply(db, key, sender, PARTS) is False
    assert contents(db, sender) == PARTS


def test_a_failed_turn_is_delivered_like_a_reply(db):
    key, sender = new_key(), new_sender()
    store.begin(db, key, sender, TTL_HOURS)
    store.give_up_waiting(db, key, sender)
    assert store.store_reply(db, key, sender, ["抱歉"], failed=True) is True
    assert contents(db, sender) == ["抱歉"]
    assert store.state(db, key).status == WX_FAILED


def test_an_empty_reply_queues_nothing(db):
    key, sender = new_key(), new_sender()
    store.begin(db, key, sender, TTL_HOURS)
    store.give_up_waiting(db, key, sender)
    assert store.store_reply(db, key, sender, []) is True
    assert contents(db, sender) == []
    other = new_key()
    store.begin(db, other, sender, TTL_HOURS)
    store.store_reply(db, other, sender, [])
    assert store.claim_passive(db, other, sender) == []


@pytest.mark.parametrize("round_", range(3))
def test_races_deliver_exactly_once(db, round_):
    """The turn (store_reply), the handler (claim_passive, then give_up_waiting) and
    WeChat's retries (claim_passive) race on the same message: its parts go out once
    in total, passively or queued, never both and never neither."""
    keys = [(new_key(), new_sender()) for _ in range(12)]
    for key, sender in keys:
        store.begin(db, key, sender, TTL_HOURS)
    results = {key: [] for key, _ in keys}
    errors = []

    def run(fn, key, barrier):
        try:
            barrier.wait(timeout=30)
            time.sleep(random.random() * 0.01)
            results[key].append(fn())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = []
    for key, sender in keys:
        parts = [f"{key} 第{i}段" for i in range(3)]

        def turn(key=key, sender=sender, parts=parts):
            return ("stored", store.store_reply(db, key, sender, parts))

        def handler(key=key, sender=sender):
            parts = store.claim_passive(db, key, sender)
            if parts is not None:
                return (WX_PASSIVE, parts)
            return store.give_up_waiting(db, key, sender)

        def retry(key=key, sender=sender):
            return ("retry", store.claim_passive(db, key, sender))

        barrier = threading.Barrier(5)
        for fn in (turn, handler, retry, retry, handler):
            threads.append(threading.Thread(target=run, args=(fn, key, barrier)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors

    for key, sender in keys:
        parts = [f"{key} 第{i}段" for i in range(3)]
        got = results[key]
        assert len(got) == 5
        passive = [r for r in got if (r[0] == WX_PASSIVE) or (r[0] == "retry" and r[1] is not None)]
        queued_by_turn = [r for r in got if r == ("stored", True)]
        queued_by_handler = [r for r in got if r[0] == WX_QUEUED]
        assert len(passive) + len(queued_by_turn) + len(queued_by_handler) == 1, got
        state = store.state(db, key)
        rows = contents(db, sender)
        if passive:
            assert passive[0][1] == parts
            assert state.delivery == WX_PASSIVE and rows == parts[1:]
        else:
            assert state.delivery == WX_QUEUED and rows == parts
        if queued_by_handler:
            assert queued_by_handler[0][1] == parts


# ------------------------------------------------------------------ window
def test_window_counts_five_messages_per_user_message(db):
    sender = new_sender()
    assert store.use_window(db, sender) == "no_inbound"
    store.note_inbound(db, sender)
    assert [store.use_window(db, sender) for _ in range(5)] == [None] * 5
    assert store.use_window(db, sender) == "window_full"
    assert store.use_window(db, sender) == "window_full"
    store.note_inbound(db, sender)  # the user wrote again
    assert [store.use_window(db, sender) for _ in range(6)] == [None] * 5 + ["window_full"]
    assert store.use_window(db, new_sender()) == "no_inbound"


def test_give_back_window(db):
    sender = new_sender()
    store.give_back_window(db, sender)  # unknown user: nothing happens
    store.note_inbound(db, sender)
    store.give_back_window(db, sender)  # never below zero
    assert [store.use_window(db, sender) for _ in range(5)] == [None] * 5
    assert store.use_window(db, sender) == "window_full"
    store.give_back_window(db, sender)
    assert store.use_window(db, sender) is None
    assert store.use_window(db, sender) == "window_full"


def test_window_expires_after_48_hours(db):
    sender = new_sender()
    store.note_inbound(db, sender)
    now = utcnow()
    assert store.use_window(db, sender, now=now + dt.timedelta(hours=47, minutes=59)) is None
    assert store.use_window(db, sender, now=now + dt.timedelta(hours=48, minutes=1)) == "window_expired"
    # a last message written 49 hours ago
    with session_factory(db)() as session:
        session.execute(update(WeChatUser).where(WeChatUser.sender_id == sender)
                        .values(last_inbound_at=utcnow() - dt.timedelta(hours=49), sends_since_inbound=0))
        session.commit()
    assert store.use_window(db, sender) == "window_expired"
    store.note_inbound(db, sender)
    assert store.use_window(db, sender) is None


def test_concurrent_first_messages_of_one_user(db):
    sender = new_sender()
    errors = []
    barrier = threading.Barrier(4)

    def note():
        try:
            barrier.wait(timeout=30)
            store.note_inbound(db, sender)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=note) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert store.use_window(db, sender) is None


def test_options_round_trip(db):
    sender = new_sender()
    assert store.get_options(db, sender) == []
    store.note_inbound(db, sender)
    store.set_options(db, sender, [("社保卡", "/a"), ("护照", "/b")])
    assert store.get_options(db, sender) == [("社保卡", "/a"), ("护照", "/b")]
    store.set_options(db, sender, None)
    assert store.get_options(db, sender) == []


# ------------------------------------------------------------------ outgoing queue
LEASE = dt.timedelta(seconds=30)


def test_claim_due_oldest_first_one_per_user(private_db):
    a, b, c = new_sender(), new_sender(), new_sender()
    for sender, text in [(a, "a1"), (b, "b1"), (a, "a2"), (c, "c1"), (b, "b2"), (a, "a3")]:
        store.queue_messages(private_db, sender, [text], "turn")
    first = store.claim_due(private_db, LEASE)
    assert [(m.sender_id, m.content, m.attempts) for m in first] == [(a, "a1", 1), (b, "b1", 1), (c, "c1", 1)]
    assert store.claim_due(private_db, LEASE) == []  # in flight: the users' next messages wait
    store.mark_sent(private_db, first[0].id)
    assert [m.content for m in store.claim_due(private_db, LEASE)] == ["a2"]
    store.mark_failed(private_db, first[1].id, "errcode=45015")
    second = store.claim_due(private_db, LEASE)
    assert [m.content for m in second] == ["b2"]
    store.mark_sent(private_db, second[0].id)
    store.mark_sent(private_db, first[2].id)
    assert store.claim_due(private_db, LEASE) == []  # a2 still leased
    counts = store.outgoing_counts(private_db)
    assert counts == {"pending": 2, "sent": 3, "failed": 1}


def test_claim_due_limit(private_db):
    senders = [new_sender() for _ in range(5)]
    for sender in senders:
        store.queue_messages(private_db, sender, ["x", "y"], "desk")
    got = store.claim_due(private_db, LEASE, limit=3)
    assert [m.sender_id for m in got] == senders[:3]
    assert [m.sender_id for m in store.claim_due(private_db, LEASE, limit=3)] == senders[3:]


def test_a_leased_message_is_claimed_again_only_after_the_lease(private_db):
    sender = new_sender()
    store.queue_messages(private_db, sender, ["first", "second"], "turn")
    lease = dt.timedelta(seconds=0.4)
    (message,) = store.claim_due(private_db, lease)
    assert (message.content, message.attempts) == ("first", 1)
    assert store.claim_due(private_db, lease) == []
    time.sleep(0.5)  # the sender died without marking it: another worker takes it over
    (again,) = store.claim_due(private_db, lease)
    assert (again.id, again.content, again.attempts) == (message.id, "first", 2)


def test_a_retried_message_keeps_the_users_order(private_db):
    sender = new_sender()
    store.queue_messages(private_db, sender, ["one", "two"], "turn")
    (message,) = store.claim_due(private_db, LEASE)
    store.mark_retry(private_db, message.id, 0.3, "errcode=-1 system busy " + "x" * 500)
    (row, _) = queued(private_db, sender)
    assert row.last_error.startswith("errcode=-1") and len(row.last_error) <= 200
    assert store.claim_due(private_db, LEASE) == []  # "two" does not overtake "one"
    due = store.next_due_at(private_db)
    assert due is not None and due > utcnow()
    time.sleep(0.35)
    (retried,) = store.claim_due(private_db, LEASE)
    assert (retried.content, retried.attempts) == ("one", 2)
    store.mark_sent(private_db, retried.id)
    assert queued(private_db, sender)[0].last_error is None
    assert [m.content for m in store.claim_due(private_db, LEASE)] == ["two"]


def test_the_rest_of_a_passive_reply_waits_a_moment(private_db):
    key, sender = new_key(), new_sender()
    store.begin(private_db, key, sender, TTL_HOURS)
    store.store_reply(private_db, key, sender, PARTS)
    assert store.claim_passive(private_db, key, sender) == PARTS
    assert store.claim_due(private_db, LEASE) == []
    time.sleep(store.AFTER_PASSIVE.total_seconds() + 0.1)
    assert [m.content for m in store.claim_due(private_db, LEASE)] == [PARTS[1]]


def test_one_users_backlog_does_not_block_the_others(private_db):
    """A user with a long queue whose first message is in flight (or waiting for a
    retry) must not keep other users' messages from being claimed."""
    busy, other = new_sender(), new_sender()
    store.queue_messages(private_db, busy, [f"m{i}" for i in range(260)], "desk")
    (head,) = store.claim_due(private_db, LEASE)
    assert head.sender_id == busy
    store.queue_messages(private_db, other, ["hello"], "turn")
    got = store.claim_due(private_db, LEASE)
    assert [(m.sender_id, m.content) for m in got] == [(other, "hello")]


def test_recover_orphans_apologises_once(private_db):
    old_key, old_sender = new_key(), new_sender()
    fresh_key, fresh_sender = new_key(), new_sender()
    done_key, done_sender = new_key(), new_sender()
    for key, sender in [(old_key, old_sender), (fresh_key, fresh_sender), (done_key, done_sender)]:
        store.begin(private_db, key, sender, TTL_HOURS)
    store.store_reply(private_db, done_key, done_sender, ["好的"])
    with session_factory(private_db)() as session:
        session.execute(update(WeChatInbound).where(WeChatInbound.key.in_([old_key, done_key]))
                        .values(created_at=utcnow() - dt.timedelta(minutes=5)))
        session.commit()
    apology = "抱歉，您刚才的消息没有处理完，请您再发一次。"
    assert store.recover_orphans(private_db, dt.timedelta(seconds=60), apology) == 1
    assert store.recover_orphans(private_db, dt.timedelta(seconds=60), apology) == 0
    rows = queued(private_db, old_sender)
    assert [(r.content, r.source) for r in rows] == [(apology, "recovery")]
    state = store.state(private_db, old_key)
    assert (state.status, state.delivery, state.reply) == (WX_FAILED, WX_QUEUED, [apology])
    assert store.state(private_db, fresh_key).status == WX_PROCESSING  # still within its time
    assert store.state(private_db, done_key).status == WX_REPLIED
    assert queued(private_db, fresh_sender) == [] and queued(private_db, done_sender) == []
    # the turn finishing after all does not send a second answer
    assert store.claim_passive(private_db, old_key, old_sender) is None
    assert store.give_up_waiting(private_db, old_key, old_sender) == (WX_ASYNC, [])
    assert store.store_reply(private_db, old_key, old_sender, ["迟到的回复"]) is False
    assert contents(private_db, old_sender) == [apology]


def test_purge_removes_expired_rows(private_db):
    expired_key, live_key, sender = new_key(), new_key(), new_sender()
    store.begin(private_db, expired_key, sender, -1.0)  # expired an hour ago
    store.begin(private_db, live_key, sender, TTL_HOURS)
    store.queue_messages(private_db, sender, ["old sent", "old failed", "new sent", "unsent"], "turn")
    old_sent, old_failed, new_sent, unsent = queued(private_db, sender)
    store.mark_sent(private_db, old_sent.id)
    store.mark_failed(private_db, old_failed.id, "errcode=45015")
    store.mark_sent(private_db, new_sent.id)
    long_ago = utcnow() - dt.timedelta(days=3)
    with session_factory(private_db)() as session:
        session.execute(update(WeChatOutgoing).where(WeChatOutgoing.id == old_sent.id).values(sent_at=long_ago))
        session.execute(update(WeChatOutgoing).where(WeChatOutgoing.id == old_failed.id).values(failed_at=long_ago))
        # an unsent message is kept however old it is
        session.execute(update(WeChatOutgoing).where(WeChatOutgoing.id == unsent.id).values(created_at=long_ago))
        session.commit()
    assert store.purge(private_db) == (1, 2)
    assert store.state(private_db, expired_key) is None
    assert store.state(private_db, live_key) is not None
    assert contents(private_db, sender) == ["new sent", "unsent"]
    assert store.purge(private_db) == (0, 0)
    # a retry of the purged message counts as new again
    assert store.begin(private_db, expired_key, sender, TTL_HOURS) is None
