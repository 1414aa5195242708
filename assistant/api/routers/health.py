"""Health: ``/healthz/live`` (the process answers: restart it if not),
``/healthz/ready`` (model loaded and database reachable: send it traffic) and
``/healthz`` (everything, with the action server and the processes ``banshi run``
supervises; 503 while anything is degraded).

The action server probe of ``/healthz`` (an HTTP request, up to ``PROBE_TIMEOUT_S``) is
made at most once per ``health_probe_ttl_s`` per process, and calls arriving while it
runs wait for that one probe: monitors polling every replica every second do not turn
into a stream of probes, nor wait a timeout each when the action server is slow. The
answer says how old the result is (``action_server_checked_s_ago``). The database ping
(``SELECT 1`` on a pooled connection, what ``/healthz/ready`` asks too) stays per call."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Optional, Tuple

import httpx
from fastapi import APIRouter, Request, Response
from sqlalchemy import text as sql_text

from assistant.api.schemas import HealthResponse, LivenessResponse, ReadinessResponse
from assistant.config.processes import read_status
from assistant.storage import spool
from assistant.storage.database import get_engine

router = APIRouter(tags=["health"])
logger = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 1.0
DATABASE_TIMEOUT_S = 4.0
OK = "ok"
DEGRADED = "degraded"


def action_health_url(webhook_url: str) -> str:
    base = webhook_url.rsplit("/webhook", 1)[0]
    return f"{base}/health"


def _ping_database(url: str) -> None:
    with get_engine(url).connect() as connection:
        connection.execute(sql_text("SELECT 1"))


async def database_reachable(url: str) -> bool:
    try:
        await asyncio.wait_for(asyncio.to_thread(_ping_database, url), DATABASE_TIMEOUT_S)
        return True
    except Exception as exc:  # any driver error or the timeout: not reachable
        logger.warning("gateway.health.database_unreachable error=%s", type(exc).__name__)
        return False


async def action_server_reachable(webhook_url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as client:
            reply = await client.get(action_health_url(webhook_url))
            return reply.status_code == 200
    except httpx.HTTPError:
        return False


class SharedProbe:
    """One ``probe()`` result reused for ``ttl_s`` seconds; callers arriving while a probe
    runs share it (one task, shielded: a caller that goes away does not cancel it)."""

    def __init__(self, probe: Callable[[], Awaitable[bool]], ttl_s: float) -> None:
        self._probe = probe
        self.ttl_s = ttl_s
        self._value = False
        self._checked_at: Optional[float] = None  # time.monotonic() of the last answer
        self._running: Optional[asyncio.Task] = None

    async def _run(self) -> bool:
        try:
            try:
                value = await self._probe()
            except Exception as exc:  # a probe that fails in any way: not reachable
                logger.warning("gateway.health.probe_failed error=%s", type(exc).__name__)
                value = False
            self._value, self._checked_at = value, time.monotonic()
            return value
        finally:
            if self._running is asyncio.current_task():
                self._running = None

    async def result(self) -> Tuple[bool, float]:
        """``(value, seconds since it was probed)``."""
        checked = self._checked_at
        if checked is None or time.monotonic() - checked >= self.ttl_s:
            loop = asyncio.get_running_loop()
            if self._running is None or self._running.get_loop() is not loop:  # e.g. a test's second loop
                self._running = loop.create_task(self._run(), name="banshi-health-probe")
            await asyncio.shield(self._running)
        assert self._checked_at is not None
        return self._value, time.monotonic() - self._checked_at


def action_probe(app: Any) -> SharedProbe:
    """This app's shared action server probe (made on first use, on the event loop)."""
    probe = getattr(app.state, "action_probe", None)
    if probe is None:
        endpoint = app.state.runtime.settings.action_endpoint
        probe = SharedProbe(lambda: action_server_reachable(endpoint), app.state.settings.health_probe_ttl_s)
        app.state.action_probe = probe
    return probe


@router.get("/healthz/live", response_model=LivenessResponse)
async def live() -> LivenessResponse:
    return LivenessResponse(status=OK)


@router.get("/healthz/ready", response_model=ReadinessResponse)
async def ready(request: Request, response: Response) -> ReadinessResponse:
    runtime = request.app.state.runtime
    database = await database_reachable(request.app.state.settings.db_url)
    ok = runtime.ready and database
    if not ok:
        response.status_code = 503
    return ReadinessResponse(status=OK if ok else DEGRADED, model_loaded=runtime.ready, database_reachable=database)


@router.get("/healthz", response_model=HealthResponse)
async def healthz(request: Request, response: Response) -> HealthResponse:
    runtime = request.app.state.runtime
    settings = request.app.state.settings
    (reachable, checked_ago), database = await asyncio.gather(
        action_probe(request.app).result(), database_reachable(settings.db_url)
    )
    supervised = await asyncio.to_thread(read_status, settings.data_dir)
    kept = await asyncio.to_thread(spool.snapshot)
    processes = supervised.get("children") if supervised else None
    ok = runtime.ready and reachable and database
    if not ok:
        response.status_code = 503
    return HealthResponse(
        status=OK if ok else DEGRADED,
        model_loaded=runtime.ready,
        model=runtime.model_path.name if runtime.model_path else None,
        action_server_reachable=reachable,
        action_server_checked_s_ago=round(checked_ago, 2),
        database_reachable=database,
        catalog_items=len(request.app.state.catalog.records),
        processes=processes,
        actions=runtime.action_link.snapshot(),
        spool=kept,
    )
