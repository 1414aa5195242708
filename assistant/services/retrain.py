"""Retraining in the background, started on the admin catalog page.

A catalog edit takes effect without retraining (``assistant.services.catalog_live``);
only a change of intent data needs a new model. ``Retrainer.start`` runs one training
(``banshi train``, or ``settings.retrain_command``) in a child process — never in the
gateway's own — and a thread of this gateway reads its output: the phase, the percent
and the last line go to the ``training_runs`` row at most once a second, with a
heartbeat every few seconds, so every replica shows the same progress. When the
process ends the row says succeeded (exit 0, with the model path the command printed)
or failed. A running row whose heartbeat stopped (the watching gateway is gone) is
marked failed by whichever replica reads it next.

Running gateways take up the new model without a restart (``assistant.services.model_live``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import List, Optional

from sqlalchemy.exc import SQLAlchemyError

from assistant.config.settings import PROJECT_ROOT, Settings
from assistant.storage import training_tables
from assistant.storage.database import utcnow
from assistant.storage.training_tables import RunInfo

logger = logging.getLogger(__name__)

HOST = socket.gethostname()
WRITE_SECONDS = 1.0  # at most one progress write a second
HEARTBEAT_SECONDS = 5.0  # a write at least this often while the process runs
FINISH_ATTEMPTS, FINISH_RETRY_SECONDS = 10, 3.0  # the end of a run, written through a database restart
STALE_SECONDS = 30.0  # a running row without a heartbeat this long: its gateway is gone
STOP_GRACE_SECONDS = 10.0
READ_BYTES = 65536
MODEL_SUFFIX = ".tar.gz"
GONE = "训练进程已不在运行（所在的网关已停止或失去联系）"
STOPPED = "网关停止，训练已中断"
EXITED = "训练失败（退出码 {code}），请查看网关日志"
NOT_STARTED = "无法启动训练：{error}"
PHASE_STARTING = "正在启动"
PHASE_DONE = "已完成"
PHASE_SKIPPED = "输入未变，沿用现有模型"
# (pattern of an output line, phase shown on the page); the first that matches wins.
PHASES = (
    (re.compile(r"train\.generated|Generat", re.I), "生成训练数据"),
    (re.compile(r"train\.skipped", re.I), PHASE_SKIPPED),
    (re.compile(r"Starting to train component '?(\w+)", re.I), "训练组件 {0}"),
    (re.compile(r"Finished training component '?(\w+)", re.I), "完成组件 {0}"),
    (re.compile(r"Training (NLU|Core) model", re.I), "训练 {0} 模型"),
    (re.compile(r"model is trained and saved", re.I), "保存模型"),
)
PERCENT = re.compile(r"(\d{1,3})%\|")  # tqdm: "Epochs:  45%|████ | 45/100"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def command_for(settings: Settings) -> List[str]:
    """The training command: ``settings.retrain_command`` (shell words), else ``banshi train``."""
    if settings.retrain_command:
        return shlex.split(settings.retrain_command)
    return [sys.executable, "-m", "assistant.cli", "train"]


def _environment(settings: Settings) -> dict:
    """The gateway's environment with the settings training reads, as this gateway has them."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.update(
        BANSHI_DATA_DIR=str(settings.data_dir), BANSHI_MODELS_DIR=str(settings.models_dir),
        BANSHI_CATALOG_DIR=str(settings.catalog_dir), BANSHI_EMBEDDING_MODEL=settings.embedding_model,
    )
    if settings.database_url:
        env["BANSHI_DATABASE_URL"] = settings.database_url
    return env


@dataclass
class Progress:
    """What the output told so far."""

    phase: str = PHASE_STARTING
    percent: Optional[int] = None
    last_line: Optional[str] = None
    model_path: Optional[str] = None
    changed: bool = field(default=True)

    def feed(self, raw: bytes) -> None:
        line = ANSI.sub("", raw.decode("utf-8", "replace")).strip()
        if not line:
            return
        self.last_line, self.changed = line, True
        for pattern, phase in PHASES:
            found = pattern.search(line)
            if found:
                self.phase, self.percent = phase.format(*found.groups()), None
                break
        percent = PERCENT.findall(line)
        if percent:
            self.percent = min(100, int(percent[-1]))
        if line.endswith(MODEL_SUFFIX) and " " not in line:
            self.model_path = line


def _stale(run: RunInfo) -> bool:
    return run.status == training_tables.STATUS_RUNNING and (
        utcnow() - run.heartbeat_at > dt.timedelta(seconds=STALE_SECONDS)
    )


def current(url: str) -> Optional[RunInfo]:
    """The newest run; a running one whose heartbeat stopped is marked failed first."""
    run = training_tables.latest_run(url)
    if run is not None and _stale(run):
        cutoff = utcnow() - dt.timedelta(seconds=STALE_SECONDS)
        if training_tables.finish_run(url, run.id, training_tables.STATUS_FAILED, error=GONE,
                                      only_if_stale_before=cutoff):
            logger.warning("retrain.gone run=%s host=%s pid=%s", run.id, run.host, run.pid)
        run = training_tables.get_run(url, run.id)
    return run


class Retrainer:
    """Starts and watches the training process of this gateway (one at a time everywhere)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._process: Optional[subprocess.Popen] = None
        self._thread: Optional[threading.Thread] = None
        self._stopping = False

    @property
    def url(self) -> str:
        return self.settings.db_url

    def start(self, actor: str) -> Optional[RunInfo]:
        """Start a run; None while one is running (here or on another replica)."""
        current(self.url)  # a run whose gateway is gone does not block a new one
        run_id = training_tables.start_run(self.url, actor, HOST)
        if run_id is None:
            return None
        command = command_for(self.settings)
        try:
            process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env=_environment(self.settings), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            )
        except (OSError, ValueError) as exc:
            training_tables.finish_run(self.url, run_id, training_tables.STATUS_FAILED,
                                       error=NOT_STARTED.format(error=exc.__class__.__name__))
            logger.error("retrain.not_started run=%s command=%s error=%s", run_id, command[:3], exc)
            return training_tables.get_run(self.url, run_id)
        self._process = process
        training_tables.update_running(self.url, run_id, pid=process.pid, phase=PHASE_STARTING)
        self._thread = threading.Thread(target=self._watch, args=(run_id, process), name="banshi-retrain", daemon=True)
        self._thread.start()
        logger.info("retrain.started run=%s pid=%s by=%s", run_id, process.pid, actor)
        return training_tables.get_run(self.url, run_id)

    def _write(self, run_id: int, progress: Progress) -> None:
        """The progress and heartbeat; a database away for a moment (a restart) does not
        stop the training: the next write tries again."""
        try:
            training_tables.update_running(
                self.url, run_id, phase=progress.phase, progress=progress.percent, last_line=progress.last_line
            )
        except SQLAlchemyError as exc:
            logger.warning("retrain.progress_unwritten run=%s error=%s", run_id, type(exc).__name__)
            return
        progress.changed = False

    def _finished(self, write, *args, **kwargs) -> None:
        """The run's end written, tried again for a while if the database is away."""
        for attempt in range(FINISH_ATTEMPTS):
            try:
                write(*args, **kwargs)
                return
            except SQLAlchemyError as exc:
                logger.warning("retrain.finish_unwritten attempt=%d error=%s", attempt + 1, type(exc).__name__)
                time.sleep(FINISH_RETRY_SECONDS)

    def _watch(self, run_id: int, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        progress, pending, written = Progress(), b"", 0.0
        handle = process.stdout.fileno()
        try:
            while True:
                ready, _, _ = select.select([handle], [], [], HEARTBEAT_SECONDS)
                if ready:
                    chunk = os.read(handle, READ_BYTES)
                    if not chunk:
                        break
                    *lines, pending = re.split(rb"[\r\n]", pending + chunk)
                    for line in lines:
                        progress.feed(line)
                now = time.monotonic()
                if (progress.changed and now - written >= WRITE_SECONDS) or now - written >= HEARTBEAT_SECONDS:
                    self._write(run_id, progress)
                    written = now
            progress.feed(pending)
            code = process.wait()
        except Exception:  # the row must not stay running: fail it
            logger.exception("retrain.watch_failed run=%s", run_id)
            process.kill()
            code = process.wait()
        finally:
            process.stdout.close()
        self._finish(run_id, progress, code)

    def _finish(self, run_id: int, progress: Progress, code: int) -> None:
        if progress.changed:
            self._write(run_id, progress)
        if code == 0:
            phase = PHASE_SKIPPED if progress.phase == PHASE_SKIPPED else PHASE_DONE  # `banshi train` had nothing to do
            self._finished(training_tables.update_running, self.url, run_id, phase=phase, progress=100)
            self._finished(training_tables.finish_run, self.url, run_id, training_tables.STATUS_SUCCEEDED,
                           exit_code=0, model_path=progress.model_path)
            logger.info("retrain.succeeded run=%s model=%s", run_id, progress.model_path)
        else:
            error = STOPPED if self._stopping else EXITED.format(code=code)
            self._finished(training_tables.finish_run, self.url, run_id, training_tables.STATUS_FAILED,
                           exit_code=code, error=error)
            logger.warning("retrain.failed run=%s code=%s last=%s", run_id, code, progress.last_line)

    def running_here(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """At the gateway's shutdown: end this gateway's training (its row says failed)."""
        process, thread = self._process, self._thread
        if process is not None and process.poll() is None:
            self._stopping = True
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if thread is not None:
            thread.join(STOP_GRACE_SECONDS + HEARTBEAT_SECONDS)
