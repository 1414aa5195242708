"""Compressed audio (WeChat voice messages: AMR-NB, also Speex, MP3, Opus, WAV...)
to 16 kHz mono PCM16 for the recogniser, with PyAV (FFmpeg's decoders in a wheel).

Bounded: decoding stops with an ``AudioError`` once more than ``max_seconds`` of
audio came out; data FFmpeg cannot read is an ``AudioError`` too.
"""

from __future__ import annotations

import io

from voice.audio import SAMPLE_RATE, AudioError, _too_long

MSG_UNREADABLE = "无法识别该语音格式，请重新录音或打字。"


def pcm16_from_media(data: bytes, max_seconds: float) -> bytes:
    """Decode any audio container/codec FFmpeg knows into mono 16 kHz PCM16."""
    import av

    if not data:
        raise AudioError("empty", MSG_UNREADABLE)
    limit = int(max_seconds * SAMPLE_RATE * 2)
    out = bytearray()
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise AudioError("format", MSG_UNREADABLE)
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(stream):
                for chunk in resampler.resample(frame):
                    out += bytes(chunk.planes[0])[: chunk.samples * 2]
                if len(out) > limit:
                    raise _too_long(max_seconds)
            for chunk in resampler.resample(None):
                out += bytes(chunk.planes[0])[: chunk.samples * 2]
    except AudioError:
        raise
    except (av.error.FFmpegError, ValueError, OSError):
        raise AudioError("format", MSG_UNREADABLE) from None
    if len(out) > limit:
        raise _too_long(max_seconds)
    return bytes(out)


def encode_amr(pcm16: bytes) -> bytes:
    """AMR-NB (8 kHz, 12.2 kbit/s, the WeChat voice format) of 16 kHz mono PCM16:
    used by the WeChat simulator and the tests."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="amr") as container:
        stream = container.add_stream("libopencore_amrnb", rate=8000)
        stream.layout = "mono"
        stream.bit_rate = 12200
        resampler = av.AudioResampler(format="s16", layout="mono", rate=8000)
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm16) // 2)
        frame.sample_rate = SAMPLE_RATE
        frame.planes[0].update(pcm16[: (len(pcm16) // 2) * 2])
        for chunk in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(chunk):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()
