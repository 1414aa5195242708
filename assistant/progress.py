"""Application progress (办件进度): numbers, providers, the verification guard, CSV import.

An application (办件) has a number like ``ZW20250318007`` (``ZW`` + 11 digits) and a
timeline of status steps (受理 → 审核中 → 需补正 → 办结 / 不予受理). The dialogue asks
for the number, verifies the last four digits of the applicant's phone, then shows
the timeline. Where the data comes from is a :class:`ProgressProvider`:

* :class:`LocalProvider` reads the ``applications`` / ``application_events`` tables,
  filled by ``banshi progress import FILE.csv`` or ``banshi demo-data``.
* :class:`HttpProvider` asks a real case-management system (``BANSHI_PROGRESS_PROVIDER=http``).

HTTP contract of the case-management system
-------------------------------------------
``GET {BANSHI_PROGRESS_URL}/applications/{number}`` with
``Authorization: Bearer {BANSHI_PROGRESS_TOKEN}`` answers

* ``404``: unknown number;
* ``200`` with a JSON object (the same fields as :class:`ApplicationView`)::

    {
      "number": "ZW20250318007",
      "item_id": "passport",                 # an id of knowledge/spec/service-items.tsv
      "applicant_masked": "张*",              # never the full name
      "phone_last4": "1234",
      "status": "supplement",                 # accepted|reviewing|supplement|completed|rejected
      "steps": [                              # any order; shown oldest first
        {"status": "accepted", "at": "2025-03-18T09:30:00+08:00", "note": "窗口受理",
         "missing_materials": []},
        {"status": "supplement", "at": "2025-03-19T15:00:00+08:00", "note": "照片不合格",
         "missing_materials": ["近期免冠证件照片"]}
      ],
      "promised_date": "2025-03-28",          # ISO 8601 date or null
      "pickup_method": "邮寄"                  # or null
    }

  Dates and times are ISO 8601; a time with an offset is converted to China
  Standard Time (UTC+8), a time without one is taken as UTC+8 already. Unknown
  fields are ignored. Timeouts, connection errors and 5xx answers are retried
  ``progress_retries`` times with a short exponential backoff; after that, and for
  any other 4xx or an invalid body, :class:`ProgressUnavailable` is raised.

Personal data: names are stored masked (``张*``), phone and ID numbers only as
HMAC-SHA256 hashes with a random per-record salt plus their last 4 characters.
Nothing here logs a raw phone or ID number.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import hmac
import hashlib
import json
import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Protocol, Tuple, runtime_checkable

import httpx
from pydantic import BaseModel, ValidationError, validator
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm.attributes import flag_modified

from assistant.storage.tables import (
    APPLICATION_STATUSES,
    STATUS_ACCEPTED,
    STATUS_COMPLETED,
    STATUS_LABELS,
    STATUS_REJECTED,
    STATUS_REVIEWING,
    STATUS_SUPPLEMENT,
    Application,
    ApplicationEvent,
    VerificationGuard,
)
from assistant.security.pii import is_application_number, mask_pii
from knowledge.catalog import SPEC_ITEMS, load_spec
from assistant.storage.database import session_factory, utcnow

logger = logging.getLogger("banshi.progress")

DEMO_CSV = Path(__file__).resolve().parent / "demo_applications.csv"

# China Standard Time has no daylight saving time: a fixed offset is exact.
CST = dt.timezone(dt.timedelta(hours=8))

# ------------------------------------------------------------------ numbers
_DASHES = "\\-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff70_"
_SEP = f"[\\s{_DASHES}]*"
# ZW + 11 digits, separators allowed inside, not glued to other letters or digits.
_NUMBER_RE = re.compile(
    rf"(?<![A-Za-z0-9])ZW{_SEP}((?:[0-9]{_SEP}){{10}}[0-9])(?![0-9])", re.IGNORECASE
)


def normalize_number(text: Optional[str]) -> Optional[str]:
    """The first application number in ``text`` as ``ZW`` + 11 digits, or None.

    Tolerates lowercase, full-width characters, spaces and hyphens inside:
    ``"我的办件号是ｚｗ 2025-0318-007"`` → ``"ZW20250318007"``.
    """
    if not text:
        return None
    match = _NUMBER_RE.search(unicodedata.normalize("NFKC", text))
    if match is None:
        return None
    return "ZW" + re.sub(r"[^0-9]", "", match.group(1))


# -------------------------------------------------------------- personal data
def _pii_digits(value: str) -> str:
    """Digits only (plus the ``X`` check character of ID numbers), full-width tolerated."""
    return re.sub(r"[^0-9X]", "", unicodedata.normalize("NFKC", value or "").upper())


def pii_hash(secret: bytes, salt: str, value: str) -> str:
    """HMAC-SHA256 (hex) of ``salt`` + the digits of ``value`` keyed with the secret key."""
    return hmac.new(secret, (salt + _pii_digits(value)).encode(), hashlib.sha256).hexdigest()


def mask_name(name: str) -> str:
    """``"张三"`` → ``"张*"``: the first character, a star for each other one."""
    name = "".join((name or "").split())
    if not name:
        return ""
    return name[0] + "*" * (len(name) - 1)


# -------------------------------------------------------------------- views
@dataclass
class ProgressStep:
    status: str  # one of models.APPLICATION_STATUSES
    at: dt.datetime  # naive, China Standard Time
    note: str = ""
    missing_materials: List[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


@dataclass
class ApplicationView:
    number: str
    item_id: str
    applicant_masked: str
    phone_last4: str
    status: str
    steps: List[ProgressStep] = field(default_factory=list)  # oldest first
    promised_date: Optional[dt.date] = None
    pickup_method: Optional[str] = None

    @property
    def label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def latest(self) -> Optional[ProgressStep]:
        return self.steps[-1] if self.steps else None

    @property
    def missing_materials(self) -> List[str]:
        """What the applicant still has to bring (the latest 需补正 step), else []."""
        latest = self.latest
        if self.status == STATUS_SUPPLEMENT and latest is not None:
            return list(latest.missing_materials)
        return []


def verify_phone_tail(view: ApplicationView, digits: str) -> bool:
    """Whether ``digits`` (the last 4 digits, or the whole 11-digit mobile number) match.

    Constant-time comparison; anything that is not 4 or 11 digits is a mismatch.
    """
    value = re.sub(r"[^0-9]", "", unicodedata.normalize("NFKC", digits or ""))
    if len(value) == 11:
        value = value[-4:]
    if len(value) != 4 or not view.phone_last4:
        return False
    return hmac.compare_digest(value.encode(), str(view.phone_last4).encode())


# ----------------------------------------------------------------- statuses
_STATUS_ALIASES: Dict[str, str] = {
    "受理": STATUS_ACCEPTED,
    "已受理": STATUS_ACCEPTED,
    "审核中": STATUS_REVIEWING,
    "审核": STATUS_REVIEWING,
    "需补正": STATUS_SUPPLEMENT,
    "需补正材料": STATUS_SUPPLEMENT,
    "补正": STATUS_SUPPLEMENT,
    "办结": STATUS_COMPLETED,
    "已办结": STATUS_COMPLETED,
    "不予受理": STATUS_REJECTED,
}


def parse_status(value: str) -> Optional[str]:
    """A status code from a code (``reviewing``) or its Chinese label (``审核中``); else None."""
    value = unicodedata.normalize("NFKC", value or "").strip()
    if value.lower() in APPLICATION_STATUSES:
        return value.lower()
    return _STATUS_ALIASES.get(value)


# ---------------------------------------------------------------- providers
class ProgressUnavailable(Exception):
    """The progress backend cannot answer right now (down, slow, misconfigured)."""


@runtime_checkable
class ProgressProvider(Protocol):
    """Where application progress comes from."""

    async def lookup(self, number: str) -> Optional[ApplicationView]:
        """The application, None for an unknown number; raises ProgressUnavailable."""

    async def aclose(self) -> None:
        """Release connections."""


def _loads_list(text: Optional[str]) -> List[str]:
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def load_view(db_url: str, number: str) -> Optional[ApplicationView]:
    """The application ``number`` from the local tables (sync), None when unknown."""
    number = normalize_number(number) or ""
    if not number:
        return None
    with session_factory(db_url)() as session:
        app = session.get(Application, number)
        if app is None:
            return None
        events = (
            session.execute(
                select(ApplicationEvent)
                .where(ApplicationEvent.number == number)
                .order_by(ApplicationEvent.at, ApplicationEvent.id)
            )
            .scalars()
            .all()
        )
    return ApplicationView(
        number=app.number,
        item_id=app.item_id,
        applicant_masked=app.applicant_masked,
        phone_last4=app.phone_last4,
        status=app.status,
        steps=[
            ProgressStep(e.status, e.at, e.note or "", _loads_list(e.missing_materials))
            for e in events
        ],
        promised_date=app.promised_date,
        pickup_method=app.pickup_method,
    )


class LocalProvider:
    """Progress from the ``applications`` tables of our own database."""

    def __init__(self, db_url: str):
        self.db_url = db_url

    async def lookup(self, number: str) -> Optional[ApplicationView]:
        try:
            return await asyncio.to_thread(load_view, self.db_url, number)
        except SQLAlchemyError as exc:
            logger.error("progress.local.unavailable error=%s", type(exc).__name__)
            raise ProgressUnavailable("database error") from exc

    async def aclose(self) -> None:
        return None


def _status_code(cls, value: str) -> str:
    code = parse_status(value)
    if code is None:
        raise ValueError("unknown status")
    return code


class _StepPayload(BaseModel):
    status: str
    at: dt.datetime
    note: str = ""
    missing_materials: List[str] = []

    _status = validator("status", allow_reuse=True)(_status_code)

    @validator("at")
    def _local_time(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is not None:
            value = value.astimezone(CST).replace(tzinfo=None)
        return value


class _ApplicationPayload(BaseModel):
    number: str
    item_id: str
    applicant_masked: str
    phone_last4: str
    status: str
    steps: List[_StepPayload] = []
    promised_date: Optional[dt.date] = None
    pickup_method: Optional[str] = None

    _status = validator("status", allow_reuse=True)(_status_code)

    @validator("phone_last4")
    def _last4(cls, value: str) -> str:
        if not re.fullmatch(r"\d{4}", value):
            raise ValueError("must be 4 digits")
        return value

    @validator("applicant_masked")
    def _masked(cls, value: str) -> str:
        # Defence in depth: a system sending the full name still shows only 张*.
        return value if "*" in value else mask_name(value)


MAX_RESPONSE_BYTES = 1024 * 1024


class HttpProvider:
    """Progress from a case-management system over HTTP (see the module docstring)."""

    def __init__(
        self,
        url: str,
        token: Optional[str],
        timeout_s: float = 3.0,
        retries: int = 2,
        backoff_s: float = 0.2,
        client: Optional[httpx.AsyncClient] = None,
    ):
        self.url = url.rstrip("/")
        self.retries = max(0, int(retries))
        self.backoff_s = backoff_s
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s), headers=headers, follow_redirects=False
        )

    async def lookup(self, number: str) -> Optional[ApplicationView]:
        canonical = normalize_number(number)
        if canonical is None:  # never put arbitrary text into the URL
            return None
        url = f"{self.url}/applications/{canonical}"
        reason = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = await self._client.get(url)
            except httpx.TimeoutException:
                reason = "timeout"
            except httpx.TransportError as exc:
                reason = type(exc).__name__
            else:
                if response.status_code == 404:
                    return None
                if response.status_code >= 500:
                    reason = f"http_{response.status_code}"
                elif response.status_code != 200:
                    logger.error(
                        "progress.http.refused status=%d number=%s", response.status_code, canonical
                    )
                    raise ProgressUnavailable(f"HTTP {response.status_code}")
                else:
                    return self._parse(canonical, response)
            logger.warning(
                "progress.http.retry attempt=%d of=%d reason=%s", attempt + 1, self.retries + 1, reason
            )
        logger.error("progress.http.unavailable attempts=%d reason=%s", self.retries + 1, reason)
        raise ProgressUnavailable(reason)

    @staticmethod
    def _parse(number: str, response: httpx.Response) -> ApplicationView:
        if len(response.content) > MAX_RESPONSE_BYTES:
            logger.error("progress.http.invalid reason=too_large bytes=%d", len(response.content))
            raise ProgressUnavailable("response too large")
        try:
            payload = _ApplicationPayload.parse_raw(response.content)
        except ValidationError as exc:
            # Field names and error types only: the values may hold personal data.
            fields = ",".join(
                ".".join(str(p) for p in err["loc"]) + ":" + err["type"] for err in exc.errors()
            )
            logger.error("progress.http.invalid reason=schema fields=%s", fields)
            raise ProgressUnavailable("invalid response") from None
        if payload.number.upper() != number:
            logger.error("progress.http.invalid reason=number_mismatch")
            raise ProgressUnavailable("invalid response")
        steps = sorted(
            (
                ProgressStep(s.status, s.at, mask_pii(s.note), [m for m in s.missing_materials if m])
                for s in payload.steps
            ),
            key=lambda s: s.at,
        )
        return ApplicationView(
            number=number,
            item_id=payload.item_id,
            applicant_masked=payload.applicant_masked,
            phone_last4=payload.phone_last4,
            status=payload.status,
            steps=steps,
            promised_date=payload.promised_date,
            pickup_method=payload.pickup_method,
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def get_provider(settings) -> ProgressProvider:
    """The provider the settings ask for (``BANSHI_PROGRESS_PROVIDER``)."""
    if settings.progress_provider == "http":
        return HttpProvider(
            settings.progress_url,
            settings.progress_token,
            timeout_s=settings.progress_timeout_s,
            retries=settings.progress_retries,
        )
    return LocalProvider(settings.db_url)


# ------------------------------------------------------- verification guard
MAX_FAILURES = 3
LOCK_MINUTES = 15


def _guard_key(number: str) -> str:
    """One guard per application, however the number was typed."""
    return normalize_number(number) or number


def locked_until(db_url: str, number: str, now: Optional[dt.datetime] = None) -> Optional[dt.datetime]:
    """When the lock of ``number`` ends (naive UTC), None when not locked or expired."""
    number, now = _guard_key(number), now or utcnow()
    with session_factory(db_url)() as session:
        guard = session.get(VerificationGuard, number)
        if guard is None or guard.locked_until is None or guard.locked_until <= now:
            return None
        return guard.locked_until


def record_failure(
    db_url: str, number: str, now: Optional[dt.datetime] = None
) -> Tuple[int, Optional[dt.datetime]]:
    """Count a wrong phone verification: (failures so far, lock end if now locked).

    The ``MAX_FAILURES``-th failure locks the number for ``LOCK_MINUTES``. An expired
    lock, or failures older than ``LOCK_MINUTES``, start the count again.
    """
    number, now = _guard_key(number), now or utcnow()
    window = dt.timedelta(minutes=LOCK_MINUTES)
    with session_factory(db_url)() as session, session.begin():
        guard = session.execute(
            select(VerificationGuard).where(VerificationGuard.number == number).with_for_update()
        ).scalar_one_or_none()
        if guard is None:
            guard = VerificationGuard(number=number, failures=0)
            session.add(guard)
        elif guard.locked_until is not None and guard.locked_until > now:
            return guard.failures, guard.locked_until  # already locked: unchanged
        elif guard.locked_until is not None or (guard.updated_at and guard.updated_at <= now - window):
            guard.failures, guard.locked_until = 0, None
        guard.failures = (guard.failures or 0) + 1
        guard.updated_at = now
        # Even when unchanged: otherwise the column's onupdate (the wall clock) wins.
        flag_modified(guard, "updated_at")
        if guard.failures >= MAX_FAILURES:
            guard.locked_until = now + window
        failures, until = guard.failures, guard.locked_until
    if until is not None:
        logger.warning("progress.guard.locked number=%s minutes=%d", number, LOCK_MINUTES)
    return failures, until


def record_success(db_url: str, number: str) -> None:
    """A correct verification: forget the failures of ``number``."""
    number = _guard_key(number)
    with session_factory(db_url)() as session, session.begin():
        session.execute(delete(VerificationGuard).where(VerificationGuard.number == number))


# ------------------------------------------------------------------- import
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
    number = re.sub(rf"[\s{_DASHES}]", "", raw_number).upper()
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
    if phone and not re.fullmatch(r"1\d{10}", phone):
        problem("phone", "应为 11 位手机号码")  # never echo the value
    values["phone"] = phone

    id_number = re.sub(r"\s", "", _cell(row, "id_number")).upper()
    if id_number and not re.fullmatch(r"\d{17}[\dX]|\d{15}", id_number):
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
    """Import the demo applications (``assistant/demo_applications.csv``)."""
    return import_csv(db_url, DEMO_CSV, secret)
