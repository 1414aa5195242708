"""Schema of the service catalog: one YAML file per item or bundle.

The records are validated with pydantic; every field is required unless it
has a default here. `banshi kb validate` reports errors as ``file: field: message``.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import List, Literal, Optional, Union

from pydantic import BaseModel, Extra, Field, validator

ID_PATTERN = r"^[a-z][a-z0-9_]*$"


class MaterialForm(str, Enum):
    ORIGINAL = "original"
    COPY = "copy"
    ORIGINAL_AND_COPY = "original_and_copy"
    FORM = "form"
    OTHER = "other"


MATERIAL_FORM_ZH = {
    MaterialForm.ORIGINAL: "原件",
    MaterialForm.COPY: "复印件",
    MaterialForm.ORIGINAL_AND_COPY: "原件和复印件",
    MaterialForm.FORM: "填写",
    MaterialForm.OTHER: "",
}


def _non_empty_text(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


class _Strict(BaseModel):
    class Config:
        extra = Extra.forbid
        anystr_strip_whitespace = True


class Material(_Strict):
    name: str
    form: MaterialForm
    count: int = Field(1, ge=1, le=20)
    e_license: bool
    note: str = ""
    required: bool = True
    condition: str = ""

    _name = validator("name", allow_reuse=True)(_non_empty_text)

    @validator("condition", always=True)
    def _condition_for_optional(cls, value: str, values: dict) -> str:
        if values.get("required") is False and not value:
            raise ValueError("an optional material (required: false) needs a condition")
        return value


class Where(_Strict):
    window: str
    online: List[str] = Field(..., min_items=1)
    phone: str

    _window = validator("window", allow_reuse=True)(_non_empty_text)

    @validator("phone")
    def _phone(cls, value: str) -> str:
        value = str(value).strip()
        if not value or not any(ch.isdigit() for ch in value):
            raise ValueError("must be a phone line such as 12345")
        return value


class CrossProvince(_Strict):
    available: bool
    note: str

    _note = validator("note", allow_reuse=True)(_non_empty_text)


class NearMiss(_Strict):
    """A message that looks like this record but belongs elsewhere (``item``) or nowhere (null)."""

    text: str
    item: Optional[str] = None

    _text = validator("text", allow_reuse=True)(_non_empty_text)


MIN_SITUATIONS = 10


class _RecordBase(_Strict):
    id: str = Field(..., regex=ID_PATTERN)
    name: str
    summary: str
    aliases: List[str] = Field(..., min_items=3)
    examples: List[str] = Field(..., min_items=3)
    applicants: str
    conditions: List[str] = Field(..., min_items=1)
    steps: List[str] = Field(..., min_items=1)
    time_limit: str
    fees: str
    where: Where
    cross_province: CrossProvince
    legal_basis: List[str] = Field(..., min_items=1)
    local_variation: str = ""
    # How citizens describe the need without naming the service, and near-misses that
    # belong to another record or to none. Training and retrieval data, never shown.
    situations: List[str] = Field(default_factory=list)
    not_this: List[NearMiss] = Field(default_factory=list)
    verified: dt.date
    source: str

    _texts = validator(
        "name", "summary", "applicants", "time_limit", "fees", "source", allow_reuse=True
    )(_non_empty_text)

    @validator(
        "aliases", "examples", "conditions", "steps", "legal_basis", "situations", each_item=True
    )
    def _list_items(cls, value: str) -> str:
        return _non_empty_text(str(value))

    @validator("aliases")
    def _unique_aliases(cls, value: List[str]) -> List[str]:
        seen = set()
        for alias in value:
            if alias in seen:
                raise ValueError(f"duplicate alias {alias!r}")
            if any(not part.strip() for part in alias.split("+")):
                raise ValueError(f"alias {alias!r} has an empty part around '+'")
            seen.add(alias)
        return value

    @validator("verified")
    def _not_in_future(cls, value: dt.date) -> dt.date:
        if value > dt.date.today() + dt.timedelta(days=1):
            raise ValueError("verified date is in the future")
        return value


class ItemRecord(_RecordBase):
    kind: Literal["item"]
    department: str
    materials: List[Material] = Field(..., min_items=1)

    _department = validator("department", allow_reuse=True)(_non_empty_text)


class BundleRecord(_RecordBase):
    kind: Literal["bundle"]
    departments: List[str] = Field(..., min_items=1)
    members: List[str] = Field(default_factory=list)
    materials: List[Material] = Field(default_factory=list)

    @property
    def department(self) -> str:
        return "、".join(self.departments)


Record = Union[ItemRecord, BundleRecord]


def short_name(name: str) -> str:
    """The official name without its parenthetical note: 居民身份证补领（丢失补办） → 居民身份证补领."""
    for bracket in ("（", "("):
        if bracket in name:
            name = name.split(bracket, 1)[0]
    return name.strip()

