"""Retraining from the admin catalog page: POST /api/v1/admin/catalog/retrain starts one
training process in the background, GET shows its progress on every replica, a second
start is refused (409) while one runs, the run ends succeeded (with the model path) or
failed (with the exit code), a run whose process or gateway is gone is marked failed,
and every start is audited. The training command is tests/retrain_script.py (a real
process printing Rasa-like progress; BANSHI_RETRAIN_COMMAND), never a real training.
Two apps on one database stand for two gateway replicas. SQLite or PostgreSQL
(BANSHI_TEST_BACKEND). Admin-only refusals: tests/integration/test_auth.py."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from assistant.api.app import create_app
from assistant.api.routers.catalog_admin import ACTION_RETRAIN, RETRAIN_RUNNING
from assistant.security import audit
from assistant.services import retrain
from assistant.storage import training_tables
from assistant.storage.database import session_factory, utcnow
from tests.conftest import ROOT, isolated_settings
from tests.staff import staff_client

API = "/api/v1/admin/catalog/retrain"
PASSWORD = "retrain-admin-password-1"
SCRIPT = ROOT / "tests" / "retrain_script.py"
WAIT_SECONDS = 20.0


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("retrain_work")


@pytest.fixture(scope="module")
def release(work) -> Path:
    """The file the held training waits for."""
    return work / "release"


@pytest.fixture(scope="module")
def model(work) -> Path:
    return work / "banshi-retrained.tar.gz"


@pytest.fixture(scope="module")
def app_settings(settings, tmp_path_factory, release, model):
    command = f"{sys.executable} {SCRIPT} --hold {release} --model {model}"
    return isolated_settings(settings, tmp_path_factory.mktemp("retrain"), retrain_command=command)


@pytest.fixture(scope="module")
def replica_a(app_settings):
    """A gateway whose training waits for the release file, then succeeds."""
    application = create_app(app_settings, load_model=False)
    with TestClient(application):
        yield application


@pytest.fixture(scope="module")
def replica_b(app_settings):
    """Another gateway on the same database whose training fails (exit code 3)."""
    failing = app_settings.copy(update={"retrain_command": f"{sys.executable} {SCRIPT} --exit 3"})
    application = create_app(failing, load_model=False)
    with TestClient(application):
        yield application


def login(app):
    return staff_client(app, "admin", PASSWORD, prefix="retrain")


@pytest.fixture(scope="module")
def admin_a(replica_a):
    return login(replica_a)


@pytest.fixture(scope="module")
def admin_b(replica_b):
    return login(replica_b)


def wait_for(client: TestClient, check, what: str) -> dict:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        state = client.get(API).json()
        if check(state):
            return state
        assert time.monotonic() < deadline, f"no {what} within {WAIT_SECONDS} s: {state}"
        time.sleep(0.1)


def finished(state: dict) -> bool:
    return state["status"] in (training_tables.STATUS_SUCCEEDED, training_tables.STATUS_FAILED)


def audit_rows(app) -> list:
    return audit.list_audit(app.state.settings.db_url, limit=50, action=ACTION_RETRAIN)


def test_a_run_shows_its_progress_on_every_replica_refuses_a_second_and_succeeds(
    admin_a, admin_b, replica_a, release, model
):
    client_a, name_a = admin_a
    client_b, name_b = admin_b
    assert client_a.get(API).json() == {"status": training_tables.STATUS_IDLE}
    release.unlink(missing_ok=True)

    started = client_a.post(API)
    assert started.status_code == 202, started.text
    run = started.json()
    assert run["status"] == training_tables.STATUS_RUNNING and run["started_by"] == f"operator:{name_a}"
    assert run["started_at"] and run["finished_at"] is None

    # The other replica reads the same progress from the database: the held script
    # has printed its component and its tqdm bar (redrawn with \r) up to 100 %.
    state = wait_for(client_b, lambda s: s.get("progress") == 100, "progress")
    assert state["id"] == run["id"] and state["status"] == training_tables.STATUS_RUNNING
    assert state["phase"] == "训练组件 DIETClassifier" and state["last_line"].startswith("Epochs:  100%")

    for client in (client_a, client_b):  # a second start, on this replica or another: refused
        refused = client.post(API)
        assert refused.status_code == 409 and refused.json()["detail"] == RETRAIN_RUNNING

    release.touch()
    done = wait_for(client_b, finished, "end")
    assert done["status"] == training_tables.STATUS_SUCCEEDED, done
    assert done["exit_code"] == 0 and done["model_path"] == str(model) and model.read_bytes() == b"model"
    assert done["phase"] == retrain.PHASE_DONE and done["progress"] == 100
    assert done["finished_at"] >= done["started_at"] and done["error"] is None

    rows = audit_rows(replica_a)
    assert [(r["actor"], r["subject"], r["result"]) for r in rows if r["result"] == "ok"] == [
        (f"operator:{name_a}", f"run:{run['id']}", "ok")
    ]
    refusals = sorted(r["actor"] for r in rows if r["result"] == "refused")
    assert refusals == sorted([f"operator:{name_a}", f"operator:{name_b}"])


def test_a_failing_training_is_marked_failed_with_its_exit_code(admin_b, replica_a):
    client, _ = admin_b
    started = client.post(API)
    assert started.status_code == 202, started.text
    done = wait_for(client, finished, "end")
    assert done["id"] == started.json()["id"] and done["status"] == training_tables.STATUS_FAILED
    assert done["exit_code"] == 3 and "退出码 3" in done["error"] and done["model_path"] is None
    assert done["last_line"] == "rasa.train failed: simulated"
    assert client.post(API).status_code == 202  # a failed run does not block the next
    wait_for(client, finished, "end")


def test_a_training_process_that_dies_is_marked_failed(admin_a, replica_a, release):
    client, _ = admin_a
    release.unlink(missing_ok=True)
    assert client.post(API).status_code == 202
    wait_for(client, lambda s: s.get("progress") == 100, "progress")
    run = training_tables.latest_run(replica_a.state.settings.db_url)
    assert run is not None and run.pid and run.host == retrain.HOST
    os.kill(run.pid, signal.SIGKILL)
    done = wait_for(client, finished, "end")
    assert done["status"] == training_tables.STATUS_FAILED and done["exit_code"] == -signal.SIGKILL
    release.touch()


def test_a_run_whose_gateway_is_gone_is_marked_failed_and_does_not_block(admin_a, admin_b, replica_a):
    """A running row nobody beats (its gateway died with its watcher): failed on the next read."""
    url = replica_a.state.settings.db_url
    run_id = training_tables.start_run(url, "operator:gone", "another-host")
    assert run_id is not None
    stale = utcnow() - dt.timedelta(seconds=retrain.STALE_SECONDS + 5)
    with session_factory(url)() as session:
        session.execute(update(training_tables.TrainingRun).where(training_tables.TrainingRun.id == run_id)
                        .values(heartbeat_at=stale))
        session.commit()
    client, _ = admin_b
    state = client.get(API).json()
    assert state["id"] == run_id and state["status"] == training_tables.STATUS_FAILED
    assert state["error"] == retrain.GONE and state["finished_at"]
    # a fresh running row is not failed: its heartbeat is recent
    fresh = training_tables.start_run(url, "operator:alive", "another-host")
    assert fresh is not None and client.get(API).json()["status"] == training_tables.STATUS_RUNNING
    assert client.post(API).status_code == 409
    training_tables.finish_run(url, fresh, training_tables.STATUS_FAILED, error="test")


def test_the_catalog_page_has_the_retrain_button(admin_a):
    client, _ = admin_a
    page = client.get("/admin/catalog")
    assert page.status_code == 200 and 'id="retrain"' in page.text and 'id="retrain-status"' in page.text
    script = client.get("/static/admin/catalog.js")
    assert script.status_code == 200 and "/retrain" in script.text


def test_a_gateway_that_stops_ends_its_training_and_marks_it_failed(settings, tmp_path):
    held = tmp_path / "never"
    own = isolated_settings(settings, tmp_path / "data", retrain_command=f"{sys.executable} {SCRIPT} --hold {held}")
    application = create_app(own, load_model=False)
    with TestClient(application):
        client, _ = login(application)
        assert client.post(API).status_code == 202
        wait_for(client, lambda s: s.get("progress") == 100, "progress")
        pid = training_tables.latest_run(own.db_url).pid
    run = training_tables.latest_run(own.db_url)  # the lifespan's end stopped the process
    assert run.status == training_tables.STATUS_FAILED and run.error == retrain.STOPPED
    assert run.exit_code == -signal.SIGTERM
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
