"""One hotline call on the desk: its phrases, the suggestions that follow it, and the
ticket draft.

Every final caller phrase is parsed and ranked like ``POST /api/v1/assist``
(``assistant.services.assist.plan``). The items it names add to their evidence, and
older evidence fades (``decay``). Evidence is gathered over the whole call, as an
operator listens:

* a phrase about the need (a question, or one that names an item) is linked together
  with the caller's previous phrase (``context_phrases``): a transcript comes in
  fragments, and "我能领吗" means something only after "还没找到工作";
* a "一件事" bundle whose own evidence is clear (``bundle_min_evidence``: the caller
  asked for several procedures together) also gathers its member items' evidence
  (members as the catalog lists them), so naming 退休 first and then "养老金 医保
  公积金 能一起办吗" ends on 退休一件事; a member named alone, with no joint request,
  stays first.

The first suggestion's item is stable: another item takes its place only when its
evidence is ahead by ``switch_margin`` (hysteresis, ``callmode.yml``), so the card does
not flicker while the caller talks around the need. The question type changes only on
a clear question (``min_question_confidence``). The ticket draft takes that first item:
the one the operator saw and answered from.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Collection, Dict, List, Mapping, Optional, Sequence, Tuple

from assistant.services.assist import (
    MAX_K,
    QUESTION_ORDER,
    QUESTION_TYPES,
    Candidate,
    build_suggestions,
    knowledge_card,
    plan,
    question_distribution,
)
from assistant.services.callmode.config import TUNABLES, RankingTunables
from assistant.services.callmode.draft import TicketDraft, build_draft, find_phone
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
    """Evidence per item over the call and the stable first item (pure; no parsing).

    ``bundles``: each "一件事" bundle's member item ids, as the catalog lists them.
    """

    tunables: RankingTunables = TUNABLES.ranking
    bundles: Mapping[str, Sequence[str]] = field(default_factory=dict)
    evidence: Dict[str, float] = field(default_factory=dict)
    leader: Optional[str] = None
    question_type: str = OVERVIEW
    support: Dict[str, List[int]] = field(default_factory=dict)

    def _linked(self, parse_data: Mapping[str, Any], text: str, known: Collection[str]) -> Dict[str, float]:
        """P(item) of one parse (weak guesses at half weight), with the linker's score."""
        every = len(QUESTION_ORDER) * max(1, len(known))
        decided = plan(parse_data, text, known, None, k=every)
        weight = WEAK_WEIGHT if decided.needs_item else 1.0
        linked: Dict[str, float] = {}
        for candidate in decided.candidates:
            linked[candidate.item_id] = linked.get(candidate.item_id, 0.0) + weight * candidate.confidence
        return linked

    def _gained(self, parse_data: Mapping[str, Any], linked: Mapping[str, float]) -> Dict[str, float]:
        """The linked items clear enough (linker score) to count as evidence."""
        scores = {i.get("id"): float(i.get("score") or 0.0) for i in parse_data.get("service_items") or []}
        return {i: p for i, p in linked.items() if scores.get(i, 0.0) >= self.tunables.min_phrase_score}

    def about_need(self, parse_data: Mapping[str, Any], text: str, known: Collection[str]) -> bool:
        """Whether a phrase speaks of the need: a question, or an item named in it (not a
        greeting, a name, a phone number or thanks)."""
        intent = (parse_data.get("intent") or {}).get("name")
        return intent in QUESTION_TYPES or bool(self._gained(parse_data, self._linked(parse_data, text, known)))

    def observe(
        self,
        parse_data: Mapping[str, Any],
        text: str,
        known: Collection[str],
        seq: int,
        context: Optional[Tuple[Mapping[str, Any], str]] = None,
    ) -> None:
        """Add one caller phrase to the evidence, then apply the hysteresis.

        ``context``: the parse and text of this phrase read together with the caller's
        previous phrase(s) (see ``CallSession._rank``); its items replace the phrase's
        own as evidence. The question type always comes from the phrase itself.
        """
        t = self.tunables
        for item_id in self.evidence:
            self.evidence[item_id] *= t.decay
        own = self._linked(parse_data, text, known)
        if context is None:
            gained = self._gained(parse_data, own)
        else:
            gained = self._gained(context[0], self._linked(context[0], context[1], known))
        for item_id, p_item in gained.items():
            self.evidence[item_id] = self.evidence.get(item_id, 0.0) + p_item
            self.support.setdefault(item_id, []).append(seq)
        self._switch()
        questions = question_distribution(parse_data)
        best = max(questions, key=questions.__getitem__)
        about_leader = self.leader is not None and (self.leader in own or not own)
        if about_leader and best != OVERVIEW and questions[best] >= t.min_question_confidence:
            self.question_type = best

    def standing(self) -> Dict[str, float]:
        """Each item's evidence; a bundle asked for clearly adds its members' evidence."""
        out = dict(self.evidence)
        for bundle_id, members in self.bundles.items():
            own = self.evidence.get(bundle_id, 0.0)
            if own >= self.tunables.bundle_min_evidence:
                out[bundle_id] = own + sum(self.evidence.get(m, 0.0) for m in members)
        return out

    def _switch(self) -> None:
        if not self.evidence:
            return
        standing = self.standing()
        best = max(standing, key=standing.__getitem__)
        if self.leader is None:
            if standing[best] >= self.tunables.min_evidence:
                self.leader = best
            return
        if best != self.leader and standing[best] >= standing.get(self.leader, 0.0) + self.tunables.switch_margin:
            self.leader = best
            self.question_type = OVERVIEW

    def ranked(self, k: int) -> List[Candidate]:
        """The first item with the question type, then the runners-up by evidence."""
        if self.leader is None:
            return []
        standing = self.standing()
        total = sum(self.evidence.values()) or 1.0

        def share(item_id: str) -> float:
            return round(min(1.0, standing[item_id] / total), 4)

        out = [Candidate(self.leader, self.question_type, share(self.leader))]
        others = sorted((i for i in standing if i != self.leader), key=lambda i: (-standing[i], i))
        for item_id in others:
            if len(out) >= k or standing[item_id] < self.tunables.min_phrase_score:
                break
            out.append(Candidate(item_id, self.question_type, share(item_id)))
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
        bundles = {r.id: tuple(r.members) for r in catalog.items() if r.kind == "bundle"}
        self.ranking = Ranking(bundles=bundles)
        self._top: Optional[Tuple[str, str]] = None
        self._answer: Optional[str] = None
        # The last phone number the digit recogniser heard in the caller's audio, and
        # every one it heard (a ticket keeps none of them unread: needs_read_back).
        self.heard_phone: Optional[str] = None
        self.heard_phones: set = set()

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
                await self._rank(runtime)
        return self.update()

    def hear_phone(self, number: str) -> CallUpdate:
        """A phone number heard in the caller's audio (``digits.PhoneListener``)."""
        self.heard_phone = number
        self.heard_phones.add(number)
        return self.update()

    def needs_read_back(self, phone: Optional[str], checked: bool) -> bool:
        """Whether a ticket's ``phone`` (as the operator left it) is a number heard only
        by the digit recogniser and not yet read back to the caller (``checked``).
        Compared as digits (spaces, dashes and a +86 do not make it another number);
        a number also read plainly in the transcript needs no read-back."""
        if checked or not phone or not self.heard_phones:
            return False
        digits = re.sub(r"\D", "", phone)
        if len(digits) == 13 and digits.startswith("86"):
            digits = digits[2:]
        if digits not in self.heard_phones:
            return False
        return digits not in {find_phone(self.texts(CALLER)), find_phone(self.texts(OPERATOR))}

    async def _rank(self, runtime: Any) -> None:
        """Parse the caller's last phrase (and, when it speaks of the need, the phrase read
        with the caller's previous ones) and add it to the ranking."""
        limit = runtime.settings.max_text_chars
        said = [p for p in self.phrases if p.speaker == CALLER]
        parse_text = (said[-1].ranked or said[-1].text)[:limit]
        parse_data = await runtime.parse(parse_text)
        known = self.catalog.records.keys()
        context = None
        window = said[-max(1, self.ranking.tunables.context_phrases) :]
        if len(window) > 1 and self.ranking.about_need(parse_data, parse_text, known):
            joined = " ".join(p.ranked or p.text for p in window)[-limit:]
            context = (await runtime.parse(joined), joined)
        self.ranking.observe(parse_data, parse_text, known, said[-1].seq, context)

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
            heard_phone=self.heard_phone,
        )
