"""The gateway's link to the action server: one pooled HTTP session, short timeouts and
a circuit breaker.

When a call fails at the network level (refused, reset, timed out), or a proxy in front
of the action servers says none is reachable (502, 503, 504), the server is taken as down: from then on calls fail at once instead of waiting, and ``/health`` is probed
every few seconds until it answers again. While it is down, a few actions can run in
the gateway instead (``local_actions``: name → coroutine that takes the action call's
JSON body and returns the action server's reply, or None when it cannot answer;
installed by ``assistant.services.degraded``). Each turn records which actions it could
not run (:func:`turn_record`), so the reply can say so.

:meth:`ActionServerLink.snapshot` is what ``/healthz`` reads: reachable or not, since
when, how often it went down and how many answers the gateway gave in its place.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple, Type

import aiohttp
from rasa.utils.endpoints import ClientResponseError, EndpointConfig

logger = logging.getLogger(__name__)

# A refused connection fails at once; this bounds a connection to a host that is gone.
CONNECT_TIMEOUT_S = 1.0
# A whole action call (Rasa itself would wait five minutes), besides the time an action
# may spend on an outside system (see AssistantRuntime).
ACTION_TIMEOUT_S = 10.0
# While the server is down, /health is asked this often, with this timeout.
PROBE_INTERVAL_S = 3.0
PROBE_TIMEOUT_S = 1.0
HEALTH_PATH = "/health"
WEBHOOK_PATH = "/webhook"
POOL_SIZE = 32
KEEPALIVE_S = 60
# Connection-level failures: the server is unreachable (an HTTP error status is not).
UNREACHABLE_ERRORS: Tuple[Type[BaseException], ...] = (
    aiohttp.ClientConnectorError,
    aiohttp.ServerDisconnectedError,
)
# Failures after the request was sent (slow, cut off): this call alone is answered
# without the server; the others, and the pooled connections, are left alone (a slow
# progress lookup must not cut other conversations' calls in flight).
CALL_FAILED_ERRORS: Tuple[Type[BaseException], ...] = (
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
    asyncio.TimeoutError,
)
# A proxy in front of the action servers (nginx with several) answers these when none
# is reachable.
PROXY_UNREACHABLE_STATUSES = frozenset({502, 503, 504})
# Rasa's own error lines for an action that failed this way (we log our own, once).
RASA_LOGGERS = ("rasa.core.actions.action", "rasa.core.processor")
UNREACHABLE_MARK = "action server unreachable"

LocalAction = Callable[[Dict[str, Any]], Awaitable[Optional[Dict[str, Any]]]]


class ActionServerUnreachable(aiohttp.ClientConnectionError):
    """An action call not made (or failed) because the action server is unreachable."""


@dataclass
class TurnRecord:
    """The actions of one turn that ran in the gateway, or could not run at all."""

    answered_locally: List[str] = field(default_factory=list)
    unavailable: List[str] = field(default_factory=list)


_TURN: ContextVar[Optional[TurnRecord]] = ContextVar("banshi_action_turn", default=None)


def turn_record() -> Tuple[TurnRecord, Any]:
    """Start recording the current turn's action calls; pass the token to :func:`end_turn`."""
    record = TurnRecord()
    return record, _TURN.set(record)


def end_turn(token: Any) -> None:
    _TURN.reset(token)


def health_url(webhook_url: str) -> str:
    base = webhook_url.rsplit(WEBHOOK_PATH, 1)[0]
    return f"{base}{HEALTH_PATH}"


def _caused_by_unreachable(error: Optional[BaseException]) -> bool:
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, ActionServerUnreachable):
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


class _QuietUnreachable(logging.Filter):
    """Drops Rasa's error lines (with tracebacks) for calls we did not make on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and _caused_by_unreachable(record.exc_info[1]):
            return False
        return UNREACHABLE_MARK not in record.getMessage()


_QUIET = _QuietUnreachable()


def quiet_rasa_errors() -> None:
    for name in RASA_LOGGERS:
        target = logging.getLogger(name)
        if _QUIET not in target.filters:
            target.addFilter(_QUIET)


class ActionServerLink:
    """Whether the action server is reachable, the probe that notices its return, and
    the counts ``/healthz`` reports."""

    def __init__(self, webhook_url: str, probe_interval: float = PROBE_INTERVAL_S) -> None:
        self.webhook_url = webhook_url
        self.health_url = health_url(webhook_url)
        self.probe_interval = probe_interval
        self.reachable = True
        self.down_since: Optional[float] = None  # time.time() of the last outage's start
        self.outages = 0
        self.fallback_answers = 0  # actions answered by the gateway in the server's place
        self.unavailable_answers = 0  # actions that could not run: "briefly unavailable"
        self.local_actions: Dict[str, LocalAction] = {}
        self._probe: Optional[asyncio.Task] = None

    def trip(self, error: BaseException) -> None:
        """A call failed at the network level: the server is down until /health answers."""
        if not self.reachable:
            return
        self.reachable = False
        self.down_since = time.time()
        self.outages += 1
        logger.warning(
            "gateway.actions.unreachable url=%s error=%s", self.webhook_url, type(error).__name__
        )
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._probe_until_up())

    def recovered(self) -> None:
        if self.reachable:
            return
        down = time.time() - (self.down_since or time.time())
        self.reachable = True
        self.down_since = None
        logger.info(
            "gateway.actions.recovered down_s=%.1f fallback_answers=%d unavailable=%d",
            down, self.fallback_answers, self.unavailable_answers,
        )

    async def probe(self, session: aiohttp.ClientSession) -> bool:
        try:
            async with session.get(self.health_url) as reply:
                return reply.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False

    async def answers_health(self) -> bool:
        """One quick /health (a call just failed after it was sent: slow, or gone?)."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)) as session:
            return await self.probe(session)

    async def _probe_until_up(self) -> None:
        timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not self.reachable:
                await asyncio.sleep(self.probe_interval)
                if await self.probe(session):
                    self.recovered()

    async def instead(self, body: Dict[str, Any]) -> Any:
        """The reply to an action call that cannot reach the server: the gateway's own
        answer when it has one for this action, else :class:`ActionServerUnreachable`."""
        action = str(body.get("next_action") or "")
        record = _TURN.get()
        local = self.local_actions.get(action)
        if local is not None:
            try:
                reply = await local(body)
            except Exception:  # the gateway's answer failed: say it is unavailable
                logger.exception("gateway.fallback.failed action=%s", action)
                reply = None
            if reply is not None:
                self.fallback_answers += 1
                if record is not None:
                    record.answered_locally.append(action)
                return reply
        self.unavailable_answers += 1
        if record is not None:
            record.unavailable.append(action)
        logger.info("gateway.actions.unavailable action=%s", action)
        raise ActionServerUnreachable(f"{UNREACHABLE_MARK}: {action}")

    def snapshot(self) -> Dict[str, Any]:
        """For /healthz: ``{reachable, down_seconds, outages, fallback_answers,
        unavailable_answers}`` (``down_seconds``: of the current outage, else None)."""
        return {
            "reachable": self.reachable,
            "down_seconds": round(time.time() - self.down_since, 1) if self.down_since else None,
            "outages": self.outages,
            "fallback_answers": self.fallback_answers,
            "unavailable_answers": self.unavailable_answers,
        }

    async def close(self) -> None:
        if self._probe is not None and not self._probe.done():
            self._probe.cancel()
            try:
                await self._probe
            except asyncio.CancelledError:
                pass


class _SharedSession:
    """Async context manager yielding one long-lived aiohttp session (keep-alive)."""

    def __init__(self, owner: "ActionEndpoint") -> None:
        self._owner = owner

    async def __aenter__(self) -> aiohttp.ClientSession:
        return await self._owner.shared_session()

    async def __aexit__(self, *exc: Any) -> None:
        return None


class ActionEndpoint(EndpointConfig):
    """The action endpoint Rasa calls: one pooled session (Rasa would open one per call),
    our timeouts instead of Rasa's five minutes, and the circuit breaker of ``link``."""

    _session: Optional[aiohttp.ClientSession] = None

    def __init__(self, url: str, timeout_s: float = ACTION_TIMEOUT_S, **kwargs: Any) -> None:
        super().__init__(url=url, **kwargs)
        self.link = ActionServerLink(url)
        self.call_timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=CONNECT_TIMEOUT_S)

    async def shared_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=POOL_SIZE, keepalive_timeout=KEEPALIVE_S),
                timeout=self.call_timeout,
            )
        return self._session

    def session(self) -> _SharedSession:  # type: ignore[override]
        return _SharedSession(self)

    async def request(
        self,
        method: str = "post",
        subpath: Optional[str] = None,
        content_type: Optional[str] = "application/json",
        compress: bool = False,
        **kwargs: Any,
    ) -> Optional[Any]:
        if self.link.reachable:
            kwargs["timeout"] = self.call_timeout
            try:
                return await super().request(method, subpath, content_type, compress, **kwargs)
            except UNREACHABLE_ERRORS as error:
                self.link.trip(error)
            except CALL_FAILED_ERRORS as error:
                if await self.link.answers_health():
                    logger.warning("gateway.actions.call_failed error=%s", type(error).__name__)
                else:  # hung or gone: the other calls need not wait for their timeouts
                    self.link.trip(error)
            except ClientResponseError as error:
                if error.status not in PROXY_UNREACHABLE_STATUSES:
                    raise
                self.link.trip(error)
        return await self.link.instead(kwargs.get("json") or {})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def shutdown(self) -> None:
        await self.link.close()
        await self.close()
