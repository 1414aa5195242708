"""A retrained model reaches the real gateway without a restart: a succeeded training
run pointing at a model archive (a copy of the trained model; nothing is trained here)
is taken up within seconds — the admin model route and /healthz name the new file, the
run shows the replica as loaded, a conversation started on the old model goes on — and
a broken or missing archive keeps the model in use and is reported in Chinese on the
run. A replica set not to follow retraining reports "kept". SQLite or PostgreSQL
(BANSHI_TEST_BACKEND). Admin-only refusals: tests/integration/test_auth.py."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from assistant.dialogue.runtime import AssistantRuntime, ModelNotFound
from assistant.services import model_live
from assistant.storage import model_tables, training_tables
from knowledge.catalog import load_catalog
from tests.conftest import isolated_settings
from tests.integration.test_metrics import scrape, value
from tests.staff import live_staff

pytestmark = pytest.mark.model

API = "/api/v1/admin/catalog"
PASSWORD = "hotload-admin-password-1"
TAKEN_UP_WITHIN_S = 30.0  # measured 4-6 s (2-s poll, 3-s load and check) on 2 busy cores


@pytest.fixture(scope="module")
def admin(settings, live_server):
    with live_staff(live_server, settings.db_url, "admin", PASSWORD, prefix="hotload") as client:
        yield client


def record_run(url: str, model_path: Path) -> int:
    """A finished training run as the retrainer records it (succeeded, with its model)."""
    run_id = training_tables.start_run(url, "operator:hotload-test", "test-host")
    assert run_id is not None
    assert training_tables.finish_run(url, run_id, training_tables.STATUS_SUCCEEDED, exit_code=0,
                                      model_path=str(model_path))
    return run_id


async def load_while_ticking(watcher: model_live.ModelWatcher) -> int:
    """``watcher.load_at_start()`` with another task ticking on the event loop meanwhile;
    the ticks counted (none if the database read or the model load blocked the loop)."""
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    ticker = asyncio.get_running_loop().create_task(tick())
    try:
        await watcher.load_at_start()
    finally:
        ticker.cancel()
    return ticks


def wait_for(client: httpx.Client, path: str, check, what: str) -> dict:
    deadline = time.monotonic() + TAKEN_UP_WITHIN_S
    while True:
        state = client.get(path).json()
        if check(state):
            return state
        assert time.monotonic() < deadline, f"no {what} within {TAKEN_UP_WITHIN_S} s: {state}"
        time.sleep(0.2)


def chat(client: httpx.Client, sender: str, text: str) -> str:
    reply = client.post("/api/v1/chat", json={"sender_id": sender, "text": text})
    assert reply.status_code == 200, reply.text
    return "\n".join(m.get("text") or "" for m in reply.json()["messages"])


def replica_outcome(state: dict, status: str) -> list:
    return [r for r in state.get("replicas", []) if r["status"] == status]


def test_a_retrained_model_is_taken_up_within_seconds_and_conversations_go_on(
    admin, settings, trained_model, tmp_path_factory
):
    before = admin.get(f"{API}/model").json()
    assert before["model_path"] and before["follow_retrain"] is True and before["model_id"]
    sender = f"hotload-{uuid.uuid4().hex[:10]}"
    assert "护照" in chat(admin, sender, "我想办护照")

    copy = tmp_path_factory.mktemp("hotload") / f"banshi-hotload{uuid.uuid4().hex[:6]}.tar.gz"
    shutil.copyfile(trained_model, copy)
    # A conversation goes on while the new model loads (seconds): every turn is answered
    # from the conversation's context (the tracker read through the store in use).
    fee = load_catalog().records["passport"].fees.split("；")[0]
    during: list = []
    loading = threading.Event()

    def talk() -> None:
        with httpx.Client(base_url=str(admin.base_url), timeout=60) as own:
            while not loading.is_set():
                reply = own.post("/api/v1/chat", json={"sender_id": sender, "text": "要多少钱"})
                during.append((reply.status_code, fee in reply.text))

    talker = threading.Thread(target=talk)
    talker.start()
    started = time.monotonic()
    try:
        run_id = record_run(settings.db_url, copy)
        after = wait_for(admin, f"{API}/model", lambda s: s["model_path"] == str(copy), "new model in use")
    finally:
        loading.set()
        talker.join(timeout=60)
    taken_up = time.monotonic() - started
    assert len(during) >= 3 and all(ok == (200, True) for ok in during), during
    assert after["run_id"] == run_id and after["swaps"] == before["swaps"] + 1 and after["model_id"]
    assert after["model"] == copy.name and after["last_failure"] is None
    print(f"model taken up {taken_up:.1f} s after the run was recorded (load and check {after['load_seconds']} s)")

    run = wait_for(admin, f"{API}/retrain", lambda s: replica_outcome(s, "loaded"), "replica report")
    assert run["id"] == run_id and run["model_path"] == str(copy)
    assert [r["replica"] for r in run["replicas"]] == [after["replica"]] and run["replicas"][0]["error"] is None
    health = admin.get("/healthz").json()
    assert health["model"] == copy.name and health["model_loaded"] is True

    # The conversation started on the old model goes on on the new one (same tracker database).
    # "要多少钱" names no item: answered with the passport's fee only from the conversation's context.
    assert fee in chat(admin, sender, "要多少钱")


def test_a_broken_or_missing_model_keeps_the_model_in_use_and_is_reported(
    admin, settings, tmp_path_factory
):
    in_use = admin.get(f"{API}/model").json()
    failed_before = value(scrape(admin), "banshi_model_loads_total", outcome="failed")
    broken = tmp_path_factory.mktemp("hotload-broken") / "banshi-broken.tar.gz"
    broken.write_bytes(b"\x1f\x8b not really a model archive")
    for path, expected in ((broken, "新模型无法加载"), (broken.with_name("banshi-gone.tar.gz"), model_live.MISSING)):
        run_id = record_run(settings.db_url, path)
        run = wait_for(admin, f"{API}/retrain", lambda s: replica_outcome(s, "failed"), "failure report")
        assert run["id"] == run_id
        [failure] = run["replicas"]
        assert failure["error"].startswith(expected) and failure["error"].endswith("本网关继续使用原模型")
        state = admin.get(f"{API}/model").json()
        assert state["model_path"] == in_use["model_path"] and state["swaps"] == in_use["swaps"]
        assert state["last_failure"]["run_id"] == run_id and state["last_failure"]["error"] == failure["error"]
        assert "护照" in chat(admin, f"hotload-{uuid.uuid4().hex[:10]}", "我想办护照")
    time.sleep(settings.model_poll_seconds * 2)  # a failed model is not tried again
    assert admin.get(f"{API}/model").json()["swaps"] == in_use["swaps"]
    assert value(scrape(admin), "banshi_model_loads_total", outcome="failed") == failed_before + 2  # /metrics


def test_a_replica_set_not_to_follow_keeps_its_model_and_says_so(settings, trained_model, tmp_path):
    own = isolated_settings(settings, tmp_path / "data", model_follow_retrain=False, port=18123)
    runtime = AssistantRuntime(own)  # not loaded: a replica that does not follow never loads
    watcher = model_live.ModelWatcher(SimpleNamespace(state=SimpleNamespace(runtime=runtime)), own)
    assert asyncio.run(watcher.refresh()) is False  # no run yet
    run_id = record_run(own.db_url, trained_model)
    assert asyncio.run(watcher.refresh()) is False
    [kept] = model_tables.loads_of(own.db_url, run_id)
    assert kept["status"] == model_tables.LOAD_KEPT and kept["error"] == model_live.KEPT
    assert kept["replica"].endswith(":18123") and runtime.agent is None and watcher.model_run is None
    # Seen once: the next polls neither load nor write again.
    assert asyncio.run(watcher.refresh()) is False and len(model_tables.loads_of(own.db_url, run_id)) == 1


def test_a_run_whose_model_is_already_in_use_is_reported_loaded_without_loading(settings, trained_model, tmp_path):
    own = isolated_settings(settings, tmp_path / "data", port=18124)
    runtime = AssistantRuntime(own)
    runtime.model_path = Path(trained_model)  # the start model (e.g. a training that had nothing to do)
    watcher = model_live.ModelWatcher(SimpleNamespace(state=SimpleNamespace(runtime=runtime)), own)
    run_id = record_run(own.db_url, trained_model)
    assert asyncio.run(watcher.refresh()) is False
    [loaded] = model_tables.loads_of(own.db_url, run_id)
    assert loaded["status"] == model_tables.LOAD_LOADED and runtime.swaps == 0 and watcher.model_run == run_id


def test_a_replica_restarted_with_an_older_pinned_model_starts_with_the_retrained_one(
    settings, trained_model, tmp_path
):
    """`banshi run --replicas` pins the start model for its children; a child restarted
    after a retraining (its pinned model possibly pruned since) starts with the run's model."""
    retrained = tmp_path / "banshi-retrained.tar.gz"
    shutil.copyfile(trained_model, retrained)  # newer than the pinned one
    own = isolated_settings(settings, tmp_path / "data", tracker_store="memory", port=18125,
                            model_path=tmp_path / "banshi-pruned.tar.gz")
    run_id = record_run(own.db_url, retrained)
    runtime = AssistantRuntime(own)
    watcher = model_live.ModelWatcher(SimpleNamespace(state=SimpleNamespace(runtime=runtime)), own)
    assert asyncio.run(load_while_ticking(watcher)) >= 5  # the loop kept running while the model loaded
    assert runtime.model_path == retrained and runtime.ready
    assert asyncio.run(watcher.refresh()) is False  # already in use: reported, not loaded again
    assert model_tables.loads_of(own.db_url, run_id)[0]["status"] == model_tables.LOAD_LOADED
    # Not following: the pinned model, even if gone (the start fails as it always did).
    pinned = AssistantRuntime(own.copy(update={"model_follow_retrain": False}))
    with pytest.raises(ModelNotFound):
        asyncio.run(model_live.ModelWatcher(SimpleNamespace(state=SimpleNamespace(runtime=pinned)),
                                            pinned.settings).load_at_start())


def test_a_replica_started_with_a_newer_model_never_swaps_in_an_older_run(settings, trained_model, tmp_path):
    """A release trained since the last retraining: a restarted replica starts with it,
    and its polls do not bring the older retrained model back."""
    older = tmp_path / "banshi-retrained-monday.tar.gz"
    shutil.copyfile(trained_model, older)
    newer = tmp_path / "banshi-release-wednesday.tar.gz"
    shutil.copyfile(trained_model, newer)
    os.utime(older, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    own = isolated_settings(settings, tmp_path / "data", tracker_store="memory", port=18126, model_path=newer)
    run_id = record_run(own.db_url, older)
    runtime = AssistantRuntime(own)
    watcher = model_live.ModelWatcher(SimpleNamespace(state=SimpleNamespace(runtime=runtime)), own)
    asyncio.run(watcher.load_at_start())
    assert runtime.model_path == newer and watcher.seen_run == run_id
    assert asyncio.run(watcher.refresh()) is False
    assert runtime.model_path == newer and runtime.swaps == 0
