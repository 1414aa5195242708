"""Speech for the dialogue: the app's recognizer and voice (process-wide engines of
``voice.asr``/``voice.tts``, loaded once, in a thread) and transcripts corrected with
the catalog's terms before they reach the dialogue. Used by the kiosk's voice routes
and by channels that receive voice messages (WeChat)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Optional, Tuple

from assistant.config.settings import Settings
from voice.asr import Asr, AsrUnavailable, get_asr
from voice.correct import catalog_terms, correct_transcript
from voice.tts import Tts, get_tts

logger = logging.getLogger(__name__)


class Voice:
    """The app's ASR and TTS engines (process-wide, see ``voice.asr``/``voice.tts``;
    the ASR model is loaded once, in a thread) and the catalog terms used to
    correct transcripts."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.settings: Settings = app.state.settings
        self.asr: Asr = get_asr(self.settings)
        self.tts: Tts = get_tts(self.settings)
        self._terms: Optional[Tuple[str, ...]] = None
        self._lock = asyncio.Lock()

    def terms(self) -> Tuple[str, ...]:
        if self._terms is None:
            catalog = getattr(self.app.state, "catalog", None)
            if catalog is None:  # before start-up finished: do not cache
                return ()
            self._terms = tuple(catalog_terms(catalog))
        return self._terms

    async def ready_asr(self) -> Asr:
        """The loaded recognizer, the transcript corrector prepared too (~1 s once);
        raises AsrUnavailable (its message says how to install a model)."""
        if not self.asr.loaded:
            async with self._lock:
                if not self.asr.loaded:
                    started = time.perf_counter()
                    await asyncio.to_thread(self.asr.warm_up)
                    await asyncio.to_thread(correct_transcript, "社保卡", self.terms())
                    logger.info("voice.asr.ready seconds=%.1f", time.perf_counter() - started)
        return self.asr

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
