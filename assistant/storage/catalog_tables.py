"""Published catalog edits (migration 0014): one row per change of an item or bundle
made on the admin page — who, when, why, the whole record after the change and the
one before. The effective catalog is the YAML files with each record's latest row
applied (``knowledge.revisions``); a row whose ``document`` is NULL puts the file's
version back. Apart from ``assistant.storage.tables`` so that each module stays small."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from sqlalchemy import Column, DateTime, Integer, String, Text, func, select
from sqlalchemy.orm import Session

from assistant.storage.database import Base, session_factory, utcnow

ACTION_PUBLISH = "publish"
ACTION_REVERT = "revert"
MAX_REASON_CHARS = 500


class CatalogRevision(Base):
    __tablename__ = "catalog_revisions"
    id = Column(Integer, primary_key=True, autoincrement=True)
    record_id = Column(String(64), nullable=False, index=True)
    kind = Column(String(16), nullable=False)  # item | bundle
    action = Column(String(16), nullable=False)  # publish | revert
    author = Column(String(128), nullable=False)  # operator:<username>
    reason = Column(String(MAX_REASON_CHARS), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    document = Column(Text)  # the record after the change (JSON); NULL: the file's version
    previous = Column(Text)  # the record before the change (JSON), as it was in effect
    reverted_to = Column(Integer)  # a revert: the revision whose document it restores (0: the file)


@dataclass(frozen=True)
class RevisionInfo:
    id: int
    record_id: str
    kind: str
    action: str
    author: str
    reason: str
    created_at: str
    document: Optional[Dict[str, Any]]
    previous: Optional[Dict[str, Any]]
    reverted_to: Optional[int]

    def summary(self) -> Dict[str, Any]:
        """The row without the documents (history lists)."""
        return {
            "id": self.id, "record_id": self.record_id, "kind": self.kind, "action": self.action,
            "author": self.author, "reason": self.reason, "created_at": self.created_at,
            "reverted_to": self.reverted_to, "file_version": self.document is None,
        }


def _info(row: CatalogRevision) -> RevisionInfo:
    return RevisionInfo(
        id=row.id, record_id=row.record_id, kind=row.kind, action=row.action, author=row.author,
        reason=row.reason, created_at=row.created_at.isoformat(timespec="seconds") + "Z",
        document=json.loads(row.document) if row.document else None,
        previous=json.loads(row.previous) if row.previous else None,
        reverted_to=row.reverted_to,
    )


def add_revision(
    session: Session, record_id: str, kind: str, action: str, author: str, reason: str,
    document: Optional[Dict[str, Any]], previous: Optional[Dict[str, Any]], reverted_to: Optional[int] = None,
) -> int:
    """Insert a revision in the caller's transaction; its id."""
    row = CatalogRevision(
        record_id=record_id, kind=kind, action=action, author=author, reason=reason[:MAX_REASON_CHARS],
        document=json.dumps(document, ensure_ascii=False) if document is not None else None,
        previous=json.dumps(previous, ensure_ascii=False) if previous is not None else None,
        reverted_to=reverted_to, created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return int(row.id)


def latest_documents(session: Session) -> Dict[str, Optional[Dict[str, Any]]]:
    """Each revised record's latest document (None: back to the file's version)."""
    latest = select(CatalogRevision.record_id, func.max(CatalogRevision.id).label("last")).group_by(
        CatalogRevision.record_id
    ).subquery()
    rows = session.execute(
        select(CatalogRevision).join(latest, CatalogRevision.id == latest.c.last)
    ).scalars().all()
    return {row.record_id: (json.loads(row.document) if row.document else None) for row in rows}


def latest_revision_id(session: Session) -> int:
    return int(session.execute(select(func.max(CatalogRevision.id))).scalar() or 0)


def history(url: str, record_id: str, limit: int = 50) -> List[RevisionInfo]:
    """A record's revisions, newest first."""
    query = (
        select(CatalogRevision).where(CatalogRevision.record_id == record_id)
        .order_by(CatalogRevision.id.desc()).limit(limit)
    )
    with session_factory(url)() as session:
        return [_info(row) for row in session.execute(query).scalars().all()]


def get_revision(url: str, revision_id: int) -> Optional[RevisionInfo]:
    with session_factory(url)() as session:
        row = session.get(CatalogRevision, revision_id)
        return _info(row) if row is not None else None


def revised_records(url: str) -> Dict[str, int]:
    """``{record_id: latest revision id}`` of every record changed on the admin page."""
    query = select(CatalogRevision.record_id, func.max(CatalogRevision.id)).group_by(CatalogRevision.record_id)
    with session_factory(url)() as session:
        return {record_id: int(last) for record_id, last in session.execute(query).all()}
