"""Database tables of banshi (SQLite by default, any SQLAlchemy URL such as PostgreSQL).

Rasa 3.6 pins SQLAlchemy 1.4; the code uses the 2.0-style API (``future=True``).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterator, Optional

from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    String,
    Text,
    create_engine,
    delete,
    event,
    inspect,
    select,
    text as sql_text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import declarative_base, sessionmaker

from knowledge.catalog import Catalog, load_catalog
from knowledge.schema import BundleRecord, ItemRecord, Record

Base = declarative_base()

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# The schema of the first release (catalog, feedback, handoff requests).
BASELINE_REVISION = "0001"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class CatalogEntry(Base):
    __tablename__ = "catalog_entries"
    id = Column(String(64), primary_key=True)
    kind = Column(String(16), nullable=False)
    name = Column(String(128), nullable=False)
    department = Column(String(128), nullable=False)
    verified = Column(String(10), nullable=False)
    record = Column(Text, nullable=False)  # the validated record as JSON


class CatalogMeta(Base):
    __tablename__ = "catalog_meta"
    key = Column(String(64), primary_key=True)
    value = Column(String(256), nullable=False)


class Feedback(Base):
    """好差评 and complaints. ``text`` is stored with personal data masked."""

    __tablename__ = "feedback"
    id = Column(Integer, primary_key=True, autoincrement=True)
    conversation_id = Column(String(128), nullable=False, index=True)
    kind = Column(String(16), nullable=False)  # feedback | complaint
    rating = Column(String(8))  # good | bad | None
    text = Column(Text, nullable=False)
    item_id = Column(String(64))
    channel = Column(String(32))
    created_at = Column(DateTime, nullable=False, default=utcnow)


def sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL journal and normal sync: a commit no longer waits for two fsyncs."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    parsed = make_url(url)
    kwargs: Dict = {"future": True, "pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 15}
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", sqlite_pragmas)
    migrate(engine)
    return engine


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


def session_factory(url: str) -> sessionmaker:
    return sessionmaker(bind=get_engine(url), future=True, expire_on_commit=False)


def sync_catalog(url: str, catalog: Catalog, force: bool = False) -> bool:
    """Replace the catalog tables with ``catalog`` unless its fingerprint is already loaded."""
    with session_factory(url)() as session:
        current = session.get(CatalogMeta, "fingerprint")
        if current is not None and current.value == catalog.fingerprint and not force:
            return False
        session.execute(delete(CatalogEntry))
        for record in catalog.items():
            session.add(
                CatalogEntry(
                    id=record.id,
                    kind=record.kind,
                    name=record.name,
                    department=record.department,
                    verified=record.verified.isoformat(),
                    record=record.json(ensure_ascii=False),
                )
            )
        if current is None:
            session.add(CatalogMeta(key="fingerprint", value=catalog.fingerprint))
        else:
            current.value = catalog.fingerprint
        session.commit()
    return True


def load_files_into(url: str, catalog_dir, override=None) -> Catalog:
    """Load and validate the catalog files, store them if changed, return what is stored."""
    files = load_catalog(catalog_dir, override)
    sync_catalog(url, files)
    return read_catalog(url, spec=files.spec)


def read_catalog(url: str, spec=None) -> Catalog:
    """The catalog as stored in the database (what the running services answer from)."""
    with session_factory(url)() as session:
        rows = session.execute(select(CatalogEntry)).scalars().all()
        meta = session.get(CatalogMeta, "fingerprint")
    records: Dict[str, Record] = {}
    for row in rows:
        data = json.loads(row.record)
        model = ItemRecord if row.kind == "item" else BundleRecord
        records[row.id] = model.parse_obj(data)
    return Catalog(records=records, fingerprint=meta.value if meta else "", spec=spec or {})


def add_feedback(
    url: str,
    conversation_id: str,
    kind: str,
    text: str,
    rating: Optional[str] = None,
    item_id: Optional[str] = None,
    channel: Optional[str] = None,
) -> int:
    with session_factory(url)() as session:
        row = Feedback(
            conversation_id=conversation_id,
            kind=kind,
            rating=rating,
            text=text,
            item_id=item_id,
            channel=channel,
        )
        session.add(row)
        session.commit()
        return row.id
