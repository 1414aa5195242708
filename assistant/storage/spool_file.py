"""The spool's file (``assistant.storage.spool``): a SQLite database of writes waiting
for the main database, shared by the processes of one data directory.

The file is 0600 in a 0700 directory; each payload is encrypted (AES-GCM, bound to
its key) with a key derived from the secret key, so a copy of the file alone does not
show what the waiting writes hold. Commits are synchronous (``synchronous=FULL``): a
kept write survives a crash of the process and of the machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAX_WAITING = 100_000  # writes waiting for the database; past that, writes fail as before
MAX_DEAD = 10_000  # writes that can never apply (kept for inspection), the oldest dropped
MAX_PAYLOAD_BYTES = 256 * 1024
_KEY_INFO = b"banshi spool v1"
_NONCE_BYTES = 12

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    order_key TEXT,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    dead INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS spool_waiting ON spool (dead, target, id);
CREATE INDEX IF NOT EXISTS spool_order ON spool (order_key, dead);
"""

Row = Tuple[int, str, str, bytes]  # id, key, kind, sealed payload


class SpoolFull(RuntimeError):
    """The spool holds ``MAX_WAITING`` writes (or the payload is too large)."""


def _in(values: Sequence[str]) -> str:
    return ",".join("?" * len(values))


class SpoolFile:
    """One spool file. Every method opens its own connection (threads, processes)."""

    def __init__(self, path: Path, secret: bytes) -> None:
        self.path = Path(path)
        self._aead = AESGCM(hmac.new(secret, _KEY_INFO, hashlib.sha256).digest())
        self._ready = False
        self._thread_lock = threading.Lock()
        self._lock_file: Optional[Any] = None
        self._lock_pid = 0

    # -------------------------------------------------------------- connection
    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.path.parent, 0o700)
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
            os.chmod(self.path, 0o600)  # SQLite gives its -wal and -shm files the same mode
        conn = sqlite3.connect(self.path, timeout=15, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        if not self._ready:
            conn.executescript(_SCHEMA)
            self._ready = True
        return conn

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        try:
            yield conn
        finally:
            conn.close()

    def seal(self, key: str, payload: Dict[str, Any]) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        return nonce + self._aead.encrypt(nonce, data, key.encode())

    def unseal(self, key: str, blob: bytes) -> Dict[str, Any]:
        plain = self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], key.encode())
        return json.loads(plain.decode("utf-8"))

    # -------------------------------------------------------------- writing
    def append(self, target: str, kind: str, key: str, payload: Dict[str, Any], order_key: Optional[str]) -> int:
        """Keep one write; how many now wait. SpoolFull past ``MAX_WAITING``."""
        blob = self.seal(key, payload)
        if len(blob) > MAX_PAYLOAD_BYTES:
            raise SpoolFull(f"payload of {len(blob)} bytes")
        with self._db() as conn:
            conn.execute("BEGIN IMMEDIATE")
            waiting = conn.execute("SELECT COUNT(*) FROM spool WHERE dead = 0").fetchone()[0]
            if waiting >= MAX_WAITING:
                conn.execute("ROLLBACK")
                raise SpoolFull(f"{waiting} writes waiting")
            conn.execute(
                "INSERT INTO spool (key, kind, target, order_key, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (key, kind, target, order_key, blob, time.time()),
            )
            conn.execute("COMMIT")
            return waiting + 1

    def forget(self, row_id: int) -> None:
        """A write was delivered."""
        with self._db() as conn:
            conn.execute("DELETE FROM spool WHERE id = ?", (row_id,))

    def bury(self, row_id: int, error: str) -> None:
        """A write that can never apply: set aside (not waiting any more), kept for inspection."""
        with self._db() as conn:
            conn.execute("UPDATE spool SET dead = 1, last_error = ? WHERE id = ?", (error[:200], row_id))
            conn.execute(
                "DELETE FROM spool WHERE dead = 1 AND id NOT IN "
                "(SELECT id FROM spool WHERE dead = 1 ORDER BY id DESC LIMIT ?)",
                (MAX_DEAD,),
            )

    # -------------------------------------------------------------- reading
    def waiting(self, target: Optional[str] = None, order_key: Optional[str] = None,
                kinds: Optional[Sequence[str]] = None) -> int:
        """Writes waiting (all, or of one database, one order key, some kinds)."""
        if not self.path.exists():
            return 0
        query, args = "SELECT COUNT(*) FROM spool WHERE dead = 0", []
        for column, value in (("target", target), ("order_key", order_key)):
            if value is not None:
                query += f" AND {column} = ?"
                args.append(value)
        if kinds is not None:
            query += f" AND kind IN ({_in(kinds)})"
            args.extend(kinds)
        with self._db() as conn:
            return int(conn.execute(query, args).fetchone()[0])

    def snapshot(self) -> Dict[str, Any]:
        """``{"waiting", "dead", "oldest_seconds"}``."""
        if not self.path.exists():
            return {"waiting": 0, "dead": 0, "oldest_seconds": None}
        with self._db() as conn:
            waiting, oldest = conn.execute("SELECT COUNT(*), MIN(created_at) FROM spool WHERE dead = 0").fetchone()
            dead = conn.execute("SELECT COUNT(*) FROM spool WHERE dead = 1").fetchone()[0]
        age = round(max(0.0, time.time() - oldest), 1) if oldest is not None else None
        return {"waiting": int(waiting), "dead": int(dead), "oldest_seconds": age}

    def targets(self) -> List[str]:
        """The databases that writes wait for."""
        if not self.path.exists():
            return []
        with self._db() as conn:
            return [row[0] for row in conn.execute("SELECT DISTINCT target FROM spool WHERE dead = 0")]

    def rows(self, target: str, kinds: Sequence[str], order_key: Optional[str], after: int, limit: int) -> List[Row]:
        """Waiting writes of ``target`` (of these kinds, this order key) after id ``after``, oldest first."""
        query = f"SELECT id, key, kind, payload FROM spool WHERE dead = 0 AND target = ? AND id > ? AND kind IN ({_in(kinds)})"
        args: List[Any] = [target, after, *kinds]
        if order_key is not None:
            query += " AND order_key = ?"
            args.append(order_key)
        with self._db() as conn:
            return conn.execute(query + " ORDER BY id LIMIT ?", [*args, limit]).fetchall()

    # -------------------------------------------------------------- one replayer
    @contextlib.contextmanager
    def replaying(self, wait: bool) -> Iterator[bool]:
        """One replayer at a time: a thread lock, and a file lock across processes.
        Yields False (without waiting, unless ``wait``) when another one holds it."""
        if not self._thread_lock.acquire(blocking=wait):
            yield False
            return
        try:
            if self._lock_file is None or self._lock_pid != os.getpid():
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._lock_file, self._lock_pid = open(f"{self.path}.lock", "a"), os.getpid()
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()
