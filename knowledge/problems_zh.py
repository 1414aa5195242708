"""Validation problems (``file: field: message``, as ``banshi kb validate`` prints them)
explained in Chinese for the catalog maintainers on the admin page: the field by its
label on the page ("收费标准的来源", "材料清单第2项的名称"), the common messages
translated; a message without a translation is kept as it is after the label."""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

FIELD_LABELS = {
    "id": "编号", "kind": "类型", "name": "名称", "summary": "简介", "aliases": "别名",
    "examples": "示例问题", "applicants": "申请对象", "conditions": "办理条件", "steps": "办理步骤",
    "time_limit": "办理时限", "fees": "收费标准", "where": "办理地点", "cross_province": "跨省通办",
    "legal_basis": "办理依据", "fees_source": "收费标准的来源", "time_limit_source": "办理时限的来源",
    "cross_province_source": "跨省通办的来源", "legal_basis_source": "办理依据的来源",
    "materials_source": "材料清单的来源", "local_variation": "各地差异", "national": "全国统一的内容",
    "situations": "群众的说法", "not_this": "容易混淆的说法", "verified": "核实日期", "source": "来源说明",
    "department": "部门", "departments": "部门", "members": "包含的事项", "materials": "材料清单",
    "produces": "办结后取得的证照", "produced": "办结后取得的证照", "reviewed": "材料清单审核日期",
    "differs_from_members": "与所含事项不同之处", "sources": "来源", "(file)": "整条记录",
}
SUB_LABELS = {
    "name": "名称", "form": "形式", "count": "份数", "e_license": "电子证照", "note": "说明",
    "required": "是否必需", "condition": "条件", "source": "来源编号", "id": "编号", "title": "标题",
    "issuer": "发布机关", "number": "文号", "url": "网址", "effective": "施行日期", "checked": "核对日期",
    "window": "线下窗口", "online": "网上办理入口", "phone": "咨询电话", "available": "是否可跨省办理",
    "text": "说法", "item": "所属事项", "fees": "收费", "time_limit": "时限",
}
MESSAGES: List[Tuple[str, str]] = [
    (r"^field required$", "此项必填"),
    (r"^extra fields not permitted$", "不支持此字段，请删除"),
    (r"^ensure this value has at least (\d+) items?$", r"至少需要\1项"),
    (r"^ensure this value is greater than or equal to (\d+)$", r"不能小于\1"),
    (r"^ensure this value is less than or equal to (\d+)$", r"不能大于\1"),
    (r"^date is in the future$", "日期不能晚于今天"),
    (r"^must not be empty$", "不能为空"),
    (r"^missing: the .+ needs a source.*$", "缺少来源，请填写“来源”中的来源编号"),
    (r"^unknown source '([^']+)'.*$", r"来源编号 \1 不在本事项的“来源”列表中"),
    (r"^\[(\d+)\] (.+): unknown source '([^']+)'$", r"第\1项“\2”的来源编号 \3 不在“来源”列表中"),
    (r"^\[(\d+)\] (.+): a required material needs a source.*$", r"第\1项“\2”是必需材料，需要注明来源"),
    (r"^\[(\d+)\] (.+): the same document as '([^']+)' \(listed twice\)$", r"第\1项“\2”与“\3”是同一份材料，重复了"),
    (r"^'([^']+)' is also an alias of (\w+)$", r"别名“\1”已经是事项 \2 的别名"),
    (r"^duplicate alias '([^']+)'$", r"别名“\1”重复了"),
    (r"^alias '([^']+)' has an empty part around '\+'$", r"别名“\1”的“+”两边不能为空"),
    (r"^duplicate source id '([^']+)'$", r"来源编号 \1 重复了"),
    (r"^names the service \('([^']+)'\).*$", r"直接写了事项名称“\1”，请改为描述群众遇到的情况"),
    (r"^'([^']+)' is listed twice$", r"“\1”重复了"),
    (r"^'([^']+)' is also one of the situations$", r"“\1”同时也在“群众的说法”里"),
    (r"^(\d+) given, at least (\d+) needed.*$", r"现有\1句，至少需要\2句"),
    (r"^spec says '([^']+)'$", r"与事项目录规定的“\1”不一致"),
    (r"^'([^']+)' is not in .*$", r"“\1”不在事项目录中"),
    (r"^'([^']+)' is not an item of the catalog$", r"“\1”不是目录中的事项"),
    (r"^an optional material \(required: false\) needs a condition$", "非必需的材料要写明在什么情况下需要"),
    (r"^must be a phone line such as 12345$", "请填写电话号码，例如 12345"),
    (r"^(invalid date format|value is not a valid date)$", "日期格式不正确，请写成 年-月-日"),
    (r"^value is not a valid boolean$", "应为 是（true）或 否（false）"),
    (r"^value is not a valid integer$", "应为整数"),
    (r"^str type expected$", "应为文字"),
    (r"^value is not a valid list$", "应为列表"),
    (r"^value is not a valid dict$", "应为对象（花括号括起的字段）"),
    (r"^value is not a valid enumeration member.*$", "取值不在允许的范围内"),
    (r"^string does not match regex.*$", "格式不正确（小写字母、数字和下划线）"),
    (r"^missing: say what is the same everywhere.*$", "写了各地差异，也要写明全国统一的内容"),
    (r"^missing: the materials list was not reviewed.*$", "材料清单还没有审核，请核对后填写审核日期"),
]
_COMPILED = [(re.compile(pattern), replacement) for pattern, replacement in MESSAGES]
_PART_RE = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def field_label(path: str) -> str:
    """``materials[1].name`` → 材料清单第2项的名称."""
    label = ""
    for index, (name, number) in enumerate(_PART_RE.findall(path)):
        if number:
            label += f"第{int(number) + 1}项"
        elif index == 0:
            label += FIELD_LABELS.get(name, name)
        else:
            label += f"的{SUB_LABELS.get(name, name)}"
    return label or path


def message_zh(message: str) -> str:
    for pattern, replacement in _COMPILED:
        if pattern.match(message):
            return pattern.sub(replacement, message)
    return message


def explain(problem: str) -> str:
    """One problem line in Chinese (the record's file name left out)."""
    parts = problem.split(": ", 2)
    if len(parts) < 3:
        return message_zh(problem)
    _, field, message = parts
    if field.startswith("situations[") and message.startswith("names the service"):
        number = int(field[len("situations["):].split("]")[0]) + 1
        return f"群众的说法第{number}句{message_zh(message)}"
    return f"{field_label(field)}：{message_zh(message)}"


_FACT_RE = re.compile(
    r"^.*?facts\.tsv:(\d+): (\w+) (\w+): (expected|must not contain) '(.+?)' \(in the (knowledge card|answer)"
)
_FACT_FIELDS = {"fee": "收费标准", "fees": "收费标准", "time_limit": "办理时限", "materials": "材料清单"}


def explain_fact(line: str) -> str:
    """A fact under test (``knowledge/facts.tsv``) that an edit no longer satisfies."""
    found = _FACT_RE.match(line)
    if not found:
        return line
    number, _, field, kind, fragment, _ = found.groups()
    rule = "应包含" if kind == "expected" else "不应出现"
    label = _FACT_FIELDS.get(field, FIELD_LABELS.get(field, field))
    return (f"事实核对表（knowledge/facts.tsv）第{number}行：{label}{rule}“{fragment}”，"
            "这次修改后不再成立。如确属政策调整，请在下次版本中同步更新该表。")


# ---------------------------------------------------------------- where a problem is
_PATH_RE = re.compile(r"^[a-z_]+(\[\d+\])?(\.[a-z_]+(\[\d+\])?)*$")
_MATERIAL_RE = re.compile(r"^\[(\d+)\] .*?: (unknown source|a required material|the same document)")
_DUPLICATE_SOURCE_RE = re.compile(r"^duplicate source id '([^']+)'$")
# The rules of knowledge.revisions.check_fact_sources (messages in Chinese already).
_NAMED_FIELD_RE = re.compile(r"（(\w+_source|verified)）")
_UNKNOWN_FACT_SOURCE_RE = re.compile(r"^修改了(.+?)，来源 (\S+) 不在")
_OLDER_CHECK_RE = re.compile(r"^来源 (\S+) 的核对日期")
_FIELDS_BY_LABEL = {label: name for name, label in FIELD_LABELS.items() if not name.endswith("_source")}


def _source_index(document: dict, source_id: str, last: bool = False) -> Optional[int]:
    ids = [s.get("id") if isinstance(s, dict) else None for s in document.get("sources") or []]
    found = [i for i, value in enumerate(ids) if value == source_id]
    return (found[-1] if last else found[0]) if found else None


def _material_with_source(document: dict, source_id: str) -> Optional[int]:
    for index, material in enumerate(document.get("materials") or []):
        if isinstance(material, dict) and material.get("source") == source_id:
            return index
    return None


def _located_rule(problem: str, document: dict) -> Optional[str]:
    unknown = _UNKNOWN_FACT_SOURCE_RE.match(problem)
    if unknown:
        fact = _FIELDS_BY_LABEL.get(unknown.group(1), "")
        index = _material_with_source(document, unknown.group(2)) if fact == "materials" else None
        return f"materials[{index}].source" if index is not None else (f"{fact}_source" if fact else None)
    older = _OLDER_CHECK_RE.match(problem)
    if older:
        index = _source_index(document, older.group(1))
        return f"sources[{index}].checked" if index is not None else "sources"
    named = _NAMED_FIELD_RE.search(problem)
    return named.group(1) if named else None


def locate(problem: str, document: Optional[dict] = None) -> Optional[str]:
    """The field of the draft a problem is about, as a path (``materials[1].name``,
    ``sources[0].checked``, ``fees_source``), or None for the record as a whole:
    the admin page shows the problem next to that field."""
    document = document if isinstance(document, dict) else {}
    parts = problem.split(": ", 2)
    if len(parts) < 3 or not _PATH_RE.match(parts[1]):
        return _located_rule(problem, document)
    path, message = parts[1], parts[2]
    material = _MATERIAL_RE.match(message)
    if material:
        return f"{path}[{material.group(1)}].{'name' if material.group(2).startswith('the same') else 'source'}"
    duplicate = _DUPLICATE_SOURCE_RE.match(message)
    if duplicate and path == "sources":
        index = _source_index(document, duplicate.group(1), last=True)
        return f"sources[{index}].id" if index is not None else path
    return path
