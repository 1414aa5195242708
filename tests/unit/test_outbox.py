"""The kiosk outbox without a network: backoff schedule, what each answer does to a message."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import httpx
import pytest
from sqlalchemy import select

from assistant.services import outbox
from assistant.storage import database
from assistant.storage.tables import OutboxMessage

T0 = dt.datetime(2026, 3, 2, 9, 0, 0)


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'kiosk.db'}"


def rows(db_url):
    with database.session_factory(db_url)() as session:
        return {r.id: r for r in session.execute(select(OutboxMessage)).scalars()}


def client_answering(handler, seen=None):
    def wrapped(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if seen is not None:
            seen.append(body)
        return handler(request, body)

    return httpx.AsyncClient(base_url="http://central.test", transport=httpx.MockTransport(wrapped))


def accepted(request, body):
    return httpx.Response(201, json={"status": "accepted", "id": body["id"], "ref": "ticket:1"})


# ------------------------------------------------------------------ backoff
def test_backoff_doubles_from_one_second_to_a_five_minute_cap():
    top = [outbox.backoff_seconds(n, rng=lambda: 0.0) for n in range(1, 13)]
    assert top == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    assert outbox.backoff_seconds(10_000, rng=lambda: 0.0) == 300


def test_backoff_jitter_stays_below_the_schedule():
    for attempts in (1, 5, 12):
        delays = {outbox.backoff_seconds(attempts) for _ in range(200)}
        top = outbox.backoff_seconds(attempts, rng=lambda: 0.0)
        assert all(0.8 * top <= d <= top for d in delays)
        assert len(delays) > 100  # really random: kiosks do not retry in lockstep


# ------------------------------------------------------------------ enqueue
def test_enqueue_commits_a_pending_message(db_url):
    message_id = outbox.enqueue(db_url, "handoff", {"conversation_id": "k-1", "summary": {"q": "护照"}}, now=T0)
    assert uuid.UUID(message_id).version == 4
    row = rows(db_url)[message_id]  # a new session: committed
    assert (row.kind, row.attempts, row.next_attempt_at, row.delivered_at, row.failed_at) == (
        "handoff",
        0,
        T0,
        None,
        None,
    )
    assert json.loads(row.payload) == {"conversation_id": "k-1", "summary": {"q": "护照"}}


def test_enqueue_refuses_unknown_kinds_and_oversized_payloads(db_url):
    with pytest.raises(ValueError):
        outbox.enqueue(db_url, "email", {})
    with pytest.raises(ValueError):
        outbox.enqueue(db_url, "appointment", {"note": "x" * (outbox.MAX_PAYLOAD_BYTES + 1)})
    assert rows(db_url) == {}


# ----------------------------------------------------------------- delivery
async def test_delivers_due_messages_oldest_first(db_url):
    first = outbox.enqueue(db_url, "handoff", {"n": 1}, now=T0)
    second = outbox.enqueue(db_url, "rating", {"n": 2}, now=T0 + dt.timedelta(seconds=1))
    later = outbox.enqueue(db_url, "rating", {"n": 3}, now=T0 + dt.timedelta(hours=1))  # not due yet
    seen = []
    async with client_answering(accepted, seen) as client:
        result = await outbox.deliver_due(db_url, client, T0 + dt.timedelta(seconds=5), kiosk_id="hall-1")
    assert result == (2, 0)
    assert [b["id"] for b in seen] == [first, second]
    assert seen[0] == {
        "id": first,
        "kiosk_id": "hall-1",
        "kind": "handoff",
        "payload": {"n": 1},
        "created_at": "2026-03-02T09:00:00+00:00",
    }
    stored = rows(db_url)
    assert stored[first].delivered_at == T0 + dt.timedelta(seconds=5) and stored[first].attempts == 1
    assert stored[later].delivered_at is None and stored[later].attempts == 0
    # Delivered messages are not sent again.
    seen.clear()
    async with client_answering(accepted, seen) as client:
        assert await outbox.deliver_due(db_url, client, T0 + dt.timedelta(seconds=6), kiosk_id="hall-1") == (0, 0)
    assert seen == []


async def test_the_duplicate_answer_counts_as_delivered(db_url):
    message_id = outbox.enqueue(db_url, "handoff", {}, now=T0)

    def duplicate(request, body):
        return httpx.Response(200, json={"status": "duplicate", "id": body["id"], "ref": "ticket:7"})

    async with client_answering(duplicate) as client:
        assert await outbox.deliver_due(db_url, client, T0, kiosk_id="k") == (1, 0)
    assert rows(db_url)[message_id].delivered_at == T0


async def test_the_bearer_token_and_url_of_the_central_client(db_url):
    from assistant.config.settings import Settings

    outbox.enqueue(db_url, "rating", {}, now=T0)
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        return httpx.Response(201, json={"status": "accepted"})

    settings = Settings(database_url=db_url, central_url="https://central.test/banshi", central_token="tok-1")
    client = outbox.central_client(settings)
    client._transport = httpx.MockTransport(handler)  # same base URL and headers, no network
    async with client:
        assert await outbox.deliver_due(db_url, client, T0, kiosk_id="k") == (1, 0)
    assert seen == [("https://central.test/banshi/api/v1/kiosk/inbox", "Bearer tok-1")]


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500, json={"detail": "系统繁忙，请稍后再试"}),
        httpx.Response(503),
        httpx.Response(502, text="<html>bad gateway</html>"),
        httpx.Response(408),
        httpx.Response(429),
        httpx.Response(200, text="<html>portal login</html>"),  # not the inbox's confirmation
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
    ids=["500", "503", "502-html", "408", "429", "200-not-inbox", "refused", "timeout", "response-lost"],
)
async def test_transient_failures_are_retried_with_backoff(db_url, answer):
    message_id = outbox.enqueue(db_url, "handoff", {}, now=T0)

    def handler(request, body):
        if isinstance(answer, Exception):
            raise answer
        return answer

    now = T0
    for attempt in range(1, 4):
        async with client_answering(handler) as client:
            assert await outbox.deliver_due(db_url, client, now, kiosk_id="k", rng=lambda: 0.0) == (0, 1)
        row = rows(db_url)[message_id]
        assert row.attempts == attempt and row.delivered_at is None and row.failed_at is None
        assert row.next_attempt_at == now + dt.timedelta(seconds=2 ** (attempt - 1))
        assert row.last_error and len(row.last_error) <= outbox.MAX_ERROR_CHARS
        # Not due before its time.
        async with client_answering(handler) as client:
            assert await outbox.deliver_due(db_url, client, row.next_attempt_at - dt.timedelta(milliseconds=1), kiosk_id="k") == (0, 0)
        now = row.next_attempt_at
    async with client_answering(accepted) as client:
        assert await outbox.deliver_due(db_url, client, now, kiosk_id="k") == (1, 0)
    row = rows(db_url)[message_id]
    assert row.delivered_at == now and row.attempts == 4 and row.last_error is None


async def test_retry_after_is_respected_up_to_the_cap(db_url):
    message_id = outbox.enqueue(db_url, "handoff", {}, now=T0)
    async with client_answering(lambda r, b: httpx.Response(429, headers={"Retry-After": "30"})) as client:
        await outbox.deliver_due(db_url, client, T0, kiosk_id="k", rng=lambda: 0.0)
    assert rows(db_url)[message_id].next_attempt_at == T0 + dt.timedelta(seconds=30)


@pytest.mark.parametrize("code", [400, 401, 403, 404, 413, 422])
async def test_other_4xx_give_up_and_show_in_the_status(db_url, code):
    message_id = outbox.enqueue(db_url, "rating", {}, now=T0)
    kept = outbox.enqueue(db_url, "rating", {}, now=T0 + dt.timedelta(seconds=1))

    def handler(request, body):
        if body["id"] == message_id:
            return httpx.Response(code, json={"detail": "自助终端凭证无效"})
        return accepted(request, body)

    async with client_answering(handler) as client:
        assert await outbox.deliver_due(db_url, client, T0 + dt.timedelta(seconds=2), kiosk_id="k") == (1, 1)
    row = rows(db_url)[message_id]
    assert row.failed_at is not None and row.delivered_at is None and row.attempts == 1
    assert row.last_error == f"HTTP {code} 自助终端凭证无效"
    # Never tried again on its own, even much later.
    seen = []
    async with client_answering(accepted, seen) as client:
        assert await outbox.deliver_due(db_url, client, T0 + dt.timedelta(days=1), kiosk_id="k") == (0, 0)
    assert seen == []
    report = outbox.status(db_url)
    assert report["counts"] == {"pending": 0, "delivered": 1, "failed": 1}
    [failed] = report["messages"]
    assert (failed["id"], failed["state"], failed["last_error"]) == (message_id, "failed", row.last_error)
    assert rows(db_url)[kept].delivered_at is not None
    # After the cause is fixed, an operator retries it (banshi outbox flush --retry-failed).
    assert outbox.make_due(db_url) == 0
    assert outbox.make_due(db_url, include_failed=True) == 1
    async with client_answering(accepted) as client:
        assert await outbox.deliver_due(db_url, client, kiosk_id="k") == (1, 0)
    assert outbox.status(db_url)["counts"] == {"pending": 0, "delivered": 2, "failed": 0}


async def test_errors_kept_short_and_without_personal_data(db_url):
    message_id = outbox.enqueue(db_url, "handoff", {}, now=T0)
    detail = "手机13912345678 " + "很长" * 500
    async with client_answering(lambda r, b: httpx.Response(500, json={"detail": detail})) as client:
        await outbox.deliver_due(db_url, client, T0, kiosk_id="k")
    error = rows(db_url)[message_id].last_error
    assert error.startswith("HTTP 500") and len(error) <= outbox.MAX_ERROR_CHARS
    assert "13912345678" not in error


def test_cli_status_and_flush(db_url, monkeypatch, capsys):
    """``banshi outbox status|flush`` in-process (the central answers through a mock transport)."""
    from assistant.cli.main import build_parser
    from assistant.cli.outbox import cmd_outbox
    from assistant.config.settings import Settings

    outbox.enqueue(db_url, "handoff", {}, now=T0)
    settings = Settings(database_url=db_url, kiosk_mode=True, kiosk_id="hall-9")
    args = build_parser().parse_args(["outbox", "status"])
    assert cmd_outbox(args, settings) == 0
    out = capsys.readouterr().out
    assert "待发送 pending 1" in out and "hall-9" in out
    args = build_parser().parse_args(["outbox", "flush"])
    assert cmd_outbox(args, settings) == 2  # no central URL
    settings = Settings(database_url=db_url, kiosk_mode=True, central_url="http://central.test")
    real_client = outbox.central_client

    def mocked(settings, timeout_s=10.0):
        client = real_client(settings, timeout_s)
        client._transport = httpx.MockTransport(lambda r: accepted(r, json.loads(r.content)))
        return client

    monkeypatch.setattr(outbox, "central_client", mocked)
    assert cmd_outbox(args, settings) == 0
    assert "已送达 1 条" in capsys.readouterr().out
    assert outbox.status(db_url)["counts"]["delivered"] == 1

