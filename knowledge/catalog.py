"""Load, validate and query the service catalog files.

Layout (``knowledge/catalog/``)::

    items/<id>.yml      one service item (事项) per file
    bundles/<id>.yml    one "一件事" bundle per file

The ids must be exactly those of ``knowledge/spec/service-items.tsv``. A
regional override file (YAML ``{items: {<id>: {<field>: <value>}}}``) can
replace any field of any record after loading: mappings (``where``,
``cross_province``) are merged key by key and ``sources`` by id, so a region can
replace a fact together with its source.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import yaml
from pydantic import ValidationError

from knowledge.bundles import check_bundle
from knowledge.schema import (
    MIN_SITUATIONS,
    BundleRecord,
    ItemRecord,
    Material,
    Record,
    Source,
    short_name,
    source_field,
)

KNOWLEDGE_DIR = Path(__file__).resolve().parent
DEFAULT_CATALOG_DIR = KNOWLEDGE_DIR / "catalog"
SPEC_ITEMS = KNOWLEDGE_DIR / "spec" / "service-items.tsv"
SPEC_INTENTS = KNOWLEDGE_DIR / "spec" / "intents.tsv"

KIND_DIRS = {"item": "items", "bundle": "bundles"}
MATERIALS = "materials"


class CatalogError(Exception):
    """The catalog files are invalid; ``problems`` lists ``file: field: message`` lines."""

    def __init__(self, problems: List[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class SpecEntry:
    id: str
    kind: str
    name: str
    department: str


def _read_tsv(path: Path) -> List[Dict[str, str]]:
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


def load_spec(path: Path = SPEC_ITEMS) -> Dict[str, SpecEntry]:
    return {row["id"]: SpecEntry(**row) for row in _read_tsv(path)}


def load_intent_names(path: Path = SPEC_INTENTS) -> List[str]:
    return [row["name"] for row in _read_tsv(path)]


def _format_loc(loc: Tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _parse_record(path: Path, data: object, problems: List[str]) -> Optional[Record]:
    if not isinstance(data, dict):
        problems.append(f"{path}: (file): expected a mapping of fields, got {type(data).__name__}")
        return None
    kind = data.get("kind")
    model = {"item": ItemRecord, "bundle": BundleRecord}.get(kind)  # type: ignore[arg-type]
    if model is None:
        problems.append(f"{path}: kind: must be 'item' or 'bundle', got {kind!r}")
        return None
    try:
        return model.parse_obj(data)
    except ValidationError as exc:
        for err in exc.errors():
            problems.append(f"{path}: {_format_loc(err['loc'])}: {err['msg']}")
        return None


def catalog_files(catalog_dir: Path) -> List[Path]:
    return sorted(p for sub in KIND_DIRS.values() for p in (catalog_dir / sub).glob("*.yml"))


def fingerprint_files(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class Catalog:
    records: Dict[str, Record]
    fingerprint: str
    spec: Dict[str, SpecEntry] = field(default_factory=dict)

    def __contains__(self, item_id: str) -> bool:
        return item_id in self.records

    def get(self, item_id: str) -> Optional[Record]:
        return self.records.get(item_id)

    def items(self) -> List[Record]:
        return list(self.records.values())

    def materials_for(self, item_id: str) -> List[Material]:
        """The materials list; a bundle's is its own reviewed list (not a merge of its members')."""
        return list(self.records[item_id].materials)

    def sources_of(self, item_id: str, fact: str) -> List[Source]:
        """The sources of one fact of a record (``fees``, ``time_limit``, ``materials`` ...);
        for the materials, also those the materials name themselves."""
        record = self.records[item_id]
        wanted = list(getattr(record, source_field(fact), None) or [])
        if fact == MATERIALS:
            wanted += [m.source for m in record.materials if m.source]
        by_id = {s.id: s for s in record.sources}
        return [by_id[i] for i in dict.fromkeys(wanted) if i in by_id]

    def departments_for(self, item_id: str) -> List[str]:
        record = self.records[item_id]
        if isinstance(record, BundleRecord):
            return list(record.departments)
        return [record.department]


def _merge_sources(base: List[Dict[str, Any]], new: List[Any]) -> List[Any]:
    """The record's sources with the override's added or replaced by id."""
    replaced = {s.get("id"): s for s in new if isinstance(s, dict)}
    kept = [s for s in base if s.get("id") not in replaced]
    return kept + list(new)


def merge_override(record: Dict[str, Any], fields: Dict[str, Any]) -> Dict[str, Any]:
    """A record's fields with an override applied: mappings key by key, sources by id."""
    merged = dict(record)
    for key, value in fields.items():
        if key == "sources" and isinstance(value, list):
            merged[key] = _merge_sources(record.get(key) or [], value)
        elif isinstance(value, dict) and isinstance(record.get(key), dict):
            merged[key] = {**record[key], **value}
        else:
            merged[key] = value
    return merged


def _apply_override(
    records: Dict[str, Record], override: Path, problems: List[str]
) -> None:
    try:
        data = yaml.safe_load(override.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        problems.append(f"{override}: (file): cannot read override: {exc}")
        return
    for item_id, fields in (data.get("items") or {}).items():
        record = records.get(item_id)
        if record is None:
            problems.append(f"{override}: items.{item_id}: unknown id")
            continue
        if not isinstance(fields, dict):
            problems.append(f"{override}: items.{item_id}: expected a mapping of fields")
            continue
        merged = merge_override(record.dict(), fields)
        updated = _parse_record(override, merged, problems)
        if updated is not None:
            records[item_id] = updated


def _check_spec(path: Path, record: Record, spec: Dict[str, SpecEntry], spec_name: str) -> List[str]:
    entry = spec.get(record.id)
    if entry is None:
        return [f"{path}: id: {record.id!r} is not in {spec_name}"]
    problems = []
    if entry.kind != record.kind:
        problems.append(f"{path}: kind: spec says {entry.kind!r}")
    if entry.name != record.name:
        problems.append(f"{path}: name: spec says {entry.name!r}")
    return problems


def load_catalog(
    catalog_dir: Path = DEFAULT_CATALOG_DIR,
    override: Optional[Path] = None,
    spec_path: Path = SPEC_ITEMS,
) -> Catalog:
    """Load and validate every catalog file; raise CatalogError listing all problems."""
    problems: List[str] = []
    spec = load_spec(spec_path)
    records: Dict[str, Record] = {}
    files = catalog_files(catalog_dir)
    failed = set()
    for path in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            problems.append(f"{path}: (file): invalid YAML: {exc}")
            continue
        record = _parse_record(path, data, problems)
        if record is None:
            failed.add(path.stem)
            continue
        expected_dir = KIND_DIRS[record.kind]
        if path.stem != record.id:
            problems.append(f"{path}: id: {record.id!r} does not match the file name")
        if path.parent.name != expected_dir:
            problems.append(f"{path}: kind: a {record.kind} belongs in {expected_dir}/")
        problems += _check_spec(path, record, spec, spec_path.name)
        records[record.id] = record

    if override is not None:
        _apply_override(records, override, problems)

    problems += check_records(records, spec, catalog_dir, failed)
    if problems:
        raise CatalogError(problems)
    fingerprint_paths = files + ([override] if override else [])
    return Catalog(records=records, fingerprint=fingerprint_files(fingerprint_paths), spec=spec)


def record_path(catalog_dir: Path, record: Record) -> Path:
    return catalog_dir / KIND_DIRS[record.kind] / f"{record.id}.yml"


def check_records(
    records: Dict[str, Record], spec: Dict[str, SpecEntry], catalog_dir: Path, failed: Iterable[str] = ()
) -> List[str]:
    """The checks across records (``file: field: message``): every spec id present,
    bundle members and bundle rules, aliases owned by one record, situations."""
    problems: List[str] = []
    failed = set(failed)
    for item_id, entry in spec.items():
        if item_id not in records and item_id not in failed:
            sub = KIND_DIRS.get(entry.kind, "items")
            problems.append(f"{catalog_dir / sub / (item_id + '.yml')}: (file): missing; required by the spec")

    alias_owner: Dict[str, str] = {}
    for record in records.values():
        path = record_path(catalog_dir, record)
        if isinstance(record, BundleRecord):
            for member in record.members:
                target = records.get(member)
                if target is None or not isinstance(target, ItemRecord):
                    problems.append(f"{path}: members: {member!r} is not an item of the catalog")
            problems += [f"{path}: {problem}" for problem in check_bundle(records, record)]
        for alias in record.aliases:
            owner = alias_owner.setdefault(alias, record.id)
            if owner != record.id:
                problems.append(f"{path}: aliases: {alias!r} is also an alias of {owner}")
        problems += [f"{path}: {problem}" for problem in check_situations(records, record)]
    return problems


def with_documents(
    base: Catalog, documents: Dict[str, Dict[str, Any]], catalog_dir: Path, fingerprint: str
) -> Catalog:
    """``base`` (the files) with whole records replaced by published documents
    (``{id: record as a mapping}``), validated as :func:`load_catalog` validates the
    files; raise CatalogError listing all problems."""
    problems: List[str] = []
    records = dict(base.records)
    for item_id, document in documents.items():
        entry = base.spec.get(item_id)
        kind = entry.kind if entry else str(document.get("kind", "item"))
        path = catalog_dir / KIND_DIRS.get(kind, "items") / f"{item_id}.yml"
        record = _parse_record(path, document, problems)
        if record is None:
            continue
        if record.id != item_id:
            problems.append(f"{path}: id: {record.id!r} does not match {item_id!r}")
            continue
        problems += _check_spec(path, record, base.spec, SPEC_ITEMS.name)
        records[item_id] = record
    if not problems:
        problems = check_records(records, base.spec, catalog_dir)
    if problems:
        raise CatalogError(problems)
    return Catalog(records=records, fingerprint=fingerprint, spec=base.spec)


def check_situations(records: Dict[str, Record], record: Record) -> List[str]:
    """``situations`` and ``not_this``: enough, distinct, without the record's own names,
    and near-misses pointing at another record (or none)."""
    problems = []
    if len(record.situations) < MIN_SITUATIONS:
        problems.append(
            f"situations: {len(record.situations)} given, at least {MIN_SITUATIONS} needed "
            "(how citizens describe the need without naming the service)"
        )
    seen = set()
    names = {short_name(record.name)}
    for i, text in enumerate(record.situations):
        if text in seen:
            problems.append(f"situations[{i}]: {text!r} is listed twice")
        seen.add(text)
        named = next((n for n in names if n in text), None)
        if named:
            problems.append(f"situations[{i}]: names the service ({named!r}); describe the situation instead")
    for i, near in enumerate(record.not_this):
        if near.item == record.id:
            problems.append(f"not_this[{i}].item: a near-miss must belong to another record or to none")
        elif near.item is not None and near.item not in records:
            problems.append(f"not_this[{i}].item: {near.item!r} is not a record of the catalog")
        if near.text in seen:
            problems.append(f"not_this[{i}].text: {near.text!r} is also one of the situations")
    return problems


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months earlier (the month's last day if shorter)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    for candidate in range(day.day, 0, -1):
        try:
            return dt.date(year, month + 1, candidate)
        except ValueError:
            continue
    raise ValueError(day)


def stale_records(catalog: Catalog, months: int, today: Optional[dt.date] = None) -> List[str]:
    """``id: what`` for each record or source not checked within ``months`` months."""
    cutoff = months_before(today or dt.date.today(), months)
    found = []
    for record in sorted(catalog.items(), key=lambda r: r.id):
        if record.verified < cutoff:
            found.append(f"{record.id}: verified {record.verified.isoformat()}")
        for source in record.sources:
            if source.checked < cutoff:
                found.append(f"{record.id}: source {source.id} ({source.title}) checked {source.checked.isoformat()}")
    return found
