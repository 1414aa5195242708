"""The catalog in the database (what the running services answer from) and the
citizens' feedback: their tables and how they are filled and read. The engine,
sessions and migrations are ``assistant.storage``'s; feedback is written through
its spool (:func:`keep_feedback`), so none is lost while the database restarts."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

from sqlalchemy import Column, DateTime, Integer, String, Text, delete, select

from assistant.storage import spool
from assistant.storage.database import Base, session_factory, utcnow
from knowledge.catalog import Catalog
from knowledge.schema import BundleRecord, ItemRecord, Record


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
    """Load and validate the catalog files with the edits published on the admin page
    (``knowledge.revisions``), store them if changed, return what is stored."""
    from knowledge.revisions import effective_catalog

    catalog, files = effective_catalog(url, catalog_dir, override)
    sync_catalog(url, catalog)
    return read_catalog(url, spec=files.spec)


def read_catalog(url: str, spec=None) -> Catalog:
    """The catalog as stored in the database (what the running services answer from)."""
    with session_factory(url)() as session:
        # The version first: rows published meanwhile make it look older, never newer
        # (the pollers then read again), so a change is never skipped.
        meta = session.get(CatalogMeta, "fingerprint")
        rows = session.execute(select(CatalogEntry)).scalars().all()
    records: Dict[str, Record] = {}
    for row in rows:
        data = json.loads(row.record)
        model = ItemRecord if row.kind == "item" else BundleRecord
        records[row.id] = model.parse_obj(data)
    return Catalog(records=records, fingerprint=meta.value if meta else "", spec=spec or {})


def _feedback_payload(
    conversation_id: str, kind: str, text: str, rating: Optional[str], item_id: Optional[str],
    channel: Optional[str],
) -> Dict[str, Any]:
    return {"conversation_id": conversation_id, "kind": kind, "rating": rating, "text": text,
            "item_id": item_id, "channel": channel}


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
        row_id = _insert_feedback(
            session, _feedback_payload(conversation_id, kind, text, rating, item_id, channel), replaying=False
        )
        session.commit()
        return row_id


KIND_FEEDBACK = "feedback"


def _insert_feedback(session, payload: Dict[str, Any], replaying: bool) -> int:
    row = Feedback(
        conversation_id=payload["conversation_id"],
        kind=payload["kind"],
        rating=payload["rating"],
        text=payload["text"],
        item_id=payload["item_id"],
        channel=payload["channel"],
        created_at=spool.at_of(payload),
    )
    session.add(row)
    session.flush()
    return row.id


spool.register(KIND_FEEDBACK, _insert_feedback)


def keep_feedback(
    url: str,
    conversation_id: str,
    kind: str,
    text: str,
    rating: Optional[str] = None,
    item_id: Optional[str] = None,
    channel: Optional[str] = None,
) -> Optional[int]:
    """:func:`add_feedback`, kept while the database is unreachable: the row's id, or
    None when it waits in the spool (written once the database is back)."""
    payload = {**_feedback_payload(conversation_id, kind, text, rating, item_id, channel), "at": spool.now_iso()}
    return spool.keep(url, KIND_FEEDBACK, payload).result
