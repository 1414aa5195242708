"""The client IP behind trusted proxies, and the per-client limits shared through the
database (SQLite) and through Redis (a throw-away redis-server)."""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import time

import pytest
from sqlalchemy import func, select

from assistant.config.settings import Settings
from assistant.security import client_limits
from assistant.security.client import client_key, parse_networks, resolve_client_ip
from assistant.security.client_limits import ClientLimiter, ClientRegistry
from assistant.storage import database
from assistant.storage.tables import RateLimitHit

DEFAULT = parse_networks("127.0.0.1")
PROXIES = parse_networks("127.0.0.1, 10.0.0.0/8, ::1")


# ------------------------------------------------------------ client address
@pytest.mark.parametrize(
    "peer, forwarded, networks, expected",
    [
        # A direct client: X-Forwarded-For is its own words, never believed.
        ("198.51.100.7", ["203.0.113.9"], DEFAULT, "198.51.100.7"),
        ("198.51.100.7", [], DEFAULT, "198.51.100.7"),
        # Behind the local proxy: the address it appended.
        ("127.0.0.1", ["203.0.113.9"], DEFAULT, "203.0.113.9"),
        # A client forging a chain: only the hop the trusted proxy wrote counts.
        ("127.0.0.1", ["1.1.1.1, 203.0.113.9"], DEFAULT, "203.0.113.9"),
        ("127.0.0.1", ["1.1.1.1", "203.0.113.9"], DEFAULT, "203.0.113.9"),
        # Two trusted proxies in a row (load balancer, then nginx).
        ("127.0.0.1", ["203.0.113.9, 10.1.2.3"], PROXIES, "203.0.113.9"),
        ("127.0.0.1", ["203.0.113.9, 10.1.2.3"], DEFAULT, "10.1.2.3"),
        # Ports and IPv6 brackets are dropped; v4-mapped v6 is v4.
        ("127.0.0.1", ["203.0.113.9:5123"], DEFAULT, "203.0.113.9"),
        ("::1", ["[2001:db8::1]:443"], PROXIES, "2001:db8::1"),
        ("::ffff:127.0.0.1", ["203.0.113.9"], DEFAULT, "203.0.113.9"),
        # Garbage from the trusted proxy: the proxy itself is the client.
        ("127.0.0.1", ["not-an-ip"], DEFAULT, "127.0.0.1"),
        # No header: the proxy is the client (e.g. local use).
        ("127.0.0.1", [], DEFAULT, "127.0.0.1"),
        # Not an address at all (test clients): kept as is.
        ("testclient", ["203.0.113.9"], DEFAULT, "testclient"),
    ],
)
def test_client_ip(peer, forwarded, networks, expected):
    assert resolve_client_ip(peer, forwarded, networks) == expected


def test_bad_trusted_proxies_setting_is_refused():
    with pytest.raises(ValueError, match="BANSHI_TRUSTED_PROXIES|not an IP"):
        Settings(trusted_proxies="127.0.0.1, localhost")
    with pytest.raises(ValueError, match="rate limit"):
        Settings(progress_ip_rate_limit="lots")


def test_client_keys_hide_the_address():
    key = client_key(b"k" * 32, "203.0.113.9")
    assert len(key) == 32 and "203" not in key
    assert key == client_key(b"k" * 32, "203.0.113.9") != client_key(b"j" * 32, "203.0.113.9")


# -------------------------------------------------------------- the database
def _db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'limits.db'}"


def test_database_limit_is_shared_and_moves(tmp_path, monkeypatch):
    url = _db(tmp_path)
    # Two processes' limiters (two gateway replicas or action servers) share the rows.
    first, second = ClientLimiter("3/minute", url), ClientLimiter("3/minute", url)
    assert first.hit("a") is None and second.hit("a") is None and first.hit("a") is None
    wait = second.hit("a")
    assert wait is not None and 1 <= wait <= 60
    assert first.retry_after("a") == pytest.approx(wait, abs=1)
    assert first.hit("b") is None  # another client is not affected
    # Refused attempts are not counted.
    with database.session_factory(url)() as session:
        assert session.execute(select(func.count(RateLimitHit.id))).scalar_one() == 4
    # A minute later the window has moved on (and old hits are deleted).
    later = database.utcnow() + dt.timedelta(seconds=61)
    monkeypatch.setattr(client_limits, "utcnow", lambda: later)
    assert first.retry_after("a") is None and first.hit("a") is None
    with database.session_factory(url)() as session:
        assert session.execute(select(func.count(RateLimitHit.id))).scalar_one() == 1


def test_registry_remembers_the_latest_client(tmp_path, monkeypatch):
    url = _db(tmp_path)
    gateway_a, gateway_b, actions = ClientRegistry(url), ClientRegistry(url), ClientRegistry(url)
    gateway_a.remember("conv1", "client1")
    assert actions.client_of("conv1") == "client1" and actions.client_of("conv2") is None
    gateway_b.remember("conv1", "client2")  # the same conversation from another address
    assert actions.client_of("conv1") == "client2"
    # Forgotten after a day without turns.
    later = database.utcnow() + dt.timedelta(seconds=client_limits.REMEMBER_SECONDS + 5)
    monkeypatch.setattr(client_limits, "utcnow", lambda: later)
    assert actions.client_of("conv1") is None
    assert actions.prune() == 1


def test_progress_limit_per_client_across_conversations(tmp_path):
    settings = Settings(data_dir=tmp_path, progress_ip_rate_limit="2/minute", secret_key="s" * 32)
    for sender in ("web-1", "web-2", "web-3"):
        client_limits.remember_client(settings, sender, "203.0.113.9")
    client_limits.remember_client(settings, "web-4", "198.51.100.7")
    assert client_limits.hit_progress_limit(settings, "web-1")[1] is None
    assert client_limits.hit_progress_limit(settings, "web-2")[1] is None
    client, wait = client_limits.hit_progress_limit(settings, "web-3")
    assert client == client_key(settings.secret(), "203.0.113.9") and wait is not None
    assert client_limits.progress_retry_after(settings, "web-1") == pytest.approx(wait, abs=1)
    assert client_limits.hit_progress_limit(settings, "web-4")[1] is None  # another address
    # A conversation the gateway never saw (WeChat, the terminal): no per-IP count.
    assert client_limits.hit_progress_limit(settings, "wx-someone") == (None, None)


# -------------------------------------------------------------------- Redis
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed (scripts/bootstrap.sh installs Debian's redis-server)"
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


def test_redis_limit_and_registry_are_shared(tmp_path, redis_url):
    url = _db(tmp_path)
    first, second = ClientLimiter("2/minute", url, redis_url), ClientLimiter("2/minute", url, redis_url)
    assert first.hit("r") is None and second.hit("r") is None
    wait = first.hit("r")
    assert wait is not None and 1 <= wait <= 60 and second.retry_after("r") is not None
    assert second.hit("other") is None
    gateway, actions = ClientRegistry(url, redis_url), ClientRegistry(url, redis_url)
    gateway.remember("conv-r", "client-r")
    assert actions.client_of("conv-r") == "client-r"
    # Nothing went to the database.
    with database.session_factory(url)() as session:
        assert session.execute(select(func.count(RateLimitHit.id))).scalar_one() == 0
