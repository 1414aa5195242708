"""Audio input checks and conversion for speech recognition.

Everything the recogniser sees is **mono 16 kHz signed 16-bit little-endian PCM**
(``SAMPLE_RATE``). :func:`pcm16_from_wav` turns an uploaded WAV file into that;
:func:`check_pcm16` checks raw PCM arriving on a stream.

Problems are reported as :class:`AudioError` with a short machine ``code``
(``unsupported_format``, ``too_large``, ``too_long``) and a ``message`` in
simplified Chinese that can be shown to the person at the kiosk as is.
"""

from __future__ import annotations

import io
import struct
import wave
from math import gcd

import numpy as np
from scipy.signal import resample_poly

SAMPLE_RATE = 16000
BYTES_PER_SECOND = SAMPLE_RATE * 2

# Sample rates accepted in WAV files (telephone 8 kHz up to studio 192 kHz).
MIN_RATE, MAX_RATE = 4000, 192000
MAX_CHANNELS = 8

_WAVE_FORMAT_PCM = 0x0001
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# Sub-format GUID of integer PCM inside WAVE_FORMAT_EXTENSIBLE (bytes 2.. of the GUID).
_KSDATAFORMAT_PCM_TAIL = bytes.fromhex("000000001000800000aa00389b71")

MSG_FORMAT = "只支持 WAV（PCM）音频，请重新录音。"
MSG_EMPTY = "没有收到录音，请按住按钮再说一遍。"


class AudioError(ValueError):
    """Audio that cannot be used: ``code`` for programs, ``message`` (Chinese) for people."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"AudioError({self.code!r}, {self.message!r})"


def _too_long(max_seconds: float) -> AudioError:
    return AudioError("too_long", f"录音太长了（最长 {max_seconds:g} 秒），请说短一些再试。")


def _too_large(max_bytes: int) -> AudioError:
    if max_bytes >= 1024 * 1024:
        limit = f"{max_bytes / (1024 * 1024):g} MB"
    else:
        limit = f"{max_bytes / 1024:g} KB"
    return AudioError("too_large", f"录音文件太大（最大 {limit}），请说短一些再试。")


def duration_seconds(pcm16: bytes) -> float:
    """Duration of mono 16 kHz PCM16 audio."""
    return len(pcm16) / BYTES_PER_SECOND


def check_pcm16(data: bytes, *, max_seconds: float, already_seconds: float = 0.0) -> None:
    """Check raw mono 16 kHz PCM16 from a stream.

    ``data`` must hold whole samples (an even number of bytes), and the stream's
    total duration — ``already_seconds`` received before plus this data — must not
    exceed ``max_seconds``. Raises :class:`AudioError`.
    """
    if len(data) % 2:
        raise AudioError("unsupported_format", "音频数据不完整，请重新录音。")
    if already_seconds + duration_seconds(data) > max_seconds:
        raise _too_long(max_seconds)


def _fmt_chunk(data: bytes):
    """(offset, bytes) of the ``fmt `` chunk of a RIFF/WAVE file, or None."""
    pos = 12
    while pos + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, pos)
        if chunk_id == b"fmt ":
            return pos + 8, data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
    return None


def _open_wave(data: bytes) -> wave.Wave_read:
    """Open a PCM WAV; WAVE_FORMAT_EXTENSIBLE with integer PCM is accepted too
    (the stdlib reader of Python 3.10 knows only the plain PCM tag)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("unsupported_format", MSG_FORMAT)
    found = _fmt_chunk(data)
    if found is None or len(found[1]) < 16:
        raise AudioError("unsupported_format", MSG_FORMAT)
    offset, fmt = found
    tag = struct.unpack_from("<H", fmt)[0]
    if tag == _WAVE_FORMAT_EXTENSIBLE:
        if len(fmt) < 40 or fmt[26:40] != _KSDATAFORMAT_PCM_TAIL or fmt[24:26] != b"\x01\x00":
            raise AudioError("unsupported_format", MSG_FORMAT)
        patched = bytearray(data)
        struct.pack_into("<H", patched, offset, _WAVE_FORMAT_PCM)
        data = bytes(patched)
    elif tag != _WAVE_FORMAT_PCM:  # a-law, mu-law, ADPCM, float, MP3-in-WAV ...
        raise AudioError("unsupported_format", MSG_FORMAT)
    try:
        return wave.open(io.BytesIO(data), "rb")
    except (wave.Error, EOFError, struct.error) as exc:
        raise AudioError("unsupported_format", MSG_FORMAT) from exc


def _to_float(frames: bytes, width: int) -> np.ndarray:
    """Interleaved integer PCM samples → float64 in [-1, 1)."""
    if width == 1:  # 8-bit WAV is unsigned
        return (np.frombuffer(frames, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
    if width == 3:
        raw = np.frombuffer(frames, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        return value.astype(np.float64) / float(1 << 23)
    if width == 4:
        return np.frombuffer(frames, dtype="<i4").astype(np.float64) / float(1 << 31)
    raise AudioError("unsupported_format", MSG_FORMAT)


def pcm16_from_wav(data: bytes, *, max_bytes: int, max_seconds: float) -> bytes:
    """Convert a PCM WAV file (8/16/24/32-bit integer, any channels and rate) to
    mono 16 kHz PCM16 little-endian.

    Refuses with :class:`AudioError`: empty data, anything but an integer-PCM WAV
    (``unsupported_format``), more than ``max_bytes`` (``too_large``) or more than
    ``max_seconds`` of audio (``too_long``). Silence is fine (the recogniser then
    hears nothing).
    """
    if not data:
        raise AudioError("unsupported_format", MSG_EMPTY)
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    with _open_wave(data) as reader:
        channels = reader.getnchannels()
        width = reader.getsampwidth()
        rate = reader.getframerate()
        if not (1 <= channels <= MAX_CHANNELS and 1 <= width <= 4 and MIN_RATE <= rate <= MAX_RATE):
            raise AudioError("unsupported_format", MSG_FORMAT)
        # The header's frame count may be wrong (streaming writers): read what is there.
        try:
            frames = reader.readframes(reader.getnframes())
        except (wave.Error, EOFError, struct.error) as exc:
            raise AudioError("unsupported_format", MSG_FORMAT) from exc
    frame_bytes = channels * width
    count = len(frames) // frame_bytes
    if count / rate > max_seconds:
        raise _too_long(max_seconds)
    if count == 0:
        return b""
    samples = _to_float(frames[: count * frame_bytes], width).reshape(count, channels)
    mono = samples.mean(axis=1) if channels > 1 else samples[:, 0]
    if rate != SAMPLE_RATE:
        common = gcd(rate, SAMPLE_RATE)
        mono = resample_poly(mono, SAMPLE_RATE // common, rate // common)
    out = np.clip(np.round(mono * 32768.0), -32768, 32767).astype("<i2")
    return out.tobytes()


# Automatic gain control: quiet speakers and far microphones are brought up to a
# peak of TARGET_PEAK of full scale, never more than MAX_GAIN times, never clipped.
TARGET_PEAK = 0.9
MAX_GAIN = 30.0
# Below this peak (of full scale) a stream is treated as silence and left alone.
NOISE_FLOOR = 0.002


class GainControl:
    """Peak-following gain for a PCM16 stream (one per utterance).

    The gain is ``TARGET_PEAK / peak so far`` (bounded by ``MAX_GAIN``), where the
    peak includes the chunk being processed, so the output never clips and the
    gain only goes down during an utterance (no pumping). Loud input passes
    unchanged (gain ≥ 1 only; a loud speaker is never made quieter), and audio whose
    peak stays under ``NOISE_FLOOR`` is left as it is.
    """

    def __init__(self, target_peak: float = TARGET_PEAK, max_gain: float = MAX_GAIN):
        self.target = target_peak * 32767.0
        self.max_gain = max_gain
        self.peak = 0.0
        self.carry = b""

    @property
    def gain(self) -> float:
        if self.peak < NOISE_FLOOR * 32767.0:
            return 1.0
        return max(1.0, min(self.max_gain, self.target / self.peak))

    def process(self, pcm16: bytes) -> bytes:
        data = self.carry + bytes(pcm16)
        cut = len(data) - (len(data) % 2)
        data, self.carry = data[:cut], data[cut:]
        if not data:
            return b""
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32)
        self.peak = max(self.peak, float(np.abs(samples).max()))
        gain = self.gain
        if gain == 1.0:
            return data
        return np.clip(np.rint(samples * gain), -32768, 32767).astype("<i2").tobytes()


def normalize_gain(pcm16: bytes) -> bytes:
    """A whole utterance brought to the target peak (see :class:`GainControl`)."""
    control = GainControl()
    samples = np.frombuffer(bytes(pcm16)[: len(pcm16) - len(pcm16) % 2], dtype="<i2")
    control.peak = float(np.abs(samples.astype(np.float32)).max()) if samples.size else 0.0
    return control.process(pcm16)


def louder_wav(wav: bytes, drive: float = 2.5) -> bytes:
    """A 16-bit PCM WAV made louder ("大声点"): peak-normalised, then soft-clipped
    (``tanh``), which raises the quiet parts of speech most and never clips. Other
    WAVs come back unchanged."""
    try:
        with wave.open(io.BytesIO(wav), "rb") as reader:
            params = reader.getparams()
            frames = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError):
        return wav
    if params.sampwidth != 2 or not frames:
        return wav
    samples = np.frombuffer(frames[: len(frames) - len(frames) % 2], dtype="<i2").astype(np.float32)
    top = float(np.abs(samples).max()) or 1.0
    shaped = np.tanh(drive * samples / top) / np.tanh(drive)
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setparams(params)
        writer.writeframes(np.clip(np.rint(shaped * 32000.0), -32768, 32767).astype("<i2").tobytes())
    return out.getvalue()
