"""Retrained models taken up by this gateway process without a restart.

One background task polls the newest succeeded training run with a model
(``training_runs``, one indexed row) every ``model_poll_seconds``. On a run it has not
seen, it loads that model in a worker thread while the current agent keeps answering
(:meth:`AssistantRuntime.load_agent`: the archive loads and a fixed Chinese sentence
parses to one of the model's intents), then swaps the new agent in with one assignment
on the event loop. Turns under way end on the agent they started with; conversations
go on, since the tracker and lock stores are shared. Each replica writes its outcome
for the run to ``model_loads`` (loaded / failed / kept), which the admin catalog page
shows with the run. A model that fails keeps the old one in use and is not tried
again; a replica set not to follow (``BANSHI_MODEL_FOLLOW_RETRAIN=false``) records
``kept``. Loading briefly holds two models in memory (~1 GB each).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from assistant.config.settings import Settings
from assistant.dialogue.runtime import ModelNotFound, ModelUnusable, newest_model
from assistant.services import metrics
from assistant.services.live import stop_task
from assistant.services.retrain import HOST
from assistant.storage import model_tables
from assistant.storage.database import utcnow

logger = logging.getLogger(__name__)

MISSING = "新模型文件不存在，本网关继续使用原模型"
CHECK_FAILED = "新模型未通过检查（测试句子无法识别），本网关继续使用原模型"
LOAD_FAILED = "新模型无法加载（{reason}），本网关继续使用原模型"
KEPT = "本网关设置为不随训练更换模型（BANSHI_MODEL_FOLLOW_RETRAIN=false），继续使用启动时的模型"
MISSING_REASON = "missing"


def _same_file(a: Path, b: Optional[Path]) -> bool:
    if b is None:
        return False
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _failure_text(exc: BaseException) -> str:
    if isinstance(exc, ModelUnusable):
        return MISSING if str(exc) == MISSING_REASON else CHECK_FAILED
    return LOAD_FAILED.format(reason=type(exc).__name__)


class ModelWatcher:
    def __init__(self, app: Any, settings: Settings) -> None:
        self.runtime = app.state.runtime
        self.settings = settings
        self.replica = f"{HOST}:{settings.port}"
        self.seen_run: Optional[int] = None  # the newest run dealt with (loaded, failed or kept)
        self.model_run: Optional[int] = None  # the run whose model is in use; None: the start model
        self.loaded_at = utcnow()
        self.last_failure: Optional[Dict[str, Any]] = None
        self._unreported: Optional[Tuple[int, str, Optional[str], Optional[str]]] = None
        self._task: Optional[asyncio.Task] = None
        self._lock = asyncio.Lock()

    @property
    def url(self) -> str:
        return self.settings.db_url

    async def _report(self, run_id: int, status: str, path: Optional[str], error: Optional[str] = None) -> None:
        """This replica's outcome in ``model_loads``; kept for the next poll if the database is away."""
        self._unreported = (run_id, status, path, error)
        await asyncio.to_thread(model_tables.record_load, self.url, run_id, self.replica, status, path, error)
        self._unreported = None

    async def _outcome(self, run_id: int, status: str, path: Optional[str], error: Optional[str] = None) -> None:
        metrics.record_model_load(status)
        await self._report(run_id, status, path, error)

    async def refresh(self) -> bool:
        """Take up the newest retrained model if it is new to this replica; whether it was swapped in."""
        async with self._lock:
            if self._unreported is not None:
                await self._report(*self._unreported)
            run = await asyncio.to_thread(model_tables.newest_model_run, self.url)
            if run is None or run.id == self.seen_run:
                return False
            self.seen_run = run.id
            path = Path(run.model_path)
            if not self.settings.model_follow_retrain:
                logger.info("gateway.model.kept run=%s model=%s", run.id, path.name)
                await self._outcome(run.id, model_tables.LOAD_KEPT, run.model_path, KEPT)
                return False
            if _same_file(path, self.runtime.model_path):  # e.g. the start model, or a skipped training
                self.model_run = run.id
                await self._outcome(run.id, model_tables.LOAD_LOADED, run.model_path)
                return False
            started = time.perf_counter()
            try:
                agent = await asyncio.to_thread(self.runtime.load_agent, path)
            except (Exception, SystemExit) as exc:  # any archive: the model in use stays
                error = _failure_text(exc)
                self.last_failure = {"run_id": run.id, "model_path": run.model_path, "error": error,
                                     "at": utcnow().isoformat(timespec="seconds") + "Z"}
                logger.warning("gateway.model.load_failed run=%s model=%s error=%s: %s",
                               run.id, path.name, type(exc).__name__, str(exc)[:200])
                await self._outcome(run.id, model_tables.LOAD_FAILED, run.model_path, error)
                return False
            seconds = time.perf_counter() - started
            self.runtime.install(agent, path, seconds)
            self.model_run, self.loaded_at = run.id, utcnow()
        logger.info("gateway.model.swapped run=%s model=%s seconds=%.1f", run.id, path.name, seconds)
        await self._outcome(run.id, model_tables.LOAD_LOADED, run.model_path)
        return True

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database restarting: keep the model in use, try again
                logger.warning("gateway.model.poll_failed", exc_info=True)
            await asyncio.sleep(self.settings.model_poll_seconds)

    def _start_candidate(self) -> Optional[Path]:
        """The newest run's model, if this replica should start with it: it follows
        retraining and that model is newer than the pinned or newest one (or that one
        is gone: training keeps the two newest models)."""
        if not self.settings.model_follow_retrain:
            return None
        try:
            run = model_tables.newest_model_run(self.url)
        except Exception:  # the database away at startup: start as before
            logger.warning("gateway.model.start_lookup_failed", exc_info=True)
            return None
        if run is None or not Path(run.model_path).is_file():
            return None
        candidate = Path(run.model_path)
        try:
            default = newest_model(self.settings)
        except ModelNotFound:
            return candidate
        if candidate.stat().st_mtime > default.stat().st_mtime:
            return candidate
        # Older than the model this replica starts with (a release trained since): the
        # polls must not swap it in either.
        self.seen_run = run.id
        logger.info("gateway.model.older_run_skipped run=%s model=%s", run.id, candidate.name)
        return None

    def _load_start_model(self) -> None:
        """Load the start model (blocking: a database read and seconds of model loading)."""
        candidate = self._start_candidate()
        if candidate is not None:
            try:
                self.runtime.load(candidate)
                return
            except (Exception, SystemExit) as exc:  # the first poll reports it on the run
                logger.warning("gateway.model.load_failed model=%s error=%s at start", candidate.name, type(exc).__name__)
        self.runtime.load()

    async def load_at_start(self) -> None:
        """Load the start model at startup, in a worker thread (the tasks already started,
        such as the change feed and the catalog watcher, keep running): a restarted replica
        whose pinned model is older than the last retraining's starts with the retrained one."""
        await asyncio.to_thread(self._load_start_model)

    def start(self) -> None:
        """Follow the retraining runs (the first check at once: a run finished while this
        replica was down, or before its restart with the start model pinned)."""
        self.loaded_at = utcnow()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="banshi-model-watch")

    async def stop(self) -> None:
        self._task = await stop_task(self._task)

    def status(self) -> Dict[str, Any]:
        """The model this replica uses (for admins: it names a file path)."""
        runtime = self.runtime
        agent = runtime.agent
        path = runtime.model_path
        return {
            "replica": self.replica,
            "model": path.name if path else None,
            "model_path": str(path) if path else None,
            "model_id": getattr(agent, "model_id", None),
            "run_id": self.model_run,
            "loaded_at": self.loaded_at.isoformat(timespec="seconds") + "Z",
            "load_seconds": round(runtime.load_seconds, 1),
            "swaps": runtime.swaps,
            "follow_retrain": self.settings.model_follow_retrain,
            "last_failure": self.last_failure,
        }
