"""Alembic migrations: a fresh database, a database from before migrations, threads."""

import sqlite3
import threading

from sqlalchemy import inspect

from assistant.storage import database


def test_fresh_database_gets_every_table(tmp_path):
    engine = database.get_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    tables = set(inspect(engine).get_table_names())
    assert {"catalog_entries", "applications", "audit_log", "handoff_tickets", "operators"} <= tables
    with engine.connect() as conn:
        [(version,)] = conn.exec_driver_sql("SELECT version_num FROM alembic_version").fetchall()
    assert version >= "0002"


def test_database_from_before_migrations_keeps_its_requests(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE catalog_entries (id VARCHAR(64) PRIMARY KEY, kind VARCHAR(16), name VARCHAR(128),
            department VARCHAR(128), verified VARCHAR(10), record TEXT);
        CREATE TABLE catalog_meta (key VARCHAR(64) PRIMARY KEY, value VARCHAR(256));
        CREATE TABLE feedback (id INTEGER PRIMARY KEY, conversation_id VARCHAR(128), kind VARCHAR(16),
            rating VARCHAR(8), text TEXT, item_id VARCHAR(64), channel VARCHAR(32), created_at DATETIME);
        CREATE TABLE handoff_requests (id INTEGER PRIMARY KEY, conversation_id VARCHAR(128), reason VARCHAR(32),
            item_id VARCHAR(64), channel VARCHAR(32), status VARCHAR(16), created_at DATETIME);
        CREATE INDEX ix_handoff_requests_conversation_id ON handoff_requests (conversation_id);
        INSERT INTO handoff_requests VALUES (1, 'old-1', 'request_human', 'passport', 'web', 'open', '2026-11-01 10:00:00');
        """
    )
    conn.commit()
    conn.close()
    engine = database.get_engine(f"sqlite:///{path}")
    with engine.connect() as c:
        rows = c.exec_driver_sql("SELECT conversation_id, status, deferred, item_id FROM handoff_tickets").fetchall()
    assert rows == [("old-1", "waiting", 1, "passport")]
    assert "handoff_requests" not in inspect(engine).get_table_names()


def test_threads_migrating_at_once(tmp_path):
    """Alembic's context is process-wide: concurrent migrations must not mix."""
    errors = []

    def run(index: int) -> None:
        try:
            database.get_engine(f"sqlite:///{tmp_path / f'thread{index}.db'}")
        except Exception as exc:  # collected and asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
