"""Health: ``/healthz/live`` (the process answers: restart it if not),
``/healthz/ready`` (model loaded and database reachable: send it traffic) and
``/healthz`` (everything, with the action server and the processes ``banshi run``
supervises; 503 while anything is degraded)."""

from __future__ import annotations

import asyncio
import logging

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
    reachable, database = await asyncio.gather(
        action_server_reachable(runtime.settings.action_endpoint), database_reachable(settings.db_url)
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
        database_reachable=database,
        catalog_items=len(request.app.state.catalog.records),
        processes=processes,
        actions=runtime.action_link.snapshot(),
        spool=kept,
    )
