"""Schema migrations: the Alembic history in ``migrations/`` applied at start-up,
one process and one thread at a time."""

from __future__ import annotations

import fcntl
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from sqlalchemy import inspect, text as sql_text
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
# The schema of the first release (catalog, feedback, handoff requests).
BASELINE_REVISION = "0001"


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations of several processes starting at once (gateway, actions, CLI)."""
    if engine.dialect.name == "sqlite" and engine.url.database:
        with open(f"{engine.url.database}.migrate.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    else:
        yield


# Alembic's ``context`` and ``op`` are process-wide proxies: two threads migrating at
# once (even different databases) would run each other's statements. One at a time.
_MIGRATING = threading.Lock()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (``migrations/``).

    A database created before migrations existed (the catalog tables without an
    ``alembic_version`` table) is stamped with the baseline revision first.
    """
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with _MIGRATING, _migration_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sql_text("SELECT pg_advisory_xact_lock(7155)"))
        config.attributes["connection"] = connection
        tables = set(inspect(connection).get_table_names())
        if "alembic_version" not in tables and "catalog_entries" in tables:
            alembic_command.stamp(config, BASELINE_REVISION)
        alembic_command.upgrade(config, "head")
