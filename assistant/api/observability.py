"""Request metrics: a plain ASGI middleware (Starlette's BaseHTTPMiddleware costs
~1 ms per request) that counts every HTTP request by method, route *template* and
status, and times it to the first byte of the answer (a server-sent event stream
counts when its headers leave, not when it ends). WebSockets are not counted here.

The template is the route FastAPI matched (``scope["route"].path``), ``/static`` for
the page files and ``unmatched`` for anything else (404s, 413s refused before
routing): a raw path never becomes a label."""

from __future__ import annotations

import time

from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.services import metrics

UNMATCHED = "unmatched"
STATIC = "/static"


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str) and path:
        return path
    if isinstance(scope.get("endpoint"), StaticFiles):
        return STATIC
    return UNMATCHED


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        first_byte = None

        async def timed_send(message: Message) -> None:
            nonlocal status, first_byte
            if message["type"] == "http.response.start":
                status = int(message["status"])
                first_byte = time.perf_counter()
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            ended = first_byte if first_byte is not None else time.perf_counter()
            metrics.record_request(scope.get("method", "GET"), route_template(scope), status, ended - started)
