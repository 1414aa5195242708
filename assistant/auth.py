"""Operator accounts, desk login sessions, CSRF protection and login rate limits.

Accounts live in the ``operators`` table with an argon2id password hash. A login
creates a random session token sent as the ``banshi_desk`` cookie (HttpOnly,
SameSite=Strict); only its SHA-256 is stored (``operator_sessions``), next to a
random CSRF token that the page sends back in the ``X-CSRF-Token`` header of every
POST/PUT/PATCH/DELETE. The account is read again on every request, so disabling or
demoting an operator takes effect at once.

FastAPI dependencies (all plain ``def``: FastAPI runs them in the threadpool):

- ``OperatorDep``: an active operator or admin with a valid session (+ CSRF for
  unsafe methods);
- ``AdminDep``: the same, role ``admin``;
- ``AssistCallerDep``: ``Authorization: Bearer <key>`` with a configured API key,
  or a desk session as for ``OperatorDep``.

``principal_from_request`` (no CSRF check) is blocking: from async code call it as
``await asyncio.to_thread(principal_from_request, request)``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Callable, List, Optional, Tuple

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Depends, HTTPException, Request, Response
from limits import RateLimitItem, parse as parse_limit
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from starlette.requests import HTTPConnection

from assistant.audit import operator_actor, record_audit
from assistant.storage.tables import ROLE_NAMES, Operator, OperatorSession
from assistant.config.settings import Settings
from assistant.storage.database import session_factory, utcnow

logger = logging.getLogger(__name__)

COOKIE_NAME = "banshi_desk"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 256
USERNAME_RE = re.compile(r"^[a-z0-9_.-]{3,32}$")
ROLE_ADMIN = "admin"
ROLE_OPERATOR = "operator"
ROLE_LABELS = {ROLE_OPERATOR: "坐席", ROLE_ADMIN: "管理员"}
# last_seen is written at most this often per session (not on every request).
LAST_SEEN_EVERY = dt.timedelta(seconds=60)

NOT_LOGGED_IN = "请先登录"
CSRF_FAILED = "页面已过期，请刷新后重试"
FORBIDDEN = "没有权限"
BAD_CREDENTIALS = "用户名或密码不正确"
THROTTLED = "登录尝试过于频繁，请稍后再试"
BAD_API_KEY = "API 密钥无效"

AUDIT_LOGIN = "desk.login"
AUDIT_LOGOUT = "desk.logout"

_hasher = PasswordHasher(type=Type.ID)


# ----------------------------------------------------------------- errors
class DuplicateUsername(ValueError):
    """The username is already taken."""


class OperatorNotFound(LookupError):
    """No operator with that username."""


class LastAdminError(ValueError):
    """The change would leave no active admin."""


# --------------------------------------------------------------- passwords
def hash_password(password: str) -> str:
    """argon2id hash of ``password`` (at least 10 characters)."""
    check_password(password)
    return _hasher.hash(password)


def check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"password must be at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"password must be at most {MAX_PASSWORD_CHARS} characters")


def verify_password(
    password_hash: str, password: str, rehash: Optional[Callable[[str], None]] = None
) -> bool:
    """Whether ``password`` matches ``password_hash``.

    When it matches and the hash uses outdated parameters, ``rehash`` is called with
    a fresh hash of the password (to be stored instead).
    """
    try:
        _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    if rehash is not None and _hasher.check_needs_rehash(password_hash):
        rehash(_hasher.hash(password))
    return True


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash to verify unknown usernames against, so that they take as long as known ones."""
    return _hasher.hash(secrets.token_urlsafe(16))


# ----------------------------------------------------------------- accounts
@dataclass(frozen=True)
class OperatorInfo:
    username: str
    display_name: str
    role: str
    active: bool
    created_at: dt.datetime

    @classmethod
    def of(cls, row: Operator) -> "OperatorInfo":
        return cls(row.username, row.display_name, row.role, bool(row.active), row.created_at)

    def as_dict(self) -> dict:
        return {
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role,
            "active": self.active,
            "created_at": self.created_at.isoformat(),
        }


def check_username(username: str) -> None:
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        raise ValueError("username must be 3-32 characters of a-z, 0-9, '_', '.', '-'")


def check_role(role: str) -> None:
    if role not in ROLE_NAMES:
        raise ValueError(f"role must be one of: {', '.join(ROLE_NAMES)}")


def create_operator(
    db_url: str,
    username: str,
    password: str,
    role: str = ROLE_OPERATOR,
    display_name: Optional[str] = None,
) -> OperatorInfo:
    """Create an account. ValueError (DuplicateUsername for a taken name) on bad input."""
    check_username(username)
    check_role(role)
    display_name = (display_name or username).strip() or username
    if len(display_name) > 64:
        raise ValueError("display name must be at most 64 characters")
    password_hash = hash_password(password)
    with session_factory(db_url)() as db:
        if db.execute(select(Operator.id).where(Operator.username == username)).first():
            raise DuplicateUsername(f"username already exists: {username}")
        row = Operator(
            username=username,
            display_name=display_name,
            password_hash=password_hash,
            role=role,
            active=True,
        )
        db.add(row)
        try:
            db.commit()
        except IntegrityError as exc:  # created concurrently
            raise DuplicateUsername(f"username already exists: {username}") from exc
        logger.info("desk.operator.created user=%s role=%s", username, role)
        return OperatorInfo.of(row)


def list_operators(db_url: str) -> List[OperatorInfo]:
    with session_factory(db_url)() as db:
        rows = db.execute(select(Operator).order_by(Operator.username)).scalars().all()
        return [OperatorInfo.of(row) for row in rows]


def get_operator(db_url: str, username: str) -> Optional[OperatorInfo]:
    with session_factory(db_url)() as db:
        row = db.execute(select(Operator).where(Operator.username == username)).scalar_one_or_none()
        return OperatorInfo.of(row) if row is not None else None


def update_operator(
    db_url: str,
    username: str,
    *,
    active: Optional[bool] = None,
    role: Optional[str] = None,
    password: Optional[str] = None,
) -> OperatorInfo:
    """Change an account in one transaction.

    Disabling an account or changing its password ends its sessions. Raises
    OperatorNotFound, ValueError (bad role/password) or LastAdminError.
    """
    if role is not None:
        check_role(role)
    password_hash = hash_password(password) if password is not None else None
    with session_factory(db_url)() as db:
        row = db.execute(select(Operator).where(Operator.username == username)).scalar_one_or_none()
        if row is None:
            raise OperatorNotFound(username)
        was_admin = row.active and row.role == ROLE_ADMIN
        if active is not None:
            row.active = active
        if role is not None:
            row.role = role
        if was_admin and not (row.active and row.role == ROLE_ADMIN):
            others = db.execute(
                select(func.count(Operator.id)).where(
                    Operator.role == ROLE_ADMIN,
                    Operator.active.is_(True),
                    Operator.id != row.id,
                )
            ).scalar_one()
            if others == 0:
                db.rollback()
                raise LastAdminError("at least one active admin must remain")
        if password_hash is not None:
            row.password_hash = password_hash
        if active is False or password_hash is not None:
            db.execute(delete(OperatorSession).where(OperatorSession.operator_id == row.id))
        db.commit()
        logger.info(
            "desk.operator.updated user=%s active=%s role=%s password_changed=%s",
            username,
            row.active,
            row.role,
            password_hash is not None,
        )
        return OperatorInfo.of(row)


def set_password(db_url: str, username: str, password: str) -> OperatorInfo:
    """New password (ends the account's sessions)."""
    return update_operator(db_url, username, password=password)


def set_active(db_url: str, username: str, active: bool) -> OperatorInfo:
    """Enable or disable an account; disabling ends its sessions at once."""
    return update_operator(db_url, username, active=active)


# ------------------------------------------------------------------- audit
def audit(
    db_url: str,
    *,
    actor: str,
    action: str,
    subject: Optional[str] = None,
    channel: Optional[str] = None,
    result: str,
) -> None:
    """Write an audit row; a failure is logged, never shown to the caller."""
    try:
        record_audit(db_url, actor=actor, action=action, subject=subject, channel=channel, result=result)
    except Exception:
        logger.exception("desk.audit.failed action=%s", action)


# ----------------------------------------------------------------- sessions
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


def _settings(conn: HTTPConnection) -> Settings:
    return conn.app.state.settings


def principal_from_request(request: HTTPConnection) -> Optional[Principal]:
    """The desk operator of the request's session cookie, or None. No CSRF check.

    Blocking (database): from async code use ``asyncio.to_thread``.
    """
    token = request.cookies.get(COOKIE_NAME)
    if not token:
        return None
    return session_principal(_settings(request).db_url, token)


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


# ------------------------------------------------------------- dependencies
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
        keys = _settings(request).assist_keys
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


# --------------------------------------------------------------- rate limit
class LoginThrottle:
    """Moving-window limits on login attempts per client IP and per username.

    Counters live in Redis when ``redis_url`` is set (shared by several gateway
    replicas), in memory otherwise.
    """

    def __init__(self, rate: str, storage_url: Optional[str] = None) -> None:
        self.limit: RateLimitItem = parse_limit(rate)
        self.storage = storage_from_string(storage_url or "memory://")
        self.limiter = MovingWindowRateLimiter(self.storage)

    @classmethod
    def from_settings(cls, settings: Settings) -> "LoginThrottle":
        return cls(settings.login_rate_limit, settings.redis_url)

    def _keys(self, ip: str, username: str) -> List[Tuple[str, str]]:
        return [("banshi-login-ip", ip or "-"), ("banshi-login-user", username.strip().lower()[:64])]

    def hit(self, ip: str, username: str) -> Optional[int]:
        """Count one attempt. None if allowed, else the seconds to wait (Retry-After)."""
        allowed = True
        for keys in self._keys(ip, username):
            allowed = self.limiter.hit(self.limit, *keys) and allowed
        if allowed:
            return None
        reset = max(self.limiter.get_window_stats(self.limit, *k)[0] for k in self._keys(ip, username))
        return max(1, math.ceil(reset - time.time()))


_throttle_lock = threading.Lock()


def login_throttle(request: Request) -> LoginThrottle:
    """The app's login throttle (created on first use)."""
    state = request.app.state
    throttle = getattr(state, "login_throttle", None)
    if throttle is None:
        with _throttle_lock:
            throttle = getattr(state, "login_throttle", None)
            if throttle is None:
                throttle = state.login_throttle = LoginThrottle.from_settings(_settings(request))
    return throttle


# -------------------------------------------------------------------- login
@dataclass(frozen=True)
class LoginResult:
    principal: Principal
    token: str


def login(request: Request, username: str, password: str) -> LoginResult:
    """Check the rate limit and the credentials, create a session. Blocking.

    Raises HTTPException 429 (throttled) or 401 (bad credentials).
    """
    settings = _settings(request)
    ip = request.client.host if request.client else ""
    with session_factory(settings.db_url)() as db:
        operator = db.execute(select(Operator).where(Operator.username == username)).scalar_one_or_none()
    actor = operator_actor(operator.username) if operator is not None else "anonymous"
    subject = operator.username if operator is not None else None
    log_user = operator.username if operator is not None else "<unknown>"

    retry_after = login_throttle(request).hit(ip, username)
    if retry_after is not None:
        logger.warning("desk.login.throttled user=%s", log_user)
        audit(settings.db_url, actor=actor, action=AUDIT_LOGIN, subject=subject, channel="desk", result="throttled")
        raise HTTPException(status_code=429, detail=THROTTLED, headers={"Retry-After": str(retry_after)})

    def store_rehash(new_hash: str) -> None:
        with session_factory(settings.db_url)() as db:
            row = db.get(Operator, operator.id)
            if row is not None:
                row.password_hash = new_hash
                db.commit()
        logger.info("desk.password.rehashed user=%s", operator.username)

    if operator is None:
        verify_password(_dummy_hash(), password)  # same cost as a real check
        ok = False
    else:
        ok = verify_password(operator.password_hash, password, rehash=store_rehash) and bool(operator.active)
    if not ok:
        logger.warning("desk.login.failed user=%s", log_user)
        audit(settings.db_url, actor=actor, action=AUDIT_LOGIN, subject=subject, channel="desk", result="failed")
        raise HTTPException(status_code=401, detail=BAD_CREDENTIALS)

    old = request.cookies.get(COOKIE_NAME)
    if old:
        delete_session(settings.db_url, old)
    token, csrf, _ = create_session(settings.db_url, operator.id, settings.desk_session_hours)
    logger.info("desk.login.ok user=%s", operator.username)
    audit(settings.db_url, actor=actor, action=AUDIT_LOGIN, subject=subject, channel="desk", result="ok")
    principal = Principal(
        username=operator.username,
        role=operator.role,
        display_name=operator.display_name,
        kind="session",
        csrf_token=csrf,
    )
    return LoginResult(principal=principal, token=token)


def logout(request: Request, principal: Principal) -> None:
    settings = _settings(request)
    token = request.cookies.get(COOKIE_NAME)
    if token:
        delete_session(settings.db_url, token)
    logger.info("desk.logout user=%s", principal.username)
    audit(
        settings.db_url,
        actor=principal.actor,
        action=AUDIT_LOGOUT,
        subject=principal.username,
        channel="desk",
        result="ok",
    )
