"""Speech for the dialogue: the app's recognizer and voice (process-wide engines of
``voice.asr``/``voice.tts``, loaded once, in a thread) and transcripts corrected with
the catalog's terms before they reach the dialogue. Used by the kiosk's voice routes
and by channels that receive voice messages (WeChat).

With ``voice_biased`` (the default) every utterance is decoded twice at once: freely
and restricted to the catalog's domain grammar (``voice.biased``). Both transcripts
are corrected and parsed; the one to answer is chosen by the item linker's
confidence (``voice.biased.choose``)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Dict, Optional, Tuple, Union

from assistant.config.settings import Settings
from assistant.config.tunables import TUNABLES
from assistant.services import metrics
from voice.asr import Asr, AsrStream, AsrUnavailable, get_asr
from voice.audio import SAMPLE_RATE
from voice.biased import DualAsr, DualStream, choose, dual_asr_for, forget_dual_asr, get_dual_asr
from voice.correct import catalog_terms, correct_transcript
from voice.tts import Tts, get_tts

logger = logging.getLogger(__name__)

BYTES_PER_SECOND = SAMPLE_RATE * 2  # PCM16 mono


class Voice:
    """The app's ASR and TTS engines (process-wide, see ``voice.asr``/``voice.tts``;
    the ASR model is loaded once, in a thread) and the catalog terms used to
    correct transcripts."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.settings: Settings = app.state.settings
        self.asr: Asr = get_asr(self.settings)
        self.tts: Tts = get_tts(self.settings)
        self.recognizer: Union[Asr, DualAsr] = self.asr
        self._ready = False
        self._terms: Optional[Tuple[str, ...]] = None
        self._lock = asyncio.Lock()
        self._wanted: Any = None  # the newest catalog version the grammar should follow
        self._following = False

    def terms(self) -> Tuple[str, ...]:
        if self._terms is None:
            catalog = getattr(self.app.state, "catalog", None)
            if catalog is None:  # before start-up finished: do not cache
                return ()
            self._terms = tuple(catalog_terms(catalog))
        return self._terms

    async def ready_asr(self) -> Union[Asr, DualAsr]:
        """The loaded recognizer (free + biased with ``voice_biased``), the transcript
        corrector prepared too (a few seconds, once); raises AsrUnavailable (its
        message says how to install a model)."""
        if not self._ready:
            async with self._lock:
                if not self._ready:
                    started = time.perf_counter()
                    await asyncio.to_thread(self.asr.warm_up)
                    await asyncio.to_thread(correct_transcript, "社保卡", self.terms())
                    catalog = getattr(self.app.state, "catalog", None)
                    if self.settings.voice_biased and catalog is not None:
                        dual = await asyncio.to_thread(get_dual_asr, self.settings, catalog)
                        if dual.biased is not dual.free:
                            await asyncio.to_thread(dual.biased.warm_up)
                            self.recognizer = dual
                    self._ready = True
                    logger.info(
                        "voice.asr.ready seconds=%.1f biased=%s",
                        time.perf_counter() - started, self.recognizer is not self.asr,
                    )
        return self.recognizer

    async def follow_catalog(self, catalog: Any) -> None:
        """A catalog version published on the admin page: the correction terms and,
        once speech is in use, the biased recogniser's domain grammar follow it (a new
        alias is heard without a restart). One grammar is built at a time, off the event
        loop, always for the newest version asked for (twenty accepted reviews in a row
        build one or two, not twenty); the recogniser in use answers meanwhile."""
        self._terms = None
        self._wanted = catalog
        if self._following or not self._ready or not isinstance(self.recognizer, DualAsr):
            return
        self._following = True
        try:
            while True:
                target = self._wanted
                started = time.perf_counter()
                # Not the process-wide cache: its key (the version) may name another
                # database's catalog (revision numbers start at 1 in every database).
                dual = await asyncio.to_thread(dual_asr_for, self.recognizer.free, target)
                if dual.biased is not dual.free:
                    await asyncio.to_thread(dual.biased.warm_up)
                if self._wanted is not target:  # a newer version came meanwhile: build that one
                    continue
                previous, self.recognizer = self.recognizer, dual
                forget_dual_asr(previous)
                logger.info("voice.grammar.followed version=%s seconds=%.1f",
                            getattr(target, "fingerprint", ""), time.perf_counter() - started)
                return
        finally:
            self._following = False

    async def warm_up(self) -> None:
        """Load the speech model and choose the voice now (kiosk start-up)."""
        try:
            await self.ready_asr()
        except AsrUnavailable as exc:
            logger.warning("voice.asr.unavailable reason=%s", exc.reason)
        except Exception:
            logger.exception("voice.warm_up.failed")
        await self.tts.start()


def voice_of(app: Any) -> Voice:
    voice = getattr(app.state, "voice", None)
    if voice is None:
        voice = app.state.voice = Voice(app)
    return voice


def start_warm_up(app: Any) -> "asyncio.Task[None]":
    """Warm the speech engines up in the background (the gateway does not wait)."""
    return asyncio.get_running_loop().create_task(voice_of(app).warm_up())


async def corrected_text(app: Any, settings: Settings, transcript: str) -> Tuple[str, str]:
    """(transcript, corrected): homophones of catalog terms fixed, bounded in length."""
    text = transcript.strip()
    if not text:
        return "", ""
    corrected = await asyncio.to_thread(correct_transcript, text, voice_of(app).terms())
    return text, corrected.strip()[: settings.max_text_chars]


async def transcripts(recognizer: Union[Asr, DualAsr], pcm16: bytes) -> Dict[str, str]:
    """What the recognizer heard in a whole utterance: ``{"free": ..., "biased"?: ...}``."""
    started = time.perf_counter()
    if isinstance(recognizer, DualAsr):
        heard = await recognizer.transcribe_both(pcm16)
    else:
        heard = {"free": await recognizer.transcribe(pcm16)}
    metrics.record_asr(metrics.ASR_UTTERANCE, time.perf_counter() - started, len(pcm16) / BYTES_PER_SECOND)
    return heard


async def stream_transcripts(stream: Union[AsrStream, DualStream]) -> Dict[str, str]:
    """Finish a stream; its transcripts as :func:`transcripts` gives them."""
    final = await stream.finish()
    metrics.record_asr(metrics.ASR_STREAM, stream.busy_seconds, stream.seconds)
    if isinstance(stream, DualStream):
        return stream.alternatives()
    return {"free": final}


async def heard_text(app: Any, settings: Settings, heard: Dict[str, str]) -> Tuple[str, str]:
    """(transcript, corrected) to answer: each transcript corrected with the catalog's
    terms; with two, the one whose best item the linker is surer of (``choose``)."""
    corrected: Dict[str, Tuple[str, str]] = {}
    for key, transcript in heard.items():
        text, fixed = await corrected_text(app, settings, transcript)
        if fixed:
            corrected[key] = (text, fixed)
    if not corrected:
        return "", ""
    if len(corrected) == 1:
        return next(iter(corrected.values()))
    runtime = getattr(app.state, "runtime", None)
    scores: Dict[str, float] = {}
    if runtime is not None and runtime.ready:
        for key, (_, fixed) in corrected.items():
            items = (await runtime.parse(fixed)).get("service_items") or []
            scores[key] = float(items[0]["score"]) if items else 0.0
    path = choose({k: v[1] for k, v in corrected.items()}, scores, TUNABLES.item_min_score)
    logger.info(
        "voice.asr.chosen path=%s scores=%s",
        path, ",".join(f"{k}:{v:.2f}" for k, v in sorted(scores.items())),
    )
    return corrected[path]
