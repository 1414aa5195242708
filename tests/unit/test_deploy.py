"""The deployment files and the process supervisor: nginx accepts every configuration
we ship or generate (`nginx -t`, the real nginx from Debian's package), the commands
in the systemd units and docker-compose exist, and a crashed child is restarted with
back-off and reported."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from assistant.cli.instances import nginx_program
from assistant.cli.main import build_parser
from assistant.cli.replicas import nginx_config
from assistant.cli.supervisor import Child, Supervisor, backoff
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"


def nginx_accepts(tmp_path: Path, http_block: str) -> subprocess.CompletedProcess:
    (tmp_path / "logs").mkdir(exist_ok=True)
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/logs/error.log;\nevents {{}}\n"
        f"http {{\n{http_block}\n}}\n",
        encoding="utf-8",
    )
    return subprocess.run(
        [nginx_program(), "-t", "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "logs" / "error.log")],
        capture_output=True, text=True,
    )


def test_the_server_configuration_is_valid_nginx(tmp_path):
    checked = nginx_accepts(tmp_path, f"include {DEPLOY / 'nginx' / 'banshi.conf'};")
    assert checked.returncode == 0, checked.stderr


def test_the_container_configuration_is_valid_nginx(tmp_path):
    text = (DEPLOY / "docker" / "nginx.conf").read_text(encoding="utf-8")
    # Service names resolve only inside compose: check the syntax with local addresses.
    text = text.replace("gateway:8000", "127.0.0.1:8000").replace("actions:5055", "127.0.0.1:5055")
    body = text.split("http {", 1)[1].rsplit("}", 1)[0]
    checked = nginx_accepts(tmp_path, body)
    assert checked.returncode == 0, checked.stderr


def test_the_generated_balancer_is_valid_nginx(tmp_path):
    tmp_path = tmp_path / "a folder with spaces"  # data directories may have them
    tmp_path.mkdir()
    conf = nginx_config(tmp_path, "127.0.0.1", 18000, [18001, 18002], 15055, [15056, 15057])
    assert "server 127.0.0.1:18002" in conf and "server 127.0.0.1:15057" in conf
    (tmp_path / "logs").mkdir()
    (tmp_path / "temp").mkdir()
    (tmp_path / "nginx.conf").write_text(conf, encoding="utf-8")
    checked = subprocess.run(
        [nginx_program(), "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
         "-e", str(tmp_path / "logs" / "error.log")],
        capture_output=True, text=True,
    )
    assert checked.returncode == 0, checked.stderr


def test_the_units_and_compose_run_commands_that_exist():
    parser = build_parser()
    gateway = (DEPLOY / "systemd" / "banshi-gateway@.service").read_text(encoding="utf-8")
    exec_start = next(line for line in gateway.splitlines() if line.startswith("ExecStart="))
    args = exec_start.split("banshi ", 1)[1].replace("%i", "8001").split()
    assert parser.parse_args(args).func.__name__ == "cmd_gateway"
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"postgres", "redis", "actions", "gateway", "nginx"} <= set(services)
    assert services["gateway"]["deploy"]["replicas"] == 2 and services["actions"]["deploy"]["replicas"] == 2
    assert parser.parse_args(services["gateway"]["command"][1:]).func.__name__ == "cmd_gateway"
    env = services["gateway"]["environment"]
    assert env["BANSHI_REDIS_URL"].startswith("redis://") and env["BANSHI_DATABASE_URL"].startswith("postgresql://")


def test_backoff_doubles_up_to_the_ceiling():
    assert [backoff(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff(20) == 30.0


def test_a_crashed_child_is_restarted_with_backoff_and_reported(tmp_path):
    status = tmp_path / "run" / "processes.json"
    child = Child(name="crasher", role="test", argv=[sys.executable, "-c", "import sys; sys.exit(3)"], env={})
    sleeper = Child(name="sleeper", role="test", argv=[sys.executable, "-c", "import time; time.sleep(60)"], env={})
    supervisor = Supervisor([child, sleeper], status)
    supervisor.start_all()
    try:
        deadline = time.monotonic() + 10
        while child.restarts < 2 and time.monotonic() < deadline:
            supervisor.poll()
            time.sleep(0.1)
        body = json.loads(status.read_text(encoding="utf-8"))
        crasher = body["children"]["crasher"]
        assert child.restarts >= 2 and crasher["last_exit"] == 3
        # The second restart waited longer than the first (1 s, then 2 s).
        assert child.history[1] - child.history[0] >= 1.5
        assert body["children"]["sleeper"]["state"] == "running" and body["children"]["sleeper"]["restarts"] == 0
    finally:
        supervisor.stop_all()
    assert not status.exists() and sleeper.proc.poll() is not None
