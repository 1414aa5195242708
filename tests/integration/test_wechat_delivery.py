"""The customer-service path without the dialogue model: :class:`WeChatApi`
against the simulator's :class:`FakeWeChatApi` (access token cache and refresh),
and :class:`DeliveryWorker` sending the persistent queue (retries, final errors,
the 5-message window, per-user order).

The worker claims every due row of its database, so these tests give the
channel a private database: rows of other tests, or a running gateway's worker
polling the session database, cannot interfere."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
from types import SimpleNamespace

import pytest
from sqlalchemy import delete, select

from assistant.channels import wechat_store as store
from assistant.channels.wechat import WeChatChannel
from assistant.channels.wechat_api import WeChatApi, WeChatApiError
from assistant.channels.wechat_format import sender_of
from assistant.channels.wechat_sim import FakeWeChatApi
from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import WeChatInbound, WeChatOutgoing, WeChatUser
from tests.conftest import serve_in_thread

# One event loop for the tests and their async fixtures (the channel's HTTP client).
pytestmark = pytest.mark.asyncio(loop_scope="session")


def new_openid() -> str:
    return "oDeliv" + secrets.token_hex(10)


@pytest.fixture(scope="module")
def served(settings):
    api = FakeWeChatApi(settings.wechat_app_id, settings.wechat_app_secret)
    with serve_in_thread(api.app) as url:
        yield api, url


@pytest.fixture
def fake(served) -> FakeWeChatApi:
    api, _ = served
    api.fail_sends.clear()
    yield api
    api.fail_sends.clear()


@pytest.fixture
def api_url(served) -> str:
    return served[1]


@pytest.fixture
def forced(fake, monkeypatch) -> list:
    """force_refresh of every token request to the fake from now on."""
    seen = []
    issue = fake._issue

    def recording(appid, secret, force):
        seen.append(force)
        return issue(appid, secret, force)

    monkeypatch.setattr(fake, "_issue", recording)
    return seen


@pytest.fixture(scope="module")
def private_url(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('wechat-delivery') / 'delivery.db'}"


@pytest.fixture
def db(private_url) -> str:
    with session_factory(private_url)() as session:
        for table in (WeChatOutgoing, WeChatInbound, WeChatUser):
            session.execute(delete(table))
        session.commit()
    return private_url


@pytest.fixture
async def channel(settings, db: str, api_url: str):
    """A WeChat channel on the private database and the fake API (its worker not started)."""
    app = SimpleNamespace(state=SimpleNamespace(pushers={}))
    channel = WeChatChannel(app, settings.copy(update={"database_url": db, "wechat_api_base": api_url}))
    yield channel
    await channel.api.close()


def rows_of(db: str, sender: str) -> list:
    with session_factory(db)() as session:
        return session.execute(
            select(WeChatOutgoing).where(WeChatOutgoing.sender_id == sender).order_by(WeChatOutgoing.id)
        ).scalars().all()


def window_used(db: str, sender: str) -> int:
    with session_factory(db)() as session:
        return session.get(WeChatUser, sender).sends_since_inbound


async def drain(channel: WeChatChannel, passes: int = 20) -> int:
    """run_once until nothing is due; returns how many were claimed in total."""
    total = 0
    for _ in range(passes):
        claimed = await channel.delivery.run_once()
        if not claimed:
            return total
        total += claimed
    raise AssertionError("the queue did not drain")


# ------------------------------------------------------------------ WeChatApi
async def test_token_is_cached(fake, api_url, settings):
    openid = new_openid()
    api = WeChatApi(api_url, settings.wechat_app_id, settings.wechat_app_secret)
    try:
        before = fake.token_requests
        for i in range(4):
            await api.send_text(openid, f"第{i}条")
        assert fake.token_requests - before == 1
        assert fake.messages_to(openid) == ["第0条", "第1条", "第2条", "第3条"]
    finally:
        await api.close()


async def test_wrong_secret_is_an_error(fake, api_url, settings):
    api = WeChatApi(api_url, settings.wechat_app_id, "not-the-secret")
    try:
        with pytest.raises(WeChatApiError) as error:
            await api.send_text(new_openid(), "x")
        assert error.value.errcode == 40013 and not error.value.retryable
    finally:
        await api.close()


async def test_an_invalid_token_is_refreshed_and_the_message_sent_once(fake, api_url, settings, forced):
    openid = new_openid()
    api = WeChatApi(api_url, settings.wechat_app_id, settings.wechat_app_secret)
    try:
        await api.send_text(openid, "first")
        before = fake.token_requests
        fake.fail_sends.append(40001)  # WeChat: this token is no longer valid (the fake issued a new one)
        await api.send_text(openid, "second")
        assert fake.messages_to(openid) == ["first", "second"]
        assert fake.token_requests - before == 1
        # WeChat's normal mode already hands out the new token: no forced refresh
        # (it invalidates every replica's token and is limited to 20 a day)
        assert forced == [False, False]
        await api.send_text(openid, "third")  # the new token is cached
        assert fake.token_requests - before == 1
        assert fake.messages_to(openid) == ["first", "second", "third"]
    finally:
        await api.close()


@pytest.mark.parametrize("errcode", [40014, 42001])
async def test_a_token_still_refused_is_forced(fake, api_url, settings, forced, errcode):
    """WeChat refuses the token it still hands out in the normal mode: then (only
    then) the refresh is forced."""
    openid = new_openid()
    api = WeChatApi(api_url, settings.wechat_app_id, settings.wechat_app_secret)
    try:
        await api.send_text(openid, "first")
        fake.fail_sends.append(errcode)  # the fake keeps its token for these
        await api.send_text(openid, "second")
        assert fake.messages_to(openid) == ["first", "second"]
        assert forced == [False, False, True]
    finally:
        await api.close()


async def test_a_token_refused_twice_is_an_error(fake, api_url, settings):
    openid = new_openid()
    api = WeChatApi(api_url, settings.wechat_app_id, settings.wechat_app_secret)
    try:
        fake.fail_sends.extend([40001, 40001])
        with pytest.raises(WeChatApiError) as error:
            await api.send_text(openid, "x")
        assert error.value.errcode == 40001 and not error.value.retryable
        assert fake.messages_to(openid) == []
        await api.send_text(openid, "y")
        assert fake.messages_to(openid) == ["y"]
    finally:
        await api.close()


async def test_concurrent_sends_survive_one_token_expiry(fake, api_url, settings, forced):
    """Several sends in flight all hear 40001: they share one new token instead of
    each forcing a refresh (which invalidates the token the others just got, so
    that their second attempt fails too and the message is lost)."""
    openids = [new_openid() for _ in range(8)]
    api = WeChatApi(api_url, settings.wechat_app_id, settings.wechat_app_secret)
    try:
        await api.send_text(openids[0], "warm-up")
        before = fake.token_requests
        fake.fail_sends.append(40001)
        results = await asyncio.gather(*(api.send_text(o, "并发消息") for o in openids), return_exceptions=True)
        assert [r for r in results if r is not None] == []
        for openid in openids[1:]:
            assert fake.messages_to(openid) == ["并发消息"]
        assert fake.messages_to(openids[0]) == ["warm-up", "并发消息"]
        assert fake.token_requests - before == 1 and forced == [False, False]
    finally:
        await api.close()


@pytest.mark.parametrize("errcode,retryable", [(-1, True), (45009, True), (45015, False), (43004, False),
                                               (45002, False)])
async def test_send_errors(fake, api_url, settings, errcode, retryable):
    openid = new_openid()
    api = WeChatApi(api_url, settings.wechat_app_id, settings.wechat_app_secret)
    try:
        fake.fail_sends.append(errcode)
        with pytest.raises(WeChatApiError) as error:
            await api.send_text(openid, "x")
        assert error.value.errcode == errcode and error.value.retryable is retryable
        assert fake.messages_to(openid) == []
    finally:
        await api.close()


async def test_unreachable_api_is_retryable(settings):
    from tests.conftest import free_port

    api = WeChatApi(f"http://127.0.0.1:{free_port()}", settings.wechat_app_id, settings.wechat_app_secret,
                    timeout_s=2)
    try:
        with pytest.raises(WeChatApiError) as error:
            await api.send_text(new_openid(), "x")
        assert error.value.errcode is None and error.value.retryable
    finally:
        await api.close()


# ------------------------------------------------------------------ DeliveryWorker
async def test_busy_is_retried_later_and_sent_once(fake, channel, db):
    from assistant.channels import wechat_delivery

    openid = new_openid()
    sender = sender_of(openid)
    store.note_inbound(db, sender)
    store.queue_messages(db, sender, ["您的办件已受理"], "turn")
    fake.fail_sends.append(-1)
    assert await channel.delivery.run_once() == 1
    assert fake.messages_to(openid) == []
    (row,) = rows_of(db, sender)
    assert row.sent_at is None and row.failed_at is None and row.attempts == 1
    assert "errcode=-1" in row.last_error
    wait_s = (row.next_attempt_at - utcnow()).total_seconds()
    # the first retry waits RETRY_BASE_S (with jitter), not a longer back-off
    assert 0.5 * wechat_delivery.RETRY_BASE_S < wait_s <= wechat_delivery.RETRY_BASE_S
    assert window_used(db, sender) == 0  # the failed send was not counted
    assert await channel.delivery.run_once() == 0  # not yet
    await asyncio.sleep(wait_s + 0.05)
    assert await channel.delivery.run_once() == 1
    (row,) = rows_of(db, sender)
    assert row.sent_at is not None and row.attempts == 2 and row.last_error is None
    assert await drain(channel) == 0
    assert fake.messages_to(openid) == ["您的办件已受理"]
    assert window_used(db, sender) == 1


async def test_out_of_window_is_final(fake, channel, db):
    openid = new_openid()
    sender = sender_of(openid)
    store.note_inbound(db, sender)
    store.queue_messages(db, sender, ["不会送达", "下一条"], "turn")
    fake.fail_sends.append(45015)
    assert await channel.delivery.run_once() == 1
    first, second = rows_of(db, sender)
    assert first.failed_at is not None and "45015" in first.last_error and first.attempts == 1
    assert second.sent_at is None
    assert await drain(channel) == 1  # only the next message; the failed one is never retried
    first, second = rows_of(db, sender)
    assert first.sent_at is None and first.attempts == 1 and second.sent_at is not None
    assert fake.messages_to(openid) == ["下一条"]
    assert window_used(db, sender) == 1


async def test_a_sixth_message_exceeds_the_window(fake, channel, db):
    openid = new_openid()
    sender = sender_of(openid)
    store.note_inbound(db, sender)
    texts = [f"第{i}段" for i in range(1, 7)]
    store.queue_messages(db, sender, texts, "turn")
    assert await drain(channel) == 6
    assert fake.messages_to(openid) == texts[:5]
    rows = rows_of(db, sender)
    assert all(r.sent_at is not None for r in rows[:5])
    assert rows[5].sent_at is None and rows[5].failed_at is not None and rows[5].last_error == "window_full"
    # the user writes again: new messages may be sent
    store.note_inbound(db, sender)
    store.queue_messages(db, sender, ["新的回复"], "turn")
    assert await drain(channel) == 1
    assert fake.messages_to(openid) == texts[:5] + ["新的回复"]


async def test_no_message_to_a_user_who_never_wrote(fake, channel, db):
    openid = new_openid()
    sender = sender_of(openid)
    store.queue_messages(db, sender, ["hello"], "desk")
    assert await drain(channel) == 1
    (row,) = rows_of(db, sender)
    assert row.failed_at is not None and row.last_error == "no_inbound"
    assert fake.messages_to(openid) == []


async def test_messages_arrive_in_queue_order(fake, channel, db):
    users = [new_openid() for _ in range(3)]
    for openid in users:
        store.note_inbound(db, sender_of(openid))
    expected = {openid: [] for openid in users}
    for i in range(4):  # interleaved between the users
        for openid in users:
            text = f"{openid[-4:]}-{i}"
            store.queue_messages(db, sender_of(openid), [text], "turn")
            expected[openid].append(text)
    assert await drain(channel) == 12
    for openid in users:
        assert fake.messages_to(openid) == expected[openid]


async def test_order_is_kept_across_a_retry(fake, channel, db):
    openid = new_openid()
    sender = sender_of(openid)
    store.note_inbound(db, sender)
    store.queue_messages(db, sender, ["一", "二", "三"], "turn")
    assert await channel.delivery.run_once() == 1  # 一
    fake.fail_sends.append(-1)
    assert await channel.delivery.run_once() == 1  # 二: busy
    assert await channel.delivery.run_once() == 0  # 三 waits for 二
    assert fake.messages_to(openid) == ["一"]
    due = store.next_due_at(db)
    await asyncio.sleep(max(0.0, (due - utcnow()).total_seconds()) + 0.05)
    assert await drain(channel) == 2
    assert fake.messages_to(openid) == ["一", "二", "三"]


async def test_the_worker_waits_for_a_retry_without_spinning(fake, channel, db, monkeypatch):
    """While a user's first message waits for its retry, their next message is not
    due: the worker sleeps until the retry instead of polling the database flat out."""
    openid = new_openid()
    sender = sender_of(openid)
    calls = []
    real_claim = store.claim_due

    def counting_claim(*args, **kwargs):
        calls.append(time.monotonic())
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(store, "claim_due", counting_claim)
    try:
        store.note_inbound(db, sender)
        fake.fail_sends.append(-1)
        store.queue_messages(db, sender, ["甲", "乙"], "turn")
        channel.delivery.start()
        got = await fake.await_for(openid, 2, timeout_s=10)
        assert got == ["甲", "乙"]
        assert len(calls) < 15, f"{len(calls)} claims in {calls[-1] - calls[0]:.1f} s"
    finally:
        await channel.delivery.stop()


async def test_operator_replies_are_pushed_in_parts(fake, channel, db):
    openid = new_openid()
    sender = sender_of(openid)
    store.note_inbound(db, sender)
    long_reply = "\n".join(f"第{i}行：" + "请携带身份证原件。" * 20 for i in range(8))
    await channel.push(sender, long_reply)
    rows = rows_of(db, sender)
    assert len(rows) > 1 and {r.source for r in rows} == {"desk"}
    assert await drain(channel) == len(rows)
    got = fake.messages_to(openid)
    assert "\n".join(got) == long_reply
    assert all(len(part.encode("utf-8")) <= channel.texts.text_limit_bytes for part in got)


async def test_next_due_at_follows_the_heads(db):
    sender = sender_of(new_openid())
    assert store.next_due_at(db) is None
    store.queue_messages(db, sender, ["a", "b"], "turn")
    (message,) = store.claim_due(db, dt.timedelta(seconds=30))
    due = store.next_due_at(db)
    assert (due - utcnow()).total_seconds() > 25  # "b" is not due before "a" is done
