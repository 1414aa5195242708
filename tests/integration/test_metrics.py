"""GET /metrics: off without a token or allowed addresses (404), refused without the
right token (401), never believed from a forwarded address; and with the real model,
a few chat turns, a handoff and a spoken turn show in the counters by intent,
channel, answer kind, reason, route template and the recogniser's real-time factor."""

from __future__ import annotations

import time
from typing import Dict, Tuple

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from assistant.api.app import create_app
from assistant.services import metrics
from tests.conftest import METRICS_TOKEN, isolated_settings, serve_in_thread
from tests.speech import RECORDING

AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}
Samples = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition: (name, sorted labels) → value."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client) -> Samples:
    reply = client.get("/metrics", headers=AUTH)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(reply.text)


# ------------------------------------------------------------------ access
def test_metrics_are_off_without_a_token_or_addresses(settings, tmp_path):
    off = isolated_settings(settings, tmp_path, metrics_token=None, metrics_allow="")
    with TestClient(create_app(off, load_model=False)) as client:
        reply = client.get("/metrics", headers=AUTH)
    assert reply.status_code == 404 and reply.json()["detail"] == "没有找到该地址"


def test_metrics_need_the_token(settings, tmp_path):
    with TestClient(create_app(isolated_settings(settings, tmp_path), load_model=False)) as client:
        for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {METRICS_TOKEN}"},
                        {"Authorization": "Bearer "}):
            reply = client.get("/metrics", headers=headers)
            assert reply.status_code == 401, headers
            assert reply.json()["detail"] == "需要监控令牌" and reply.headers["www-authenticate"] == "Bearer"
        client.get("/api/v1/items/passport")
        client.get("/api/v1/items/no_such_item")
        client.get("/no/such/page/13800138000")
        found = scrape(client)
    # Route templates, never raw paths (a phone number in a path must not become a label).
    assert value(found, "banshi_http_requests_total", method="GET", route="/api/v1/items/{item_id}", status="200") >= 1
    assert value(found, "banshi_http_requests_total", method="GET", route="/api/v1/items/{item_id}", status="404") >= 1
    assert value(found, "banshi_http_requests_total", method="GET", route="unmatched", status="404") >= 1
    assert value(found, "banshi_http_requests_total", method="GET", route="/metrics", status="401") >= 4
    assert value(found, "banshi_http_request_duration_seconds_count", method="GET", route="/api/v1/items/{item_id}") >= 2
    routes = {dict(labels).get("route") for (name, labels) in found if name == "banshi_http_requests_total"}
    assert not any("passport" in r or "13800138000" in r for r in routes if r)
    # Queue lengths are read from the database at scrape time.
    assert value(found, "banshi_queue_scrape_ok") == 1.0
    for queue in ("wechat_outgoing", "kiosk_outbox", "progress_notices", "open_tickets", "waiting_tickets"):
        assert ("banshi_queue_length", (("queue", queue),)) in found


def test_allowed_addresses_are_the_real_client_not_the_proxy(settings, tmp_path):
    """From 127.0.0.1 (allowed) a scrape needs no token; relayed by a proxy on 127.0.0.1
    (a trusted proxy) for someone else, it is that someone else, and refused."""
    allowed = isolated_settings(settings, tmp_path, metrics_token=None, metrics_allow="127.0.0.1/32")
    with serve_in_thread(create_app(allowed, load_model=False)) as url:
        direct = httpx.get(f"{url}/metrics", timeout=10)
        relayed = httpx.get(f"{url}/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
        with_token_only = httpx.get(f"{url}/metrics", headers={**AUTH, "X-Forwarded-For": "203.0.113.9"}, timeout=10)
    assert direct.status_code == 200 and "banshi_queue_length" in direct.text
    assert relayed.status_code == 401
    assert with_token_only.status_code == 401  # no token is configured here


def test_bounded_labels_fall_back_to_other():
    label = metrics.BoundedLabel(limit=2)
    assert [label("a"), label("b"), label("c"), label("a"), label(None), label("张三 13800138000")] == [
        "a", "b", "other", "a", "none", "other"]


# ------------------------------------------------------------------ with the model
@pytest.mark.model
def test_chat_turns_handoffs_and_speech_show_in_the_counters(client, settings):
    before = scrape(client)
    turns = [("metrics-web-1", "护照要带什么材料", "web"), ("metrics-web-2", "身份证丢了要带什么材料", "web"),
             ("metrics-wx-1", "社保卡办理需要什么材料", "wechat")]
    answers: Dict[Tuple[str, str], int] = {}
    intents: Dict[Tuple[str, str], int] = {}
    for sender, text, channel in turns:
        body = client.post("/api/v1/chat", json={"sender_id": sender, "text": text, "channel": channel}).json()
        intents[(body["intent"], channel)] = intents.get((body["intent"], channel), 0) + 1
        answers[(body["answer"], channel)] = answers.get((body["answer"], channel), 0) + 1
    assert intents.get(("ask_materials", "web")) == 2  # what the model says, checked in its own tests
    handoff = client.post("/api/v1/chat", json={"sender_id": "metrics-web-3", "text": "转人工", "channel": "web"}).json()
    assert handoff.get("handoff", {}).get("ticket_id"), handoff
    again = client.post("/api/v1/chat", json={"sender_id": "metrics-web-3", "text": "转人工", "channel": "web"}).json()
    assert again["answer"] == "handoff"  # relayed to the waiting ticket: not a new handoff
    time.sleep(metrics.QUEUE_CACHE_SECONDS + 0.2)  # the queue lengths are counted again
    after = scrape(client)

    for (intent, channel), count in intents.items():
        key = dict(intent=intent, channel=channel)
        assert value(after, "banshi_turns_total", **key) - value(before, "banshi_turns_total", **key) == count
    for (kind, channel), count in answers.items():
        key = dict(kind=kind, channel=channel)
        assert value(after, "banshi_answers_total", **key) - value(before, "banshi_answers_total", **key) >= count
    request_human = dict(reason="request_human", channel="web")
    assert value(after, "banshi_handoffs_total", **request_human) - value(
        before, "banshi_handoffs_total", **request_human) == 1
    chat = dict(method="POST", route="/api/v1/chat", status="200")
    assert value(after, "banshi_http_requests_total", **chat) - value(before, "banshi_http_requests_total", **chat) == 5
    assert value(after, "banshi_queue_length", queue="open_tickets") >= 1
    text = client.get("/metrics", headers=AUTH).text
    assert "metrics-web" not in text and "护照" not in text  # no conversation ids or texts

    # A spoken turn: the recogniser's real-time factor is observed once.
    session = client.post("/api/v1/voice/sessions").json()
    spoken = client.post(
        "/api/v1/voice/turn",
        params={"sender_id": session["sender_id"], "token": session["token"]},
        content=RECORDING.read_bytes(),
        headers={"Content-Type": "audio/wav"},
        timeout=120,
    )
    assert spoken.status_code == 200, spoken.text
    final = scrape(client)
    key = dict(mode="utterance")
    assert value(final, "banshi_asr_real_time_factor_count", **key) - value(
        after, "banshi_asr_real_time_factor_count", **key) == 1
    rtf_sum = value(final, "banshi_asr_real_time_factor_sum", **key) - value(after, "banshi_asr_real_time_factor_sum", **key)
    assert 0 < rtf_sum < 4  # seconds of decoding per second of audio


@pytest.mark.model
async def test_a_live_audio_stream_observes_its_real_time_factor(live_server, client):
    """The kiosk's WebSocket: decoding time while the audio was fed, per second of audio."""
    import asyncio
    import json

    import websockets

    from voice.audio import pcm16_from_wav

    pcm = pcm16_from_wav(RECORDING.read_bytes(), max_bytes=50_000_000, max_seconds=600)
    before = scrape(client)
    session = client.post("/api/v1/voice/sessions").json()
    query = httpx.QueryParams({"sender_id": session["sender_id"], "token": session["token"]})
    async with websockets.connect(live_server.replace("http://", "ws://") + f"/api/v1/voice/stream?{query}") as ws:
        for start in range(0, len(pcm), 6400):  # 0.2-s frames
            await ws.send(pcm[start : start + 6400])
            await asyncio.sleep(0.01)
        await ws.send(json.dumps({"type": "end"}))
        try:
            while True:
                await asyncio.wait_for(ws.recv(), timeout=60)
        except websockets.ConnectionClosed:
            pass
    after = scrape(client)
    key = dict(mode="stream")
    assert value(after, "banshi_asr_real_time_factor_count", **key) - value(
        before, "banshi_asr_real_time_factor_count", **key) == 1
    rtf = value(after, "banshi_asr_real_time_factor_sum", **key) - value(before, "banshi_asr_real_time_factor_sum", **key)
    assert 0 < rtf < 4
