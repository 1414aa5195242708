"""GET /healthz: model loaded, action server reachable."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Request, Response

from assistant.api.schemas import HealthResponse

router = APIRouter(tags=["health"])
PROBE_TIMEOUT_S = 1.0


def action_health_url(webhook_url: str) -> str:
    base = webhook_url.rsplit("/webhook", 1)[0]
    return f"{base}/health"


@router.get("/healthz", response_model=HealthResponse)
async def healthz(request: Request, response: Response) -> HealthResponse:
    runtime = request.app.state.runtime
    reachable = False
    try:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as client:
            reply = await client.get(action_health_url(runtime.settings.action_endpoint))
            reachable = reply.status_code == 200
    except httpx.HTTPError:
        reachable = False
    ok = runtime.ready and reachable
    if not ok:
        response.status_code = 503
    return HealthResponse(
        status="ok" if ok else "degraded",
        model_loaded=runtime.ready,
        model=runtime.model_path.name if runtime.model_path else None,
        action_server_reachable=reachable,
        catalog_items=len(request.app.state.catalog.records),
    )
