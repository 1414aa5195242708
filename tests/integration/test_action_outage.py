"""While the action server is unreachable (not started, killed, hung) the gateway still
answers: item questions from its own catalog with the action's exact reply, other turns
with a clear "briefly unavailable" message and a person; never "busy". Real action
servers (``banshi actions``) on their own ports, killed with SIGKILL or stopped with
SIGSTOP; no mocks.

The first tests call Rasa's own ``RemoteAction`` through the gateway's endpoint (no model
needed); the last ones drive the real gateway with the real model over HTTP.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

import aiohttp
import httpx
import pytest
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException

from assistant.cli.common import start_action_server, wait_http
from assistant.dialogue.action_link import ActionEndpoint
from assistant.services import degraded
from assistant.services.conversation import NO_REPLY
from knowledge.context import HUMAN_BUTTON
from tests.conftest import ROOT, free_port, serve_in_thread

DOMAIN = Domain.load(str(ROOT / "domain.yml"))
NLG = TemplatedNaturalLanguageGenerator(DOMAIN.responses)
START_S = 60
# A refused call, or any call while the breaker is open, costs no more than this.
FAST_S = 1.5
# The breaker notices the server's return within its probe interval (3 s) and a margin.
RECOVERY_S = 12


def start_actions(settings, port: int) -> subprocess.Popen:
    proc = start_action_server(settings.copy(update={"action_port": port}))
    if not wait_http(f"http://127.0.0.1:{port}/health", START_S, proc):
        proc.kill()
        pytest.fail("action server did not start")
    return proc


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def webhook(port: int) -> str:
    return f"http://127.0.0.1:{port}/webhook"


# --- the gateway's endpoint, called by Rasa's RemoteAction (no model) -------------------


def tracker_for(
    text: str,
    intent: str,
    items: List[Tuple[str, float]],
    slots: Optional[Dict[str, Any]] = None,
    scope: Optional[Dict[str, float]] = None,
) -> DialogueStateTracker:
    parse = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.95},
        "entities": [],
        "service_items": [{"id": i, "name": i, "score": s, "named": True} for i, s in items],
        "service_scope": scope or {},
        "intent_ranking": [{"name": intent, "confidence": 0.95}],
    }
    events = [ActionExecuted("action_listen")]
    events += [SlotSet(name, value) for name, value in (slots or {}).items()]
    events.append(UserUttered(text, parse["intent"], [], parse))
    return DialogueStateTracker.from_events("outage-test", events, slots=DOMAIN.slots)


async def run_action(endpoint: ActionEndpoint, name: str, tracker: DialogueStateTracker) -> List[Dict[str, Any]]:
    """What Rasa gets from the action: its events (replies and slots), without timestamps."""
    events = await RemoteAction(name, endpoint).run(CollectingOutputChannel(), NLG, tracker, DOMAIN)
    found = []
    for event in events:
        data = event.as_dict()
        data.pop("timestamp", None)
        found.append(data)
    return found


# (action, tracker arguments): item questions, a follow-up, a choice, not covered, out of scope.
CASES = [
    ("action_answer", ("办护照要带什么材料", "ask_materials", [("passport", 0.94)])),
    ("action_answer", ("社保卡补办要多少钱", "ask_fee", [("social_security_card_reissue", 0.99)])),
    ("action_answer", ("多久能办好", "ask_time_limit", [], {"service_item": "passport"})),
    ("action_answer", ("在哪里办居住证", "ask_location", [("residence_permit", 0.9), ("hukou_move_in", 0.5)])),
    ("action_answer", ("那护照呢", "ask_service", [("passport", 0.9)],
                       {"service_item": "social_security_card", "question_type": "materials"})),
    ("action_answer", ("公积金", "ask_service", [("housing_fund_withdrawal", 0.80), ("housing_fund_loan", 0.78)])),
    ("action_answer", ("要带什么", "ask_materials", [])),
    ("action_out_of_scope", ("渔船登记证书怎么补办", "out_of_scope", [], None, {"uncovered": 0.95})),
    ("action_out_of_scope", ("今天天气怎么样", "out_of_scope", [])),
    ("action_out_of_scope", ("我要办护照", "out_of_scope", [("passport", 0.9)])),
    ("action_default_ask_affirmation", ("护照那个东西", "ask_materials", [("passport", 0.5)])),
    ("action_default_ask_affirmation", ("嗯嗯嗯", "greet", [])),
]


@pytest.fixture(scope="module")
def actions_port(settings) -> Iterator[Tuple[int, subprocess.Popen]]:
    port = free_port()
    proc = start_actions(settings, port)
    yield port, proc
    kill(proc)


def dead_endpoint(catalog) -> ActionEndpoint:
    endpoint = ActionEndpoint(url=webhook(free_port()))
    degraded.install(endpoint.link, lambda: catalog)
    return endpoint


async def test_the_gateway_answers_like_the_action_server(actions_port, catalog):
    live = ActionEndpoint(url=webhook(actions_port[0]))
    dead = dead_endpoint(catalog)
    try:
        for name, args in CASES:
            expected = await run_action(live, name, tracker_for(*args))
            assert expected, (name, args)
            assert await run_action(dead, name, tracker_for(*args)) == expected, (name, args)
        assert live.link.snapshot()["fallback_answers"] == 0
        assert dead.link.snapshot()["fallback_answers"] == len(CASES)
        assert dead.link.snapshot()["reachable"] is False and dead.link.outages == 1
    finally:
        await live.shutdown()
        await dead.shutdown()


async def test_an_unreachable_server_fails_fast_and_is_noticed_when_back(settings, catalog):
    endpoint = dead_endpoint(catalog)
    port = int(endpoint.url.rsplit(":", 1)[1].split("/")[0])
    progress = tracker_for("ZW20251102004", "inform", [])
    proc = None
    try:
        for _ in range(3):  # refused, then not even tried
            started = time.monotonic()
            with pytest.raises(RasaException):
                await run_action(endpoint, "action_inform", progress)
            assert time.monotonic() - started < FAST_S
        assert endpoint.link.snapshot()["unavailable_answers"] == 3
        assert endpoint.link.outages == 1

        proc = start_actions(settings, port)
        deadline = time.monotonic() + RECOVERY_S
        while not endpoint.link.reachable and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert endpoint.link.reachable, "the breaker did not notice the server's return"
        question = tracker_for("办护照要带什么材料", "ask_materials", [("passport", 0.94)])
        answered = await run_action(endpoint, "action_answer", question)
        assert endpoint.link.fallback_answers == 0  # the action server answered

        kill(proc)  # killed: the pooled connection breaks, the next call answers locally
        started = time.monotonic()
        assert await run_action(endpoint, "action_answer", question) == answered
        assert time.monotonic() - started < FAST_S
        assert endpoint.link.fallback_answers == 1 and endpoint.link.outages == 2
    finally:
        if proc is not None:
            kill(proc)
        await endpoint.shutdown()


async def test_a_hung_server_costs_one_timeout(actions_port, catalog):
    port, proc = actions_port
    endpoint = ActionEndpoint(url=webhook(port))
    degraded.install(endpoint.link, lambda: catalog)
    endpoint.call_timeout = aiohttp.ClientTimeout(total=1.0, sock_connect=1.0)
    question = tracker_for("社保卡补办要多少钱", "ask_fee", [("social_security_card_reissue", 0.99)])
    expected = await run_action(endpoint, "action_answer", question)
    os.kill(proc.pid, signal.SIGSTOP)  # accepts connections, never answers
    try:
        started = time.monotonic()
        assert await run_action(endpoint, "action_answer", question) == expected
        assert 0.9 < time.monotonic() - started < 6  # the call's timeout, then one /health probe
        started = time.monotonic()
        assert await run_action(endpoint, "action_answer", question) == expected
        assert time.monotonic() - started < 1.5
        assert endpoint.link.snapshot()["reachable"] is False
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    deadline = time.monotonic() + RECOVERY_S
    while not endpoint.link.reachable and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert endpoint.link.reachable
    await endpoint.shutdown()


async def test_a_proxy_without_live_action_servers_counts_as_unreachable(settings, catalog, tmp_path):
    """Replicas reach their action servers through nginx, which answers 502 when none is up."""
    from assistant.cli.instances import NginxInstance
    from assistant.cli.replicas import nginx_config

    proxy_port, upstream = free_port(), free_port()
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    os.chmod(tmp_path, 0o755)
    config = nginx_config(prefix, "127.0.0.1", free_port(), [free_port()], proxy_port, [upstream])
    nginx = NginxInstance(prefix, config)
    nginx.start(proxy_port)
    endpoint = ActionEndpoint(url=webhook(proxy_port))
    degraded.install(endpoint.link, lambda: catalog)
    question = tracker_for("办护照要带什么材料", "ask_materials", [("passport", 0.94)])
    proc = None
    try:
        local = await run_action(endpoint, "action_answer", question)
        assert endpoint.link.reachable is False and endpoint.link.fallback_answers == 1
        proc = start_actions(settings, upstream)
        deadline = time.monotonic() + RECOVERY_S
        while not endpoint.link.reachable and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert endpoint.link.reachable, "the breaker did not notice the server behind the proxy"
        assert await run_action(endpoint, "action_answer", question) == local
        assert endpoint.link.fallback_answers == 1
    finally:
        if proc is not None:
            kill(proc)
        await endpoint.shutdown()
        nginx.stop()


# --- the real gateway with the real model ---------------------------------------------

ITEM_QUESTIONS = ["办护照要带什么材料", "社保卡补办要多少钱", "身份证丢了怎么补办"]
FOLLOW_UP = ("我想办社保卡", "那要带什么材料")
PROGRESS = "我的护照办好了没"


def chat(client: httpx.Client, sender: str, text: str) -> Dict[str, Any]:
    started = time.monotonic()
    reply = client.post("/api/v1/chat", json={"sender_id": sender, "text": text, "channel": "web"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    body["seconds"] = time.monotonic() - started
    assert all(m.get("text") != NO_REPLY for m in body["messages"]), body
    return body


def same_reply(body: Dict[str, Any]) -> Dict[str, Any]:
    return {k: body.get(k) for k in ("messages", "intent", "items", "item", "answer")}


def assert_unavailable(body: Dict[str, Any]) -> None:
    assert body["answer"] == degraded.ANSWER_UNAVAILABLE and body["item"] is None
    last = body["messages"][-1]
    assert "暂时不可用" in last["text"] and "转人工" in last["text"]
    assert last["buttons"] == [HUMAN_BUTTON]


@pytest.fixture(scope="module")
def outage_gateway(settings, trained_model, tmp_path_factory) -> Iterator[Tuple[httpx.Client, Any, int]]:
    """A gateway whose action server (on its own port) is not running at first."""
    from assistant.api.app import create_app

    port = free_port()
    app = create_app(
        settings.copy(update={"action_endpoint": webhook(port), "data_dir": tmp_path_factory.mktemp("outage")})
    )
    with serve_in_thread(app, start_timeout=180) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, app, port


@pytest.fixture(scope="module")
def answers_while_down(outage_gateway) -> Dict[str, Dict[str, Any]]:
    """The replies of a gateway that has never reached its action server."""
    client, _, _ = outage_gateway
    chat(client, "down-warm-up", "你好")  # the model's first turn is slow
    found = {text: chat(client, f"down-{i}", text) for i, text in enumerate(ITEM_QUESTIONS)}
    chat(client, "down-follow", FOLLOW_UP[0])
    found[FOLLOW_UP[1]] = chat(client, "down-follow", FOLLOW_UP[1])
    found[PROGRESS] = chat(client, "down-progress", PROGRESS)
    found["你好"] = chat(client, "down-greet", "你好")
    found["转人工"] = chat(client, "down-human", "转人工")
    return found


def wait_link(app: Any, reachable: bool) -> None:
    link = app.state.runtime.action_link
    deadline = time.monotonic() + RECOVERY_S
    while link.reachable != reachable and time.monotonic() < deadline:
        time.sleep(0.2)
    assert link.reachable == reachable



@pytest.mark.model
def test_a_gateway_without_its_action_server_still_answers(outage_gateway, answers_while_down):
    _, app, _ = outage_gateway
    materials = answers_while_down["办护照要带什么材料"]
    assert materials["item"] == "passport" and materials["answer"] == "materials"
    assert "办理【普通护照签发】需要准备" in materials["messages"][0]["text"]
    assert materials["messages"][0]["buttons"]
    fee = answers_while_down["社保卡补办要多少钱"]
    assert fee["item"] == "social_security_card_reissue" and fee["answer"] == "fee"
    # The fallback's slots are kept: a follow-up is about the same item.
    follow_up = answers_while_down[FOLLOW_UP[1]]
    assert follow_up["item"] == "social_security_card" and follow_up["answer"] == "materials"
    assert_unavailable(answers_while_down[PROGRESS])
    assert "办件进度查询" in answers_while_down[PROGRESS]["messages"][-1]["text"]
    assert_unavailable(answers_while_down["转人工"])
    assert answers_while_down["你好"]["answer"] == "smalltalk"  # a response without an action
    seconds = {text: round(body["seconds"], 2) for text, body in answers_while_down.items()}
    assert max(seconds.values()) < 5, seconds
    snapshot = app.state.runtime.action_link.snapshot()
    assert snapshot["reachable"] is False and snapshot["fallback_answers"] >= len(ITEM_QUESTIONS) + 2
    assert snapshot["unavailable_answers"] >= 2


@pytest.mark.model
def test_answers_are_the_same_when_the_action_server_runs_dies_and_returns(
    settings, outage_gateway, answers_while_down
):
    client, app, port = outage_gateway
    proc = start_actions(settings, port)
    try:
        wait_link(app, True)
        counted = app.state.runtime.action_link.fallback_answers
        for i, text in enumerate(ITEM_QUESTIONS):
            up = chat(client, f"up-{i}", text)
            assert same_reply(up) == same_reply(answers_while_down[text]), text
        chat(client, "up-follow", FOLLOW_UP[0])
        assert same_reply(chat(client, "up-follow", FOLLOW_UP[1])) == same_reply(answers_while_down[FOLLOW_UP[1]])
        assert app.state.runtime.action_link.fallback_answers == counted  # the action server answered
        assert chat(client, "up-progress", PROGRESS)["answer"] == "progress"

        kill(proc)  # mid-conversation: the same conversation goes on
        chat(client, "kill-follow", FOLLOW_UP[0])
        after = chat(client, "kill-follow", FOLLOW_UP[1])
        assert same_reply(after) == same_reply(answers_while_down[FOLLOW_UP[1]])
        for i, text in enumerate(ITEM_QUESTIONS):
            body = chat(client, f"kill-{i}", text)
            assert same_reply(body) == same_reply(answers_while_down[text]), text
            assert body["seconds"] < 5
        assert_unavailable(chat(client, "kill-progress", PROGRESS))
        assert app.state.runtime.action_link.snapshot()["reachable"] is False

        proc = start_actions(settings, port)  # back, without restarting the gateway
        wait_link(app, True)
        counted = app.state.runtime.action_link.fallback_answers
        assert chat(client, "back-progress", PROGRESS)["answer"] == "progress"
        body = chat(client, "back-0", ITEM_QUESTIONS[0])
        assert same_reply(body) == same_reply(answers_while_down[ITEM_QUESTIONS[0]])
        assert app.state.runtime.action_link.fallback_answers == counted
    finally:
        kill(proc)
