"""Offline speech synthesis: pyttsx3 (espeak-ng on Linux) → WAV bytes.

One process-wide worker thread owns the pyttsx3 engine: pyttsx3 engines are not
thread-safe, ``runAndWait`` must not be re-entered, and espeak-ng itself is
initialised once per process. Every engine call (voice probing, synthesis) is a
job on that thread; async code awaits the job's future, so the event loop never
blocks. Several ``Tts`` objects (different rates, caches) share the worker.

Voice choice is by test, not by name (see ``choose_voice``). At the first use the
worker lists the engine's voices, keeps the Mandarin candidates (id, name or
languages mention zh / cmn / Chinese / Mandarin; Cantonese, Hakka and Hong Kong
voices are left out) and synthesises a probe sentence with each. A candidate is
rejected when

* it cannot be selected (espeak-ng silently keeps the previous voice for some
  ids, so the selection is read back),
* its probe audio is empty or of an implausible length per character (a voice
  that skips Chinese characters, or spells them out), or
* (espeak-ng only) its phoneme transcription of the probe switches language:
  the ``cmn`` voice, which ``zh`` resolves to, reads many characters as pinyin
  spelled with English phonemes ("社" → "(en)SEf'o@": "she four"), while
  ``cmn-latn-pinyin`` gives tonal Mandarin phonemes ("s.'o-51").

Among the voices that pass, a mainland voice (cn / pinyin / simplified in its
description) is preferred, then the shortest seconds per character (spelling is
~1.5x slower than reading). On macOS (NSSpeech) and Windows (SAPI5) there is no
phoneme check; the same filter and probe choose among the installed voices.

Text is rewritten for the ear first (``voice.speech_text``), split into
sentences and synthesised sentence by sentence: ``synthesize_chunks`` yields a
complete WAV per sentence (to start playing early), ``synthesize`` returns one
WAV. Whole answers are cached (LRU by spoken text and speaking rate, bounded in
entries and bytes).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import io
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import wave
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Dict, List, Optional, Sequence, Tuple

from voice.speech_text import speech_text, split_sentences

logger = logging.getLogger(__name__)

NO_ENGINE = "语音合成不可用：没有安装语音引擎"
NO_VOICE = "语音合成不可用：没有可用的普通话语音"
FAILED = "语音合成不可用：合成失败，请稍后再试"

# The probe: everyday service words whose pinyin spelling differs a lot from
# their Mandarin reading.
PROBE_TEXT = "社保卡办理需要带身份证"
# Seconds of speech per character a Mandarin reading of the probe may take at
# PROBE_RATE (measured with espeak-ng 1.51: cmn-latn-pinyin 0.30, the
# pinyin-spelling cmn 0.46).
PROBE_RATE = 165
PROBE_SECONDS_PER_CHAR = (0.08, 1.0)
# Longest a single job may take before the caller gives up (the worker goes on).
JOB_TIMEOUT_S = 30.0
# The cache holds at most this many bytes of audio besides its entry bound.
CACHE_MAX_BYTES = 64 * 1024 * 1024
# Texts up to this length are rewritten for the ear on the event loop (< 2 ms).
SPEECH_TEXT_INLINE_CHARS = 300
# Sentences longer than this are cut at a comma before synthesis.
MAX_SENTENCE_CHARS = 80
# espeak-ng only: a voice variant (a formant set such as "f2") and a pause between
# words in units of 10 ms. Measured as the round-trip CER of Vosk transcribing 40
# replies back (bench/voice_accuracy.py): through this pipeline at 165 wpm the
# default voice gives 51.1 %, "+f2" with a 30 ms gap 50.8 % (no real difference,
# although with the espeak-ng command line at 150 wpm it was 70 % → 47 %), so the
# default voice stays; deployers can try others with the settings.
DEFAULT_VARIANT = ""
DEFAULT_WORD_GAP = 0
# espeak_PARAMETER espeakWORDGAP (speak_lib.h).
_ESPEAK_WORDGAP = 7

# espeak-ng marks a switch to another language's rules in phonemes as "(en)".
_LANGUAGE_SWITCH_RE = re.compile(r"\([a-z]{2,3}(?:-[a-z]+)*\)")
_MANDARIN_TOKENS = {"zh", "cmn", "chinese", "mandarin", "zho", "chi"}
_OTHER_CHINESE_TOKENS = {"yue", "cantonese", "hak", "hakka", "hk", "nan", "wuu", "hsn", "gan"}
_MAINLAND_TOKENS = {"cn", "pinyin", "simplified", "prc", "chn"}


class TtsUnavailable(RuntimeError):
    """No speech engine, no usable Mandarin voice, or the engine failed.

    ``str(exc)`` is a simplified-Chinese message for the person ("语音合成不可用：…").
    """


@dataclass
class VoiceProbe:
    """What the probe found for one candidate voice."""

    voice_id: str
    name: str
    languages: List[str]
    mainland: bool
    selected: bool = False
    seconds: float = 0.0
    seconds_per_char: float = 0.0
    phonemes: Optional[str] = None  # espeak-ng only
    language_switch: bool = False
    reason: Optional[str] = None  # why it was rejected; None = usable

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass
class VoiceChoice:
    voice_id: Optional[str]
    driver: Optional[str]
    probes: List[VoiceProbe] = field(default_factory=list)
    error: Optional[str] = None  # the Chinese message when no voice is usable


def _tokens(*parts: Any) -> set:
    text = " ".join(str(p) for p in parts if p).lower()
    return {t for t in re.split(r"[^a-z0-9]+", text) if t}


def is_mandarin_candidate(voice_id: str, name: str, languages: Sequence[Any]) -> bool:
    """Whether a voice's description says Chinese and not another Chinese language."""
    langs = [lang.decode("utf-8", "ignore") if isinstance(lang, bytes) else str(lang) for lang in languages]
    tokens = _tokens(voice_id, name, *langs)
    return bool(tokens & _MANDARIN_TOKENS) and not tokens & _OTHER_CHINESE_TOKENS


def judge_probe(probe: VoiceProbe) -> VoiceProbe:
    """Set ``probe.reason`` from its measurements (None when the voice is usable)."""
    low, high = PROBE_SECONDS_PER_CHAR
    if not probe.selected:
        probe.reason = "the engine did not select this voice"
    elif probe.seconds <= 0:
        probe.reason = "no audio for the probe"
    elif probe.language_switch:
        probe.reason = "reads the probe through another language (pinyin spelling)"
    elif not low <= probe.seconds_per_char <= high:
        probe.reason = f"implausible length: {probe.seconds_per_char:.2f} s per character"
    else:
        probe.reason = None
    return probe


def choose_voice(probes: Sequence[VoiceProbe]) -> Optional[VoiceProbe]:
    """The best usable voice: mainland first, then the shortest reading."""
    usable = [p for p in probes if p.ok]
    if not usable:
        return None
    return min(usable, key=lambda p: (not p.mainland, p.seconds_per_char))


def wav_duration(wav: bytes) -> float:
    """Seconds of audio in a WAV file."""
    with wave.open(io.BytesIO(wav), "rb") as reader:
        rate = reader.getframerate()
        return reader.getnframes() / rate if rate else 0.0


def _wav_frames(wav: bytes) -> Tuple[Tuple[int, int, int], bytes]:
    with wave.open(io.BytesIO(wav), "rb") as reader:
        params = (reader.getnchannels(), reader.getsampwidth(), reader.getframerate())
        return params, reader.readframes(reader.getnframes())


def _make_wav(params: Tuple[int, int, int], frames: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(params[0])
        writer.setsampwidth(params[1])
        writer.setframerate(params[2])
        writer.writeframes(frames)
    return out.getvalue()


def concat_wavs(wavs: Sequence[bytes]) -> bytes:
    """One WAV holding the given WAVs one after the other (same format)."""
    if len(wavs) == 1:
        return wavs[0]
    params: Optional[Tuple[int, int, int]] = None
    frames: List[bytes] = []
    for wav in wavs:
        these, data = _wav_frames(wav)
        if params is None:
            params = these
        elif these != params:
            raise ValueError(f"cannot join WAVs of different formats: {params} and {these}")
        frames.append(data)
    return _make_wav(params or (1, 2, 22050), b"".join(frames))


def silence_wav(seconds: float = 0.1, rate: int = 22050) -> bytes:
    """A short silent WAV (what is said for a text with nothing to say)."""
    return _make_wav((1, 2, rate), b"\x00\x00" * int(rate * seconds))


class _Worker:
    """The one thread that owns the pyttsx3 engine; every engine call runs on it."""

    def __init__(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts-engine")
        self._lock = threading.Lock()
        self._choice_future: Optional[concurrent.futures.Future] = None
        # Touched on the worker thread only.
        self._engine: Any = None
        self._driver: Optional[str] = None
        self._select_names: Dict[str, str] = {}  # voice id → the name that selects it
        self._tmpdir: Optional[str] = None
        self._jobs = 0

    # Called from any thread.

    def choice_future(self) -> concurrent.futures.Future:
        """The (shared) future of the voice choice, started on first call."""
        with self._lock:
            if self._choice_future is None or self._choice_future.cancelled():
                self._choice_future = self._executor.submit(self._choose)
            return self._choice_future

    def submit(self, fn: Any, *args: Any) -> concurrent.futures.Future:
        return self._executor.submit(fn, *args)

    # Worker thread only.

    def _init_engine(self) -> None:
        import pyttsx3

        self._engine = pyttsx3.init()
        module = sys.modules.get("pyttsx3.drivers.espeak")
        driver = getattr(self._engine.proxy, "_driver", None)
        self._driver = "espeak" if module is not None else type(driver).__module__.rsplit(".", 1)[-1]
        if module is not None:
            # The espeak driver prints "Audio saved to …" on every file it writes.
            module.print = lambda *args, **kwargs: None  # type: ignore[attr-defined]
        self._tmpdir = tempfile.mkdtemp(prefix="banshi-tts-")
        atexit.register(shutil.rmtree, self._tmpdir, True)
        # pyttsx3 starts "busy" and queues commands until the first loop; in that
        # first loop it ends the loop before the synthesis is done. An empty loop
        # now makes every later runAndWait wait for its synthesis.
        self._engine.runAndWait()

    def _choose(self) -> VoiceChoice:
        started = time.perf_counter()
        try:
            self._init_engine()
            voices = list(self._engine.getProperty("voices") or [])
        except Exception as exc:  # no espeak-ng library, no SAPI, …
            logger.warning("tts.engine.unavailable error=%s", exc)
            return VoiceChoice(voice_id=None, driver=None, error=NO_ENGINE)
        probes: List[VoiceProbe] = []
        for voice in voices:
            languages = list(getattr(voice, "languages", None) or [])
            if not is_mandarin_candidate(voice.id, voice.name or "", languages):
                continue
            probe = VoiceProbe(
                voice_id=voice.id,
                name=voice.name or "",
                languages=[str(lang) for lang in languages],
                mainland=bool(_tokens(voice.id, voice.name, *languages) & _MAINLAND_TOKENS),
            )
            try:
                self._probe(probe, languages)
            except Exception as exc:
                probe.reason = f"probe failed: {exc}"
            else:
                judge_probe(probe)
            logger.info(
                "tts.voice.probe voice=%s ok=%s seconds_per_char=%.3f language_switch=%s reason=%s",
                probe.voice_id,
                probe.ok,
                probe.seconds_per_char,
                probe.language_switch,
                probe.reason,
            )
            probes.append(probe)
        best = choose_voice(probes)
        ms = (time.perf_counter() - started) * 1000
        if best is None:
            logger.warning("tts.voice.none candidates=%d driver=%s ms=%.0f", len(probes), self._driver, ms)
            return VoiceChoice(voice_id=None, driver=self._driver, probes=probes, error=NO_VOICE)
        logger.info(
            "tts.voice.chosen voice=%s driver=%s candidates=%d ms=%.0f",
            best.voice_id,
            self._driver,
            len(probes),
            ms,
        )
        return VoiceChoice(voice_id=best.voice_id, driver=self._driver, probes=probes)

    def _synth(self, name: str, text: str, rate: int, word_gap: int = 0) -> Tuple[bytes, str]:
        """Synthesise with the voice selected by ``name`` → (WAV, the voice id read back).

        pyttsx3 may queue property changes until ``runAndWait`` (always before its
        first loop), so the selection is read back after the synthesis. ``name`` may
        carry an espeak-ng variant (``sit/cmn-latn-pinyin+f2``).
        """
        self._engine.setProperty("voice", name)
        self._engine.setProperty("rate", rate)
        if self._driver == "espeak":
            from pyttsx3.drivers import _espeak

            _espeak.SetParameter(_ESPEAK_WORDGAP, int(word_gap), 0)
        self._settle()
        self._jobs += 1
        assert self._tmpdir is not None
        path = os.path.join(self._tmpdir, f"job-{self._jobs}.wav")
        try:
            self._engine.save_to_file(text, path)
            self._engine.runAndWait()
            with open(path, "rb") as handle:
                wav = handle.read()
        finally:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        if self._driver == "espeak" and self._engine.getProperty("rate") != rate:
            raise RuntimeError(f"the engine did not take the rate {rate}")
        return wav, str(self._engine.getProperty("voice") or "")

    def _settle(self) -> None:
        """espeak-ng: wait until the queued parameter change has been applied.

        With pyttsx3's espeak driver, espeak-ng runs in its asynchronous mode:
        ``SetParameter`` (the rate) is queued in espeak's command FIFO, and
        ``runAndWait`` cancels whatever is still queued (``espeak_Cancel``) before
        it synthesises, so a rate change would be lost now and then. Waiting for
        the FIFO to drain (well under a millisecond) keeps every change.
        """
        if self._driver != "espeak":
            return
        from pyttsx3.drivers import _espeak

        deadline = time.monotonic() + 1.0
        while _espeak.IsPlaying() and time.monotonic() < deadline:
            time.sleep(0.001)

    def _probe(self, probe: VoiceProbe, languages: Sequence[Any]) -> None:
        # espeak-ng keeps the previous voice for some names: try the id, then its
        # languages and file name, and keep the name whose selection reads back.
        names = [probe.voice_id, *[str(lang) for lang in languages if lang]]
        names.append(probe.voice_id.rsplit("/", 1)[-1])
        for name in dict.fromkeys(names):
            wav, current = self._synth(name, PROBE_TEXT, PROBE_RATE)
            if current.lower() == probe.voice_id.lower():
                probe.selected = True
                self._select_names[probe.voice_id] = name
                break
        if not probe.selected:
            return
        probe.seconds = wav_duration(wav)
        probe.seconds_per_char = probe.seconds / len(PROBE_TEXT)
        if self._driver == "espeak":
            probe.phonemes = _espeak_phonemes(PROBE_TEXT)
            # "(en)…(cmn)": espeak switched to another language's rules.
            probe.language_switch = bool(probe.phonemes and _LANGUAGE_SWITCH_RE.search(probe.phonemes))

    def transcribe(self, voice_id: str, text: str) -> Optional[str]:
        """espeak-ng only: the phonemes ``voice_id`` says for ``text`` (for checks)."""
        self._synth(self._select_names.get(voice_id, voice_id), "好", PROBE_RATE)
        return _espeak_phonemes(text) if self._driver == "espeak" else None

    def render(self, voice_id: str, text: str, rate: int, variant: str = "", word_gap: int = 0) -> bytes:
        """Synthesise ``text`` with ``voice_id`` (and an espeak-ng ``variant``) at
        ``rate`` words per minute → WAV."""
        name = self._select_names.get(voice_id, voice_id)
        if variant and self._driver == "espeak":
            name = f"{voice_id}+{variant}"
        wav, current = self._synth(name, text, rate, word_gap if self._driver == "espeak" else 0)
        if current.split("+", 1)[0].lower() != voice_id.lower():
            raise RuntimeError(f"the engine spoke with {current!r}, not {voice_id!r}")
        if not wav.startswith(b"RIFF"):
            raise RuntimeError("the engine did not write a WAV file")
        return wav


def _espeak_phonemes(text: str) -> Optional[str]:
    """espeak-ng's phoneme transcription of ``text`` with the current voice.

    Uses ``espeak_TextToPhonemes`` of the library the pyttsx3 driver loaded; the
    voice selection takes effect with a synthesis, so call this after one.
    """
    import ctypes

    try:
        from pyttsx3.drivers import _espeak

        function = _espeak.dll.espeak_TextToPhonemes
    except Exception:
        return None
    function.restype = ctypes.c_char_p
    function.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
    buffer = ctypes.create_string_buffer(text.encode("utf-8"))
    pointer = ctypes.c_void_p(ctypes.addressof(buffer))
    clauses: List[str] = []
    for _ in range(len(text) + 1):  # one clause per call; the pointer is NULL at the end
        if not pointer.value:
            break
        result = function(ctypes.byref(pointer), 1, 0)  # espeakCHARS_UTF8, ASCII phonemes
        clauses.append(result.decode("utf-8", "ignore") if result else "")
    return " ".join(clauses)


_WORKER: Optional[_Worker] = None
_WORKER_LOCK = threading.Lock()


def _worker() -> _Worker:
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None:
            _WORKER = _Worker()
        return _WORKER


class _Lru:
    """A thread-safe LRU of answers (their WAV chunks, one per sentence) bounded in
    entries and in bytes."""

    def __init__(self, max_entries: int, max_bytes: int = CACHE_MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: "OrderedDict[Tuple[str, bool], Tuple[bytes, ...]]" = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Tuple[str, bool]) -> Optional[Tuple[bytes, ...]]:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Tuple[str, bool], value: Tuple[bytes, ...]) -> None:
        size = sum(len(chunk) for chunk in value)
        if self.max_entries <= 0 or size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= sum(len(chunk) for chunk in old)
            self._items[key] = value
            self._bytes += size
            while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= sum(len(chunk) for chunk in evicted)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class Tts:
    """Speech for replies: Chinese text → WAV, at the normal or the elderly rate."""

    def __init__(
        self,
        rate: int,
        elderly_rate: int,
        cache_entries: int,
        *,
        variant: str = DEFAULT_VARIANT,
        word_gap: int = DEFAULT_WORD_GAP,
    ) -> None:
        self.rate = rate
        self.elderly_rate = elderly_rate
        self.variant = variant
        self.word_gap = word_gap
        self._cache = _Lru(cache_entries)
        self._worker = _worker()
        self._stats_lock = threading.Lock()
        # Counters (for metrics and tests): engine calls and cache hits.
        self.synth_count = 0
        self.cache_hits = 0

    # Voice choice.

    async def start(self) -> bool:
        """Choose the voice (once per process) without blocking the loop; → available."""
        # Shielded: a cancelled caller must not cancel the choice shared by all.
        await asyncio.shield(asyncio.wrap_future(self._worker.choice_future()))
        return self.available

    def _choice(self) -> VoiceChoice:
        # Blocks until the probe has run (~0.1 s, once); async code: ``await start()`` first.
        return self._worker.choice_future().result()

    @property
    def available(self) -> bool:
        return self._choice().voice_id is not None

    @property
    def voice_id(self) -> Optional[str]:
        return self._choice().voice_id

    @property
    def probes(self) -> List[VoiceProbe]:
        """What the voice probe found for each candidate voice."""
        return list(self._choice().probes)

    def _require_voice(self) -> str:
        choice = self._choice()
        if choice.voice_id is None:
            raise TtsUnavailable(choice.error or NO_VOICE)
        return choice.voice_id

    async def transcribe(self, text: str) -> Optional[str]:
        """espeak-ng only: the chosen voice's phonemes for ``text`` as it will be
        said (``speech_text`` applied); ``None`` with other drivers. For checks:
        "(en)" in the result means a part is read with English rules."""
        await self.start()
        voice_id = self._require_voice()
        future = self._worker.submit(self._worker.transcribe, voice_id, await self._spoken(text))
        return await asyncio.wait_for(asyncio.wrap_future(future), JOB_TIMEOUT_S)

    # Synthesis.

    async def _spoken(self, text: str) -> str:
        # ~5 µs per character: off the event loop for long answers.
        if len(text) <= SPEECH_TEXT_INLINE_CHARS:
            return speech_text(text)
        return await asyncio.to_thread(speech_text, text)

    async def synthesize(self, text: str, *, elderly: bool = False) -> bytes:
        """One complete WAV for ``text`` (cached by spoken text and rate)."""
        chunks = [chunk async for chunk in self.synthesize_chunks(text, elderly=elderly)]
        return concat_wavs(chunks)

    async def synthesize_chunks(self, text: str, elderly: bool = False) -> AsyncIterator[bytes]:
        """Complete WAVs, one per sentence (a cached answer too: a WebSocket frame
        stays the size of a sentence)."""
        await self.start()
        voice_id = self._require_voice()
        spoken = await self._spoken(text)
        key = (spoken, bool(elderly))
        cached = self._cache.get(key)
        if cached is not None:
            with self._stats_lock:
                self.cache_hits += 1
            logger.debug("tts.synthesize.cached chars=%d", len(spoken))
            for chunk in cached:
                yield chunk
            return
        if not spoken:
            yield silence_wav()
            return
        rate = self.elderly_rate if elderly else self.rate
        sentences = split_sentences(spoken, MAX_SENTENCE_CHARS)
        started = time.perf_counter()
        chunks: List[bytes] = []
        for index, sentence in enumerate(sentences):
            wav = await self._render(voice_id, sentence, rate)
            chunks.append(wav)
            if index == 0:
                logger.debug("tts.synthesize.first_chunk ms=%.0f", (time.perf_counter() - started) * 1000)
            yield wav
        whole = concat_wavs(chunks)
        self._cache.put(key, tuple(chunks))
        logger.info(
            "tts.synthesize.done chars=%d sentences=%d elderly=%s seconds=%.2f ms=%.0f",
            len(spoken),
            len(sentences),
            bool(elderly),
            wav_duration(whole),
            (time.perf_counter() - started) * 1000,
        )

    async def _render(self, voice_id: str, sentence: str, rate: int) -> bytes:
        future = self._worker.submit(self._worker.render, voice_id, sentence, rate, self.variant, self.word_gap)
        try:
            wav = await asyncio.wait_for(asyncio.wrap_future(future), JOB_TIMEOUT_S)
        except asyncio.TimeoutError as exc:
            logger.error("tts.synthesize.timeout chars=%d", len(sentence))
            raise TtsUnavailable(FAILED) from exc
        except Exception as exc:
            logger.exception("tts.synthesize.failed chars=%d", len(sentence))
            raise TtsUnavailable(FAILED) from exc
        with self._stats_lock:
            self.synth_count += 1
        return wav


_TTS: Optional[Tts] = None
_TTS_LOCK = threading.Lock()


def get_tts(settings: Any) -> Tts:
    """The process-wide ``Tts`` (rates and cache size from the first settings seen)."""
    global _TTS
    with _TTS_LOCK:
        if _TTS is None:
            _TTS = Tts(
                settings.tts_rate,
                settings.tts_rate_elderly,
                settings.tts_cache_entries,
                variant=getattr(settings, "tts_variant", DEFAULT_VARIANT),
                word_gap=getattr(settings, "tts_word_gap", DEFAULT_WORD_GAP),
            )
        return _TTS


__all__ = [
    "Tts",
    "TtsUnavailable",
    "VoiceProbe",
    "choose_voice",
    "concat_wavs",
    "get_tts",
    "is_mandarin_candidate",
    "judge_probe",
    "wav_duration",
]
