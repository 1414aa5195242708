"""One hotline call on the desk: its phrases, the suggestions that follow it, and the
ticket draft.

Every final caller phrase is parsed once and ranked like ``POST /api/v1/assist``
(``assistant.services.assist.plan``). The items it names add to their evidence, and
older evidence fades (``decay``). The first suggestion's item is stable: another item
takes its place only when its evidence is ahead by ``switch_margin`` (hysteresis,
``callmode.yml``), so the card does not flicker while the caller talks around the
need. The question type changes only on a clear question (``min_question_confidence``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from assistant.services.assist import (
    MAX_K,
    QUESTION_ORDER,
    Candidate,
    build_suggestions,
    knowledge_card,
    plan,
    question_distribution,
)
from assistant.services.callmode.config import TUNABLES, RankingTunables
from assistant.services.callmode.draft import TicketDraft, build_draft
from assistant.services.callmode.phrases import CALLER, OPERATOR
from knowledge.answers import OVERVIEW
from knowledge.catalog import Catalog

# Phrases kept per call at most (a call of an hour has a few hundred).
MAX_PHRASES = 2000
# Caller phrases quoted in the draft's summary at most.
NEED_PHRASES = 2
# Weight of an item's evidence when the phrase only weakly suggests it (assist's needs_item).
WEAK_WEIGHT = 0.5


@dataclass
class Phrase:
    seq: int
    speaker: str
    text: str
    at_s: float  # seconds since the call started
    ranked: Optional[str] = None  # the text ranked (biased or corrected), when it differs


@dataclass
class CallUpdate:
    """What the panel shows after a phrase."""

    suggestions: List[Dict[str, Any]]
    card: Optional[Dict[str, Any]]
    changed: bool
    draft: TicketDraft

    def assist_message(self) -> Dict[str, Any]:
        return {"type": "assist", "suggestions": self.suggestions, "card": self.card, "changed": self.changed}

    def draft_message(self) -> Dict[str, Any]:
        return {"type": "draft", "draft": self.draft.shown()}


@dataclass
class Ranking:
    """Evidence per item over the call and the stable first item (pure; no parsing)."""

    tunables: RankingTunables = TUNABLES.ranking
    evidence: Dict[str, float] = field(default_factory=dict)
    leader: Optional[str] = None
    question_type: str = OVERVIEW
    support: Dict[str, List[int]] = field(default_factory=dict)

    def observe(self, parse_data: Mapping[str, Any], text: str, known: Any, seq: int) -> None:
        """Add one caller phrase's parse to the evidence, then apply the hysteresis."""
        t = self.tunables
        for item_id in self.evidence:
            self.evidence[item_id] *= t.decay
        every = len(QUESTION_ORDER) * max(1, len(known))
        decided = plan(parse_data, text, known, None, k=every)
        gained: Dict[str, float] = {}
        for candidate in decided.candidates:
            gained[candidate.item_id] = gained.get(candidate.item_id, 0.0) + candidate.confidence
        scores = {i.get("id"): float(i.get("score") or 0.0) for i in parse_data.get("service_items") or []}
        for item_id, p_item in gained.items():
            if scores.get(item_id, 0.0) < t.min_phrase_score:
                continue
            weight = WEAK_WEIGHT if decided.needs_item else 1.0
            self.evidence[item_id] = self.evidence.get(item_id, 0.0) + weight * p_item
            self.support.setdefault(item_id, []).append(seq)
        self._switch()
        questions = question_distribution(parse_data)
        best = max(questions, key=questions.__getitem__)
        about_leader = self.leader is not None and (self.leader in gained or not gained)
        if about_leader and best != OVERVIEW and questions[best] >= t.min_question_confidence:
            self.question_type = best

    def _switch(self) -> None:
        if not self.evidence:
            return
        best = max(self.evidence, key=self.evidence.__getitem__)
        if self.leader is None:
            if self.evidence[best] >= self.tunables.min_evidence:
                self.leader = best
            return
        if best != self.leader and self.evidence[best] >= self.evidence.get(self.leader, 0.0) + self.tunables.switch_margin:
            self.leader = best
            self.question_type = OVERVIEW

    def ranked(self, k: int) -> List[Candidate]:
        """The first item with the question type, then the runners-up by evidence."""
        if self.leader is None:
            return []
        total = sum(self.evidence.values()) or 1.0
        out = [Candidate(self.leader, self.question_type, round(self.evidence[self.leader] / total, 4))]
        others = sorted((i for i in self.evidence if i != self.leader), key=lambda i: -self.evidence[i])
        for item_id in others:
            if len(out) >= k or self.evidence[item_id] < self.tunables.min_phrase_score:
                break
            out.append(Candidate(item_id, self.question_type, round(self.evidence[item_id] / total, 4)))
        for question in QUESTION_ORDER:
            if len(out) >= k:
                break
            if question != self.question_type:
                out.append(Candidate(self.leader, question, 0.0))
        return out[:k]


class CallSession:
    """A call's state; ``runtime`` is the AssistantRuntime (``parse``)."""

    def __init__(self, catalog: Catalog, k: Optional[int] = None) -> None:
        self.catalog = catalog
        self.k = max(1, min(k or TUNABLES.ranking.k, MAX_K))
        self.started = time.monotonic()
        self.phrases: List[Phrase] = []
        self.ranking = Ranking()
        self._top: Optional[Tuple[str, str]] = None
        self._answer: Optional[str] = None

    def texts(self, speaker: str) -> List[str]:
        return [p.text for p in self.phrases if p.speaker == speaker]

    def transcript(self) -> List[Dict[str, Any]]:
        return [asdict(p) for p in self.phrases]

    async def hear(self, runtime: Any, speaker: str, text: str, corrected: Optional[str] = None) -> CallUpdate:
        """A final phrase: the caller's re-rank the suggestions; every phrase updates the draft."""
        text = " ".join(text.split())
        seq = len(self.phrases)
        if text and len(self.phrases) < MAX_PHRASES:
            ranked = corrected if corrected and corrected != text else None
            self.phrases.append(Phrase(seq, speaker, text, round(time.monotonic() - self.started, 2), ranked))
            if speaker == CALLER and runtime is not None and runtime.ready:
                parse_text = (corrected or text)[: runtime.settings.max_text_chars]
                parse_data = await runtime.parse(parse_text)
                self.ranking.observe(parse_data, parse_text, self.catalog.records.keys(), seq)
        return self.update()

    def update(self) -> CallUpdate:
        candidates = self.ranking.ranked(self.k)
        suggestions = build_suggestions(self.catalog, candidates)
        top = (candidates[0].item_id, candidates[0].question_type) if candidates else None
        changed, self._top = top != self._top, top
        self._answer = suggestions[0].answer if suggestions else None
        card = None
        if suggestions:
            card = {"item_id": suggestions[0].item_id, "item_name": suggestions[0].item_name, **knowledge_card(self.catalog, suggestions[0].item_id)}
        return CallUpdate([asdict(s) for s in suggestions], card, changed, self.draft())

    @property
    def item_id(self) -> Optional[str]:
        return self.ranking.leader

    def draft(self) -> TicketDraft:
        leader = self.ranking.leader
        record = self.catalog.records.get(leader) if leader else None
        seqs = self.ranking.support.get(leader, [])[:NEED_PHRASES] if leader else []
        need = [self.phrases[s].ranked or self.phrases[s].text for s in seqs]
        question = self.ranking.question_type if leader else None
        return build_draft(
            self.texts(CALLER),
            self.texts(OPERATOR),
            leader,
            record.name if record else None,
            question,
            need,
            self._answer,
        )
