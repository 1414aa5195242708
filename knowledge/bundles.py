"""The "一件事" bundles: a draft materials list from the members, and the checks that keep a
bundle's own reviewed list and facts consistent with its members.

A bundle states its own materials (as the official guide does). Merging the members'
lists is only a starting point for a reviewer (``banshi kb propose-bundle ID``): a
merge makes a document required for everyone when any member requires it, and asks
for documents that the bundle itself issues.
"""

from __future__ import annotations

import re
from typing import Dict, Iterable, List, Optional

from knowledge.names import alternatives, canonical
from knowledge.schema import BundleRecord, ItemRecord, Material, Record

# "免费" / "不收费" / "免收" in a bundle's fees claims that nothing is charged.
FREE_WORDS = ("免费", "不收费", "免收")
AMOUNT_RE = re.compile(r"\d+(?:\.\d+)?元")
# Time limits: "当场/即时/当天" is 0 days; "N日/N天/N个工作日" is N days.
IMMEDIATE_WORDS = ("当场", "即时", "当天", "当日")
DAYS_RE = re.compile(r"(\d+)(?:个)?(?:工作日|日|天)")


def merge_materials(groups: Iterable[Iterable[Material]]) -> List[Material]:
    """Merge material lists; a document that appears in several groups appears once.

    A required copy wins over an optional one, and the larger count is kept.
    """
    merged: Dict[str, Material] = {}
    for group in groups:
        for material in group:
            key = canonical(material.name)
            if key not in merged:
                merged[key] = material
                continue
            kept = merged[key]
            if material.required and not kept.required:
                merged[key] = material.copy(update={"count": max(kept.count, material.count)})
            elif material.count > kept.count:
                merged[key] = kept.copy(update={"count": material.count})
    return list(merged.values())


def members_of(records: Dict[str, Record], bundle: BundleRecord) -> List[ItemRecord]:
    return [r for m in bundle.members if isinstance(r := records.get(m), ItemRecord)]


def produced_by(records: Dict[str, Record], bundle: BundleRecord) -> Dict[str, str]:
    """Canonical document → who issues it: the bundle itself or one of its members."""
    issuers = {canonical(name): "this bundle" for name in bundle.produced}
    for member in members_of(records, bundle):
        for name in member.produces:
            issuers.setdefault(canonical(name), f"member {member.id}")
    return issuers


def draft_materials(records: Dict[str, Record], bundle: BundleRecord) -> List[Material]:
    """The members' lists merged, without the documents the bundle produces: a draft."""
    produced = produced_by(records, bundle)
    merged = merge_materials([m.materials for m in members_of(records, bundle)] + [bundle.materials])
    return [m for m in merged if not alternatives(m.name) <= set(produced)]


def _amounts(text: str) -> List[str]:
    return AMOUNT_RE.findall(text)


def _fastest_days(text: str) -> Optional[int]:
    """The shortest time a text states (0 for same-day), or None when it states none."""
    days = [int(n) for n in DAYS_RE.findall(text)]
    if any(word in text for word in IMMEDIATE_WORDS):
        days.append(0)
    return min(days) if days else None


def _longest_promise(text: str) -> Optional[int]:
    """The longest time a bundle promises (0 when it promises same-day only), or None."""
    days = [int(n) for n in DAYS_RE.findall(text)]
    if days:
        return max(days)
    return 0 if any(word in text for word in IMMEDIATE_WORDS) else None


def check_bundle(records: Dict[str, Record], bundle: BundleRecord) -> List[str]:
    """``field: message`` for each inconsistency between a bundle and its members."""
    problems: List[str] = []
    produced = produced_by(records, bundle)
    for index, material in enumerate(bundle.materials):
        documents = alternatives(material.name)
        if material.required and documents <= set(produced):
            issuer = produced[next(iter(documents))]
            problems.append(
                f"materials[{index}]: requires {material.name!r}, which {issuer} produces "
                f"(a bundle's output is never an input; make it conditional or drop it)"
            )
    members = members_of(records, bundle)
    if not members:
        return problems
    reasons = bundle.differs_from_members

    all_available = all(m.cross_province.available for m in members)
    if bundle.cross_province.available != all_available and not reasons.cross_province:
        unlike = [m.id for m in members if m.cross_province.available != bundle.cross_province.available]
        problems.append(
            f"cross_province.available: {bundle.cross_province.available} contradicts member(s) "
            f"{', '.join(unlike)}; fix it or say why in differs_from_members.cross_province"
        )

    if any(word in bundle.fees for word in FREE_WORDS) and not reasons.fees:
        for member in members:
            missing = [a for a in _amounts(member.fees) if a not in bundle.fees]
            if missing:
                problems.append(
                    f"fees: says free but member {member.id} charges {'、'.join(missing)}; "
                    f"fix it or say why in differs_from_members.fees"
                )

    promise = _longest_promise(bundle.time_limit)
    if promise is not None and not reasons.time_limit:
        for member in members:
            fastest = _fastest_days(member.time_limit)
            if fastest is not None and fastest > promise:
                problems.append(
                    f"time_limit: promises {promise} day(s) but member {member.id} takes at least "
                    f"{fastest}; fix it or say why in differs_from_members.time_limit"
                )
    return problems
