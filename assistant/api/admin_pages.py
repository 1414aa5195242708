"""The admin pages (``/admin/...``, static files under ``static/admin``): the page for
admins, a login form (401) for anonymous visitors, a refusal (403) for operators."""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import FileResponse

from assistant.api.paths import STATIC_DIR
from assistant.security.accounts import ROLE_ADMIN
from assistant.security.sessions import principal_from_request

logger = logging.getLogger(__name__)

PAGE_DIR = STATIC_DIR / "admin"
NO_STORE = {"Cache-Control": "no-store"}


def admin_page(request: Request, filename: str) -> FileResponse:
    principal = principal_from_request(request)
    if principal is None:
        return FileResponse(PAGE_DIR / "login.html", status_code=401, headers=NO_STORE)
    if principal.role != ROLE_ADMIN:
        logger.warning("desk.admin.forbidden user=%s path=%s", principal.username, request.url.path)
        return FileResponse(PAGE_DIR / "forbidden.html", status_code=403, headers=NO_STORE)
    return FileResponse(PAGE_DIR / filename, headers=NO_STORE)
