"""GET /metrics: this process's Prometheus metrics (``assistant/services/metrics.py``).

Off (404, as if the route did not exist) unless ``BANSHI_METRICS_TOKEN`` or
``BANSHI_METRICS_ALLOW`` is set. A scrape needs ``Authorization: Bearer <token>``,
or comes from an allowed address (the client as resolved through
``BANSHI_TRUSTED_PROXIES``: a request relayed by nginx counts as the client nginx
saw, never as nginx itself). Refused scrapes get 401 (and are logged, without the
token). Scrape each gateway replica on its own port: the counters are per process.
"""

from __future__ import annotations

import asyncio
import hmac
import logging

from fastapi import APIRouter, HTTPException, Request, Response

from assistant.security.client import client_ip, is_trusted, parse_networks
from assistant.services import metrics

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

NOT_FOUND = "没有找到该地址"
NEED_TOKEN = "需要监控令牌"


def allowed(request: Request) -> bool:
    settings = request.app.state.settings
    header = request.headers.get("authorization") or ""
    scheme, _, value = header.partition(" ")
    if settings.metrics_token and scheme.lower() == "bearer" and value.strip():
        if hmac.compare_digest(value.strip().encode(), settings.metrics_token.encode()):
            return True
    networks = parse_networks(settings.metrics_allow) if settings.metrics_allow.strip() else ()
    return bool(networks) and is_trusted(client_ip(request, settings.trusted_proxies), networks)


@router.get("/metrics")
async def prometheus_metrics(request: Request) -> Response:
    settings = request.app.state.settings
    if not settings.metrics_enabled:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    if not allowed(request):
        logger.warning("metrics.scrape.refused")
        raise HTTPException(status_code=401, detail=NEED_TOKEN, headers={"WWW-Authenticate": "Bearer"})
    body = await asyncio.to_thread(metrics.exposition, settings.db_url)
    return Response(body, media_type=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"})
