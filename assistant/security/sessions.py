"""Desk login sessions and CSRF protection.

A login creates a random session token sent as the ``banshi_desk`` cookie (HttpOnly,
SameSite=Strict); only its SHA-256 is stored (``operator_sessions``), next to a
random CSRF token that the page sends back in the ``X-CSRF-Token`` header of every
POST/PUT/PATCH/DELETE. The account is read again on every request, so disabling or
demoting an operator takes effect at once.

``principal_from_request`` (no CSRF check) is blocking: from async code call it as
``await asyncio.to_thread(principal_from_request, request)``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from typing import Optional, Tuple

from fastapi import HTTPException, Request, Response
from sqlalchemy import delete, select
from starlette.requests import HTTPConnection

from assistant.config.settings import Settings
from assistant.security.accounts import ROLE_ADMIN
from assistant.security.audit import operator_actor
from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import ROLE_NAMES, Operator, OperatorSession

logger = logging.getLogger(__name__)

COOKIE_NAME = "banshi_desk"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# last_seen is written at most this often per session (not on every request).
LAST_SEEN_EVERY = dt.timedelta(seconds=60)

CSRF_FAILED = "页面已过期，请刷新后重试"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a desk operator (``kind="session"``) or an API key (``"apikey"``)."""

    username: str
    role: str  # operator | admin | apikey
    display_name: str
    kind: str  # session | apikey
    csrf_token: Optional[str] = field(default=None, repr=False, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.kind == "session" and self.role == ROLE_ADMIN

    @property
    def actor(self) -> str:
        """The audit actor: ``operator:<username>`` or ``apikey:<prefix>…``."""
        return operator_actor(self.username) if self.kind == "session" else self.username


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_session(db_url: str, operator_id: int, hours: float) -> Tuple[str, str, dt.datetime]:
    """A new session for the operator: (cookie token, csrf token, expires_at)."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = utcnow()
    expires = now + dt.timedelta(hours=hours)
    with session_factory(db_url)() as db:
        # Lazy clean-up of this operator's expired sessions.
        db.execute(
            delete(OperatorSession).where(
                OperatorSession.operator_id == operator_id, OperatorSession.expires_at <= now
            )
        )
        db.add(
            OperatorSession(
                token_hash=token_hash(token),
                operator_id=operator_id,
                csrf_token=csrf,
                created_at=now,
                expires_at=expires,
                last_seen=now,
            )
        )
        db.commit()
    return token, csrf, expires


def delete_session(db_url: str, token: str) -> None:
    with session_factory(db_url)() as db:
        db.execute(delete(OperatorSession).where(OperatorSession.token_hash == token_hash(token)))
        db.commit()


def session_principal(db_url: str, token: str) -> Optional[Principal]:
    """The operator of a valid session token, or None (expired sessions are deleted)."""
    if not token or len(token) > 128:
        return None
    digest = token_hash(token)
    with session_factory(db_url)() as db:
        found = db.execute(
            select(OperatorSession, Operator)
            .join(Operator, Operator.id == OperatorSession.operator_id)
            .where(OperatorSession.token_hash == digest)
        ).first()
        if found is None:
            return None
        session, operator = found
        now = utcnow()
        if session.expires_at <= now:
            db.delete(session)
            db.commit()
            return None
        if not operator.active or operator.role not in ROLE_NAMES:
            return None
        if now - session.last_seen >= LAST_SEEN_EVERY:
            session.last_seen = now
            db.commit()
        return Principal(
            username=operator.username,
            role=operator.role,
            display_name=operator.display_name,
            kind="session",
            csrf_token=session.csrf_token,
        )


def settings_of(conn: HTTPConnection) -> Settings:
    return conn.app.state.settings


def principal_from_request(request: HTTPConnection) -> Optional[Principal]:
    """The desk operator of the request's session cookie, or None. No CSRF check.

    Blocking (database): from async code use ``asyncio.to_thread``.
    """
    token = request.cookies.get(COOKIE_NAME)
    if not token:
        return None
    return session_principal(settings_of(request).db_url, token)


def check_csrf(request: Request, principal: Principal) -> None:
    """403 unless an unsafe request carries the session's CSRF token."""
    if request.method.upper() not in UNSAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not principal.csrf_token or not hmac.compare_digest(sent.encode(), principal.csrf_token.encode()):
        logger.warning("desk.csrf.rejected user=%s path=%s", principal.username, request.url.path)
        raise HTTPException(status_code=403, detail=CSRF_FAILED)


def set_session_cookie(request: Request, response: Response, token: str, hours: float) -> None:
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=int(hours * 3600),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE_NAME, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
