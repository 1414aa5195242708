"""Import applications and their status steps from a CSV file (``banshi progress
import``, ``banshi demo-data``): every row checked first, nothing written when any is
bad; names masked, phone and ID numbers stored as salted hashes plus their last 4."""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from sqlalchemy import delete, select

from assistant.security.pii import is_application_number, is_id_number, is_mobile_number, mask_pii
from assistant.services.progress.records import CST, DASHES, mask_name, parse_status, pii_hash
from assistant.storage.database import session_factory
from assistant.storage.tables import STATUS_SUPPLEMENT, Application, ApplicationEvent
from knowledge.catalog import SPEC_ITEMS, load_spec

logger = logging.getLogger("banshi.progress")

DEMO_CSV = Path(__file__).resolve().parent / "demo_applications.csv"

MAX_IMPORT_BYTES = 20 * 1024 * 1024
MAX_IMPORT_ROWS = 100_000
REQUIRED_COLUMNS = ("number", "item_id", "applicant_name", "phone", "status", "at")
OPTIONAL_COLUMNS = ("id_number", "promised_date", "pickup_method", "note", "missing_materials")
# Fields of the application (repeated on each of its rows; blanks are filled from
# the other rows, different values are an error).
_APP_FIELDS = ("item_id", "applicant_name", "phone", "id_number", "promised_date", "pickup_method")
_TIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S")


class ProgressImportError(Exception):
    """The file cannot be imported; the message lists ``line N: field: problem`` lines."""

    def __init__(self, problems: List[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class ImportReport:
    applications: int
    events: int
    numbers: List[str] = field(default_factory=list)


@dataclass
class _Row:
    line: int
    number: str
    values: Dict[str, str]  # the application fields, normalised
    status: str
    at: dt.datetime
    note: str
    missing: List[str]


def _cell(row: Dict[str, Optional[str]], name: str) -> str:
    """A code-like cell (number, phone, date...): full-width characters made ASCII."""
    return unicodedata.normalize("NFKC", (row.get(name) or "")).strip()


def _text(row: Dict[str, Optional[str]], name: str) -> str:
    """A text cell (name, note...): kept as written (NFKC would turn ，into ,)."""
    return (row.get(name) or "").strip()


def _parse_time(value: str) -> Optional[dt.datetime]:
    for fmt in _TIME_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(CST).replace(tzinfo=None)
    return parsed


def _parse_date(value: str) -> Optional[dt.date]:
    try:
        return dt.date.fromisoformat(value.replace("/", "-"))
    except ValueError:
        return None


def _check_row(
    line: int, row: Dict[str, Optional[str]], item_ids: Iterable[str], problems: List[str]
) -> Optional[_Row]:
    """The checked, normalised row; None (and ``problems`` extended) when it is bad."""
    bad = len(problems)

    def problem(name: str, text: str) -> None:
        problems.append(f"line {line}: {name}: {text}")

    raw_number = _cell(row, "number")
    number = re.sub(rf"[\s{DASHES}]", "", raw_number).upper()
    if not raw_number:
        problem("number", "不能为空")
    elif not is_application_number(number):
        problem("number", "格式应为 ZW 加 11 位数字，例如 ZW20250318007")

    values: Dict[str, str] = {}
    item_id = _cell(row, "item_id")
    if item_id and item_id not in item_ids:
        problem("item_id", f"未知的事项编号 {item_id!r}（见 knowledge/spec/service-items.tsv）")
    values["item_id"] = item_id

    name = "".join(_text(row, "applicant_name").split())
    if len(name) > 32:
        problem("applicant_name", "太长，请不超过 32 个字")
    values["applicant_name"] = name

    phone = re.sub(r"[\s\-()]", "", _cell(row, "phone"))
    if phone.startswith("+86"):
        phone = phone[3:]
    if phone and not is_mobile_number(phone):
        problem("phone", "应为 11 位手机号码")  # never echo the value
    values["phone"] = phone

    id_number = re.sub(r"\s", "", _cell(row, "id_number")).upper()
    if id_number and not is_id_number(id_number):
        problem("id_number", "应为 18 位或 15 位身份证号码")
    values["id_number"] = id_number

    promised = _cell(row, "promised_date")
    if promised and _parse_date(promised) is None:
        problem("promised_date", "日期格式应为 2025-03-28")
    values["promised_date"] = promised

    pickup = _text(row, "pickup_method")
    if len(pickup) > 64:
        problem("pickup_method", "太长，请不超过 64 个字")
    values["pickup_method"] = pickup

    status_cell = _cell(row, "status")
    status = parse_status(status_cell)
    if status is None:
        problem("status", "应为 受理、审核中、需补正、办结、不予受理 之一（或 accepted 等代码）")

    at_cell = _cell(row, "at")
    at = _parse_time(at_cell) if at_cell else None
    if at is None:
        problem("at", "时间格式应为 2025-03-18 09:30")

    note = _text(row, "note")
    if len(note) > 500:
        problem("note", "太长，请不超过 500 个字")

    missing = [m.strip() for m in re.split("[;；]", _text(row, "missing_materials")) if m.strip()]
    if status == STATUS_SUPPLEMENT and not missing:
        problem("missing_materials", "需补正时请写明缺少的材料，多个用 ; 分隔")
    elif status is not None and status != STATUS_SUPPLEMENT and missing:
        problem("missing_materials", "只有需补正的进度可以填写缺少的材料")
    elif any(len(m) > 64 for m in missing):
        problem("missing_materials", "材料名称太长，请不超过 64 个字")

    if len(problems) > bad:
        return None
    return _Row(line, number, values, status, at, mask_pii(note), missing)  # type: ignore[arg-type]


def _read_csv(path: Path) -> Tuple[List[Tuple[int, Dict[str, Optional[str]]]], List[str]]:
    if not path.is_file():
        raise ProgressImportError([f"{path}: 文件不存在"])
    if path.stat().st_size > MAX_IMPORT_BYTES:
        raise ProgressImportError(
            [f"{path}: 文件超过 {MAX_IMPORT_BYTES // (1024 * 1024)} MB，请拆分后分批导入"]
        )
    rows: List[Tuple[int, Dict[str, Optional[str]]]] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            reader.fieldnames = columns
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise ProgressImportError([f"line 1: (header): 缺少列 {', '.join(missing)}"])
            for row in reader:
                if len(rows) >= MAX_IMPORT_ROWS:
                    raise ProgressImportError(
                        [f"{path}: 超过 {MAX_IMPORT_ROWS} 行，请拆分后分批导入"]
                    )
                if not any((v or "").strip() for k, v in row.items() if k is not None):
                    continue  # blank line
                rows.append((reader.line_num, row))
    except UnicodeDecodeError:
        raise ProgressImportError([f"{path}: 不是 UTF-8 编码的 CSV 文件"]) from None
    except csv.Error as exc:
        raise ProgressImportError([f"{path}: CSV 格式错误：{exc}"]) from None
    return rows, columns


def _validate(path: Path) -> Dict[str, List[_Row]]:
    rows, _columns = _read_csv(path)
    if not rows:
        raise ProgressImportError([f"{path}: 没有数据行"])
    item_ids = set(load_spec(SPEC_ITEMS))
    problems: List[str] = []
    groups: Dict[str, List[_Row]] = {}
    for line, row in rows:
        if None in row:  # more cells than columns
            problems.append(f"line {line}: (row): 列数多于表头")
            continue
        checked = _check_row(line, row, item_ids, problems)
        if checked is not None:
            groups.setdefault(checked.number, []).append(checked)
    for number, group in groups.items():
        merged: Dict[str, Tuple[str, int]] = {}
        for row in group:
            for name in _APP_FIELDS:
                value = row.values[name]
                if not value:
                    continue
                if name in merged and merged[name][0] != value:
                    problems.append(f"line {row.line}: {name}: 与第 {merged[name][1]} 行（同一办件）不一致")
                else:
                    merged.setdefault(name, (value, row.line))
        for name in ("item_id", "applicant_name", "phone"):
            if name not in merged:
                problems.append(f"line {group[0].line}: {name}: 办件 {number} 缺少此项")
        for row in group:  # every row of the group sees the merged application fields
            row.values = {name: merged.get(name, ("", 0))[0] for name in _APP_FIELDS}
    if problems:
        raise ProgressImportError(problems)
    return groups


def import_csv(db_url: str, path, secret: bytes) -> ImportReport:
    """Import applications and their steps from a CSV file (see ``demo_applications.csv``).

    Columns: ``number,item_id,applicant_name,phone,id_number,promised_date,
    pickup_method,status,at,note,missing_materials``; one row per status step. The
    whole file is validated first; nothing is written when any row is bad. A number
    already stored is replaced (record and steps) in the same transaction.
    """
    path = Path(path)
    groups = _validate(path)
    events = 0
    with session_factory(db_url)() as session, session.begin():
        numbers = sorted(groups)
        existing: Dict[str, Application] = {}
        for start in range(0, len(numbers), 500):
            chunk = numbers[start : start + 500]
            for app in session.execute(select(Application).where(Application.number.in_(chunk))).scalars():
                existing[app.number] = app
            session.execute(delete(ApplicationEvent).where(ApplicationEvent.number.in_(chunk)))
        for number in numbers:
            group = sorted(groups[number], key=lambda r: r.at)  # stable: file order on ties
            values = group[-1].values
            salt = secrets.token_hex(8)
            id_number = values["id_number"]
            app = existing.get(number) or Application(number=number)
            app.item_id = values["item_id"]
            app.applicant_masked = mask_name(values["applicant_name"])
            app.salt = salt
            app.phone_hash = pii_hash(secret, salt, values["phone"])
            app.phone_last4 = values["phone"][-4:]
            app.id_hash = pii_hash(secret, salt, id_number) if id_number else None
            app.id_last4 = id_number[-4:] if id_number else None
            app.status = group[-1].status
            app.promised_date = _parse_date(values["promised_date"]) if values["promised_date"] else None
            app.pickup_method = values["pickup_method"] or None
            if number not in existing:
                session.add(app)
        session.flush()  # the applications before their steps (foreign key)
        for number in numbers:
            for row in groups[number]:
                missing = json.dumps(row.missing, ensure_ascii=False) if row.missing else None
                session.add(
                    ApplicationEvent(
                        number=number,
                        status=row.status,
                        at=row.at,
                        note=row.note,
                        missing_materials=missing,
                    )
                )
                events += 1
    logger.info("progress.import.done applications=%d events=%d", len(groups), events)
    return ImportReport(applications=len(groups), events=events, numbers=sorted(groups))


def load_demo_data(db_url: str, secret: bytes) -> ImportReport:
    """Import the demo applications (``assistant/services/progress/demo_applications.csv``)."""
    return import_csv(db_url, DEMO_CSV, secret)
