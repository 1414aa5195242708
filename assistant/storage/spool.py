"""Writes that must not be lost while the main database is unreachable: a local
durable spool and its replayer.

A *kept* write (:func:`keep`) goes to the database at once, as before; when the
database is unreachable (:func:`is_outage`: connection refused or cut, a restart, a
pool timeout; never an integrity or programming error) it is appended to a SQLite
file under ``data_dir/spool/`` (``spool_file``) instead, and a background thread of
the process (:func:`start_replayer`) delivers the spooled writes in order once the
database answers again. Each write carries a unique key; for kinds registered
``keyed`` the key is stored in ``applied_writes`` in the write's own transaction, so
replaying a write that did commit (its answer lost with the connection, or the
spool's delete lost in a crash) does nothing. Writes of one ``order_key`` (a ticket,
a WeChat user) stay in order: while one of them waits in the spool, later ones
queue behind it.

Kinds are registered by the modules that own the tables (:func:`register`): feedback
(``knowledge.db``), audit rows (``assistant.security.audit``), handoff tickets and
messages (``assistant.services.handoff.kept``), WeChat replies and deliveries
(``assistant.channels.wechat_kept``). A process replays the kinds it registered for
the databases it uses; the file is shared by the processes of one data directory
(gateways, action servers), one replayer at a time.

Log events: ``storage.spool.kept``, ``.replayed``, ``.duplicate``, ``.dead``,
``.full``, ``.waiting``. :func:`depth` and :func:`snapshot` say what waits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from sqlalchemy import delete
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from assistant.config.settings import get_settings
from assistant.storage.database import session_factory, utcnow
from assistant.storage.spool_file import SpoolFile, SpoolFull
from assistant.storage.tables import AppliedWrite

logger = logging.getLogger(__name__)

SPOOL_DIR = "spool"
SPOOL_FILE = "writes.db"
REPLAY_INTERVAL_S = 1.0  # how often the replayer looks for waiting writes
REPLAY_BATCH = 100
KEY_RETENTION = dt.timedelta(days=30)  # applied_writes rows are purged after this
PURGE_INTERVAL_S = 3600.0
WAITING_LOG_S = 60.0  # while writes wait, the replayer says so this often
# SQLite reports schema mistakes as OperationalError too: those are bugs, not outages.
_NOT_AN_OUTAGE = re.compile(r"no such (table|column)|has no column|syntax error", re.IGNORECASE)


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` says the database is unreachable (worth keeping the write)."""
    if isinstance(exc, (PoolTimeout, DisconnectionError)):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    return isinstance(exc, (OperationalError, InterfaceError)) and not _NOT_AN_OUTAGE.search(str(exc.orig))


# ------------------------------------------------------------------ kinds
Apply = Callable[[Any, Dict[str, Any], bool], Any]


@dataclass(frozen=True)
class Kind:
    name: str
    apply: Apply  # (session, payload, replaying) -> result; the caller commits
    keyed: bool  # its key goes to applied_writes (a write that is not idempotent by itself)


_KINDS: Dict[str, Kind] = {}


def register(name: str, apply: Apply, keyed: bool = True) -> None:
    """Declare a kind of kept write: ``apply(session, payload, replaying)`` writes it in
    the caller's transaction (``replaying``: delivered from the spool, later)."""
    _KINDS[name] = Kind(name, apply, keyed)


def now_iso() -> str:
    """The write's own time for its payload (kept when it is replayed later)."""
    return utcnow().isoformat()


def at_of(payload: Dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(payload["at"]) if payload.get("at") else utcnow()


DUPLICATE = object()  # apply_write's answer when the key was applied before


def apply_write(url: str, kind: str, key: str, payload: Dict[str, Any], replaying: bool = False) -> Any:
    """Write once, in one transaction; :data:`DUPLICATE` when the key was applied before."""
    spec = _KINDS[kind]
    with session_factory(url)() as session:
        if spec.keyed:
            if replaying and session.get(AppliedWrite, key) is not None:
                return DUPLICATE
            session.add(AppliedWrite(key=key, kind=kind, applied_at=utcnow()))
            try:
                session.flush()
            except IntegrityError:  # applied a moment ago by another process
                session.rollback()
                return DUPLICATE
        result = spec.apply(session, payload, replaying)
        session.commit()
        return result


# ------------------------------------------------------------------ databases
_TARGETS: Dict[str, str] = {}  # the database as the file names it (no password) -> its URL


def target_of(url: str) -> str:
    target = make_url(url).render_as_string(hide_password=True)
    _TARGETS.setdefault(target, url)
    return target


# ------------------------------------------------------------------ replaying
def replay_file(spool: SpoolFile, url: Optional[str] = None, order_key: Optional[str] = None,
                wait: bool = False) -> int:
    """Deliver waiting writes oldest first (of ``url``'s database, else of every database
    this process knows; of one order key, else all). Stops at a database's first
    outage; sets aside writes that can never apply. How many were delivered (0 when
    another replayer holds the spool and ``wait`` is False)."""
    delivered: Dict[str, int] = {}
    with spool.replaying(wait) as mine:
        if not mine:
            return 0
        for target in [target_of(url)] if url else spool.targets():
            real = _TARGETS.get(target)
            if real is not None:
                _replay_target(spool, target, real, order_key, delivered)
    total = sum(delivered.values())
    if total:
        kinds = ",".join(f"{kind}:{n}" for kind, n in sorted(delivered.items()))
        logger.info("storage.spool.replayed n=%d kinds=%s waiting=%d", total, kinds, spool.waiting())
    return total


def _replay_target(spool: SpoolFile, target: str, url: str, order_key: Optional[str],
                   delivered: Dict[str, int]) -> None:
    after = 0
    while True:
        rows = spool.rows(target, sorted(_KINDS), order_key, after, REPLAY_BATCH)
        if not rows:
            return
        for row_id, key, kind, blob in rows:
            after = row_id
            try:
                result = apply_write(url, kind, key, spool.unseal(key, blob), replaying=True)
            except Exception as exc:
                if is_outage(exc):  # still down: the next round tries again, in the same order
                    logger.debug("storage.spool.unreachable kind=%s error=%s", kind, type(exc).__name__)
                    return
                logger.error("storage.spool.dead kind=%s key=%s error=%s", kind, key, type(exc).__name__)
                spool.bury(row_id, f"{type(exc).__name__}: {exc}")
                continue
            if result is DUPLICATE:
                logger.info("storage.spool.duplicate kind=%s key=%s", kind, key)
            spool.forget(row_id)
            delivered[kind] = delivered.get(kind, 0) + 1


# ------------------------------------------------------------------ the data directory's spool
_SPOOL: Optional[SpoolFile] = None
_LOCK = threading.Lock()


def default_spool() -> SpoolFile:
    """The spool of this data directory (``data_dir/spool/writes.db``)."""
    global _SPOOL
    with _LOCK:
        if _SPOOL is None:
            settings = get_settings()
            _SPOOL = SpoolFile(settings.data_dir / SPOOL_DIR / SPOOL_FILE, settings.secret())
        return _SPOOL


@dataclass(frozen=True)
class Kept:
    """What :func:`keep` did: the write's result, or ``spooled`` (result None)."""

    result: Any = None
    spooled: bool = False


def keep(db_url: str, kind: str, payload: Dict[str, Any], order_key: Optional[str] = None,
         spool: Optional[SpoolFile] = None, direct: Optional[Callable[[], Any]] = None) -> Kept:
    """Write now, or keep the write in the spool while the database is unreachable.

    ``direct``: how to write now, if not by the kind's ``apply`` (only for kinds that
    are not keyed). Integrity and programming errors are raised as before (never
    spooled); so is the outage itself when the spool is full."""
    spool = spool or default_spool()
    key, target = uuid.uuid4().hex, target_of(db_url)
    start_replayer()
    if order_key is not None and spool.waiting(target, order_key):
        replay_file(spool, db_url, order_key=order_key)  # what came first goes first
        if spool.waiting(target, order_key):
            return _spool(spool, target, kind, key, payload, order_key, None)
    try:
        return Kept(result=direct() if direct is not None else apply_write(db_url, kind, key, payload))
    except Exception as exc:
        if not is_outage(exc):
            raise
        return _spool(spool, target, kind, key, payload, order_key, exc)


def _spool(spool: SpoolFile, target: str, kind: str, key: str, payload: Dict[str, Any],
           order_key: Optional[str], error: Optional[BaseException]) -> Kept:
    try:
        waiting = spool.append(target, kind, key, payload, order_key)
    except SpoolFull as full:
        logger.error("storage.spool.full kind=%s reason=%s", kind, full)
        if error is not None:
            raise error from None
        raise
    logger.warning("storage.spool.kept kind=%s key=%s waiting=%d error=%s", kind, key, waiting,
                   type(error).__name__ if error is not None else "behind_earlier")
    return Kept(spooled=True)


def depth() -> int:
    """Writes waiting in this data directory's spool for a database, any database
    (for /healthz; one small SQLite query, no database call; -1 if the file is unreadable)."""
    waiting = snapshot()["waiting"]
    return -1 if waiting is None else waiting


def snapshot() -> Dict[str, Any]:
    """``{"waiting", "dead", "oldest_seconds"}`` of this data directory's spool (writes
    waiting, writes set aside, age of the oldest waiting one); never raises: an
    unreadable file gives ``None`` counts and ``"error"``."""
    try:
        return default_spool().snapshot()
    except (OSError, sqlite3.Error) as exc:
        logger.error("storage.spool.unreadable error=%s", type(exc).__name__)
        return {"waiting": None, "dead": None, "oldest_seconds": None, "error": type(exc).__name__}


def waiting_for(db_url: str, kinds: List[str]) -> int:
    """Writes of these kinds waiting for ``db_url``'s database."""
    return default_spool().waiting(target_of(db_url), kinds=kinds)


def replay(db_url: Optional[str] = None, wait: bool = False) -> int:
    """Deliver what waits in this data directory's spool now (see :func:`replay_file`)."""
    return replay_file(default_spool(), db_url, wait=wait)


# ------------------------------------------------------------------ the replayer
class _Replayer(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="banshi-spool-replayer", daemon=True)
        self.stopping = threading.Event()
        self._purged: Dict[str, float] = {}
        self._said = 0.0

    def run(self) -> None:
        while not self.stopping.wait(REPLAY_INTERVAL_S):
            try:
                spool = default_spool()
                if spool.waiting():
                    replay_file(spool)
                    self._say(spool)
                self._purge()
            except Exception:  # the replayer never dies; the next round tries again
                logger.exception("storage.spool.replayer_failed")

    def _say(self, spool: SpoolFile) -> None:
        if time.monotonic() - self._said < WAITING_LOG_S:
            return
        state = spool.snapshot()
        if state["waiting"]:
            self._said = time.monotonic()
            logger.warning("storage.spool.waiting n=%d oldest_s=%s", state["waiting"], state["oldest_seconds"])

    def _purge(self) -> None:
        """Forget keys older than ``KEY_RETENTION`` (hourly, per database)."""
        for target, url in list(_TARGETS.items()):
            if time.monotonic() - self._purged.get(target, -PURGE_INTERVAL_S) < PURGE_INTERVAL_S:
                continue
            self._purged[target] = time.monotonic()
            with contextlib.suppress(Exception), session_factory(url)() as session:
                session.execute(delete(AppliedWrite).where(AppliedWrite.applied_at < utcnow() - KEY_RETENTION))
                session.commit()


_REPLAYER: Optional[_Replayer] = None


def start_replayer(db_url: Optional[str] = None) -> None:
    """Start this process's replayer, once (``db_url``: a database to replay for, e.g.
    the gateway's at start-up; kept writes add theirs). The gateway starts it in its
    lifespan; other processes (the action server) on their first kept write."""
    global _REPLAYER
    if db_url is not None:
        target_of(db_url)
    with _LOCK:
        if _REPLAYER is None or not _REPLAYER.is_alive():
            _REPLAYER = _Replayer()
            _REPLAYER.start()


def stop_replayer() -> None:
    global _REPLAYER
    with _LOCK:
        replayer, _REPLAYER = _REPLAYER, None
    if replayer is not None:
        replayer.stopping.set()
        replayer.join(timeout=5)
