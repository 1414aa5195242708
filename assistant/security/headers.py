"""Security headers on every HTTP response: a Content-Security-Policy without inline
script, no framing (``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``), no
MIME sniffing, a strict Referrer-Policy and a Permissions-Policy that allows the
microphone and the camera only to the kiosk page (the microphone also to the desk's
call mode), on this origin.

The pages (``assistant/api/static``) load their scripts and styles from files only:
no ``<script>`` bodies, no ``on…=`` attributes, no ``javascript:`` URLs, no
``style`` attributes (``tests/unit/test_security_headers.py`` checks the files). The
API docs (``/docs``, ``/redoc``) are FastAPI's pages, which load Swagger UI / ReDoc
from a CDN with an inline start-up script; they get their own, looser policy.

A plain ASGI middleware (Starlette's BaseHTTPMiddleware costs ~1 ms per request).
"""

from __future__ import annotations

from typing import Dict, List, Tuple

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self' blob: data:",
        "connect-src 'self'",
        "worker-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
DOCS_CDN = "https://cdn.jsdelivr.net"
DOCS_CSP = "; ".join(
    [
        "default-src 'self'",
        f"script-src 'self' 'unsafe-inline' {DOCS_CDN}",
        f"style-src 'self' 'unsafe-inline' {DOCS_CDN} https://fonts.googleapis.com",
        "img-src 'self' data: https://fastapi.tiangolo.com",
        "font-src 'self' https://fonts.gstatic.com",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
DOCS_PATHS = ("/docs", "/redoc")
KIOSK_PATH = "/kiosk"
_FEATURES_OFF = "geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), display-capture=()"
PERMISSIONS = f"microphone=(), camera=(), {_FEATURES_OFF}"
# The kiosk page: the microphone (hold to talk) and the document camera (materials).
KIOSK_PERMISSIONS = f"microphone=(self), camera=(self), {_FEATURES_OFF}"
# The desk page: the microphone (call mode: the headset or a line carrying the caller).
DESK_PATH = "/desk"
DESK_PERMISSIONS = f"microphone=(self), camera=(), {_FEATURES_OFF}"

COMMON: Dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def headers_for(path: str) -> List[Tuple[str, str]]:
    """The security headers of a response to ``path``."""
    docs = path in DOCS_PATHS or path.startswith("/docs/")
    kiosk = path == KIOSK_PATH or path.startswith(KIOSK_PATH + "/")
    return [
        *COMMON.items(),
        ("Content-Security-Policy", DOCS_CSP if docs else CSP),
        ("Permissions-Policy", KIOSK_PERMISSIONS if kiosk else DESK_PERMISSIONS if path == DESK_PATH else PERMISSIONS),
    ]


class SecurityHeaders:
    """Add :func:`headers_for` to every HTTP response (headers a route set stay)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = headers_for(scope.get("path") or "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra:
                    if name not in headers:
                        headers.append(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
