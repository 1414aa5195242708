"""Retraining runs started on the admin catalog page (migration 0017): one row per run —
who started it, when, its state (running / succeeded / failed), the phase and the last
progress line of the training process, and the model it produced. Every replica reads
the same rows, so each shows the same progress.

At most one run is ``running`` anywhere: a running row has ``active = 1``, finished
rows NULL, and ``active`` is unique (NULLs never collide, in SQLite as in PostgreSQL),
so a second start is refused by the database itself."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Dict, Optional

from sqlalchemy import Column, DateTime, Integer, String, select, update
from sqlalchemy.exc import IntegrityError

from assistant.storage.database import Base, session_factory, utcnow

STATUS_IDLE = "idle"
STATUS_RUNNING = "running"
STATUS_SUCCEEDED = "succeeded"
STATUS_FAILED = "failed"
MAX_LINE_CHARS = 300
MAX_PATH_CHARS = 500


class TrainingRun(Base):
    __tablename__ = "training_runs"
    id = Column(Integer, primary_key=True, autoincrement=True)
    active = Column(Integer, unique=True)  # 1 while running, NULL after: one running run at most
    status = Column(String(16), nullable=False)  # running | succeeded | failed
    started_by = Column(String(128), nullable=False)  # operator:<username>
    started_at = Column(DateTime, nullable=False, default=utcnow)
    finished_at = Column(DateTime)
    heartbeat_at = Column(DateTime, nullable=False, default=utcnow)  # the watching gateway's last sign of life
    host = Column(String(128), nullable=False)  # the machine running the training process
    pid = Column(Integer)
    phase = Column(String(64))
    progress = Column(Integer)  # percent of the current phase, when the output tells it
    last_line = Column(String(MAX_LINE_CHARS))
    exit_code = Column(Integer)
    model_path = Column(String(MAX_PATH_CHARS))
    error = Column(String(MAX_LINE_CHARS))


def _when(value: Optional[dt.datetime]) -> Optional[str]:
    return value.isoformat(timespec="seconds") + "Z" if value is not None else None


@dataclass(frozen=True)
class RunInfo:
    id: int
    status: str
    started_by: str
    started_at: dt.datetime
    finished_at: Optional[dt.datetime]
    heartbeat_at: dt.datetime
    host: str
    pid: Optional[int]
    phase: Optional[str]
    progress: Optional[int]
    last_line: Optional[str]
    exit_code: Optional[int]
    model_path: Optional[str]
    error: Optional[str]

    def public(self) -> Dict[str, Any]:
        """The run as the admin API shows it."""
        return {
            "id": self.id, "status": self.status, "started_by": self.started_by,
            "started_at": _when(self.started_at), "finished_at": _when(self.finished_at),
            "phase": self.phase, "progress": self.progress, "last_line": self.last_line,
            "exit_code": self.exit_code, "model_path": self.model_path, "error": self.error,
        }


def _info(row: TrainingRun) -> RunInfo:
    return RunInfo(
        id=row.id, status=row.status, started_by=row.started_by, started_at=row.started_at,
        finished_at=row.finished_at, heartbeat_at=row.heartbeat_at, host=row.host, pid=row.pid,
        phase=row.phase, progress=row.progress, last_line=row.last_line, exit_code=row.exit_code,
        model_path=row.model_path, error=row.error,
    )


def start_run(url: str, started_by: str, host: str) -> Optional[int]:
    """Insert a running run; its id, or None while another run is running."""
    with session_factory(url)() as session:
        row = TrainingRun(active=1, status=STATUS_RUNNING, started_by=started_by, host=host[:128],
                          started_at=utcnow(), heartbeat_at=utcnow())
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            return None
        return int(row.id)


def update_running(url: str, run_id: int, **values: Any) -> bool:
    """Change a running run (pid, phase, progress, last line) and beat its heartbeat;
    False when the run is no longer running (marked failed by a replica meanwhile)."""
    if "last_line" in values and values["last_line"] is not None:
        values["last_line"] = values["last_line"][:MAX_LINE_CHARS]
    statement = (
        update(TrainingRun).where(TrainingRun.id == run_id, TrainingRun.status == STATUS_RUNNING)
        .values(heartbeat_at=utcnow(), **values)
    )
    with session_factory(url)() as session:
        changed = session.execute(statement).rowcount
        session.commit()
        return bool(changed)


def finish_run(
    url: str, run_id: int, status: str, exit_code: Optional[int] = None,
    model_path: Optional[str] = None, error: Optional[str] = None, only_if_stale_before: Optional[dt.datetime] = None,
) -> bool:
    """Mark a running run finished (succeeded or failed); False if it was not running
    (or, with ``only_if_stale_before``, if its heartbeat is newer than that)."""
    conditions = [TrainingRun.id == run_id, TrainingRun.status == STATUS_RUNNING]
    if only_if_stale_before is not None:
        conditions.append(TrainingRun.heartbeat_at < only_if_stale_before)
    statement = update(TrainingRun).where(*conditions).values(
        active=None, status=status, finished_at=utcnow(), exit_code=exit_code,
        model_path=(model_path or None) and model_path[:MAX_PATH_CHARS],
        error=(error or None) and error[:MAX_LINE_CHARS],
    )
    with session_factory(url)() as session:
        changed = session.execute(statement).rowcount
        session.commit()
        return bool(changed)


def latest_run(url: str) -> Optional[RunInfo]:
    """The newest run, or None before the first."""
    with session_factory(url)() as session:
        row = session.execute(select(TrainingRun).order_by(TrainingRun.id.desc()).limit(1)).scalars().first()
        return _info(row) if row is not None else None


def get_run(url: str, run_id: int) -> Optional[RunInfo]:
    with session_factory(url)() as session:
        row = session.get(TrainingRun, run_id)
        return _info(row) if row is not None else None
