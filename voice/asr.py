"""Offline speech recognition with Vosk (Kaldi).

The model is a directory (default ``data_dir/vosk/vosk-model-small-cn-0.22``,
``BANSHI_VOSK_MODEL_PATH``; ``banshi voice download-model`` installs it). It is
loaded once per process and shared: :func:`get_asr` returns the process-wide
:class:`Asr` of the configured directory. Loading and decoding are blocking
native calls; the async methods run them on a small dedicated thread pool, never
on the event loop (Vosk's cffi binding releases the GIL, so several streams decode
in parallel). Call ``await asyncio.to_thread(asr.load)`` at start-up so that the
first request does not wait for the model (a few seconds for a small model).

Recognisers are reused: a finished stream's recogniser is reset and kept (up to
:data:`IDLE_RECOGNIZERS`) for the next stream. With lookahead models (``Gr.fst`` +
``HCLr.fst``, as the Chinese and Korean models are) the decoding graph is composed
on the fly and cached inside the recogniser, so a fresh recogniser decodes 3-8x
slower than a used one (measured on the Korean model: real-time factor 0.5 fresh,
0.06-0.3 reused). :meth:`Asr.warm_up` builds that cache at start-up by decoding a
few seconds of noise. A reused recogniser keeps Vosk's speaker adaptation (i-vector)
state from earlier utterances, as one long Vosk stream does; it keeps no audio or text.

Input is mono 16 kHz PCM16 (see :mod:`voice.audio`). Output is the transcript
with the recogniser's word spaces removed around Chinese characters (the NLU
expects unspaced Chinese) and kept between Latin or Hangul words.

Phrase biasing: ``Asr(model_dir, phrases=[...])`` (or a prebuilt ``grammar``)
gives every stream a runtime grammar, which **restricts** the output to sequences
of those phrases (anything else comes out as nothing). Chinese phrases are cut
into words of the model's vocabulary (:mod:`voice.grammar`; character by character
when the vocabulary cannot be read). :class:`voice.biased.DualAsr` runs the free recogniser
and one biased by the catalog's domain grammar side by side on the same audio;
the caller chooses between the two transcripts (the gateway by the item linker's
confidence, ``assistant.services.speech``).

Gain: every stream passes its audio through :class:`voice.audio.GainControl`
(quiet speakers and far microphones brought up to a normal level, never clipped).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from voice.audio import SAMPLE_RATE, GainControl, duration_seconds

if TYPE_CHECKING:
    from knowledge.catalog import Catalog

logger = logging.getLogger("banshi.voice.asr")

# Bytes handed to the recogniser at a time (0.2 s): end-of-utterance detection
# works per call, so long buffers are cut into pieces.
CHUNK_BYTES = SAMPLE_RATE * 2 // 5
# Reset recognisers kept for reuse per Asr (one per concurrently decoding stream).
IDLE_RECOGNIZERS = 4
# Seconds of noise decoded by Asr.warm_up.
WARM_UP_SECONDS = 4

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef"
_SPACE_NEAR_HAN = re.compile(rf"(?<=[{_HAN}])\s+|\s+(?=[{_HAN}])")
_HAN_RUN = re.compile(rf"[{_HAN}]+")
_UNK = re.compile(r"\[unk\]|<unk>", re.IGNORECASE)

_models: Dict[str, Any] = {}
_models_lock = threading.Lock()
_asrs: Dict[str, "Asr"] = {}
_asrs_lock = threading.Lock()
_executor: Optional[ThreadPoolExecutor] = None
_executor_lock = threading.Lock()


class AsrUnavailable(RuntimeError):
    """No usable speech-recognition model; ``message`` says (in Chinese) how to install one."""

    def __init__(self, model_dir: Path, reason: str = "missing"):
        if reason == "missing":
            message = (
                f"没有找到语音识别模型（{model_dir}）。请运行 `banshi voice download-model` 下载，"
                "或设置 BANSHI_VOSK_MODEL_PATH 指向已解压的模型目录。"
            )
        else:
            message = (
                f"语音识别模型无法加载（{model_dir}），文件可能不完整。"
                "请运行 `banshi voice download-model --force` 重新下载。"
            )
        super().__init__(message)
        self.message = message
        self.model_dir = model_dir
        self.reason = reason


def _asr_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            workers = max(2, min(4, os.cpu_count() or 2))
            _executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="asr")
        return _executor


async def _run(func, *args):
    return await asyncio.get_running_loop().run_in_executor(_asr_executor(), func, *args)


def normalize_transcript(text: str) -> str:
    """Remove ``[unk]`` and the spaces next to Chinese characters; keep one space
    between other words (Latin, Hangul, digits)."""
    text = " ".join(_UNK.sub(" ", text).split())
    return _SPACE_NEAR_HAN.sub("", text)


def looks_like_model(model_dir: Path) -> bool:
    """A Vosk model directory: an acoustic model plus a decoding graph."""
    d = Path(model_dir)
    has_am = (d / "am" / "final.mdl").is_file() or (d / "final.mdl").is_file()
    has_graph = (d / "graph").is_dir() or (d / "HCLG.fst").is_file() or (d / "HCLr.fst").is_file()
    return has_am and has_graph


def _load_model(model_dir: Path):
    """The process-wide Vosk model of a directory (loaded once, thread-safe)."""
    key = str(Path(model_dir).resolve())
    with _models_lock:
        model = _models.get(key)
        if model is not None:
            return model
        if not looks_like_model(Path(key)):
            raise AsrUnavailable(Path(model_dir))
        import vosk

        vosk.SetLogLevel(-1)
        started = time.perf_counter()
        try:
            model = vosk.Model(key)  # a path: never lang= (that downloads)
        except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
            logger.error("voice.asr.load_failed path=%s error=%s", key, exc)
            raise AsrUnavailable(Path(model_dir), reason="broken") from exc
        logger.info(
            "voice.asr.loaded path=%s seconds=%.1f", key, time.perf_counter() - started
        )
        _models[key] = model
        return model


def grammar_phrase(phrase: str) -> str:
    """A phrase as Vosk grammar words: Chinese character by character, other words as they are."""
    spaced = _HAN_RUN.sub(lambda m: " " + " ".join(m.group(0)) + " ", phrase)
    return " ".join(spaced.split())


def _result_text(result_json: str) -> str:
    return json.loads(result_json).get("text", "")


class AsrStream:
    """One utterance being recognised incrementally (one KaldiRecognizer).

    ``await feed(pcm16)`` as audio arrives (any chunk size; an odd trailing byte
    is kept for the next chunk), then ``await finish()`` once. Not meant for
    concurrent feeds from several tasks (they are serialised).
    """

    def __init__(
        self, recognizer: Any, release: Optional[Callable[[Any], None]] = None, gain: bool = True
    ):
        self._rec = recognizer
        self._gain = GainControl() if gain else None
        self._release = release
        self._lock = threading.Lock()
        self._segments: List[str] = []
        self._last = ""
        self._carry = b""
        self._final: Optional[str] = None
        self.bytes_fed = 0
        # Time spent decoding (feeds and finish), for the real-time factor.
        self.busy_seconds = 0.0
        # Recognised words with times and confidences ({"word", "start", "end", "conf"}).
        self.words: List[Dict[str, Any]] = []
        # The words of the phrase being decoded now (not yet a segment).
        self.partial = ""

    @property
    def seconds(self) -> float:
        """Duration of the audio fed so far."""
        return self.bytes_fed / (SAMPLE_RATE * 2)

    @property
    def finished(self) -> bool:
        return self._final is not None

    def _collect(self, result_json: str) -> None:
        result = json.loads(result_json)
        self.words.extend(w for w in result.get("result", []) if w.get("word") != "[unk]")
        text = normalize_transcript(result.get("text", ""))
        if text:
            self._segments.append(text)

    def _current(self, partial: str = "") -> str:
        return normalize_transcript(" ".join(self._segments + [partial]))

    def feed_sync(self, pcm16: bytes) -> Optional[str]:
        """Blocking :meth:`feed`."""
        with self._lock:
            started = time.perf_counter()
            try:
                return self._feed_locked(pcm16)
            finally:
                self.busy_seconds += time.perf_counter() - started

    def _feed_locked(self, pcm16: bytes) -> Optional[str]:
        if self._final is not None:
            raise RuntimeError("AsrStream.feed after finish")
        data = self._carry + bytes(pcm16)
        cut = len(data) - (len(data) % 2)
        data, self._carry = data[:cut], data[cut:]
        if not data:
            return None
        self.bytes_fed += len(data)
        if self._gain is not None:
            data = self._gain.process(data)
        for start in range(0, len(data), CHUNK_BYTES):
            if self._rec.AcceptWaveform(data[start : start + CHUNK_BYTES]):
                self._collect(self._rec.Result())
        partial = json.loads(self._rec.PartialResult()).get("partial", "")
        self.partial = normalize_transcript(partial)
        current = self._current(partial)
        if current == self._last:
            return None
        self._last = current
        return current

    @property
    def segments(self) -> List[str]:
        """The phrases recognised so far (the recogniser found their end)."""
        return list(self._segments)

    def end_phrase_sync(self) -> None:
        """End the phrase being decoded now (the speaker paused; a call's caller does not
        wait for the recogniser's own end-of-utterance rules): its words become a
        segment and decoding goes on with the next audio."""
        with self._lock:
            if self._final is None and self.partial:
                self._collect(self._rec.FinalResult())
                self.partial = ""

    def finish_sync(self) -> str:
        """Blocking :meth:`finish`."""
        with self._lock:
            if self._final is None:
                started = time.perf_counter()
                self._collect(self._rec.FinalResult())
                self.busy_seconds += time.perf_counter() - started
                self._final = self._current()
                recognizer, self._rec = self._rec, None
                if self._release is not None:
                    self._release(recognizer)  # reset and kept for the next stream
            return self._final

    async def feed(self, pcm16: bytes) -> Optional[str]:
        """Recognise more audio; the transcript so far if it changed, else None."""
        return await _run(self.feed_sync, pcm16)

    async def finish(self) -> str:
        """The final transcript of everything fed (idempotent)."""
        return await _run(self.finish_sync)


class Asr:
    """Speech recognition with one Vosk model directory (see the module doc)."""

    def __init__(
        self,
        model_dir: Path,
        phrases: Optional[List[str]] = None,
        *,
        grammar: Optional[str] = None,
        gain: bool = True,
    ):
        self.model_dir = Path(model_dir)
        self.phrases = list(phrases) if phrases else None
        self.gain = gain
        self._grammar = grammar
        if self._grammar is None and self.phrases:
            from voice.grammar import grammar_json, model_vocabulary

            vocabulary = model_vocabulary(self.model_dir)
            self._grammar = (
                grammar_json(self.phrases, vocabulary)
                if vocabulary
                else json.dumps([grammar_phrase(p) for p in self.phrases] + ["[unk]"], ensure_ascii=False)
            )
        self._model: Any = None
        self._idle: List[Any] = []
        self._idle_lock = threading.Lock()

    @property
    def grammar(self) -> Optional[str]:
        """The runtime grammar every stream is restricted to (JSON list), or None."""
        return self._grammar

    @property
    def available(self) -> bool:
        """The model directory exists and looks like a Vosk model."""
        return looks_like_model(self.model_dir)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load the model (once per process and directory). Raises :class:`AsrUnavailable`."""
        if self._model is None:
            self._model = _load_model(self.model_dir)

    def stream(self) -> AsrStream:
        """A new recognition stream (16 kHz, words on). Loads the model if needed:
        load it beforehand (off the event loop) or use :meth:`open_stream`."""
        import vosk

        self.load()
        with self._idle_lock:
            recognizer = self._idle.pop() if self._idle else None
        if recognizer is None:
            if self._grammar is not None:
                recognizer = vosk.KaldiRecognizer(self._model, float(SAMPLE_RATE), self._grammar)
            else:
                recognizer = vosk.KaldiRecognizer(self._model, float(SAMPLE_RATE))
            recognizer.SetWords(True)
        return AsrStream(recognizer, release=self._keep, gain=self.gain)

    def _keep(self, recognizer: Any) -> None:
        """Reset a finished stream's recogniser and keep it for reuse (bounded)."""
        recognizer.Reset()
        with self._idle_lock:
            if len(self._idle) < IDLE_RECOGNIZERS:
                self._idle.append(recognizer)

    @property
    def idle_recognizers(self) -> int:
        with self._idle_lock:
            return len(self._idle)

    def warm_up(self, seconds: float = WARM_UP_SECONDS) -> float:
        """Load the model and decode ``seconds`` of low noise once, so that the first
        real utterance finds a recogniser with its decoding-graph cache built.
        Returns the seconds it took (blocking: call it in a thread)."""
        import random
        import struct

        started = time.perf_counter()
        self.load()
        noise = random.Random(16000)
        samples = int(SAMPLE_RATE * seconds)
        pcm = struct.pack(f"<{samples}h", *(max(-32768, min(32767, int(noise.gauss(0, 2000)))) for _ in range(samples)))
        stream = self.stream()
        stream.feed_sync(pcm)
        stream.finish_sync()
        elapsed = time.perf_counter() - started
        logger.info("voice.asr.warmed seconds=%.2f", elapsed)
        return elapsed

    async def open_stream(self) -> AsrStream:
        """:meth:`stream`, with model loading and recogniser set-up off the event loop."""
        return await _run(self.stream)

    def transcribe_sync(self, pcm16: bytes) -> str:
        """Blocking :meth:`transcribe`."""
        started = time.perf_counter()
        stream = self.stream()
        stream.feed_sync(pcm16)
        text = stream.finish_sync()
        elapsed = time.perf_counter() - started
        audio = duration_seconds(pcm16)
        logger.info(
            "voice.asr.transcribed audio_seconds=%.1f seconds=%.2f rtf=%.2f chars=%d",
            audio, elapsed, elapsed / audio if audio else 0.0, len(text),
        )
        return text

    async def transcribe(self, pcm16: bytes) -> str:
        """The transcript of a whole utterance (decoded off the event loop)."""
        return await _run(self.transcribe_sync, pcm16)


def get_asr(settings: Any) -> Asr:
    """The process-wide :class:`Asr` of ``settings.vosk_model_dir`` (free speech, no grammar)."""
    model_dir = Path(settings.vosk_model_dir)
    key = str(model_dir.resolve())
    with _asrs_lock:
        asr = _asrs.get(key)
        if asr is None:
            asr = _asrs[key] = Asr(model_dir)
        return asr
