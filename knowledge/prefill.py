"""Pre-application (预填) forms: per catalog item, the fields its application form asks
for and the materials that can be photographed (``knowledge/prefill.yml``), and the
checks of every entered value (kind, bounds; an ID number's check digit).

``load_forms(catalog)`` validates the file against the catalog (``banshi kb validate``
reports its problems as ``file: item: field: message``); ``check_fields`` checks what a
citizen entered and answers, per field, a short message in simplified Chinese.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml
from pydantic import BaseModel, Extra, Field, ValidationError, validator

from knowledge.catalog import Catalog
from knowledge.schema import MaterialForm

FORMS_FILE = Path(__file__).resolve().parent / "prefill.yml"

KIND_NAME = "name"
KIND_ID_NUMBER = "id_number"
KIND_PHONE = "phone"
KIND_ADDRESS = "address"
KIND_TEXT = "text"
KIND_DATE = "date"
KIND_NUMBER = "number"
KIND_CHOICE = "choice"
KINDS = (KIND_NAME, KIND_ID_NUMBER, KIND_PHONE, KIND_ADDRESS, KIND_TEXT, KIND_DATE, KIND_NUMBER, KIND_CHOICE)
# Kinds whose values are personal data: sealed at rest, never in logs or listings.
PERSONAL_KINDS = (KIND_NAME, KIND_ID_NUMBER, KIND_PHONE, KIND_ADDRESS)

# Bounds (characters) of every kind; text and address may set a smaller max_length.
MAX_CHARS = {
    KIND_NAME: 20,
    KIND_ID_NUMBER: 18,
    KIND_PHONE: 13,
    KIND_ADDRESS: 100,
    KIND_TEXT: 500,
    KIND_DATE: 10,
    KIND_NUMBER: 12,
    KIND_CHOICE: 20,
}
MIN_ADDRESS_CHARS = 5
MAX_FIELDS = 20
MAX_INPUT_CHARS = 1000  # what a field may hold before it is normalised (then MAX_CHARS holds)
FIELD_ID = r"^[a-z][a-z0-9_]{0,31}$"
EARLIEST_DATE = dt.date(1900, 1, 1)
LATEST_DATE = dt.date(2100, 12, 31)

_NAME_RE = re.compile(r"^[\u3400-\u9fffA-Za-z][\u3400-\u9fffA-Za-z·. ]{0,18}[\u3400-\u9fffA-Za-z]$")
# Whole form values, normalised first, stricter than assistant/security/pii.py's ID_NUMBER,
# MOBILE and LANDLINE (18-digit IDs only, check character below); knowledge may not import
# assistant.security (same layer). tests/unit/test_pii_families.py checks they agree.
_ID_RE = re.compile(r"^[1-9]\d{16}[\dX]$")
_MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE_RE = re.compile(r"^0\d{2,3}\d{7,8}$")
_DATE_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?$")
_COMPACT_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


class PrefillError(Exception):
    """The forms file does not fit the catalog (one line per problem)."""

    def __init__(self, problems: List[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    class Config:
        extra = Extra.forbid
        anystr_strip_whitespace = True


class FormField(_Strict):
    id: str = Field(..., regex=FIELD_ID)
    label: str = Field(..., min_length=1, max_length=30)
    kind: str
    required: bool = True
    max_length: Optional[int] = Field(None, ge=1, le=500)
    min: Optional[int] = Field(None, ge=0)
    max: Optional[int] = Field(None, ge=0, le=10**11)
    options: List[str] = Field(default_factory=list, max_items=20)
    hint: str = Field("", max_length=60)

    @validator("kind")
    def _kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"must be one of {', '.join(KINDS)}")
        return value

    @validator("options", always=True)
    def _options(cls, value: List[str], values: Dict[str, Any]) -> List[str]:
        if values.get("kind") == KIND_CHOICE:
            if len(value) < 2 or len(set(value)) != len(value):
                raise ValueError("a choice needs at least two distinct options")
            if any(not option or len(option) > MAX_CHARS[KIND_CHOICE] for option in value):
                raise ValueError(f"options must be 1-{MAX_CHARS[KIND_CHOICE]} characters")
        elif value:
            raise ValueError("only a choice has options")
        return value

    @validator("max", always=True)
    def _range(cls, value: Optional[int], values: Dict[str, Any]) -> Optional[int]:
        kind = values.get("kind")
        if kind == KIND_NUMBER and (value is None or values.get("min") is None or values["min"] > value):
            raise ValueError("a number needs min <= max")
        if kind != KIND_NUMBER and (value is not None or values.get("min") is not None):
            raise ValueError("only a number has min and max")
        return value

    @validator("max_length", always=True)
    def _max_length(cls, value: Optional[int], values: Dict[str, Any]) -> Optional[int]:
        kind = values.get("kind")
        if value is not None and kind not in (KIND_TEXT, KIND_ADDRESS):
            raise ValueError("only text and address have max_length")
        if value is not None and kind in MAX_CHARS and value > MAX_CHARS[kind]:
            raise ValueError(f"at most {MAX_CHARS[kind]} for {kind}")
        return value

    @property
    def limit(self) -> int:
        """The most characters the value may have."""
        return self.max_length or MAX_CHARS[self.kind]

    def public(self) -> Dict[str, Any]:
        """What the kiosk page needs to draw and check the input."""
        out: Dict[str, Any] = {
            "id": self.id, "label": self.label, "kind": self.kind, "required": self.required,
            "max_length": self.limit,
        }
        if self.options:
            out["options"] = list(self.options)
        if self.kind == KIND_NUMBER:
            out["min"], out["max"] = self.min, self.max
        if self.hint:
            out["hint"] = self.hint
        return out


class ItemFormSpec(_Strict):
    fields: List[FormField] = Field(..., min_items=1, max_items=MAX_FIELDS)
    photos: Optional[List[str]] = Field(None, max_items=20)

    @validator("fields")
    def _unique(cls, value: List[FormField]) -> List[FormField]:
        ids = [f.id for f in value]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate field ids: {', '.join(duplicates)}")
        return value


class FormsFile(_Strict):
    version: int = Field(..., ge=1, le=1)
    items: Dict[str, ItemFormSpec]


@dataclass(frozen=True)
class ItemForm:
    """The pre-application form of one item."""

    item_id: str
    item_name: str
    fields: Tuple[FormField, ...]
    photos: Tuple[str, ...]  # materials that can be photographed (catalog names)

    def field(self, field_id: str) -> Optional[FormField]:
        return next((f for f in self.fields if f.id == field_id), None)

    def public(self) -> Dict[str, Any]:
        return {
            "item_id": self.item_id,
            "name": self.item_name,
            "fields": [f.public() for f in self.fields],
            "photos": list(self.photos),
        }


def _problems_of(exc: ValidationError, where: str) -> List[str]:
    return [f"{where}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]


def load_forms(catalog: Catalog, path: Path = FORMS_FILE) -> Dict[str, ItemForm]:
    """The forms by item id, checked against the catalog (``PrefillError`` lists every problem)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PrefillError([f"{path}: (file): {exc}"]) from exc
    try:
        parsed = FormsFile.parse_obj(data)
    except ValidationError as exc:
        raise PrefillError(_problems_of(exc, str(path))) from exc
    problems: List[str] = []
    forms: Dict[str, ItemForm] = {}
    for item_id, spec in parsed.items.items():
        record = catalog.get(item_id)
        if record is None or record.kind != "item":
            problems.append(f"{path}: items.{item_id}: not an item of the catalog")
            continue
        names = [m.name for m in record.materials]
        if spec.photos is None:
            photos = [m.name for m in record.materials if m.form != MaterialForm.FORM]
        else:
            photos = list(spec.photos)
            for name in photos:
                if name not in names:
                    problems.append(f"{path}: items.{item_id}.photos: {name!r} is not a material of {item_id}")
            if len(set(photos)) != len(photos):
                problems.append(f"{path}: items.{item_id}.photos: listed twice")
        forms[item_id] = ItemForm(item_id, record.name, tuple(spec.fields), tuple(photos))
    if problems:
        raise PrefillError(problems)
    return forms


# ------------------------------------------------------------------- values
class FieldProblem(ValueError):
    """A value that does not fit its field: ``message`` is for the citizen."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def id_number_ok(value: str) -> bool:
    """An 18-character resident ID number with a valid birth date and check character."""
    if not _ID_RE.match(value):
        return False
    try:
        born = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if not EARLIEST_DATE <= born <= dt.date.today():
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == value[17]


def parse_date(value: str) -> Optional[dt.date]:
    match = _DATE_RE.match(value) or _COMPACT_DATE_RE.match(value)
    if not match:
        return None
    try:
        day = dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None
    return day if EARLIEST_DATE <= day <= LATEST_DATE else None


def _plain(value: str) -> str:
    """NFKC (full-width digits and letters), no control characters, outer blanks gone."""
    value = unicodedata.normalize("NFKC", value)
    return "".join(ch for ch in value if unicodedata.category(ch)[0] != "C").strip()


def check_value(spec: FormField, raw: Any) -> Optional[str]:
    """The value normalised (None when empty and optional); ``FieldProblem`` otherwise."""
    if raw is None:
        raw = ""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and spec.kind == KIND_NUMBER:
        raw = str(raw)
    if not isinstance(raw, str):
        raise FieldProblem(f"{spec.label}的格式不正确。")
    if len(raw) > MAX_INPUT_CHARS:
        raise FieldProblem(f"{spec.label}太长了，最多{spec.limit}个字。")
    value = _plain(raw)
    if not value:
        if spec.required:
            raise FieldProblem(f"请填写{spec.label}。")
        return None
    kind = spec.kind
    if kind == KIND_NAME:
        value = re.sub(r"\s+", "", value) if re.search(r"[\u3400-\u9fff]", value) else " ".join(value.split())
        if not _NAME_RE.match(value):
            raise FieldProblem(f"{spec.label}请填写2到20个汉字或字母。")
    elif kind == KIND_ID_NUMBER:
        value = re.sub(r"[\s-]", "", value).upper()
        if not id_number_ok(value):
            raise FieldProblem(f"{spec.label}不正确，请核对18位号码（最后一位可能是X）。")
    elif kind == KIND_PHONE:
        value = re.sub(r"[\s()（）-]", "", value)
        if value.startswith("+86"):
            value = value[3:]
        if not (_MOBILE_RE.match(value) or _LANDLINE_RE.match(value)):
            raise FieldProblem(f"{spec.label}不正确，请填写11位手机号码，或带区号的固定电话。")
    elif kind == KIND_DATE:
        day = parse_date(value)
        if day is None:
            raise FieldProblem(f"{spec.label}请按“年-月-日”填写，例如 2025-03-01。")
        value = day.isoformat()
    elif kind == KIND_NUMBER:
        digits = re.sub(r"[\s,，]", "", value)
        if not re.fullmatch(r"\d{1,12}", digits):
            raise FieldProblem(f"{spec.label}请填写数字。")
        number = int(digits)
        if not (spec.min or 0) <= number <= (spec.max if spec.max is not None else number):
            raise FieldProblem(f"{spec.label}应在{spec.min}到{spec.max}之间。")
        value = str(number)
    elif kind == KIND_CHOICE:
        if value not in spec.options:
            raise FieldProblem(f"{spec.label}请从这些里选一个：{'、'.join(spec.options)}。")
    else:  # address, text
        value = re.sub(r"(?<=[\u3400-\u9fff])\s+(?=[\u3400-\u9fff])", "", value)
        value = " ".join(value.split())
        if kind == KIND_ADDRESS and len(value) < MIN_ADDRESS_CHARS:
            raise FieldProblem(f"{spec.label}太短了，请写到门牌号。")
    if len(value) > spec.limit:
        raise FieldProblem(f"{spec.label}太长了，最多{spec.limit}个字。")
    return value


def check_fields(form: ItemForm, values: Any) -> Tuple[Dict[str, str], Dict[str, str]]:
    """(the values by field id, normalised; the problems by field id). Unknown field
    ids are problems too (under their own id)."""
    if not isinstance(values, dict):
        return {}, {"_": "填写的内容格式不正确。"}
    if len(values) > MAX_FIELDS:
        return {}, {"_": f"填写的项目太多了，最多{MAX_FIELDS}项。"}
    clean: Dict[str, str] = {}
    problems: Dict[str, str] = {}
    for key in values:
        if not isinstance(key, str) or form.field(key) is None:
            problems[str(key)[:32]] = "表单里没有这一项。"
    for spec in form.fields:
        try:
            value = check_value(spec, values.get(spec.id))
        except FieldProblem as exc:
            problems[spec.id] = exc.message
            continue
        if value is not None:
            clean[spec.id] = value
    return clean, problems
