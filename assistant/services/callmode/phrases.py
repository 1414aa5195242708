"""Phrases of a call's audio: one recogniser stream per input (caller, operator), cut
into phrases when the speaker pauses.

The recogniser's own end-of-utterance rules wait 0.5-1 s of silence; on a call the
next words come quickly, so a phrase also ends after ``phrase_end_silence_s`` of
quiet (frames under ``silence_rms``) following speech (``callmode.yml``).

The caller's input may also be decoded by the catalog-biased recogniser
(``voice.biased``) on the same audio: it keeps the service words that free decoding
loses. It ends its phrases when the free one does; each final phrase carries the
biased transcript as an alternative (the gateway chooses what to rank with, as the
kiosk does: ``assistant.services.speech.heard_text``). The free transcript is what the
operator reads.

A third recogniser, restricted to digit words (``digits.PhoneListener``), may hear the
caller's phone number on the same audio; a number it heard comes with the phrases
(``Heard.phone``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from assistant.services.callmode.config import TUNABLES, AsrTunables
from assistant.services.callmode.digits import PhoneListener
from voice.asr import AsrStream
from voice.audio import SAMPLE_RATE

CALLER, OPERATOR = "caller", "operator"
SPEAKERS = (CALLER, OPERATOR)
FRAME_SAMPLES = SAMPLE_RATE // 50  # 20 ms


@dataclass
class Final:
    text: str  # the free transcript
    biased: Optional[str] = None  # the catalog-biased one, when decoded


@dataclass
class Heard:
    """What one piece of audio brought: the phrase in progress (when it changed) and
    the phrases that ended."""

    partial: Optional[str] = None
    finals: List[Final] = field(default_factory=list)
    phone: Optional[str] = None  # a phone number newly heard by the digit recogniser


class PhraseStream:
    """One input's recogniser stream and its pause detector (not thread-safe: one
    feeding task per input)."""

    def __init__(
        self,
        speaker: str,
        stream: AsrStream,
        biased: Optional[AsrStream] = None,
        tunables: AsrTunables = TUNABLES.asr,
        phones: Optional[PhoneListener] = None,
    ) -> None:
        self.speaker = speaker
        self.stream = stream
        self.biased = biased
        self.phones = phones
        self._biased_done = 0
        self.tunables = tunables
        self._done = 0
        self._quiet_s = 0.0
        self._voiced = False
        self._last_partial = ""
        self._carry = b""

    @property
    def seconds(self) -> float:
        return self.stream.seconds

    def _pause_ended(self, pcm16: bytes) -> bool:
        """Track speech and quiet per 20-ms frame; True once a pause after speech is long enough."""
        data = self._carry + pcm16
        usable = len(data) - len(data) % (FRAME_SAMPLES * 2)
        self._carry = data[usable:]
        if not usable:
            return False
        frames = np.frombuffer(data[:usable], dtype="<i2").astype(np.float32).reshape(-1, FRAME_SAMPLES)
        ended = False
        for rms in np.sqrt((frames**2).mean(axis=1)):
            if rms >= self.tunables.silence_rms:
                self._voiced, self._quiet_s = True, 0.0
                continue
            self._quiet_s += FRAME_SAMPLES / SAMPLE_RATE
            if self._voiced and self._quiet_s >= self.tunables.phrase_end_silence_s:
                ended, self._voiced = True, False
        return ended

    def _new_finals(self, finishing: bool = False) -> List[Final]:
        segments = self.stream.segments
        texts = [s for s in segments[self._done :] if s.strip()]
        self._done = len(segments)
        finals = [Final(text) for text in texts]
        if finals and self.biased is not None:
            if not finishing:
                self.biased.end_phrase_sync()
            said = self.biased.segments
            finals[-1].biased = " ".join(s for s in said[self._biased_done :] if s.strip()) or None
            self._biased_done = len(said)
        return finals

    def _heard(self) -> Heard:
        heard = Heard(finals=self._new_finals())
        partial = self.stream.partial
        if partial != self._last_partial:
            self._last_partial = partial
            heard.partial = partial
        return heard

    def feed_sync(self, pcm16: bytes) -> Heard:
        """Blocking :meth:`feed` (the recognisers one after the other)."""
        self.stream.feed_sync(pcm16)
        if self.biased is not None:
            self.biased.feed_sync(pcm16)
        phone = self.phones.feed_sync(pcm16) if self.phones is not None else None
        if self._pause_ended(pcm16):
            self.stream.end_phrase_sync()
        heard = self._heard()
        heard.phone = phone
        return heard

    def finish_sync(self) -> Heard:
        self.stream.finish_sync()
        if self.biased is not None:
            self.biased.finish_sync()
        phone = self.phones.finish_sync() if self.phones is not None else None
        return Heard(partial="" if self._last_partial else None, finals=self._new_finals(finishing=True), phone=phone)

    async def feed(self, pcm16: bytes) -> Heard:
        """Decode more audio: the free, the biased and the digit recogniser side by side
        (Vosk releases the GIL), in worker threads."""
        if self.biased is None and self.phones is None:
            return await asyncio.to_thread(self.feed_sync, pcm16)
        others = [asyncio.to_thread(self.biased.feed_sync, pcm16)] if self.biased is not None else []
        phone_task = asyncio.to_thread(self.phones.feed_sync, pcm16) if self.phones is not None else None
        done = await asyncio.gather(
            asyncio.to_thread(self.stream.feed_sync, pcm16), *others, *([phone_task] if phone_task else [])
        )
        if self._pause_ended(pcm16):
            await asyncio.to_thread(self.stream.end_phrase_sync)
        heard = await asyncio.to_thread(self._heard)
        heard.phone = done[-1] if phone_task is not None else None
        return heard

    async def finish(self) -> Heard:
        return await asyncio.to_thread(self.finish_sync)


async def open_phrase_stream(asr, speaker: str, biased=None, phones: Optional[PhoneListener] = None) -> PhraseStream:
    """A phrase stream on a new recogniser stream of ``asr`` (a ``voice.asr.Asr``) and,
    with ``biased`` (the catalog-biased ``Asr``), one of that too; ``phones``: the
    digit recogniser's listener on the same input."""
    return PhraseStream(
        speaker, await asr.open_stream(), await biased.open_stream() if biased is not None else None, phones=phones
    )
