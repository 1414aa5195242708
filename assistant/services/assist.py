"""Suggested answers for hotline operators: the top-k (item, question type) pairs.

An operator types (or the speech recogniser transcribes) what the caller says; the
desk shows up to ``k`` ready answers. Candidates combine the linked items (the NLU's
``service_items``, best first) with the question types (the NLU's ``intent_ranking``
restricted to the question intents of :data:`knowledge.answers.QUESTION_TYPES`):

* P(item): the linker scores divided by ``max(1, sum)``: a lone clear item keeps its
  absolute score, close items share the probability;
* P(question): the question intents' confidences, temperature-scaled and mixed with a
  small share that follows the ranking order alone (the intent classifier says 1.0
  against 1e-30, but its runner-up is still the best second guess);
* confidence of a pair = P(item) × P(question), in [0, 1], sorted descending.

So when one item is clear the alternatives are other questions about it, and when
the item is unclear they are the other items for the same question. The item rules
follow the dialogue (``knowledge/guidance.py``, thresholds in ``actions/config.yml``):
an item counts from ``item.min_score``; an item named in the text beats the
conversation's item (``context``); out-of-scope text is answered only when it names
an item clearly; an elliptical "那护照呢" keeps the previous question type. With
neither an item nor a context, ``needs_item`` asks the operator to confirm the item
(with only weak guesses, these are still suggested, at their low confidence).

:func:`plan` is the pure ranking (parse data in, pairs out); :func:`suggest` parses
the text with the runtime and fills in the answers and knowledge cards.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Collection, Dict, List, Mapping, Optional, Tuple

from assistant.config.tunables import TUNABLES
from knowledge.answers import INTENT_FOR_QUESTION, OVERVIEW, QUESTION_LABELS, QUESTION_TYPES, answer
from knowledge.catalog import Catalog

OUT_OF_SCOPE = "out_of_scope"
# Tie-break order of question types (overview, then the follow-up buttons' order).
QUESTION_ORDER: Tuple[str, ...] = (OVERVIEW, *QUESTION_LABELS)
ELLIPSIS_RE = re.compile(TUNABLES.ellipsis_pattern)
DEFAULT_K = 3
MAX_K = 10


@dataclass(frozen=True)
class AssistTunables:
    """Knobs of the ranking; the item thresholds are the dialogue's (actions/config.yml)."""

    # A linked item counts from this score (below: only an alternative).
    item_min_score: float = TUNABLES.item_min_score
    # Out-of-scope or small-talk text is answered only if it names an item this clearly.
    override_score: float = TUNABLES.out_of_scope_item_override
    # Intent confidences are raised to 1/T before renormalising (temperature scaling)...
    intent_temperature: float = 2.0
    # ... and this share of P(question) follows the ranking order alone (weights halving
    # down the ranking). Chosen on bench/data/dev.tsv; see bench/README.md.
    rank_share: float = 0.1
    # Linker-like score of the conversation's item when the text names none.
    context_item_score: float = 0.9
    # Share of the "overview" probability moved to the previous question type when the
    # text is elliptical ("那护照呢") or answers a pending question.
    carry_share: float = 0.8


DEFAULTS = AssistTunables()


@dataclass(frozen=True)
class Candidate:
    item_id: str
    question_type: str
    confidence: float


@dataclass
class Plan:
    """What :func:`plan` decided: ranked pairs, or why there are none."""

    candidates: List[Candidate]
    needs_item: bool = False
    item_from_context: bool = False


@dataclass
class Suggestion:
    rank: int
    item_id: str
    item_name: str
    question_type: str
    intent: str
    answer: str
    card: Dict[str, Any]
    confidence: float


@dataclass
class AssistResult:
    suggestions: List[Suggestion]
    intent: Optional[str]
    items: List[Dict[str, Any]] = field(default_factory=list)
    needs_item: bool = False

    def to_dict(self) -> Dict[str, Any]:
        return {
            "suggestions": [asdict(s) for s in self.suggestions],
            "intent": self.intent,
            "items": self.items,
            "needs_item": self.needs_item,
        }

    @property
    def top(self) -> str:
        if not self.suggestions:
            return "needs_item" if self.needs_item else "-"
        return f"{self.suggestions[0].item_id}/{self.suggestions[0].question_type}"


def question_of(intent: Optional[str]) -> str:
    """The question type of an intent, as the dialogue maps it (overview by default)."""
    return QUESTION_TYPES.get(intent or "", OVERVIEW)


def _intent_confidences(parse_data: Mapping[str, Any]) -> Dict[str, float]:
    confidences: Dict[str, float] = {}
    for entry in parse_data.get("intent_ranking") or []:
        name = entry.get("name")
        if name:
            confidences[name] = max(confidences.get(name, 0.0), float(entry.get("confidence") or 0.0))
    intent = parse_data.get("intent") or {}
    if intent.get("name") and intent["name"] not in confidences:
        confidences[intent["name"]] = float(intent.get("confidence") or 0.0)
    return confidences


def question_distribution(
    parse_data: Mapping[str, Any], tunables: AssistTunables = DEFAULTS
) -> Dict[str, float]:
    """P(question type), summing to 1: the question intents' confidences, calibrated.

    The intent classifier is overconfident (1.0 against 1e-30), but the order of the
    runners-up still carries information. So the temperature-scaled confidences are
    mixed with a small share (``rank_share``) of weights halving down the ranking.
    When the top intent is not a question (out of scope, small talk), its confidence
    counts for ``ask_service``, as the dialogue answers such a message with an overview.
    """
    confidences = _intent_confidences(parse_data)
    top = (parse_data.get("intent") or {}).get("name")
    if top and top not in QUESTION_TYPES:
        confidences["ask_service"] = confidences.get("ask_service", 0.0) + confidences.get(top, 0.0)
    position = {name: n for n, name in enumerate(confidences)}

    def rank_key(intent: str) -> Tuple[float, int, int]:
        fallback = QUESTION_ORDER.index(QUESTION_TYPES[intent])
        return (-confidences.get(intent, 0.0), position.get(intent, len(position)), fallback)

    intents = sorted(QUESTION_TYPES, key=rank_key)
    halving = [0.5**n for n in range(len(intents))]
    by_rank = {QUESTION_TYPES[i]: w / sum(halving) for i, w in zip(intents, halving)}

    power = 1.0 / tunables.intent_temperature
    scaled = {QUESTION_TYPES[i]: confidences.get(i, 0.0) ** power for i in QUESTION_TYPES}
    total = sum(scaled.values())
    if total <= 0:
        return by_rank
    share = tunables.rank_share
    return {q: (1 - share) * scaled[q] / total + share * by_rank[q] for q in scaled}


def carry_question(
    questions: Dict[str, float], previous: str, tunables: AssistTunables = DEFAULTS
) -> Dict[str, float]:
    """Move most of the overview's probability to the previous question type."""
    moved = questions[OVERVIEW] * tunables.carry_share
    out = dict(questions)
    out[OVERVIEW] -= moved
    out[previous] = out.get(previous, 0.0) + moved
    return out


def _linked(parse_data: Mapping[str, Any], known: Collection[str]) -> List[Tuple[str, float]]:
    seen: Dict[str, float] = {}
    for item in parse_data.get("service_items") or []:
        item_id, score = item.get("id"), item.get("score")
        if item_id in known and score is not None and item_id not in seen:
            seen[item_id] = float(score)
    return sorted(seen.items(), key=lambda pair: -pair[1])


def item_distribution(items: List[Tuple[str, float]]) -> List[Tuple[str, float]]:
    """P(item): scores divided by max(1, their sum): close items share the probability,
    a lone item keeps its score."""
    total = max(1.0, sum(max(score, 0.0) for _, score in items))
    return [(item_id, max(score, 0.0) / total) for item_id, score in items]


def plan(
    parse_data: Mapping[str, Any],
    text: str,
    known_items: Collection[str],
    context: Optional[Mapping[str, Any]] = None,
    k: int = DEFAULT_K,
    tunables: AssistTunables = DEFAULTS,
) -> Plan:
    """Rank (item, question type) pairs for one parsed message; pure, no catalog access."""
    context = context or {}
    top_intent = (parse_data.get("intent") or {}).get("name")
    linked = _linked(parse_data, known_items)
    strong = bool(linked) and linked[0][1] >= tunables.item_min_score

    if top_intent not in QUESTION_TYPES:
        # Out of scope: answered only when an item is named clearly (as the dialogue
        # does); small talk, complaints, progress: when an item is named at all.
        needed = tunables.override_score if top_intent in (OUT_OF_SCOPE, None) else tunables.item_min_score
        if not linked or linked[0][1] < needed:
            return Plan(candidates=[])

    context_item = context.get("item_id")
    from_context = needs_item = False
    if strong:
        items = linked
    elif context_item in known_items:
        items = [(context_item, tunables.context_item_score)]
        items += [(i, s) for i, s in linked if i != context_item]
        from_context = True
    elif linked:
        # Only weak guesses: suggest them, but the operator should confirm the item.
        items, needs_item = linked, True
    else:
        return Plan(candidates=[], needs_item=True)

    questions = question_distribution(parse_data, tunables)
    previous = context.get("question_type")
    if (
        previous in QUESTION_ORDER
        and previous != OVERVIEW
        and not from_context
        and max(questions, key=questions.__getitem__) == OVERVIEW
        and (context_item is None or ELLIPSIS_RE.match(text.strip()))
    ):
        questions = carry_question(questions, previous, tunables)

    item_order = {item_id: n for n, (item_id, _) in enumerate(items)}
    pairs = [
        (p_item * p_question, item_id, question)
        for item_id, p_item in item_distribution(items)
        for question, p_question in questions.items()
    ]
    pairs.sort(key=lambda p: (-p[0], item_order[p[1]], QUESTION_ORDER.index(p[2])))
    return Plan(
        candidates=[Candidate(item_id, q, round(score, 4)) for score, item_id, q in pairs[: max(0, k)]],
        needs_item=needs_item,
        item_from_context=from_context,
    )


def knowledge_card(catalog: Catalog, item_id: str) -> Dict[str, Any]:
    """What an operator glances at: materials (optional ones with their condition),
    fee, time limit, departments and where (window, online entries, phone line)."""
    record = catalog.records[item_id]
    return {
        "materials": [
            m.name if m.required or not m.condition else f"{m.name}（{m.condition}）"
            for m in catalog.materials_for(item_id)
        ],
        "fees": record.fees,
        "time_limit": record.time_limit,
        "departments": catalog.departments_for(item_id),
        "where": {
            "window": record.where.window,
            "online": list(record.where.online),
            "phone": record.where.phone,
        },
    }


def build_suggestions(catalog: Catalog, candidates: List[Candidate]) -> List[Suggestion]:
    suggestions = []
    for rank, candidate in enumerate(candidates, start=1):
        record = catalog.records[candidate.item_id]
        suggestions.append(
            Suggestion(
                rank=rank,
                item_id=record.id,
                item_name=record.name,
                question_type=candidate.question_type,
                intent=INTENT_FOR_QUESTION[candidate.question_type],
                answer=answer(catalog, record.id, candidate.question_type),
                card=knowledge_card(catalog, record.id),
                confidence=candidate.confidence,
            )
        )
    return suggestions


def linked_items(parse_data: Mapping[str, Any], limit: int = 5) -> List[Dict[str, Any]]:
    return [
        {"id": i["id"], "name": i["name"], "score": float(i["score"])}
        for i in (parse_data.get("service_items") or [])[:limit]
    ]


async def suggest(
    runtime: Any,
    catalog: Catalog,
    text: str,
    context: Optional[Mapping[str, Any]] = None,
    k: int = DEFAULT_K,
) -> AssistResult:
    """Top-k suggested answers for a citizen's message (``runtime``: AssistantRuntime)."""
    text = text.strip()[: runtime.settings.max_text_chars]
    k = max(1, min(k, MAX_K))
    parse_data = await runtime.parse(text)
    decided = plan(parse_data, text, catalog.records.keys(), context, k)
    return AssistResult(
        suggestions=build_suggestions(catalog, decided.candidates),
        intent=(parse_data.get("intent") or {}).get("name"),
        items=linked_items(parse_data),
        needs_item=decided.needs_item,
    )
