"""What the commands share: logging set-up, the action server process, waiting for a
service, and a trained model (trained when missing)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from typing import Optional

import httpx

from assistant.config.settings import PROJECT_ROOT, Settings

logger = logging.getLogger("banshi")

READY_TIMEOUT_S = 180


def _quiet_libraries() -> None:
    # Rasa 3.6 and its dependencies warn about their own internals at every start.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"rasa\.")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("LOG_LEVEL_LIBRARIES", "ERROR")
    os.environ.setdefault("SQLALCHEMY_WARN_20", "0")
    for name in ("rasa", "tensorflow", "absl", "jieba", "sanic", "apscheduler", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


def setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    _quiet_libraries()
    from assistant.security.pii import install_log_masking

    install_log_masking()


def action_server_argv(port: int) -> list:
    return [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)]


def action_server_env(settings: Settings) -> dict:
    return {**os.environ, "SANIC_HOST": settings.host if settings.host != "0.0.0.0" else "127.0.0.1"}


def start_action_server(settings: Settings) -> subprocess.Popen:
    return subprocess.Popen(action_server_argv(settings.action_port), cwd=PROJECT_ROOT, env=action_server_env(settings))


def wait_http(
    url: str, timeout: float, proc: Optional[subprocess.Popen] = None, ok_status: Optional[int] = None
) -> bool:
    """Until ``url`` answers (any status below 500, or exactly ``ok_status``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            status = httpx.get(url, timeout=1.0).status_code
            if (status == ok_status) if ok_status is not None else status < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def stop_process(proc: Optional[subprocess.Popen]) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def ensure_model(settings: Settings) -> None:
    from assistant.dialogue.training import data_fingerprint, model_path_for, train

    fingerprint = data_fingerprint(embedding=settings.embedding_model)
    if settings.model_path is None and not model_path_for(settings, fingerprint).exists():
        print("训练模型中（首次约需几分钟）… / training the model", flush=True)
        train(settings)


def load_runtime(settings: Settings, tracker_memory: bool = True):
    from assistant.dialogue.runtime import AssistantRuntime

    if tracker_memory:
        settings = settings.copy(update={"tracker_store": "memory"})
    runtime = AssistantRuntime(settings)
    runtime.load()
    return runtime
