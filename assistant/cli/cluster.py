"""``banshi run --replicas`` as a child process, for the replica tests and the scale bench:
start it on free ports against given PostgreSQL and Redis URLs, wait until every gateway
is ready, read the supervisor's state, stop it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import httpx

from assistant.cli.instances import free_port_block
from assistant.config.processes import STATUS_FILE
from assistant.config.settings import PROJECT_ROOT

START_TIMEOUT_S = 300.0


class ReplicaCluster:
    """N gateways and M action servers behind nginx (``url``; ``gateway(i)`` direct)."""

    def __init__(
        self,
        data_dir: Path,
        database_url: str,
        redis_url: str,
        model: Path,
        replicas: int = 2,
        actions: int = 2,
        env: Optional[Dict[str, str]] = None,
    ):
        self.data_dir = Path(data_dir)
        self.database_url = database_url
        self.replicas = replicas
        self.actions = actions
        self.port = free_port_block(replicas + 1)
        self.action_port = free_port_block(actions + 1)
        self.env = {
            **os.environ,
            "BANSHI_DATA_DIR": str(self.data_dir),
            "BANSHI_HOST": "127.0.0.1",
            "BANSHI_PORT": str(self.port),
            "BANSHI_ACTION_PORT": str(self.action_port),
            "BANSHI_ACTION_ENDPOINT": f"http://127.0.0.1:{self.action_port}/webhook",
            "BANSHI_DATABASE_URL": database_url,
            "BANSHI_TRACKER_DB_URL": database_url,
            "BANSHI_REDIS_URL": redis_url,
            "BANSHI_MODEL_PATH": str(model),
            **(env or {}),
        }
        self.proc: Optional[subprocess.Popen] = None
        self._log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def gateway(self, index: int) -> str:
        return f"http://127.0.0.1:{self.port + index}"

    def start(self, timeout: float = START_TIMEOUT_S) -> "ReplicaCluster":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.data_dir / "banshi-run.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "assistant.cli", "run", "--balancer",
             "--replicas", str(self.replicas), "--actions", str(self.actions)],
            cwd=PROJECT_ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            self.wait(self.all_ready, timeout, "every gateway ready behind nginx")
        except BaseException:
            self.stop()  # no replicas left behind when they never became ready
            raise
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> "ReplicaCluster":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ state
    def status(self) -> Dict[str, Any]:
        return json.loads((self.data_dir / STATUS_FILE).read_text(encoding="utf-8"))

    def child(self, name: str) -> Dict[str, Any]:
        return self.status()["children"][name]

    def wait(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = condition()
                if value:
                    return value
            except (OSError, ValueError, KeyError, httpx.HTTPError):
                pass
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"banshi run exited with {self.proc.returncode}; see {self.data_dir}")
            time.sleep(0.3)
        raise TimeoutError(f"timed out waiting for {what}; logs in {self.data_dir / 'run' / 'logs'}")

    @staticmethod
    def ready(base: str) -> bool:
        return httpx.get(f"{base}/healthz/ready", timeout=2).status_code == 200

    def all_ready(self) -> bool:
        return self.ready(self.url) and all(self.ready(self.gateway(i)) for i in range(1, self.replicas + 1))
