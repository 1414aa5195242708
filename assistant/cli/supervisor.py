"""Child processes kept running: an exited child (crash, kill) is started again after a
back-off that doubles with every crash in a row (1 s, 2 s, 4 s … at most 30 s) and
falls back to the first step once a child has stayed up for a while.

The state of every child is written to ``<data_dir>/run/processes.json`` (atomically,
every poll), which ``/healthz`` of each gateway reports, and every exit and restart is
logged (``supervisor.child.exited`` / ``supervisor.child.restarted``).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from assistant.cli.instances import stop_child

logger = logging.getLogger("banshi.supervisor")

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 30.0
POLL_S = 0.5

RUNNING = "running"
WAITING = "restarting"
STOPPED = "stopped"


@dataclass
class Child:
    """One supervised program (``argv`` with ``env``); ``role`` is gateway/actions/…"""

    name: str
    role: str
    argv: List[str]
    env: Dict[str, str]
    port: Optional[int] = None
    cwd: Optional[Path] = None
    log_path: Optional[Path] = None
    proc: Optional[subprocess.Popen] = None
    restarts: int = 0
    crashes_in_row: int = 0
    started_at: float = 0.0
    restart_at: Optional[float] = None
    last_exit: Optional[int] = None
    history: List[float] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.proc is not None and self.proc.poll() is None:
            return RUNNING
        return WAITING if self.restart_at is not None else STOPPED

    def status(self) -> Dict[str, object]:
        return {
            "role": self.role,
            "state": self.state,
            "pid": self.proc.pid if self.proc is not None and self.proc.poll() is None else None,
            "port": self.port,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "up_seconds": round(time.monotonic() - self.started_at, 1) if self.state == RUNNING else 0.0,
            "restart_in": round(max(0.0, self.restart_at - time.monotonic()), 1) if self.restart_at else None,
        }


def backoff(crashes_in_row: int) -> float:
    return min(BACKOFF_MAX_S, BACKOFF_FIRST_S * (2 ** max(0, crashes_in_row - 1)))


class Supervisor:
    """Starts children, restarts those that exit, writes their state for /healthz."""

    def __init__(self, children: List[Child], status_path: Path, clock: Callable[[], float] = time.monotonic):
        self.children = {child.name: child for child in children}
        self.status_path = status_path
        self.clock = clock
        self.stopping = False

    def _spawn(self, child: Child) -> None:
        log = open(child.log_path, "ab") if child.log_path else None
        child.proc = subprocess.Popen(
            child.argv, env=child.env, cwd=child.cwd, stdout=log, stderr=subprocess.STDOUT if log else None,
            start_new_session=True,
        )
        if log:
            log.close()
        child.started_at = self.clock()
        child.restart_at = None

    def start_all(self) -> None:
        for child in self.children.values():
            self._spawn(child)
            logger.info("supervisor.child.started name=%s pid=%d port=%s", child.name, child.proc.pid, child.port)
        self.write_status()

    def poll(self) -> None:
        """Restart what exited (after its back-off); write the status file."""
        now = self.clock()
        for child in self.children.values():
            if self.stopping:
                break
            if child.proc is not None and child.restart_at is None and child.proc.poll() is not None:
                child.last_exit = child.proc.returncode
                stable = now - child.started_at >= STABLE_AFTER_S
                child.crashes_in_row = 1 if stable else child.crashes_in_row + 1
                delay = backoff(child.crashes_in_row)
                child.restart_at = now + delay
                logger.warning(
                    "supervisor.child.exited name=%s code=%s restart_in=%.1f crashes_in_row=%d",
                    child.name, child.last_exit, delay, child.crashes_in_row,
                )
            if child.restart_at is not None and now >= child.restart_at:
                self._spawn(child)
                child.restarts += 1
                child.history.append(time.time())
                logger.warning(
                    "supervisor.child.restarted name=%s pid=%d restarts=%d", child.name, child.proc.pid, child.restarts
                )
        self.write_status()

    def write_status(self) -> None:
        body = {
            "supervisor_pid": os.getpid(),
            "updated": time.time(),
            "children": {name: child.status() for name, child in self.children.items()},
        }
        self.status_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.status_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(body, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(temporary, self.status_path)

    def run(self, until: Callable[[], bool]) -> None:
        while not until():
            self.poll()
            time.sleep(POLL_S)

    def stop_all(self) -> None:
        self.stopping = True
        for child in reversed(list(self.children.values())):
            child.restart_at = None
            stop_child(child.proc, timeout=15)
        self.write_status()
        try:
            self.status_path.unlink()
        except FileNotFoundError:
            pass
