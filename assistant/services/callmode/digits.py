"""A phone number heard from the caller's audio by a recogniser that knows only digit
words (the ``phone`` section of ``callmode.yml``).

Free decoding writes a spoken number as other words (点选 for 电话, 留 for 六, 其 for
七: ``bench/callmode_phone.py``), so the draft found no number in the transcript of
a spoken one. A second Vosk recogniser with a runtime grammar of the digit words and
a number's cue words (电话, 手机, 号码, 是, 我) decodes the same audio; it turns any
speech into those words, so a number counts only when:

* a cue (电话/手机/号码) was heard, and
* exactly 11 digits follow it within ``window_s`` seconds, forming a mainland mobile
  number (1[3-9]…), with no other word among or after them in that window (a
  Sichuanese recording with no number in it gave "手机一四三 四七一三 零三是六九").

It ends an utterance only after ``endpoint_silence_s`` of silence (a view of the
model with its own end-of-utterance rules, ``voice.endpointing``): with the model's
0.5 s, a number read digit by digit was cut at a pause and the digit after the cut
lost. Longer pauses still cut it; the segments of the window are read together. The number goes into the
draft marked as heard (``TicketDraft.phone_heard``): it may be wrong, and the ticket
is saved with it only after the operator has read it back to the caller.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from assistant.services.callmode.config import TUNABLES, PhoneTunables
from assistant.services.callmode.draft import SPOKEN_DIGITS
from voice.asr import Asr, AsrStream
from voice.endpointing import with_trailing_silence

_MOBILE = re.compile(r"1[3-9]\d{9}")
# Words between a cue and the number ("电话号码是…", "手机号是…").
_LEAD_WORDS = "号码是"

_asrs: Dict[str, Asr] = {}
_asrs_lock = threading.Lock()


def grammar(tunables: PhoneTunables = TUNABLES.phone) -> str:
    """The recogniser's runtime grammar: the digit words and the cue words only (no
    ``[unk]``: with it, most digits of espeak-ng's numbers are lost to it; 3 of 20
    numbers right instead of 15 on the bench's clearest voice)."""
    words = list(dict.fromkeys(tunables.digit_words + tunables.cue_words))
    return json.dumps(words, ensure_ascii=False)


def digit_asr(model_dir: Path, work_dir: Path, tunables: PhoneTunables = TUNABLES.phone) -> Asr:
    """The process-wide digit recogniser of ``model_dir``: a view of it that waits
    ``endpoint_silence_s`` before ending an utterance, built under ``work_dir`` (the
    first call reads and may write files: call it off the event loop)."""
    key = f"{Path(model_dir).resolve()}|{Path(work_dir).resolve()}"
    with _asrs_lock:
        asr = _asrs.get(key)
    if asr is None:
        view = with_trailing_silence(Path(model_dir), Path(work_dir), tunables.endpoint_silence_s)
        with _asrs_lock:
            asr = _asrs.setdefault(key, Asr(view, grammar=grammar(tunables)))
    return asr


def number_after_cue(texts: Sequence[str], tunables: PhoneTunables = TUNABLES.phone) -> Optional[str]:
    """The mobile number said after the last cue in ``texts`` (the digit recogniser's
    segments of the window, in order), or None: exactly 11 digits must follow it."""
    joined = "".join("".join(texts).split())
    last = max(((joined.rfind(cue), cue) for cue in tunables.cues), default=(-1, ""))
    if last[0] < 0:
        return None
    after = joined[last[0] + len(last[1]) :].lstrip(_LEAD_WORDS)
    if not after or any(c not in SPOKEN_DIGITS and not c.isdigit() for c in after):
        return None  # another word among the digits: other speech heard as digits
    digits = "".join(SPOKEN_DIGITS.get(c, c) for c in after)
    return digits if _MOBILE.fullmatch(digits) else None


class PhoneListener:
    """The digit recogniser's stream on one caller input, and the numbers it heard.

    A number is reported once it has stood for ``settle_s`` seconds of audio with no
    further segment (or when the call ends): a 12th digit said after a pause (an ID
    number read in groups, a misheard extra digit) withdraws it before it is shown.
    """

    def __init__(self, stream: AsrStream, tunables: PhoneTunables = TUNABLES.phone) -> None:
        self.stream = stream
        self.tunables = tunables
        self._segments: List[Tuple[float, str]] = []  # (seconds into the call, text)
        self._done = 0
        self._pending: Optional[Tuple[str, float]] = None  # (number, seconds when heard)
        self.last: Optional[str] = None

    def _check(self, finishing: bool = False) -> Optional[str]:
        """A number newly heard and settled, else None."""
        segments = self.stream.segments
        new = [s for s in segments[self._done :] if s.strip()]
        self._done = len(segments)
        now = self.stream.seconds
        if new:
            self._segments.extend((now, s) for s in new)
            self._segments = [(at, s) for at, s in self._segments if at >= now - self.tunables.window_s]
            number = number_after_cue([s for _, s in self._segments], self.tunables)
            self._pending = (number, now) if number is not None else None
        if self._pending is None or not (finishing or now - self._pending[1] >= self.tunables.settle_s):
            return None
        number, self._pending = self._pending[0], None
        if number == self.last:
            return None
        self.last = number
        return number

    def feed_sync(self, pcm16: bytes) -> Optional[str]:
        self.stream.feed_sync(pcm16)
        return self._check()

    def finish_sync(self) -> Optional[str]:
        self.stream.finish_sync()
        return self._check(finishing=True)

    async def feed(self, pcm16: bytes) -> Optional[str]:
        return await asyncio.to_thread(self.feed_sync, pcm16)

    async def finish(self) -> Optional[str]:
        return await asyncio.to_thread(self.finish_sync)


async def open_phone_listener(model_dir: Path, work_dir: Path, tunables: PhoneTunables = TUNABLES.phone) -> PhoneListener:
    """A listener on a new stream of the digit recogniser (built and loaded off the loop)."""
    asr = await asyncio.to_thread(digit_asr, model_dir, work_dir, tunables)
    return PhoneListener(await asr.open_stream(), tunables)
