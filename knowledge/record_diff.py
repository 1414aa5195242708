"""What a catalog revision changed, field by field, for the maintainers on the admin
page: texts before → after, list entries added and removed, materials and sources
added, removed or changed (by name and by id), nested objects (``where``) by their
sub-fields. Values are given as display text in Chinese (是/否, the material's form,
（空）), so the page only inserts text. The fee comes first and is marked
``important``: a wrong fee is the costliest mistake in the catalog."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from knowledge.problems_zh import FIELD_LABELS, SUB_LABELS
from knowledge.schema import MATERIAL_FORM_ZH

IMPORTANT = ("fees", "fees_source")  # shown first and highlighted: the fee and where it comes from
KEYS = {"materials": "name", "sources": "id", "not_this": "text"}  # lists of objects: matched by this key
EMPTY = "（空）"
FORM_TEXT = {form.value: text for form, text in MATERIAL_FORM_ZH.items()}
MATERIAL_FORM_LABELS = {form: text or "其他" for form, text in FORM_TEXT.items()}
KIND_TEXT, KIND_LIST, KIND_ENTRIES = "text", "list", "entries"


def display(value: Any, key: str = "") -> str:
    """A value as the page shows it."""
    if value is None or value == "" or value == []:
        return EMPTY
    if isinstance(value, bool):
        return "是" if value else "否"
    if key == "form" and value in MATERIAL_FORM_LABELS:
        return MATERIAL_FORM_LABELS[value]
    if isinstance(value, list):
        return "、".join(display(v) for v in value)
    if isinstance(value, dict):
        return "；".join(f"{SUB_LABELS.get(k, k)}：{display(v, k)}" for k, v in value.items() if v not in (None, "", []))
    return str(value)


def _entry_text(field: str, entry: Any) -> str:
    """One material / source / list entry in a line."""
    if field == "materials" and isinstance(entry, dict):
        form = FORM_TEXT.get(str(entry.get("form")), "")
        parts = [f"{form}{entry.get('count', 1)}份",
                 "必需" if entry.get("required", True) else f"需要时提供：{entry.get('condition') or EMPTY}"]
        if entry.get("e_license"):
            parts.append("可用电子证照")
        return f"{entry.get('name')}（{'，'.join(parts)}）"
    if field == "sources" and isinstance(entry, dict):
        number = f"（{entry['number']}）" if entry.get("number") else ""
        return f"{entry.get('id')}：{entry.get('title')}{number}"
    return display(entry)


def _text_change(field: str, label: str, before: Any, after: Any) -> Dict[str, Any]:
    return {"field": field, "label": label, "kind": KIND_TEXT, "important": field in IMPORTANT,
            "before": display(before, field.rsplit(".", 1)[-1]), "after": display(after, field.rsplit(".", 1)[-1])}


def _canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _list_change(field: str, label: str, before: List[Any], after: List[Any]) -> Dict[str, Any]:
    """Entries added and removed; those matched by KEYS[field] and different: changed sub-fields."""
    key = KEYS.get(field)

    def ident(entry: Any) -> str:
        return str(entry.get(key)) if key and isinstance(entry, dict) else _canonical(entry)

    old = {ident(e): e for e in before}
    new = {ident(e): e for e in after}
    changed = []
    for name, entry in new.items():
        previous = old.get(name)
        if previous is None or _canonical(previous) == _canonical(entry) or not isinstance(entry, dict):
            continue
        fields = [
            {"field": k, "label": SUB_LABELS.get(k, k), "before": display(previous.get(k), k), "after": display(entry.get(k), k)}
            for k in dict.fromkeys(list(previous) + list(entry)) if previous.get(k) != entry.get(k)
        ]
        changed.append({"name": str(entry.get(key)), "fields": fields})
    same = [n for n in new if n in old]
    return {
        "field": field, "label": label, "kind": KIND_ENTRIES if key else KIND_LIST, "important": field in IMPORTANT,
        "added": [_entry_text(field, e) for n, e in new.items() if n not in old],
        "removed": [_entry_text(field, e) for n, e in old.items() if n not in new],
        "changed": changed,
        "reordered": same != [n for n in old if n in new],
    }


def diff(before: Dict[str, Any], after: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The changes from ``before`` to ``after`` (two whole records), the fee first."""
    changes: List[Dict[str, Any]] = []
    for field in dict.fromkeys(list(before) + list(after)):
        old, new = before.get(field), after.get(field)
        if _canonical(old) == _canonical(new):
            continue
        label = FIELD_LABELS.get(field, field)
        if isinstance(old, list) and isinstance(new, list):
            changes.append(_list_change(field, label, old, new))
        elif isinstance(old, dict) and isinstance(new, dict):
            for sub in dict.fromkeys(list(old) + list(new)):
                if _canonical(old.get(sub)) != _canonical(new.get(sub)):
                    changes.append(_text_change(f"{field}.{sub}", f"{label}的{SUB_LABELS.get(sub, sub)}",
                                                old.get(sub), new.get(sub)))
        else:
            changes.append(_text_change(field, label, old, new))
    return sorted(changes, key=lambda change: not change["important"])


def summary(changes: List[Dict[str, Any]]) -> Optional[str]:
    """One line naming what changed (None: nothing)."""
    return "、".join(dict.fromkeys(c["label"] for c in changes)) or None
