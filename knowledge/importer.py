"""Import a catalog from a spreadsheet (.csv in UTF-8, or .xlsx) into YAML files.

Column layout (one row per item or bundle; header row required; see
knowledge/README.md). List cells hold one entry per line, or entries separated
by ASCII ``;``. A materials cell holds one material per line as
``name|form|count|e_license|note|required|condition|source`` (the last five
optional). A sources cell holds one source per line as
``id|title|issuer|number|url|effective|checked`` (number, url and effective may be
empty); the ``*_source`` cells hold source ids.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Dict, List

import yaml
from pydantic import ValidationError

from knowledge.catalog import KIND_DIRS
from knowledge.schema import SOURCED_FIELDS, BundleRecord, ItemRecord, source_field

SOURCE_COLUMNS = [source_field(f) for f in SOURCED_FIELDS]
COLUMNS = [
    "id", "kind", "name", "department", "summary", "aliases", "examples", "applicants",
    "conditions", "materials", "steps", "time_limit", "fees", "where_window", "where_online",
    "where_phone", "cross_province", "cross_province_note", "legal_basis", "local_variation",
    "national", "verified", "source", "members", "sources", *SOURCE_COLUMNS, "produces",
    "reviewed", "differs_from_members",
]
OPTIONAL_COLUMNS = {
    "members", "local_variation", "national", "materials_source", "produces", "reviewed", "differs_from_members",
}
REQUIRED_COLUMNS = [c for c in COLUMNS if c not in OPTIONAL_COLUMNS]
SOURCE_KEYS = ["id", "title", "issuer", "number", "url", "effective", "checked"]
MAX_ROWS = 2000
MAX_FILE_BYTES = 20 * 1024 * 1024
TRUE_WORDS = {"1", "true", "yes", "y", "是", "可以", "支持"}


class ImportError_(Exception):
    """The spreadsheet cannot be imported; the message lists every problem."""


def _split(cell: str) -> List[str]:
    parts: List[str] = []
    for line in str(cell or "").replace("\r", "").split("\n"):
        parts += [p.strip() for p in line.split(";")]
    return [p for p in parts if p]


def _bool(cell: Any) -> bool:
    return str(cell).strip().lower() in TRUE_WORDS


def _lines(cell: Any) -> List[str]:
    return [line for line in str(cell or "").replace("\r", "").split("\n") if line.strip()]


def _sources(cell: Any) -> List[Dict[str, str]]:
    out = []
    for line in _lines(cell):
        fields = [f.strip() for f in line.split("|")] + [""] * len(SOURCE_KEYS)
        out.append({k: v for k, v in zip(SOURCE_KEYS, fields) if v})
    return out


def _differences(cell: Any) -> Dict[str, str]:
    pairs = [line.split("|", 1) for line in _lines(cell)]
    return {field.strip(): reason.strip() for field, reason in ((p + [""])[:2] for p in pairs)}


def _materials(cell: str) -> List[Dict[str, Any]]:
    out = []
    for line in _lines(cell):
        fields = [f.strip() for f in line.split("|")] + [""] * 8
        name, form, count, e_license, note, required, condition, source = fields[:8]
        material: Dict[str, Any] = {
            "name": name,
            "form": form or "original",
            "count": int(count) if count.isdigit() else 1,
            "e_license": _bool(e_license),
            "note": note,
        }
        if required and not _bool(required):
            material["required"] = False
            material["condition"] = condition
        if source:
            material["source"] = source
        out.append(material)
    return out


def row_to_record(row: Dict[str, Any]) -> Dict[str, Any]:
    kind = str(row.get("kind") or "").strip()
    record: Dict[str, Any] = {
        "id": str(row.get("id") or "").strip(),
        "kind": kind,
        "name": str(row.get("name") or "").strip(),
        "summary": row.get("summary") or "",
        "aliases": _split(row.get("aliases")),
        "examples": _split(row.get("examples")),
        "applicants": row.get("applicants") or "",
        "conditions": _split(row.get("conditions")),
        "materials": _materials(row.get("materials")),
        "steps": _split(row.get("steps")),
        "time_limit": row.get("time_limit") or "",
        "fees": row.get("fees") or "",
        "where": {
            "window": row.get("where_window") or "",
            "online": _split(row.get("where_online")),
            "phone": str(row.get("where_phone") or ""),
        },
        "cross_province": {
            "available": _bool(row.get("cross_province")),
            "note": row.get("cross_province_note") or "",
        },
        "legal_basis": _split(row.get("legal_basis")),
        "local_variation": row.get("local_variation") or "",
        "national": row.get("national") or "",
        "verified": str(row.get("verified") or "").strip()[:10],
        "source": row.get("source") or "",
        "sources": _sources(row.get("sources")),
        **{column: _split(row.get(column)) for column in SOURCE_COLUMNS},
    }
    if kind == "bundle":
        record["departments"] = [d.strip() for d in str(row.get("department") or "").replace("、", ";").split(";") if d.strip()]
        record["members"] = _split(row.get("members"))
        record["produced"] = _split(row.get("produces"))
        record["reviewed"] = str(row.get("reviewed") or "").strip()[:10] or None
        record["differs_from_members"] = _differences(row.get("differs_from_members"))
    else:
        record["department"] = str(row.get("department") or "").strip()
        record["produces"] = _split(row.get("produces"))
    return record


def read_rows(path: Path) -> List[Dict[str, Any]]:
    if not path.exists():
        raise ImportError_(f"{path}: file not found")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ImportError_(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
    elif suffix == ".xlsx":
        from openpyxl import load_workbook

        sheet = load_workbook(path, read_only=True, data_only=True).active
        values = list(sheet.iter_rows(values_only=True))
        if not values:
            raise ImportError_(f"{path}: empty sheet")
        header = [str(h or "").strip() for h in values[0]]
        rows = [
            {h: ("" if v is None else v) for h, v in zip(header, r)}
            for r in values[1:]
            if any(v not in (None, "") for v in r)
        ]
    else:
        raise ImportError_(f"{path}: only .csv and .xlsx are supported")
    if len(rows) > MAX_ROWS:
        raise ImportError_(f"{path}: more than {MAX_ROWS} rows")
    header = set(rows[0].keys()) if rows else set()
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ImportError_(f"{path}: missing columns: {', '.join(missing)}")
    return rows


def import_file(path: Path, catalog_dir: Path) -> List[Path]:
    """Validate every row, then write one YAML file per row (nothing is written on error)."""
    rows = read_rows(path)
    problems: List[str] = []
    records = []
    for number, row in enumerate(rows, start=2):
        data = row_to_record(row)
        model = {"item": ItemRecord, "bundle": BundleRecord}.get(data["kind"])
        if model is None:
            problems.append(f"{path} row {number}: kind: must be 'item' or 'bundle'")
            continue
        try:
            records.append(model.parse_obj(data))
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"])
                problems.append(f"{path} row {number} ({data['id']}): {field}: {err['msg']}")
    if problems:
        raise ImportError_("\n".join(problems))
    written = []
    for record in records:
        target = catalog_dir / KIND_DIRS[record.kind] / f"{record.id}.yml"
        target.parent.mkdir(parents=True, exist_ok=True)
        data = json.loads(record.json(exclude_none=True))
        data["sources"] = data.pop("sources")  # after the facts that refer to them
        target.write_text(
            yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1000), encoding="utf-8"
        )
        written.append(target)
    return written
