"""/healthz probes the action server once per BANSHI_HEALTH_PROBE_TTL_S per process:
concurrent calls share one probe, and a stopped action server shows once the TTL passes.
The "action server" here is a real HTTP server on a local port that counts its probes."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fastapi.testclient import TestClient

from assistant.api.app import create_app
from tests.conftest import isolated_settings

CALLS = 8
PROBE_DELAY_S = 0.4  # a slow action server: every concurrent call arrives during the probe


class ActionHealth:
    """``GET /health`` answered 200 after ``delay_s``, counted; stopped with :meth:`stop`."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.probes = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                owner.probes += 1
                time.sleep(delay_s)
                self.send_response(200 if self.path == "/health" else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()  # connections refused from now on
        self._thread.join(5)


def test_concurrent_healthz_calls_share_one_probe(settings, tmp_path):
    action = ActionHealth(delay_s=PROBE_DELAY_S)
    own = isolated_settings(settings, tmp_path, action_endpoint=action.endpoint, health_probe_ttl_s=30)
    try:
        with TestClient(create_app(own, load_model=False)) as client, ThreadPoolExecutor(CALLS) as pool:
            bodies = list(pool.map(lambda _: client.get("/healthz").json(), range(CALLS)))
            assert all(body["action_server_reachable"] is True for body in bodies)
            assert action.probes == 1
            # Within the TTL: the same result, its age said, no new probe.
            later = client.get("/healthz").json()
            assert later["action_server_reachable"] is True and action.probes == 1
            assert 0 < later["action_server_checked_s_ago"] < 30
    finally:
        action.stop()


def test_a_stopped_action_server_is_reported_once_the_ttl_passes(settings, tmp_path):
    ttl = 2.0
    action = ActionHealth()
    own = isolated_settings(settings, tmp_path, action_endpoint=action.endpoint, health_probe_ttl_s=ttl)
    with TestClient(create_app(own, load_model=False)) as client:
        first = client.get("/healthz").json()
        probed = time.monotonic()
        assert first["action_server_reachable"] is True and first["action_server_checked_s_ago"] < 1
        action.stop()
        cached = client.get("/healthz").json()
        if time.monotonic() - probed < ttl:  # a loaded machine may take longer to get here
            assert cached["action_server_reachable"] is True and action.probes == 1
        time.sleep(max(0.0, ttl - (time.monotonic() - probed)) + 0.1)
        after = client.get("/healthz")
        assert after.status_code == 503
        assert after.json()["action_server_reachable"] is False
        assert after.json()["action_server_checked_s_ago"] < ttl


def test_a_zero_ttl_probes_every_call(settings, tmp_path):
    action = ActionHealth()
    own = isolated_settings(settings, tmp_path, action_endpoint=action.endpoint, health_probe_ttl_s=0)
    try:
        with TestClient(create_app(own, load_model=False)) as client:
            for _ in range(3):
                assert client.get("/healthz").json()["action_server_reachable"] is True
            assert action.probes == 3
    finally:
        action.stop()
