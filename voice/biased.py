"""Free and biased recognition side by side (issue: the words that matter).

:class:`DualAsr` feeds the same audio to the free recogniser and to one restricted
to the catalog's domain grammar (:mod:`voice.grammar`); both decode in parallel on
the ASR thread pool. The caller chooses between the transcripts
(``assistant.services.speech`` by the item linker's confidence).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from voice.asr import WARM_UP_SECONDS, Asr, AsrStream, _asrs_lock, _run, get_asr

if TYPE_CHECKING:
    from knowledge.catalog import Catalog


class DualStream:
    """One utterance decoded by the free and the biased recogniser at once."""

    def __init__(self, free: AsrStream, biased: AsrStream):
        self.free = free
        self.biased = biased

    @property
    def seconds(self) -> float:
        return self.free.seconds

    @property
    def finished(self) -> bool:
        return self.free.finished

    @property
    def busy_seconds(self) -> float:
        """Decoding time: the two recognisers run side by side, the slower one counts."""
        return max(self.free.busy_seconds, self.biased.busy_seconds)

    @property
    def words(self) -> List[Dict[str, Any]]:
        return self.free.words

    def feed_sync(self, pcm16: bytes) -> Optional[str]:
        """Feed both; the biased partial (easier to read on the screen) when it changed."""
        self.free.feed_sync(pcm16)
        return self.biased.feed_sync(pcm16)

    def finish_sync(self) -> str:
        self.free.finish_sync()
        return self.biased.finish_sync()

    def alternatives(self) -> Dict[str, str]:
        """The final transcripts, ``{"free": ..., "biased": ...}`` (after finish)."""
        return {"free": self.free.finish_sync(), "biased": self.biased.finish_sync()}

    async def feed(self, pcm16: bytes) -> Optional[str]:
        free, biased = await asyncio.gather(_run(self.free.feed_sync, pcm16), _run(self.biased.feed_sync, pcm16))
        return biased

    async def finish(self) -> str:
        await asyncio.gather(_run(self.free.finish_sync), _run(self.biased.finish_sync))
        return self.biased.finish_sync()


class DualAsr:
    """The free recogniser and one restricted to the domain grammar, side by side."""

    def __init__(self, free: Asr, biased: Asr):
        self.free = free
        self.biased = biased
        self.model_dir = free.model_dir

    @property
    def available(self) -> bool:
        return self.free.available

    @property
    def loaded(self) -> bool:
        return self.free.loaded and self.biased.loaded

    def load(self) -> None:
        self.free.load()
        self.biased.load()

    def warm_up(self, seconds: float = WARM_UP_SECONDS) -> float:
        return self.free.warm_up(seconds) + self.biased.warm_up(seconds)

    def stream(self) -> DualStream:
        return DualStream(self.free.stream(), self.biased.stream())

    async def open_stream(self) -> DualStream:
        return await _run(self.stream)

    def transcribe_both_sync(self, pcm16: bytes) -> Dict[str, str]:
        stream = self.stream()
        stream.feed_sync(pcm16)
        stream.finish_sync()
        return stream.alternatives()

    async def transcribe_both(self, pcm16: bytes) -> Dict[str, str]:
        stream = await self.open_stream()
        await stream.feed(pcm16)
        await stream.finish()
        return stream.alternatives()


_dual: Dict[str, DualAsr] = {}


def get_dual_asr(settings: Any, catalog: "Catalog") -> DualAsr:
    """The process-wide :class:`DualAsr` of ``settings.vosk_model_dir`` and ``catalog``
    (building the domain grammar takes a few seconds: call it off the event loop)."""
    free = get_asr(settings)
    key = f"{free.model_dir.resolve()}|{getattr(catalog, 'fingerprint', '')}"
    with _asrs_lock:
        dual = _dual.get(key)
    if dual is None:
        dual = dual_asr_for(free, catalog)
        with _asrs_lock:
            dual = _dual.setdefault(key, dual)
    return dual


def dual_asr_for(free: Asr, catalog: "Catalog") -> DualAsr:
    """A new :class:`DualAsr` of ``free``'s model and ``catalog``'s domain grammar, not
    cached (a catalog version published since start-up; a few seconds: off the loop)."""
    from voice.grammar import domain_grammar

    grammar = domain_grammar(catalog, free.model_dir) if free.available else None
    biased = Asr(free.model_dir, grammar=grammar) if grammar else free
    return DualAsr(free, biased)


def forget_dual_asr(dual: DualAsr) -> None:
    """Drop ``dual`` from the process-wide cache (a catalog version no longer in use);
    streams already open on it finish normally."""
    with _asrs_lock:
        for key in [key for key, cached in _dual.items() if cached is dual]:
            del _dual[key]


# The free transcript wins only when its best item is this much more certain.
FREE_MARGIN = 0.3


def choose(alternatives: Dict[str, str], scores: Dict[str, float], threshold: float) -> str:
    """Which transcript to answer: ``"biased"`` or ``"free"``.

    ``scores`` are the item linker's top scores for each transcript. The biased one
    is preferred (it keeps the service words); the free one when the biased heard
    nothing, or when only the free one links an item, or links it clearly better.
    """
    free, biased = alternatives.get("free", ""), alternatives.get("biased", "")
    if not biased:
        return "free"
    if not free:
        return "biased"
    free_score, biased_score = scores.get("free", 0.0), scores.get("biased", 0.0)
    if free_score >= threshold and (biased_score < threshold or free_score > biased_score + FREE_MARGIN):
        return "free"
    return "biased"
