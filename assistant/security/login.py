"""Desk login and logout: login rate limits (per client IP and per username), the
credentials check, a new session, and an audit record of each attempt."""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import List, Optional, Tuple

from fastapi import HTTPException, Request
from limits import RateLimitItem, parse as parse_limit
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import select

from assistant.config.settings import Settings
from assistant.security.accounts import _dummy_hash, verify_password
from assistant.security.audit import operator_actor, record_audit_safely
from assistant.security.client import client_ip
from assistant.security.sessions import (
    COOKIE_NAME,
    Principal,
    create_session,
    delete_session,
    settings_of,
)
from assistant.storage.database import session_factory
from assistant.storage.tables import Operator

logger = logging.getLogger(__name__)

BAD_CREDENTIALS = "用户名或密码不正确"
THROTTLED = "登录尝试过于频繁，请稍后再试"

AUDIT_LOGIN = "desk.login"
AUDIT_LOGOUT = "desk.logout"



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
                throttle = state.login_throttle = LoginThrottle.from_settings(settings_of(request))
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
    settings = settings_of(request)
    ip = client_ip(request, settings.trusted_proxies)
    with session_factory(settings.db_url)() as db:
        operator = db.execute(select(Operator).where(Operator.username == username)).scalar_one_or_none()
    actor = operator_actor(operator.username) if operator is not None else "anonymous"
    subject = operator.username if operator is not None else None
    log_user = operator.username if operator is not None else "<unknown>"

    retry_after = login_throttle(request).hit(ip, username)
    if retry_after is not None:
        logger.warning("desk.login.throttled user=%s", log_user)
        record_audit_safely(
            settings.db_url, actor=actor, action=AUDIT_LOGIN, subject=subject, channel="desk", result="throttled"
        )
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
        record_audit_safely(
            settings.db_url, actor=actor, action=AUDIT_LOGIN, subject=subject, channel="desk", result="failed"
        )
        raise HTTPException(status_code=401, detail=BAD_CREDENTIALS)

    old = request.cookies.get(COOKIE_NAME)
    if old:
        delete_session(settings.db_url, old)
    token, csrf, _ = create_session(settings.db_url, operator.id, settings.desk_session_hours)
    logger.info("desk.login.ok user=%s", operator.username)
    record_audit_safely(
        settings.db_url, actor=actor, action=AUDIT_LOGIN, subject=subject, channel="desk", result="ok"
    )
    principal = Principal(
        username=operator.username,
        role=operator.role,
        display_name=operator.display_name,
        kind="session",
        csrf_token=csrf,
    )
    return LoginResult(principal=principal, token=token)


def logout(request: Request, principal: Principal) -> None:
    settings = settings_of(request)
    token = request.cookies.get(COOKIE_NAME)
    if token:
        delete_session(settings.db_url, token)
    logger.info("desk.logout user=%s", principal.username)
    record_audit_safely(
        settings.db_url,
        actor=principal.actor,
        action=AUDIT_LOGOUT,
        subject=principal.username,
        channel="desk",
        result="ok",
    )
