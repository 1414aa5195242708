"""Load, validate and query the service catalog files.

Layout (``knowledge/catalog/``)::

    items/<id>.yml      one service item (事项) per file
    bundles/<id>.yml    one "一件事" bundle per file

The ids must be exactly those of ``knowledge/spec/service-items.tsv``. A
regional override file (YAML ``{items: {<id>: {<field>: <value>}}}``) can
replace any field of any record after loading.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import yaml
from pydantic import ValidationError

from knowledge.schema import BundleRecord, ItemRecord, Material, Record

KNOWLEDGE_DIR = Path(__file__).resolve().parent
DEFAULT_CATALOG_DIR = KNOWLEDGE_DIR / "catalog"
SPEC_ITEMS = KNOWLEDGE_DIR / "spec" / "service-items.tsv"
SPEC_INTENTS = KNOWLEDGE_DIR / "spec" / "intents.tsv"

KIND_DIRS = {"item": "items", "bundle": "bundles"}


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


def merge_materials(groups: Iterable[Iterable[Material]]) -> List[Material]:
    """Merge material lists; a document that appears in several groups appears once.

    A required copy wins over an optional one, and the larger count is kept.
    """
    merged: Dict[str, Material] = {}
    for group in groups:
        for material in group:
            key = material.name
            if key not in merged:
                merged[key] = material
                continue
            kept = merged[key]
            if material.required and not kept.required:
                merged[key] = material.copy(update={"count": max(kept.count, material.count)})
            elif material.count > kept.count:
                merged[key] = kept.copy(update={"count": material.count})
    return list(merged.values())


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
        """The materials list; for a bundle, the merged list of its members and its own."""
        record = self.records[item_id]
        if isinstance(record, BundleRecord):
            groups = [self.records[m].materials for m in record.members] + [record.materials]
            return merge_materials(groups)
        return list(record.materials)

    def departments_for(self, item_id: str) -> List[str]:
        record = self.records[item_id]
        if isinstance(record, BundleRecord):
            return list(record.departments)
        return [record.department]


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
        merged = {**record.dict(), **fields}
        updated = _parse_record(override, merged, problems)
        if updated is not None:
            records[item_id] = updated


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
        entry = spec.get(record.id)
        if entry is None:
            problems.append(f"{path}: id: {record.id!r} is not in {spec_path.name}")
        else:
            if entry.kind != record.kind:
                problems.append(f"{path}: kind: spec says {entry.kind!r}")
            if entry.name != record.name:
                problems.append(f"{path}: name: spec says {entry.name!r}")
        records[record.id] = record

    if override is not None:
        _apply_override(records, override, problems)

    for item_id, entry in spec.items():
        if item_id not in records and item_id not in failed:
            sub = KIND_DIRS.get(entry.kind, "items")
            problems.append(f"{catalog_dir / sub / (item_id + '.yml')}: (file): missing; required by the spec")

    alias_owner: Dict[str, str] = {}
    for record in records.values():
        path = catalog_dir / KIND_DIRS[record.kind] / f"{record.id}.yml"
        if isinstance(record, BundleRecord):
            for member in record.members:
                target = records.get(member)
                if target is None or not isinstance(target, ItemRecord):
                    problems.append(f"{path}: members: {member!r} is not an item of the catalog")
        for alias in record.aliases:
            owner = alias_owner.setdefault(alias, record.id)
            if owner != record.id:
                problems.append(f"{path}: aliases: {alias!r} is also an alias of {owner}")

    if problems:
        raise CatalogError(problems)
    fingerprint_paths = files + ([override] if override else [])
    return Catalog(records=records, fingerprint=fingerprint_files(fingerprint_paths), spec=spec)
