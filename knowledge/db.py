"""Database tables of banshi (SQLite by default, any SQLAlchemy URL such as PostgreSQL).

Rasa 3.6 pins SQLAlchemy 1.4; the code uses the 2.0-style API (``future=True``).
"""

from __future__ import annotations

import datetime as dt
import json
from functools import lru_cache
from pathlib import Path
from typing import Dict, Optional

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    String,
    Text,
    create_engine,
    event,
    delete,
    select,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import declarative_base, sessionmaker

from knowledge.catalog import Catalog, load_catalog
from knowledge.schema import BundleRecord, ItemRecord, Record

Base = declarative_base()


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


class HandoffRequest(Base):
    """A request for a human helper (the queue and relay are built on top of it)."""

    __tablename__ = "handoff_requests"
    id = Column(Integer, primary_key=True, autoincrement=True)
    conversation_id = Column(String(128), nullable=False, index=True)
    reason = Column(String(32), nullable=False)  # request_human | complaint | fallback
    item_id = Column(String(64))
    channel = Column(String(32))
    status = Column(String(16), nullable=False, default="open")
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
    Base.metadata.create_all(engine)
    return engine


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


def add_handoff_request(
    url: str,
    conversation_id: str,
    reason: str,
    item_id: Optional[str] = None,
    channel: Optional[str] = None,
) -> int:
    with session_factory(url)() as session:
        row = HandoffRequest(
            conversation_id=conversation_id, reason=reason, item_id=item_id, channel=channel
        )
        session.add(row)
        session.commit()
        return row.id
