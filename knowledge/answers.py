"""Turn catalog records into short, structured answers for chat and for speech.

Every answer is plain simplified Chinese, numbered where it lists things, and
ends with its source and the date it was checked: answers about fees, time limits,
materials and where to go cite the source of that fact (with the date a rule took
effect, when it has one); the others cite the record. Where practice varies, the
answer says in one sentence what is national and what is local, and where to check.
Used by the actions and by the APIs.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Dict, List, Optional

from knowledge.catalog import Catalog
from knowledge.schema import (
    MATERIAL_FORM_ZH,
    SOURCED_FIELDS,
    BundleRecord,
    Material,
    MaterialForm,
    Record,
    Source,
)

# Question types (one per narrow intent) and how people name them on buttons.
OVERVIEW = "overview"
QUESTION_TYPES: Dict[str, str] = {
    "ask_service": OVERVIEW,
    "ask_materials": "materials",
    "ask_conditions": "conditions",
    "ask_process": "process",
    "ask_fee": "fee",
    "ask_time_limit": "time_limit",
    "ask_location": "location",
}
INTENT_FOR_QUESTION = {v: k for k, v in QUESTION_TYPES.items()}
QUESTION_LABELS: Dict[str, str] = {
    "materials": "要带什么材料",
    "process": "怎么办理",
    "location": "在哪里办",
    "time_limit": "多久办好",
    "fee": "收费吗",
    "conditions": "办理条件",
}
MAX_BUTTONS = 4

CROSS_PROVINCE_ZH = {True: "可以跨省通办", False: "暂不支持跨省通办"}
# Titles cited in 《》: laws, regulations, notices (not service guides or web pages).
DOCUMENT_ENDINGS = ("法", "条例", "办法", "规定", "通知", "意见", "决定", "细则")
MAIN_MATERIALS = "主要材料："


def button_payload(intent: str, item_id: str) -> str:
    return f"/{intent}{json.dumps({'service_item': item_id}, separators=(',', ':'))}"


def material_line(index: int, material: Material) -> str:
    details: List[str] = []
    form = MATERIAL_FORM_ZH[material.form]
    if material.form is MaterialForm.FORM:
        details.append("现场或网上填写")
    elif form:
        unit = "份"
        details.append(f"{form}{material.count}{unit}")
    elif material.count > 1:
        details.append(f"{material.count}份")
    if material.e_license:
        details.append("可用电子证照")
    if not material.required and material.condition:
        details.append(material.condition)
    line = f"{index}. {material.name}"
    if details:
        line += f"（{'，'.join(details)}）"
    if material.note:
        line += f"：{material.note}"
    return line


def _numbered(lines: List[str]) -> str:
    return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, start=1))


def zh_date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def source_line(record: Record) -> str:
    return f"来源：{record.source}（{record.verified.isoformat()} 核对）"


def source_name(source: Source) -> str:
    """A source as people cite it: 国务院《婚姻登记条例》（国务院令第804号，2025年5月10日起施行）."""
    document = source.number or source.title.endswith(DOCUMENT_ENDINGS)
    title = f"《{source.title}》" if document else source.title
    first_issuer = source.issuer.split("、")[0]
    if first_issuer not in source.title:
        title = f"{source.issuer}{title}" if document else f"{source.issuer} {title}"
    details = [source.number] if source.number else []
    if source.effective:
        details.append(f"{zh_date(source.effective)}起施行")
    return title + (f"（{'，'.join(details)}）" if details else "")


def fact_source_line(catalog: Catalog, record: Record, fact: str) -> str:
    """One short line: where a fact (fees, time_limit, ...) comes from and when it was
    checked; the record's source line when the fact names none."""
    sources = catalog.sources_of(record.id, fact)
    if not sources:
        return source_line(record)
    checked = min(s.checked for s in sources)
    return f"来源：{'；'.join(source_name(s) for s in sources)}，{checked.isoformat()} 核对"


def local_note(record: Record) -> Optional[str]:
    """One sentence: what is the same everywhere, what differs by place and where to check."""
    if not record.local_variation:
        return None
    national = record.national.rstrip("。；")
    return f"提示：全国统一的是{national}；{record.local_variation}"


def _produced(record: Record) -> List[str]:
    """What a record issues: a bundle's ``produced``, an item's ``produces``."""
    return list(record.produced if isinstance(record, BundleRecord) else record.produces)


def _join(parts: List[Optional[str]]) -> str:
    return "\n".join(p for p in parts if p)


def answer_materials(catalog: Catalog, record: Record) -> str:
    materials = catalog.materials_for(record.id)
    head = f"办理【{record.name}】需要准备："
    produced = departments = None
    if isinstance(record, BundleRecord):
        head = f"【{record.name}】一次提交，需要准备（相同材料只交一份）："
        departments = f"涉及部门：{'、'.join(record.departments)}。"
        if record.produced:
            produced = f"办好后您会拿到：{'、'.join(record.produced)}，不用事先准备。"
    lines = [material_line(i, m) for i, m in enumerate(materials, start=1)]
    return _join(
        [
            head,
            "\n".join(lines),
            produced,
            departments,
            local_note(record),
            fact_source_line(catalog, record, "materials"),
        ]
    )


def answer_conditions(catalog: Catalog, record: Record) -> str:
    return _join(
        [
            f"【{record.name}】谁可以办：{record.applicants}",
            "办理条件：",
            _numbered(record.conditions),
            f"依据：{'；'.join(record.legal_basis)}",
            local_note(record),
            source_line(record),
        ]
    )


def answer_process(catalog: Catalog, record: Record) -> str:
    extra = None
    if isinstance(record, BundleRecord):
        extra = f"涉及部门：{'、'.join(record.departments)}。"
    return _join(
        [f"【{record.name}】办理步骤：", _numbered(record.steps), extra, source_line(record)]
    )


def answer_fee(catalog: Catalog, record: Record) -> str:
    return _join(
        [f"【{record.name}】收费：{record.fees}", local_note(record), fact_source_line(catalog, record, "fees")]
    )


def answer_time_limit(catalog: Catalog, record: Record) -> str:
    return _join(
        [
            f"【{record.name}】办理时限：{record.time_limit}",
            local_note(record),
            fact_source_line(catalog, record, "time_limit"),
        ]
    )


def cross_province_text(record: Record) -> str:
    return f"{CROSS_PROVINCE_ZH[record.cross_province.available]}。{record.cross_province.note}"


def where_text(record: Record) -> str:
    where = record.where
    lines = [
        f"1. 线下：{where.window}",
        f"2. 网上：{'、'.join(where.online)}",
        f"3. 电话咨询：{where.phone}",
    ]
    lines.append(f"4. 异地办理：{cross_province_text(record)}")
    return "\n".join(lines)


def answer_location(catalog: Catalog, record: Record) -> str:
    return _join(
        [
            f"【{record.name}】可以在这些地方办：",
            where_text(record),
            "大厅开放时间以当地政务服务中心公布为准。",
            fact_source_line(catalog, record, "cross_province"),
        ]
    )


def answer_overview(catalog: Catalog, record: Record) -> str:
    departments = "、".join(catalog.departments_for(record.id))
    materials = catalog.materials_for(record.id)
    parts = [
        f"【{record.name}】{record.summary}",
        f"办理部门：{departments}",
        f"{MAIN_MATERIALS}{'、'.join(m.name for m in materials if m.required)}",
        f"网上办理：{'、'.join(record.where.online)}",
    ]
    if isinstance(record, BundleRecord) and record.members:
        names = "、".join(catalog.records[m].name for m in record.members)
        parts.append(f"包括：{names}")
    parts += ["您可以接着问：要带什么材料、怎么办理、在哪里办、多久办好。", source_line(record)]
    return _join(parts)


ANSWERS = {
    OVERVIEW: answer_overview,
    "materials": answer_materials,
    "conditions": answer_conditions,
    "process": answer_process,
    "fee": answer_fee,
    "time_limit": answer_time_limit,
    "location": answer_location,
}


def answer(catalog: Catalog, item_id: str, question: str) -> str:
    record = catalog.records[item_id]
    return ANSWERS.get(question, answer_overview)(catalog, record)


def follow_up_buttons(item_id: str, asked: str) -> List[Dict[str, str]]:
    """Quick replies for the next natural questions about the same item."""
    buttons = []
    for question, label in QUESTION_LABELS.items():
        if question == asked:
            continue
        buttons.append({"title": label, "payload": button_payload(INTENT_FOR_QUESTION[question], item_id)})
        if len(buttons) == MAX_BUTTONS:
            break
    return buttons


def _source_dict(source: Source) -> Dict[str, Any]:
    data = source.dict()
    data["checked"] = source.checked.isoformat()
    data["effective"] = source.effective.isoformat() if source.effective else None
    return data


def record_card(catalog: Catalog, item_id: str) -> Dict[str, object]:
    """A compact knowledge card of an item (API detail view, operator assist).

    ``sources`` lists where the facts come from; ``fact_sources`` maps each sourced
    fact (fees, time_limit, cross_province, legal_basis, materials) to its source id.
    """
    record = catalog.records[item_id]
    bundle = isinstance(record, BundleRecord)
    return {
        "id": record.id,
        "kind": record.kind,
        "name": record.name,
        "summary": record.summary,
        "departments": catalog.departments_for(item_id),
        "members": list(getattr(record, "members", [])),
        "applicants": record.applicants,
        "conditions": record.conditions,
        "materials": [m.dict() for m in catalog.materials_for(item_id)],
        "steps": record.steps,
        "time_limit": record.time_limit,
        "fees": record.fees,
        "where": record.where.dict(),
        "cross_province": record.cross_province.dict(),
        "legal_basis": record.legal_basis,
        "local_variation": record.local_variation,
        "national": record.national,
        "produces": _produced(record),
        "reviewed": record.reviewed.isoformat() if bundle and record.reviewed else None,
        "aliases": record.aliases,
        "sources": [_source_dict(s) for s in record.sources],
        "fact_sources": {fact: getattr(record, f"{fact}_source") for fact in SOURCED_FIELDS},
        "verified": record.verified.isoformat(),
        "source": record.source,
    }
