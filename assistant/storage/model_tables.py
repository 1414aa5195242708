"""Which model each gateway replica uses after a retraining (migration 0018): one row
per (training run, replica) — loaded, failed (the replica keeps its previous model; the
reason in Chinese for the admin page) or kept (the replica is set not to follow
retraining, ``BANSHI_MODEL_FOLLOW_RETRAIN=false``). Written by
``assistant.services.model_live``; read by the admin catalog page with the run."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from sqlalchemy import Column, DateTime, Integer, String, UniqueConstraint, select

from assistant.storage.database import Base, session_factory, utcnow
from assistant.storage.training_tables import MAX_LINE_CHARS, MAX_PATH_CHARS, STATUS_SUCCEEDED, TrainingRun

LOAD_LOADED = "loaded"
LOAD_FAILED = "failed"
LOAD_KEPT = "kept"
MAX_REPLICA_CHARS = 200
MAX_REPLICAS_SHOWN = 50


class ModelLoad(Base):
    __tablename__ = "model_loads"
    __table_args__ = (UniqueConstraint("run_id", "replica", name="uq_model_loads_run_replica"),)
    id = Column(Integer, primary_key=True, autoincrement=True)
    run_id = Column(Integer, nullable=False, index=True)  # training_runs.id
    replica = Column(String(MAX_REPLICA_CHARS), nullable=False)  # host:port of the gateway
    status = Column(String(16), nullable=False)  # loaded | failed | kept
    model_path = Column(String(MAX_PATH_CHARS))
    error = Column(String(MAX_LINE_CHARS))  # why it could not be used (Chinese, for the admin page)
    at = Column(DateTime, nullable=False, default=utcnow)


@dataclass(frozen=True)
class ModelRun:
    """The newest succeeded run that produced a model: what a replica follows."""

    id: int
    model_path: str


def _when(value: dt.datetime) -> str:
    return value.isoformat(timespec="seconds") + "Z"


def newest_model_run(url: str) -> Optional[ModelRun]:
    """The newest succeeded run with a model (one indexed row: polled every few seconds)."""
    statement = (
        select(TrainingRun.id, TrainingRun.model_path)
        .where(TrainingRun.status == STATUS_SUCCEEDED, TrainingRun.model_path.isnot(None))
        .order_by(TrainingRun.id.desc()).limit(1)
    )
    with session_factory(url)() as session:
        row = session.execute(statement).first()
    return ModelRun(id=int(row.id), model_path=row.model_path) if row is not None else None


def record_load(url: str, run_id: int, replica: str, status: str,
                model_path: Optional[str] = None, error: Optional[str] = None) -> None:
    """This replica's outcome for the run (replaces an earlier one of the same replica)."""
    replica = replica[:MAX_REPLICA_CHARS]
    values = dict(status=status, model_path=(model_path or None) and model_path[:MAX_PATH_CHARS],
                  error=(error or None) and error[:MAX_LINE_CHARS], at=utcnow())
    with session_factory(url)() as session:
        row = session.execute(
            select(ModelLoad).where(ModelLoad.run_id == run_id, ModelLoad.replica == replica)
        ).scalars().first()
        if row is None:
            session.add(ModelLoad(run_id=run_id, replica=replica, **values))
        else:
            for name, value in values.items():
                setattr(row, name, value)
        session.commit()


def loads_of(url: str, run_id: int) -> List[Dict[str, Any]]:
    """Every replica's outcome for the run, oldest first, as the admin API shows it."""
    statement = select(ModelLoad).where(ModelLoad.run_id == run_id).order_by(ModelLoad.id).limit(MAX_REPLICAS_SHOWN)
    with session_factory(url)() as session:
        rows = session.execute(statement).scalars().all()
        return [{"replica": r.replica, "status": r.status, "error": r.error, "at": _when(r.at)} for r in rows]
