"""Who may call what: FastAPI dependencies (all plain ``def``: FastAPI runs them in
the threadpool).

- ``OperatorDep``: an active operator or admin with a valid session (+ CSRF for
  unsafe methods);
- ``AdminDep``: the same, role ``admin``;
- ``AssistCallerDep``: ``Authorization: Bearer <key>`` with a configured API key,
  or a desk session as for ``OperatorDep``.
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Optional

from fastapi import Depends, HTTPException, Request

from assistant.security.accounts import ROLE_ADMIN
from assistant.security.sessions import Principal, check_csrf, principal_from_request, settings_of

logger = logging.getLogger(__name__)

NOT_LOGGED_IN = "请先登录"
FORBIDDEN = "没有权限"
BAD_API_KEY = "API 密钥无效"


def require_operator(request: Request) -> Principal:
    """Any active operator or admin with a valid session (+ CSRF for unsafe methods)."""
    principal = principal_from_request(request)
    if principal is None:
        raise HTTPException(status_code=401, detail=NOT_LOGGED_IN)
    check_csrf(request, principal)
    return principal


def require_admin(principal: Annotated[Principal, Depends(require_operator)]) -> Principal:
    if principal.role != ROLE_ADMIN:
        logger.warning("desk.admin.forbidden user=%s", principal.username)
        raise HTTPException(status_code=403, detail=FORBIDDEN)
    return principal


def _bearer_key(request: Request) -> Optional[str]:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return value.strip()


def require_assist_caller(request: Request) -> Principal:
    """An API key (``Authorization: Bearer <key>``) or a desk session (+ CSRF)."""
    key = _bearer_key(request)
    if key is not None:
        keys = settings_of(request).assist_keys
        # Compare with every key in constant time.
        matched = False
        for candidate in keys:
            matched |= hmac.compare_digest(key.encode(), candidate.encode())
        if not key or not matched:
            logger.warning("desk.apikey.rejected path=%s", request.url.path)
            raise HTTPException(
                status_code=401, detail=BAD_API_KEY, headers={"WWW-Authenticate": "Bearer"}
            )
        name = f"apikey:{key[:4]}…"
        return Principal(username=name, role="apikey", display_name=name, kind="apikey")
    return require_operator(request)


OperatorDep = Annotated[Principal, Depends(require_operator)]
AdminDep = Annotated[Principal, Depends(require_admin)]
AssistCallerDep = Annotated[Principal, Depends(require_assist_caller)]
