"""The database: one SQLAlchemy declarative ``Base`` for every table (ours and the
catalog's), engines (SQLite by default, any SQLAlchemy URL such as PostgreSQL),
migrated to the newest schema when first opened, and session factories.

Rasa 3.6 pins SQLAlchemy 1.4; the code uses the 2.0-style API (``future=True``).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Dict

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import declarative_base, sessionmaker

from assistant.storage.migrate import migrate

Base = declarative_base()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL journal and normal sync: a commit no longer waits for two fsyncs."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


PG_CONNECT_TIMEOUT_S = 3
PG_POOL_TIMEOUT_S = 5


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    parsed = make_url(url)
    kwargs: Dict = {"future": True, "pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 15}
    elif parsed.get_backend_name() == "postgresql":
        # Fail fast while the server is down or restarting (pool_pre_ping reconnects after).
        kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
        kwargs["pool_timeout"] = PG_POOL_TIMEOUT_S
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", sqlite_pragmas)
    migrate(engine)
    return engine


def session_factory(url: str) -> sessionmaker:
    return sessionmaker(bind=get_engine(url), future=True, expire_on_commit=False)
