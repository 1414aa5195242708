"""Answer questions about service items from the catalog, keeping context across turns:
the logic of the ``action_answer`` and ``action_out_of_scope`` actions, shared with the
gateway, which runs it itself while the action server is unreachable
(``assistant.services.degraded``), so both give the same answer.

Which item a message is about (``resolve_item``):

1. an item chosen on a button;
2. the item the message names (the linker), unless it only mentions another item as
   something the person has ("我们有居住证，能申请吗" while talking about 公租房), in
   which case the conversation's item stays;
3. the conversation's item, for follow-ups without an item ("那要带啥", "多久");
4. nothing: a question that no catalog item covers gets "这个事项我这里还没有收录"
   with where to ask, a person and related items; a vague one is asked which service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from assistant.config.tunables import TUNABLES
from knowledge.answers import OVERVIEW, QUESTION_TYPES, answer, button_payload, follow_up_buttons
from knowledge.catalog import Catalog
from knowledge.context import (
    HUMAN_BUTTON,
    SLOT_ITEM,
    SLOT_PENDING,
    SLOT_QUESTION,
    ConversationView,
    Dispatcher,
    context_item,
    explicit_item,
    latest_text,
    linked_items,
    named_items,
    reply_info,
    scope_of,
)
from knowledge.schema import short_name
from knowledge.text import compact, content_of

ELLIPSIS_RE = re.compile(TUNABLES.ellipsis_pattern)
POSSESSION_RE = re.compile(TUNABLES.possession_pattern)
ELIGIBILITY_RE = re.compile(TUNABLES.eligibility_pattern)
REQUEST_RE = re.compile(TUNABLES.request_pattern)
ANAPHORA_RE = re.compile(TUNABLES.anaphora_pattern)
SUBJECT_RE = re.compile(TUNABLES.subject_pattern)
HOW_TO_RE = re.compile(TUNABLES.how_to_pattern)
INTRODUCER_RE = re.compile(TUNABLES.introducer_pattern)
CLAUSE_RE = re.compile(r"[，,。.！!？?；;：:、\s]+")
ASK_ITEM_TEXT = "请问您想办理哪项业务？比如：社保卡、身份证补办、护照、公积金提取。"
CHOOSE_TEXT = "您想咨询的是哪一项？请点选："
NOT_COVERED_TEXT = "这个事项我这里还没有收录，没法给您准确的答复。"
NOT_COVERED_WHERE = "建议您咨询{department}，或拨打12345政务服务便民热线。"
NOT_COVERED_WHERE_DEFAULT = "建议您拨打12345政务服务便民热线，或到当地政务服务中心咨询。"
NOT_COVERED_HUMAN = "也可以点“转人工”，请工作人员帮您。"
NOT_COVERED_RELATED = "您也可能想问："
ALSO_ASKED = "您还提到了：{names}，可以点下面的按钮接着问。"

# Kinds of answer (the "answer" of the reply custom message).
ANSWER_CLARIFY = "clarify"
ANSWER_NOT_COVERED = "not_covered"
ANSWER_OUT_OF_SCOPE = "out_of_scope"
OUT_OF_SCOPE_RESPONSE = "utter_out_of_scope"
# The first stage of the two-stage fallback: "did you mean …?" about the likeliest intent.
REPHRASE_RESPONSE = "utter_ask_rephrase"
AFFIRM_YES = "是的"
AFFIRM_NONE = "都不是"
AFFIRM_NONE_PAYLOAD = "/out_of_scope"
AFFIRM_TEXT = "您是想问“{label}”吗？"
INTENT_LABELS = {
    "ask_service": "怎么办理这项业务",
    "ask_materials": "要带什么材料",
    "ask_conditions": "办理条件",
    "ask_process": "办理流程",
    "ask_fee": "收费标准",
    "ask_time_limit": "多久能办好",
    "ask_location": "在哪里办",
    "check_progress": "查询办件进度",
    "request_human": "转人工服务",
    "complain": "投诉",
    "feedback": "评价服务",
}


@dataclass
class Resolution:
    """Which item a message is about: one item, a choice between close ones, or none."""

    item: Optional[str] = None
    choices: List[Tuple[str, float]] = field(default_factory=list)
    from_context: bool = False
    others: List[str] = field(default_factory=list)  # other items the message names
    related: List[str] = field(default_factory=list)  # weakly linked items
    not_covered: bool = False


def asks_if_possible(text: str) -> bool:
    """Whether a clause of the text asks whether something is possible ("这样还能办吗")."""
    return any(ELIGIBILITY_RE.search(compact(c)) for c in CLAUSE_RE.split(text) if c.strip())


def refers_back(text: str) -> bool:
    """A follow-up about the item being talked about: it asks whether something is
    possible, points back ("这个", "也要"), or is too short to be about anything else."""
    return (
        asks_if_possible(text)
        or bool(ANAPHORA_RE.search(text))
        or content_chars(text) <= TUNABLES.short_follow_up_chars
    )


def mentioned_in(record_id: str, catalog: Catalog, name: str) -> bool:
    """Whether ``name`` is one of the record's materials ("身份证要带吗" while asking about
    employment registration is a document to bring, not the ID card service)."""
    return any(name in compact(m.name) for m in catalog.materials_for(record_id))


def mentions_only(text: str, record_names: List[str]) -> bool:
    """Whether the text names the item only as something the person has or is, not as
    what they want ("有居住证" / "是外地户口" vs "办居住证")."""
    norm = compact(text)
    eligibility = asks_if_possible(text)
    found = False
    for name in record_names:
        start = norm.find(name)
        if start < 0:
            continue
        found = True
        before = norm[max(0, start - 4):start]
        if REQUEST_RE.search(before):
            return False
        if not (POSSESSION_RE.search(before) or eligibility):
            return False
    return found


def _names_of(catalog: Catalog, item_id: str) -> List[str]:
    """The record's name and alias words (each part of an ``A+B`` alias), longest first."""
    record = catalog.records[item_id]
    names = {compact(short_name(record.name))}
    names.update(compact(part) for a in record.aliases for part in a.split("+"))
    return sorted((n for n in names if len(n) >= 2), key=len, reverse=True)


def asked_about(text: str, names: List[str], strong: bool = False) -> bool:
    """Whether a name is what the text asks about, not something the person has. Strongly:
    after a request verb ("办居住证"), before a how-to ("居住证怎么办"), or brought up as a
    new topic ("还有那个生育登记…"); otherwise also before a question about it ("港澳通行证
    能一起办吗"). Never right after "有", "是"… ("有居住证")."""
    norm = compact(text)
    follows = (HOW_TO_RE,) if strong else (HOW_TO_RE, SUBJECT_RE)
    for name in names:
        start = norm.find(name)
        while start >= 0:
            before, after = norm[max(0, start - 4):start], norm[start + len(name):]
            if not POSSESSION_RE.search(before) and (
                REQUEST_RE.search(before)
                or INTRODUCER_RE.search(norm)
                or any(p.match(after) for p in follows)
            ):
                return True
            start = norm.find(name, start + 1)
    return False


def content_chars(text: str) -> int:
    return len(content_of(text))


def resolve_item(tracker: ConversationView, catalog: Catalog) -> Resolution:
    chosen = explicit_item(tracker)
    if chosen in catalog:
        return Resolution(item=chosen)
    text = latest_text(tracker)
    linked = [(i, s) for i, s in linked_items(tracker) if i in catalog]
    strong = [(i, s) for i, s in linked if s >= TUNABLES.item_min_score]
    current = context_item(tracker)
    current = current if current in catalog else None
    if strong:
        top_id, top_score = strong[0]
        if current and current != top_id and current not in dict(strong) and not ELLIPSIS_RE.match(text):
            names = [n for n in _names_of(catalog, top_id) if n in compact(text)]
            if top_id not in named_items(tracker):
                # Inferred, not named: a follow-up keeps its topic unless it brings up a new
                # one or is a new, self-contained description.
                stays = not INTRODUCER_RE.search(compact(text)) and (
                    refers_back(text) or content_chars(text) < TUNABLES.inferred_switch_chars
                )
            else:
                stays = not asked_about(text, names, strong=True) and (
                    any(mentioned_in(current, catalog, n) for n in names)
                    or (not asked_about(text, names) and mentions_only(text, names))
                )
            if stays:
                return Resolution(item=current, from_context=True)
        close = [(i, s) for i, s in strong[1:] if top_score - s <= TUNABLES.ambiguity_margin]
        if close:
            return Resolution(choices=[strong[0], *close][: TUNABLES.max_choices])
        others = [i for i, _ in strong[1:]][: TUNABLES.max_other_items]
        return Resolution(item=top_id, others=others)
    related = [i for i, _ in linked][: TUNABLES.max_related]
    uncovered = float(scope_of(tracker.latest_message).get("uncovered", 0.0))
    if current:
        if uncovered >= TUNABLES.uncovered_score_in_context and not ELLIPSIS_RE.match(text) \
                and not refers_back(text):
            return Resolution(not_covered=True, related=related)
        return Resolution(item=current, from_context=True)
    substantive = content_chars(text) >= TUNABLES.min_content_chars
    if uncovered >= TUNABLES.uncovered_score or (substantive and not related):
        return Resolution(not_covered=True, related=related)
    if substantive:  # weakly linked items: let the person choose rather than guess or give up
        return Resolution(choices=[(i, 0.0) for i in related])
    return Resolution(related=related)


def question_for(tracker: ConversationView, intent: Optional[str], resolution: Resolution) -> str:
    """The question type; an elliptical "那护照呢" keeps the previous one."""
    question = QUESTION_TYPES.get(intent or "", OVERVIEW)
    if question != OVERVIEW:
        return question
    pending = tracker.get_slot(SLOT_PENDING)
    if pending and resolution.item and not resolution.from_context:
        return pending
    previous = tracker.get_slot(SLOT_QUESTION)
    if previous and not resolution.from_context and ELLIPSIS_RE.match(latest_text(tracker)):
        return previous
    return question


def department_hint(text: str) -> Optional[str]:
    norm = compact(text)
    for pattern, department in TUNABLES.departments:
        if re.search(pattern, norm):
            return department
    return None


def not_covered_reply(
    dispatcher: Dispatcher, catalog: Catalog, text: str, related: List[str]
) -> Optional[str]:
    """Say honestly that the catalog does not cover it, where to ask, a person, related
    items. Returns the department pointed to (None: the general advice)."""
    department = department_hint(text)
    where = NOT_COVERED_WHERE.format(department=department) if department else NOT_COVERED_WHERE_DEFAULT
    lines = [NOT_COVERED_TEXT, where, NOT_COVERED_HUMAN]
    buttons = [
        {"title": catalog.records[i].name, "payload": button_payload("ask_service", i)}
        for i in related
    ]
    if buttons:
        lines.append(NOT_COVERED_RELATED)
    dispatcher.utter_message(text="\n".join(lines), buttons=buttons + [HUMAN_BUTTON])
    dispatcher.utter_message(json_message=reply_info(None, ANSWER_NOT_COVERED))
    return department


@dataclass
class Outcome:
    """What a turn answered: the kind of answer (an answer kind of ``knowledge.answers``,
    ``clarify``, ``not_covered`` or ``out_of_scope``), its item, the slots to set (in
    order) and how the item was found; the caller logs it."""

    kind: str
    item: Optional[str] = None
    slots: Dict[str, Any] = field(default_factory=dict)
    resolution: Resolution = field(default_factory=Resolution)
    department: Optional[str] = None


def answer_turn(
    dispatcher: Dispatcher, tracker: ConversationView, intent: Optional[str], catalog: Catalog
) -> Outcome:
    """Answer a question about an item (or ask which one, or say it is not covered)."""
    resolution = resolve_item(tracker, catalog)
    question = question_for(tracker, intent, resolution)

    if resolution.choices:
        ask_intent = next((k for k, v in QUESTION_TYPES.items() if v == question), "ask_service")
        buttons = [
            {"title": catalog.records[i].name, "payload": button_payload(ask_intent, i)}
            for i, _ in resolution.choices
        ]
        dispatcher.utter_message(text=CHOOSE_TEXT, buttons=buttons)
        dispatcher.utter_message(json_message=reply_info(None, ANSWER_CLARIFY))
        return Outcome(ANSWER_CLARIFY, slots={SLOT_QUESTION: question}, resolution=resolution)

    if resolution.not_covered:
        department = not_covered_reply(dispatcher, catalog, latest_text(tracker), resolution.related)
        return Outcome(
            ANSWER_NOT_COVERED, slots={SLOT_PENDING: None}, resolution=resolution, department=department
        )

    if resolution.item is None:
        dispatcher.utter_message(text=ASK_ITEM_TEXT)
        dispatcher.utter_message(json_message=reply_info(None, ANSWER_CLARIFY))
        return Outcome(
            ANSWER_CLARIFY, slots={SLOT_PENDING: question if question != OVERVIEW else None}, resolution=resolution
        )

    buttons = follow_up_buttons(resolution.item, question)
    text = answer(catalog, resolution.item, question)
    if resolution.others:
        others = [i for i in resolution.others if i in catalog]
        text += "\n" + ALSO_ASKED.format(names="、".join(catalog.records[i].name for i in others))
        extra = [
            {"title": catalog.records[i].name, "payload": button_payload("ask_service", i)} for i in others
        ]
        buttons = (extra + buttons)[: max(len(buttons), len(extra) + 2)]
    dispatcher.utter_message(text=text, buttons=buttons)
    dispatcher.utter_message(json_message=reply_info(resolution.item, question))
    return Outcome(
        question,
        item=resolution.item,
        slots={SLOT_ITEM: resolution.item, SLOT_QUESTION: question, SLOT_PENDING: None},
        resolution=resolution,
    )


def out_of_scope_turn(dispatcher: Dispatcher, tracker: ConversationView, catalog: Catalog) -> Outcome:
    """Decline politely, unless the message clearly names a service item after all, or is a
    government-service question that the catalog does not cover (then say so)."""
    items = linked_items(tracker)
    if items and items[0][1] >= TUNABLES.out_of_scope_item_override:
        return answer_turn(dispatcher, tracker, "ask_service", catalog)
    if float(scope_of(tracker.latest_message).get("uncovered", 0.0)) >= TUNABLES.uncovered_score_in_context:
        related = [i for i, _ in items if i in catalog][: TUNABLES.max_related]
        department = not_covered_reply(dispatcher, catalog, latest_text(tracker), related)
        return Outcome(ANSWER_NOT_COVERED, resolution=Resolution(not_covered=True, related=related),
                       department=department)
    dispatcher.utter_message(response=OUT_OF_SCOPE_RESPONSE)
    return Outcome(ANSWER_OUT_OF_SCOPE)


def ask_affirmation(dispatcher: Dispatcher, tracker: ConversationView) -> None:
    """"您是想问…吗？" about the likeliest intent that has a label (with the linked item
    on the "是的" button), or ask to rephrase when none has."""
    ranking = (tracker.latest_message or {}).get("intent_ranking") or []
    candidates = [r["name"] for r in ranking if r.get("name") in INTENT_LABELS]
    if not candidates:
        dispatcher.utter_message(response=REPHRASE_RESPONSE)
        return
    intent = candidates[0]
    items = linked_items(tracker)
    payload = button_payload(intent, items[0][0]) if items else f"/{intent}"
    dispatcher.utter_message(
        text=AFFIRM_TEXT.format(label=INTENT_LABELS[intent]),
        buttons=[
            {"title": AFFIRM_YES, "payload": payload},
            {"title": AFFIRM_NONE, "payload": AFFIRM_NONE_PAYLOAD},
        ],
    )
