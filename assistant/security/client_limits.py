"""Per-client-IP limits on the public API, shared by every gateway replica and action
server: Redis when ``redis_url`` is set, else the database.

The gateway knows the client's IP; the progress lookup runs in the action server,
which only sees the conversation id. So the gateway remembers, for each conversation
it serves, the client it was last used from (:func:`remember_client`), and the action
server counts each progress lookup and verification against that client
(:meth:`ClientLimiter.hit`). Conversations with no remembered client (WeChat, whose
users WeChat itself authenticates; the terminal) are counted per conversation only.
Only keyed hashes are stored (``assistant.security.client``), never an IP address.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from typing import Dict, Optional, Tuple

from limits import RateLimitItem, parse as parse_limit
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import delete, func, select, text as sql_text

from assistant.config.settings import Settings
from assistant.security.client import client_key, conversation_key
from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import ConversationClient, RateLimitHit

logger = logging.getLogger(__name__)

PROGRESS_SCOPE = "progress"
# How long a conversation's client is remembered after its last turn.
REMEMBER_SECONDS = 24 * 3600
# A gateway process rewrites an unchanged conversation → client entry at most this often.
REFRESH_SECONDS = 300
_PRUNE_EVERY_S = 600
_REDIS_PREFIX = "banshi:conversation-client:"


# ------------------------------------------------------- conversation → client
class ClientRegistry:
    """conversation → client (both keyed hashes), in Redis or the database."""

    def __init__(self, db_url: str, redis_url: Optional[str] = None) -> None:
        self.db_url = db_url
        self.redis = None
        if redis_url:
            import redis

            self.redis = redis.Redis.from_url(redis_url)
        self._written: Dict[str, Tuple[str, float]] = {}
        self._pruned = 0.0

    def remember(self, conversation: str, client: str) -> None:
        now = time.monotonic()
        seen = self._written.get(conversation)
        if seen is not None and seen[0] == client and now - seen[1] < REFRESH_SECONDS:
            return
        if self.redis is not None:
            self.redis.set(_REDIS_PREFIX + conversation, client, ex=REMEMBER_SECONDS)
        else:
            with session_factory(self.db_url)() as session, session.begin():
                row = session.get(ConversationClient, conversation)
                if row is None:
                    session.add(ConversationClient(conversation=conversation, client=client, seen_at=utcnow()))
                else:
                    row.client, row.seen_at = client, utcnow()
            if now - self._pruned > _PRUNE_EVERY_S:
                self._pruned = now
                self.prune()
        if len(self._written) > 50_000:
            self._written.clear()
        self._written[conversation] = (client, now)

    def client_of(self, conversation: str) -> Optional[str]:
        if self.redis is not None:
            value = self.redis.get(_REDIS_PREFIX + conversation)
            return value.decode() if isinstance(value, bytes) else value
        since = utcnow() - dt.timedelta(seconds=REMEMBER_SECONDS)
        with session_factory(self.db_url)() as session:
            row = session.get(ConversationClient, conversation)
            return row.client if row is not None and row.seen_at >= since else None

    def prune(self) -> int:
        since = utcnow() - dt.timedelta(seconds=REMEMBER_SECONDS)
        with session_factory(self.db_url)() as session, session.begin():
            return session.execute(delete(ConversationClient).where(ConversationClient.seen_at < since)).rowcount


# ------------------------------------------------------------------ limiter
class ClientLimiter:
    """A moving-window limit per client (``rate`` like ``30/15minutes``)."""

    def __init__(self, rate: str, db_url: str, redis_url: Optional[str] = None, scope: str = PROGRESS_SCOPE) -> None:
        self.limit: RateLimitItem = parse_limit(rate)
        self.scope = f"banshi-{scope}-ip"
        self.db_url = db_url
        self.limiter: Optional[MovingWindowRateLimiter] = None
        if redis_url:
            self.storage = storage_from_string(redis_url)  # the limiter keeps only a weak reference
            self.limiter = MovingWindowRateLimiter(self.storage)

    @property
    def window(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.limit.get_expiry())

    def hit(self, client: str) -> Optional[int]:
        """Count one attempt of ``client``. None when allowed, else the seconds until
        an attempt is allowed again (refused attempts are not counted)."""
        if self.limiter is not None:
            if self.limiter.hit(self.limit, self.scope, client):
                return None
            return self.retry_after(client)
        key, now = f"{self.scope}:{client}", utcnow()
        with session_factory(self.db_url)() as session, session.begin():
            if session.bind.dialect.name == "postgresql":  # one counter update at a time per key
                session.execute(sql_text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})
            # Old hits go first (on SQLite this takes the write lock before counting).
            session.execute(delete(RateLimitHit).where(RateLimitHit.at <= now - self.window))
            count, oldest = session.execute(
                select(func.count(RateLimitHit.id), func.min(RateLimitHit.at)).where(
                    RateLimitHit.key == key, RateLimitHit.at > now - self.window
                )
            ).one()
            if count >= self.limit.amount:
                return _seconds_until(oldest + self.window, now)
            session.add(RateLimitHit(key=key, at=now))
        return None

    def retry_after(self, client: str) -> Optional[int]:
        """Seconds until ``client`` may try again, None when it may now (counts nothing)."""
        if self.limiter is not None:
            reset, remaining = self.limiter.get_window_stats(self.limit, self.scope, client)
            return None if remaining > 0 else max(1, math.ceil(reset - time.time()))
        key, now = f"{self.scope}:{client}", utcnow()
        with session_factory(self.db_url)() as session:
            count, oldest = session.execute(
                select(func.count(RateLimitHit.id), func.min(RateLimitHit.at)).where(
                    RateLimitHit.key == key, RateLimitHit.at > now - self.window
                )
            ).one()
        return _seconds_until(oldest + self.window, now) if count >= self.limit.amount else None


def _seconds_until(at: dt.datetime, now: dt.datetime) -> int:
    return max(1, math.ceil((at - now).total_seconds()))


# ------------------------------------------------------------- per settings
_lock = threading.Lock()
_registries: Dict[Tuple[str, Optional[str]], ClientRegistry] = {}
_limiters: Dict[Tuple[str, str, Optional[str]], ClientLimiter] = {}


def registry_for(settings: Settings) -> ClientRegistry:
    key = (settings.db_url, settings.redis_url)
    with _lock:
        if key not in _registries:
            _registries[key] = ClientRegistry(settings.db_url, settings.redis_url)
        return _registries[key]


def progress_limiter(settings: Settings) -> ClientLimiter:
    key = (settings.progress_ip_rate_limit, settings.db_url, settings.redis_url)
    with _lock:
        if key not in _limiters:
            _limiters[key] = ClientLimiter(settings.progress_ip_rate_limit, settings.db_url, settings.redis_url)
        return _limiters[key]


def remember_client(settings: Settings, sender_id: str, address: str) -> None:
    """The gateway: conversation ``sender_id`` is being used from ``address``. Blocking."""
    if not address:
        return
    secret = settings.secret()
    registry_for(settings).remember(conversation_key(secret, sender_id), client_key(secret, address))


def client_of(settings: Settings, sender_id: str) -> Optional[str]:
    """The action server: the client (hash) conversation ``sender_id`` was last used from."""
    return registry_for(settings).client_of(conversation_key(settings.secret(), sender_id))


def hit_progress_limit(settings: Settings, sender_id: str) -> Tuple[Optional[str], Optional[int]]:
    """Count one progress lookup or verification of ``sender_id``'s client. Blocking.

    Returns (client hash or None when unknown, seconds to wait when over the limit)."""
    client = client_of(settings, sender_id)
    if client is None:
        return None, None
    wait = progress_limiter(settings).hit(client)
    if wait is not None:
        logger.warning("progress.ip_limit.refused client=%s wait_s=%d", client[:12], wait)
    return client, wait


def progress_retry_after(settings: Settings, sender_id: str) -> Optional[int]:
    client = client_of(settings, sender_id)
    return progress_limiter(settings).retry_after(client) if client else None
