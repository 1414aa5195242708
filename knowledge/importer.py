"""Import a catalog from a spreadsheet (.csv in UTF-8, or .xlsx) into YAML files.

Column layout (one row per item or bundle; header row required; see
knowledge/README.md). List cells hold one entry per line, or entries separated
by ASCII ``;``. A materials cell holds one material per line as
``name|form|count|e_license|note|required|condition`` (the last four optional).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Dict, List

import yaml
from pydantic import ValidationError

from knowledge.catalog import KIND_DIRS
from knowledge.schema import BundleRecord, ItemRecord

COLUMNS = [
    "id", "kind", "name", "department", "summary", "aliases", "examples", "applicants",
    "conditions", "materials", "steps", "time_limit", "fees", "where_window", "where_online",
    "where_phone", "cross_province", "cross_province_note", "legal_basis", "local_variation",
    "verified", "source", "members",
]
REQUIRED_COLUMNS = [c for c in COLUMNS if c not in ("members", "local_variation")]
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


def _materials(cell: str) -> List[Dict[str, Any]]:
    out = []
    for line in str(cell or "").replace("\r", "").split("\n"):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("|")] + [""] * 7
        name, form, count, e_license, note, required, condition = fields[:7]
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
        "verified": str(row.get("verified") or "").strip()[:10],
        "source": row.get("source") or "",
    }
    if kind == "bundle":
        record["departments"] = [d.strip() for d in str(row.get("department") or "").replace("、", ";").split(";") if d.strip()]
        record["members"] = _split(row.get("members"))
    else:
        record["department"] = str(row.get("department") or "").strip()
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
        data = record.dict(exclude_defaults=False)
        data["verified"] = record.verified.isoformat()
        for material in data.get("materials", []):
            material["form"] = material["form"].value
        target.write_text(
            yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1000), encoding="utf-8"
        )
        written.append(target)
    return written
