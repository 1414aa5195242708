"""Catalog edits published from the admin page, without retraining.

The effective catalog is the YAML files (``knowledge/catalog``, with the regional
override) with each revised record replaced by its latest published document
(``assistant.storage.catalog_tables``). A publish is validated exactly as
``banshi kb validate`` validates the files (the schema, the checks across records,
the kiosk's pre-application forms), plus one rule of its own: a changed fact shown to
citizens (fee, time limit, materials, cross-province availability, legal basis) keeps
or updates its source and that source's check date. The facts under test
(``knowledge/facts.tsv``) are reported as warnings: an admin changes a fact on purpose.

A publish writes, in one transaction, the revision row, the record's row of
``catalog_entries`` and the version (``catalog_meta.fingerprint`` = the files'
fingerprint + ``-r<last revision id>``) that every gateway and action server polls.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, cast

from assistant.storage import catalog_tables
from assistant.storage.database import session_factory
from knowledge.catalog import (
    Catalog,
    CatalogError,
    catalog_files,
    fingerprint_files,
    load_catalog,
    with_documents,
)
from knowledge import record_diff
from knowledge.db import CatalogEntry, CatalogMeta
from knowledge.schema import SOURCED_FIELDS, Record, source_field

logger = logging.getLogger(__name__)

FINGERPRINT_KEY = "fingerprint"
FILE_VERSION = 0  # "revert to revision 0": the record as the YAML file has it
FACT_LABELS = {
    "fees": "收费标准",
    "time_limit": "办理时限",
    "materials": "材料清单",
    "cross_province": "跨省通办",
    "legal_basis": "办理依据",
}
NO_SOURCE = "修改了{label}，请注明依据的来源（{field}）"
UNKNOWN_SOURCE = "修改了{label}，来源 {source} 不在本事项的来源列表（sources）中"
OLDER_CHECK = "来源 {source} 的核对日期（checked）不能早于原来的 {date}"
OLDER_VERIFIED = "核实日期（verified）不能早于原来的 {date}"
WRONG_ID = "草稿的 id 与要修改的事项不一致"
NO_CHANGE = object()  # what a change of publish_change returns to publish nothing


class RevisionError(Exception):
    """A draft that cannot be published; ``problems`` lists what to fix."""

    def __init__(self, problems: List[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class Checked:
    catalog: Optional[Catalog]
    record: Optional[Record]
    problems: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)


def version_fingerprint(files_fingerprint: str, last_revision: int) -> str:
    return f"{files_fingerprint}-r{last_revision}" if last_revision else files_fingerprint


@lru_cache(maxsize=4)
def _files_catalog(catalog_dir: Path, override: Optional[Path], fingerprint: str) -> Catalog:
    return load_catalog(catalog_dir, override)


def files_catalog(catalog_dir: Path, override: Optional[Path] = None) -> Catalog:
    """The catalog files (validated), re-read only when they change."""
    paths = catalog_files(catalog_dir) + ([override] if override else [])
    return _files_catalog(Path(catalog_dir), override, fingerprint_files(paths))


def record_document(record: Record) -> Dict[str, Any]:
    """A record as the JSON mapping that is stored and edited."""
    return json.loads(record.json(ensure_ascii=False))


def _published(session) -> Tuple[Dict[str, Dict[str, Any]], int]:
    documents = catalog_tables.latest_documents(session)
    return {k: v for k, v in documents.items() if v is not None}, catalog_tables.latest_revision_id(session)


def effective_catalog(url: str, catalog_dir: Path, override: Optional[Path] = None) -> Tuple[Catalog, Catalog]:
    """(the effective catalog, the files). Published documents that no longer validate
    against the files (the files changed since) are left out, with an error logged."""
    files = files_catalog(catalog_dir, override)
    with session_factory(url)() as session:
        documents, last = _published(session)
    fingerprint = version_fingerprint(files.fingerprint, last)
    try:
        return with_documents(files, documents, Path(catalog_dir), fingerprint), files
    except CatalogError as exc:
        logger.error("catalog.revisions.invalid problems=%d first=%s", len(exc.problems), exc.problems[0])
        return Catalog(records=dict(files.records), fingerprint=fingerprint, spec=files.spec), files


def _fact_sources(document: Dict[str, Any], fact: str) -> List[str]:
    ids = document.get(source_field(fact)) or []
    ids = [ids] if isinstance(ids, str) else list(ids)
    if fact == "materials":
        ids += [m.get("source") for m in document.get("materials") or [] if isinstance(m, dict) and m.get("source")]
    return [str(i) for i in ids]


def check_fact_sources(previous: Dict[str, Any], draft: Dict[str, Any]) -> List[str]:
    """A changed fact names its source; that source's check date and the record's
    ``verified`` date are kept or moved forward, never back."""
    problems: List[str] = []
    sources = {s.get("id"): s for s in draft.get("sources") or [] if isinstance(s, dict)}
    old_sources = {s.get("id"): s for s in previous.get("sources") or [] if isinstance(s, dict)}
    for fact in SOURCED_FIELDS:
        if draft.get(fact) == previous.get(fact):
            continue
        label = FACT_LABELS[fact]
        ids = _fact_sources(draft, fact)
        if not ids:
            problems.append(NO_SOURCE.format(label=label, field=source_field(fact)))
            continue
        for source_id in dict.fromkeys(ids):
            source = sources.get(source_id)
            if source is None:
                problems.append(UNKNOWN_SOURCE.format(label=label, source=source_id))
                continue
            before = (old_sources.get(source_id) or {}).get("checked")
            if before and str(source.get("checked") or "") < str(before):
                problems.append(OLDER_CHECK.format(source=source_id, date=before))
    if previous.get("verified") and str(draft.get("verified") or "") < str(previous["verified"]):
        problems.append(OLDER_VERIFIED.format(date=previous["verified"]))
    return problems


def _form_problems(catalog: Catalog, catalog_dir: Path) -> List[str]:
    """The kiosk's pre-application forms against the catalog (as ``banshi kb validate``)."""
    from knowledge.catalog import DEFAULT_CATALOG_DIR
    from knowledge.prefill import PrefillError, load_forms

    if Path(catalog_dir).resolve() != DEFAULT_CATALOG_DIR.resolve():
        return []  # a catalog elsewhere (a copy under test): the forms file is not its own
    try:
        load_forms(catalog)
    except PrefillError as exc:
        return exc.problems
    return []


def _fact_warnings(catalog: Catalog) -> List[str]:
    from knowledge.facts import FACTS_FILE, check_facts, load_facts

    try:
        return check_facts(catalog, load_facts(FACTS_FILE), FACTS_FILE)
    except (OSError, ValueError) as exc:
        return [str(exc)]


def check_draft(
    files: Catalog, documents: Dict[str, Dict[str, Any]], previous: Dict[str, Any],
    record_id: str, draft: Optional[Dict[str, Any]], catalog_dir: Path, fingerprint: str = "",
    sources_rule: bool = True,
) -> Checked:
    """``draft`` (None: the file's version) in place of ``record_id``'s published document;
    ``sources_rule``: apply :func:`check_fact_sources` (not to a revert, which restores
    a version as it was)."""
    if draft is not None and draft.get("id") != record_id:
        return Checked(None, None, [WRONG_ID])
    published = dict(documents)
    if draft is None:
        published.pop(record_id, None)
    else:
        published[record_id] = draft
    try:
        catalog = with_documents(files, published, Path(catalog_dir), fingerprint)
    except CatalogError as exc:
        return Checked(None, None, list(exc.problems))
    record = catalog.records[record_id]
    problems = check_fact_sources(previous, record_document(record)) if draft is not None and sources_rule else []
    problems += _form_problems(catalog, catalog_dir)
    warnings = _fact_warnings(catalog) if not problems else []
    return Checked(catalog, record, problems, warnings)


def validate(url: str, catalog_dir: Path, override: Optional[Path], record_id: str,
             draft: Dict[str, Any]) -> Checked:
    files = files_catalog(catalog_dir, override)
    with session_factory(url)() as session:
        documents, _ = _published(session)
    previous = documents.get(record_id) or record_document(files.records[record_id])
    return check_draft(files, documents, previous, record_id, draft, catalog_dir)


def current_document(url: str, catalog_dir: Path, override: Optional[Path], record_id: str) -> Dict[str, Any]:
    files = files_catalog(catalog_dir, override)
    with session_factory(url)() as session:
        documents, _ = _published(session)
    return documents.get(record_id) or record_document(files.records[record_id])


def publish(
    url: str, catalog_dir: Path, override: Optional[Path], record_id: str, draft: Optional[Dict[str, Any]],
    author: str, reason: str, action: str = catalog_tables.ACTION_PUBLISH, reverted_to: Optional[int] = None,
) -> Tuple[int, str, Checked]:
    """Validate and publish ``draft`` (None: back to the file's version): the revision's
    id, the new catalog version, the check. RevisionError when the draft is refused."""
    revision, fingerprint, checked = publish_change(
        url, catalog_dir, override, record_id, lambda previous: draft, author, reason, action, reverted_to
    )
    return revision, fingerprint, cast(Checked, checked)  # a draft is always checked


def publish_change(
    url: str, catalog_dir: Path, override: Optional[Path], record_id: str,
    change: Callable[[Dict[str, Any]], Any], author: str, reason: str,
    action: str = catalog_tables.ACTION_PUBLISH, reverted_to: Optional[int] = None,
) -> Tuple[int, str, Optional[Checked]]:
    """:func:`publish` of the draft ``change(the record in effect)`` makes, read and
    written under the publish lock (a concurrent publish cannot slip in between).
    ``change`` returns :data:`NO_CHANGE` to publish nothing: then ``(0, the version in
    effect, None)``."""
    files = files_catalog(catalog_dir, override)
    with session_factory(url)() as session:
        meta = session.get(CatalogMeta, FINGERPRINT_KEY, with_for_update=True)  # one publish at a time (PostgreSQL)
        documents, _ = _published(session)
        previous = documents.get(record_id) or record_document(files.records[record_id])
        draft = change(copy.deepcopy(previous))
        if draft is NO_CHANGE:
            return 0, meta.value if meta is not None else "", None
        checked = check_draft(files, documents, previous, record_id, draft, catalog_dir,
                              sources_rule=action == catalog_tables.ACTION_PUBLISH)
        if checked.problems:
            raise RevisionError(checked.problems)
        document = record_document(checked.record) if draft is not None else None
        revision = catalog_tables.add_revision(
            session, record_id, checked.record.kind, action, author, reason, document, previous, reverted_to
        )
        fingerprint = version_fingerprint(files.fingerprint, revision)
        _store_record(session, checked.record)
        if meta is None:
            session.add(CatalogMeta(key=FINGERPRINT_KEY, value=fingerprint))
        else:
            meta.value = fingerprint
        session.commit()
    logger.info("catalog.revision.published id=%s record=%s action=%s", revision, record_id, action)
    checked.catalog.fingerprint = fingerprint
    return revision, fingerprint, checked


def _store_record(session, record: Record) -> None:
    row = session.get(CatalogEntry, record.id)
    if row is None:
        row = CatalogEntry(id=record.id)
        session.add(row)
    row.kind = record.kind
    row.name = record.name
    row.department = record.department
    row.verified = record.verified.isoformat()
    row.record = record.json(ensure_ascii=False)


def read_version(url: str) -> str:
    """The catalog version in effect (what the gateways and action servers poll)."""
    with session_factory(url)() as session:
        meta = session.get(CatalogMeta, FINGERPRINT_KEY)
        return meta.value if meta else ""


def revision_changes(
    info: catalog_tables.RevisionInfo, catalog_dir: Path, override: Optional[Path] = None
) -> List[Dict[str, Any]]:
    """What a revision changed compared to the version in effect before it (the file's
    version where a side is NULL), as :func:`knowledge.record_diff.diff` lists it."""
    file_document = record_document(files_catalog(catalog_dir, override).records[info.record_id])
    return record_diff.diff(info.previous or file_document, info.document or file_document)
