"""Schema of the service catalog: one YAML file per item or bundle.

The records are validated with pydantic; every field is required unless it
has a default here. `banshi kb validate` reports errors as ``file: field: message``.

Every fact a citizen acts on names where it comes from: a record lists its
``sources`` (``{id, title, issuer, number?, url?, effective?, checked}``) and the
fees, time limit, cross-province availability, legal basis and required materials
refer to one of them by id (``fees_source: fee2003``; a material may name its own
``source``, otherwise ``materials_source`` applies).
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Dict, List, Literal, Optional, Union

from pydantic import BaseModel, Extra, Field, validator

from knowledge.names import alternatives

ID_PATTERN = r"^[a-z][a-z0-9_]*$"

# The facts that must name a source, and the field holding the source id.
SOURCED_FIELDS = ("fees", "time_limit", "cross_province", "legal_basis", "materials")
SOURCE_SUFFIX = "_source"


def source_field(field: str) -> str:
    """The field naming the source of ``field``: fees → fees_source."""
    return f"{field}{SOURCE_SUFFIX}"


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
    # The id of the record's source for this material (default: materials_source).
    source: Optional[str] = None

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


class Source(_Strict):
    """Where a fact comes from: a law, a regulation, a notice or an official guide."""

    id: str = Field(..., regex=ID_PATTERN)
    title: str
    issuer: str
    number: str = ""  # document number such as 发改价格〔2003〕2322号, when it has one
    url: str = ""
    effective: Optional[dt.date] = None  # the date the rule took effect, when it matters
    checked: dt.date  # when someone last compared the catalog with this source

    _texts = validator("title", "issuer", allow_reuse=True)(_non_empty_text)

    @validator("checked")
    def _checked_not_in_future(cls, value: dt.date) -> dt.date:
        return _not_in_future(value)


class MemberDifferences(_Strict):
    """Why a bundle's facts differ from its members' (one sentence each), when they do."""

    cross_province: str = ""
    fees: str = ""
    time_limit: str = ""


class NearMiss(_Strict):
    """A message that looks like this record but belongs elsewhere (``item``) or nowhere (null)."""

    text: str
    item: Optional[str] = None

    _text = validator("text", allow_reuse=True)(_non_empty_text)


MIN_SITUATIONS = 10


def _not_in_future(value: dt.date) -> dt.date:
    if value > dt.date.today() + dt.timedelta(days=1):
        raise ValueError("date is in the future")
    return value


def _source_ids(values: dict) -> Optional[set]:
    """The ids of the record's sources, or None when the sources themselves are invalid."""
    if "sources" not in values:
        return None
    return {source.id for source in values["sources"]}


def _as_list(value: object) -> object:
    """``fees_source: fee2003`` is short for ``fees_source: [fee2003]``."""
    return [value] if isinstance(value, str) else value


def _check_reference(value: List[str], values: dict, fact: str) -> List[str]:
    if not value:
        raise ValueError(f"missing: the {fact} needs a source (the id of one of the record's sources)")
    ids = _source_ids(values)
    unknown = [v for v in value if ids is not None and v not in ids]
    if unknown:
        raise ValueError(f"unknown source {unknown[0]!r} (sources: {', '.join(sorted(ids)) or 'none'})")
    return value


def _check_materials(materials: List[Material], values: dict) -> List[Material]:
    """Every required material names a source; no document is listed twice under two names."""
    ids = _source_ids(values)
    default = values.get("materials_source")
    seen: Dict[str, str] = {}
    for index, material in enumerate(materials):
        if material.source is None and material.required and not default:
            raise ValueError(
                f"[{index}] {material.name}: a required material needs a source "
                f"(materials_source, or source on the material)"
            )
        if material.source is not None and ids is not None and material.source not in ids:
            raise ValueError(f"[{index}] {material.name}: unknown source {material.source!r}")
        for document in alternatives(material.name):
            if document in seen:
                raise ValueError(
                    f"[{index}] {material.name}: the same document as {seen[document]!r} (listed twice)"
                )
        for document in alternatives(material.name):
            seen[document] = material.name
    return materials


class _RecordBase(_Strict):
    id: str = Field(..., regex=ID_PATTERN)
    # Declared before the facts that refer to them (validators see earlier fields).
    sources: List[Source] = Field(..., min_items=1)
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
    # Source ids of the facts above (one id, or a list when a fact has several sources).
    fees_source: List[str] = Field(default_factory=list)
    time_limit_source: List[str] = Field(default_factory=list)
    cross_province_source: List[str] = Field(default_factory=list)
    legal_basis_source: List[str] = Field(default_factory=list)
    materials_source: List[str] = Field(default_factory=list)
    # What differs by place (and where to check), and what is the same everywhere:
    # answers say both in one sentence.
    local_variation: str = ""
    national: str = ""
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
    def _verified_not_in_future(cls, value: dt.date) -> dt.date:
        return _not_in_future(value)

    @validator("sources")
    def _unique_sources(cls, value: List[Source]) -> List[Source]:
        ids = [source.id for source in value]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate source id {duplicates[0]!r}")
        return value

    _source_lists = validator(*(source_field(f) for f in SOURCED_FIELDS), pre=True, allow_reuse=True)(_as_list)

    @validator(*(source_field(f) for f in SOURCED_FIELDS if f != "materials"), always=True)
    def _fact_source(cls, value: List[str], values: dict, field) -> List[str]:
        fact = field.name[: -len(SOURCE_SUFFIX)].replace("_", " ")
        return _check_reference(value, values, fact)

    @validator("materials_source")
    def _materials_source(cls, value: List[str], values: dict) -> List[str]:
        # Optional: the materials validator asks for it when a required material has no source.
        return _check_reference(value, values, "materials list") if value else value

    @validator("national", always=True)
    def _national_with_local(cls, value: str, values: dict) -> str:
        if values.get("local_variation") and not value:
            raise ValueError("missing: say what is the same everywhere when local_variation says what differs")
        return value


class ItemRecord(_RecordBase):
    kind: Literal["item"]
    department: str
    materials: List[Material] = Field(..., min_items=1)
    # Documents this item issues (营业执照, 结婚证): a bundle of it cannot ask for them.
    produces: List[str] = Field(default_factory=list)

    _department = validator("department", allow_reuse=True)(_non_empty_text)
    _materials = validator("materials", allow_reuse=True)(_check_materials)


class BundleRecord(_RecordBase):
    """A "一件事" bundle. Its materials are its own reviewed list, as the official guide
    states it (``banshi kb propose-bundle ID`` drafts one from the members)."""

    kind: Literal["bundle"]
    departments: List[str] = Field(..., min_items=1)
    members: List[str] = Field(default_factory=list)
    materials: List[Material] = Field(..., min_items=1)
    # Documents the bundle issues: never inputs.
    produced: List[str] = Field(default_factory=list)
    # When the materials list was last reviewed against the members and the official guide.
    reviewed: Optional[dt.date] = None
    differs_from_members: MemberDifferences = Field(default_factory=MemberDifferences)

    _materials = validator("materials", allow_reuse=True)(_check_materials)

    @validator("reviewed", always=True)
    def _reviewed(cls, value: Optional[dt.date]) -> dt.date:
        if value is None:
            raise ValueError(
                "missing: the materials list was not reviewed; check it against the members "
                "and the official guide (banshi kb propose-bundle ID), then set reviewed: <date>"
            )
        return _not_in_future(value)

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

