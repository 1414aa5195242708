"""Turn catalog records into short, structured answers for chat and for speech.

Every answer is plain simplified Chinese, numbered where it lists things, and
ends with its source and verified date. Used by the actions and by the APIs.
"""

from __future__ import annotations

import json
from typing import Dict, List, Optional

from knowledge.catalog import Catalog
from knowledge.schema import MATERIAL_FORM_ZH, BundleRecord, Material, MaterialForm, Record

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


def source_line(record: Record) -> str:
    return f"来源：{record.source}（{record.verified.isoformat()} 核对）"


def _local_note(record: Record) -> Optional[str]:
    if record.local_variation:
        return f"提示：{record.local_variation}"
    return None


def _join(parts: List[Optional[str]]) -> str:
    return "\n".join(p for p in parts if p)


def answer_materials(catalog: Catalog, record: Record) -> str:
    materials = catalog.materials_for(record.id)
    head = f"办理【{record.name}】需要准备："
    if isinstance(record, BundleRecord):
        head = f"【{record.name}】一次提交，合并后的材料清单（相同材料只需一份）："
    lines = [material_line(i, m) for i, m in enumerate(materials, start=1)]
    extra = None
    if isinstance(record, BundleRecord):
        extra = f"涉及部门：{'、'.join(record.departments)}。"
    return _join([head, "\n".join(lines), extra, _local_note(record), source_line(record)])


def answer_conditions(catalog: Catalog, record: Record) -> str:
    return _join(
        [
            f"【{record.name}】谁可以办：{record.applicants}",
            "办理条件：",
            _numbered(record.conditions),
            _local_note(record),
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
    return _join([f"【{record.name}】收费：{record.fees}", _local_note(record), source_line(record)])


def answer_time_limit(catalog: Catalog, record: Record) -> str:
    return _join(
        [f"【{record.name}】办理时限：{record.time_limit}", _local_note(record), source_line(record)]
    )


def where_text(record: Record) -> str:
    where = record.where
    lines = [
        f"1. 线下：{where.window}",
        f"2. 网上：{'、'.join(where.online)}",
        f"3. 电话咨询：{where.phone}",
    ]
    cross = "可以跨省通办" if record.cross_province.available else "暂不支持跨省通办"
    lines.append(f"4. 异地办理：{cross}。{record.cross_province.note}")
    return "\n".join(lines)


def answer_location(catalog: Catalog, record: Record) -> str:
    return _join(
        [
            f"【{record.name}】可以在这些地方办：",
            where_text(record),
            "大厅开放时间以当地政务服务中心公布为准。",
            source_line(record),
        ]
    )


def answer_overview(catalog: Catalog, record: Record) -> str:
    departments = "、".join(catalog.departments_for(record.id))
    materials = catalog.materials_for(record.id)
    parts = [
        f"【{record.name}】{record.summary}",
        f"办理部门：{departments}",
        f"主要材料：{'、'.join(m.name for m in materials if m.required)}",
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


def record_card(catalog: Catalog, item_id: str) -> Dict[str, object]:
    """A compact knowledge card of an item (API detail view, operator assist)."""
    record = catalog.records[item_id]
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
        "aliases": record.aliases,
        "verified": record.verified.isoformat(),
        "source": record.source,
    }
