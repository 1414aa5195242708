"""Audio conversion (voice/audio.py), transcript correction (voice/correct.py) and the
model-independent parts of voice/asr.py."""

from __future__ import annotations

import io
import json
import struct
import wave

import numpy as np
import pytest

from voice.asr import Asr, AsrUnavailable, get_asr, grammar_phrase, normalize_transcript
from voice.audio import (
    SAMPLE_RATE,
    AudioError,
    check_pcm16,
    duration_seconds,
    pcm16_from_wav,
)
from voice.correct import catalog_terms, correct_transcript

MB = 1024 * 1024


def sine(rate: int, seconds: float, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def to_int(samples: np.ndarray, width: int) -> bytes:
    """Float samples (interleaved) → little-endian integer PCM of ``width`` bytes."""
    if width == 1:
        return np.clip(np.round(samples * 127 + 128), 0, 255).astype(np.uint8).tobytes()
    if width == 2:
        return np.round(samples * 32767).astype("<i2").tobytes()
    if width == 3:
        ints = np.round(samples * (2**23 - 1)).astype("<i4").tobytes()
        return b"".join(ints[i : i + 3] for i in range(0, len(ints), 4))
    return np.round(samples * (2**31 - 1)).astype("<i4").tobytes()


def make_wav(samples: np.ndarray, rate: int, channels: int = 1, width: int = 2) -> bytes:
    """A PCM WAV of float samples; for several channels ``samples`` is (frames, channels)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(to_int(np.asarray(samples).reshape(-1), width))
    return buf.getvalue()


def riff(fmt: bytes, data: bytes) -> bytes:
    """A RIFF/WAVE file with the given fmt chunk body and data."""
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def peak_hz(pcm: bytes) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * SAMPLE_RATE / len(x))


def convert(data: bytes, **kw) -> bytes:
    return pcm16_from_wav(data, max_bytes=kw.get("max_bytes", 10 * MB), max_seconds=kw.get("max_seconds", 60))


# ------------------------------------------------------------------- conversion
@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_any_rate_becomes_16k_with_the_same_duration_and_pitch(rate):
    pcm = convert(make_wav(sine(rate, 1.5), rate))
    assert abs(len(pcm) // 2 - int(1.5 * SAMPLE_RATE)) <= 1
    assert duration_seconds(pcm) == pytest.approx(1.5, abs=1e-3)
    assert peak_hz(pcm) == pytest.approx(440, abs=2)
    level = np.abs(np.frombuffer(pcm, dtype="<i2")).max() / 32768
    assert level == pytest.approx(0.5, abs=0.03)


def test_stereo_is_mixed_to_mono():
    left, right = sine(44100, 1.0, 440), sine(44100, 1.0, 1000)
    pcm = convert(make_wav(np.stack([left, right], axis=1), 44100, channels=2))
    assert len(pcm) == 2 * SAMPLE_RATE
    x = np.frombuffer(pcm, dtype="<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    strong = set(np.round(freqs[spectrum > spectrum.max() * 0.5]))
    assert strong == {440.0, 1000.0}  # both channels, each at half level
    # Opposite channels cancel: the mix is silence.
    silent = convert(make_wav(np.stack([left, -left], axis=1), 44100, channels=2))
    assert np.abs(np.frombuffer(silent, dtype="<i2")).max() <= 2


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_8_16_24_32_bit_integer_pcm(width):
    pcm = convert(make_wav(sine(22050, 1.0), 22050, width=width))
    assert len(pcm) == 2 * SAMPLE_RATE
    assert peak_hz(pcm) == pytest.approx(440, abs=2)
    level = np.abs(np.frombuffer(pcm, dtype="<i2")).max() / 32768
    assert level == pytest.approx(0.5, abs=0.03)


def test_wave_format_extensible_pcm_is_accepted():
    data = to_int(sine(48000, 0.5), 3)
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, 48000, 48000 * 3, 3, 24, 22, 24, 4)
    fmt += bytes.fromhex("0100000000001000800000aa00389b71")  # KSDATAFORMAT_SUBTYPE_PCM
    pcm = convert(riff(fmt, data))
    assert len(pcm) == SAMPLE_RATE  # 0.5 s
    assert peak_hz(pcm) == pytest.approx(440, abs=3)


def test_silence_only_is_fine():
    pcm = convert(make_wav(np.zeros(22050), 22050))
    assert len(pcm) == 2 * SAMPLE_RATE and not any(pcm)


def test_a_wav_without_samples_gives_no_audio():
    assert convert(make_wav(np.zeros(0), 16000)) == b""


# --------------------------------------------------------------------- refusals
def refused(data: bytes, **kw) -> AudioError:
    with pytest.raises(AudioError) as info:
        convert(data, **kw)
    return info.value


def test_too_large_is_refused_before_parsing():
    err = refused(make_wav(sine(16000, 1.0), 16000), max_bytes=20000)
    assert err.code == "too_large"
    assert "太大" in err.message
    assert refused(b"x" * 3000, max_bytes=2048).code == "too_large"


def test_too_long_is_refused():
    err = refused(make_wav(np.zeros(16000 * 3), 16000), max_seconds=2.5)
    assert err.code == "too_long"
    assert "2.5 秒" in err.message
    # Exactly at the limit is fine.
    assert len(convert(make_wav(np.zeros(16000 * 2), 16000), max_seconds=2.0)) == 4 * SAMPLE_RATE


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is not audio at all",
        b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb" * 100,  # an MP3
        b"OggS" + b"\x00" * 100,
        b"RIFF\x10\x00\x00\x00WAVE",  # no chunks
        b"RIFF\x24\x00\x00\x00AVI LIST",  # RIFF, not WAVE
    ],
    ids=["empty", "text", "mp3", "ogg", "no-chunks", "avi"],
)
def test_not_a_wav_is_refused(data):
    err = refused(data)
    assert err.code == "unsupported_format"
    assert err.message  # Chinese text for the person at the kiosk
    assert isinstance(err, ValueError)


def test_the_format_message_names_wav_pcm():
    assert refused(b"not a wav").message == "只支持 WAV（PCM）音频，请重新录音。"


@pytest.mark.parametrize(
    "tag,bits", [(6, 8), (7, 8), (2, 4), (0x11, 4), (3, 32), (0x55, 0)],
    ids=["a-law", "mu-law", "ms-adpcm", "ima-adpcm", "float", "mp3-in-wav"],
)
def test_compressed_and_float_wav_are_refused(tag, bits):
    block = max(1, bits // 8)
    fmt = struct.pack("<HHIIHH", tag, 1, 8000, 8000 * block, block, bits)
    assert refused(riff(fmt, b"\x55" * 8000)).code == "unsupported_format"


def test_extensible_float_is_refused():
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, 16000, 64000, 4, 32, 22, 32, 4)
    fmt += bytes.fromhex("0300000000001000800000aa00389b71")  # IEEE float sub-format
    assert refused(riff(fmt, b"\x00" * 6400)).code == "unsupported_format"


def test_absurd_rate_or_channels_are_refused():
    assert refused(make_wav(np.zeros(100), 1000)).code == "unsupported_format"
    fmt = struct.pack("<HHIIHH", 1, 12, 16000, 16000 * 24, 24, 16)
    assert refused(riff(fmt, b"\x00" * 2400)).code == "unsupported_format"


def test_truncated_data_uses_the_whole_frames_present():
    data = make_wav(sine(16000, 1.0), 16000)
    pcm = convert(data[: len(data) - 1001])  # cut mid-frame; the header still says 1 s
    assert len(pcm) == 2 * 16000 - 1002


# ---------------------------------------------------------------- raw streams
def test_check_pcm16_whole_samples_and_total_duration():
    check_pcm16(b"\0" * 32000, max_seconds=1.0)
    with pytest.raises(AudioError) as info:
        check_pcm16(b"\0" * 3, max_seconds=1.0)
    assert info.value.code == "unsupported_format"
    with pytest.raises(AudioError) as info:
        check_pcm16(b"\0" * 32002, max_seconds=1.0)
    assert info.value.code == "too_long"
    check_pcm16(b"\0" * 16000, max_seconds=1.0, already_seconds=0.5)
    with pytest.raises(AudioError):
        check_pcm16(b"\0" * 16002, max_seconds=1.0, already_seconds=0.5)


def test_duration_seconds():
    assert duration_seconds(b"") == 0
    assert duration_seconds(b"\0" * 48000) == 1.5


# -------------------------------------------------------------- asr (no model)
def test_missing_model_is_unavailable_with_instructions(tmp_path):
    asr = Asr(tmp_path / "vosk-model-small-cn-0.22")
    assert not asr.available
    with pytest.raises(AsrUnavailable) as info:
        asr.load()
    message = info.value.message
    assert str(tmp_path / "vosk-model-small-cn-0.22") in message
    assert "banshi voice download-model" in message and "BANSHI_VOSK_MODEL_PATH" in message
    assert str(info.value) == message
    with pytest.raises(AsrUnavailable):
        asr.stream()


def test_a_directory_without_a_model_is_not_available(tmp_path):
    (tmp_path / "conf").mkdir()
    assert not Asr(tmp_path).available
    (tmp_path / "am").mkdir()
    (tmp_path / "am" / "final.mdl").write_bytes(b"x")
    (tmp_path / "graph").mkdir()
    assert Asr(tmp_path).available


def test_a_broken_model_is_unavailable(tmp_path):
    (tmp_path / "am").mkdir()
    (tmp_path / "am" / "final.mdl").write_bytes(b"not a model")
    (tmp_path / "graph").mkdir()
    with pytest.raises(AsrUnavailable) as info:
        Asr(tmp_path).load()
    assert info.value.reason == "broken"
    assert "--force" in info.value.message


def test_get_asr_is_one_per_model_dir(tmp_path):
    class S:
        vosk_model_dir = tmp_path / "m"

    class T:
        vosk_model_dir = tmp_path / "other"

    assert get_asr(S()) is get_asr(S())
    assert get_asr(S()) is not get_asr(T())


def test_transcript_spaces_are_removed_around_chinese_only():
    assert normalize_transcript("我 想 办 社保卡") == "我想办社保卡"
    assert normalize_transcript("[unk] 我 要 办 ETC 卡 [unk]") == "我要办ETC卡"
    assert normalize_transcript("안녕 하세요  오늘") == "안녕 하세요 오늘"
    assert normalize_transcript("hello world") == "hello world"
    assert normalize_transcript(" ") == ""


def test_grammar_phrases_split_chinese_into_characters():
    assert grammar_phrase("社保卡") == "社 保 卡"
    assert grammar_phrase("办 ETC 卡") == "办 ETC 卡"
    assert grammar_phrase("办ETC卡") == "办 ETC 卡"
    assert grammar_phrase("안녕하세요 오늘") == "안녕하세요 오늘"


# ----------------------------------------------------------------- correction
TERMS = ["社保卡", "户口", "护照", "医保", "低保", "公积金", "居住证", "营业执照", "无犯罪记录证明"]


@pytest.mark.parametrize(
    "heard,meant",
    [
        ("我想办设保卡", "我想办社保卡"),
        ("我的社宝卡丢了", "我的社保卡丢了"),
        ("射保卡怎么补办", "社保卡怎么补办"),
        ("护口本丢了怎么办", "户口本丢了怎么办"),
        ("我要办户照", "我要办护照"),
        ("低宝怎么申请", "低保怎么申请"),
        ("一保报销", "医保报销"),
        ("我想办居注证", "我想办居住证"),  # zh/z
        ("营业直照怎么办", "营业执照怎么办"),
        ("开无犯罪记路证明", "开无犯罪记录证明"),
        ("社保卡和设保卡", "社保卡和社保卡"),
        ("ETC 设保卡", "ETC 社保卡"),  # other text is kept as it is
    ],
)
def test_homophones_of_terms_are_corrected(heard, meant):
    assert correct_transcript(heard, TERMS) == meant


@pytest.mark.parametrize(
    "text",
    [
        "可以保证吗",  # 以保 inside the words 可以 / 保证
        "我买了一包烟",  # no right character: another word
        "这个虎口很疼",
        "这个等级很高",
        "不办了",  # function characters are never changed
        "那结婚证呢",
        "离异的能申请公租房吗",
        "父母房子过户给子女",
        "网上报名要上传户口本吗",
        "简易注销公示多少天",
        "我的车证丢了",
        "她怀了孩子",
        "社保卡丢了",  # already right
        "今天天气怎么样",
        "",
    ],
)
def test_common_words_are_not_rewritten(text, catalog_term_list):
    assert correct_transcript(text, TERMS) == text
    assert correct_transcript(text, catalog_term_list) == text


@pytest.fixture(scope="module")
def catalog():
    from knowledge.catalog import load_catalog

    return load_catalog()


@pytest.fixture(scope="module")
def catalog_term_list(catalog):
    return catalog_terms(catalog)


def test_catalog_terms_leave_out_the_miswritings(catalog_term_list):
    terms = set(catalog_term_list)
    assert {"社保卡", "社会保障卡申领", "护照", "低保", "户口迁入", "居民身份证补领"} <= terms
    assert "户口" in terms  # from 去世+户口, also inside 户口迁入
    assert not {"设保卡", "社宝卡", "射保卡", "户照", "低宝", "护口迁移", "公基金提取"} & terms
    assert "坏了" not in terms  # a part of 身份证+坏了 only
    assert not any("+" in t or "（" in t for t in catalog_term_list)
    assert len(catalog_term_list) == len(terms)


def test_catalog_terms_correct_mishearings(catalog_term_list):
    assert correct_transcript("我想办设保卡", catalog_term_list) == "我想办社保卡"
    assert correct_transcript("护口迁移要什么材料", catalog_term_list) == "户口迁移要什么材料"
    assert correct_transcript("个人所得税会算", catalog_term_list) == "个人所得税汇算"
    assert correct_transcript("低宝怎么申请", catalog_term_list) == "低保怎么申请"


def test_official_catalog_text_is_never_changed(catalog, catalog_term_list):
    sentences = []
    for record in catalog.items():
        sentences += [record.summary, record.applicants, record.time_limit, record.fees]
        sentences += list(record.conditions) + list(record.steps)
        sentences += [m.name for m in record.materials] + [m.note for m in record.materials if m.note]
    assert len(sentences) > 1000
    changed = [s for s in sentences if correct_transcript(s, catalog_term_list) != s]
    assert changed == []


def test_catalog_phrases_for_a_grammar(catalog):
    from voice.grammar import catalog_phrases

    phrases = catalog_phrases(catalog, situations=False)
    assert "社保卡" in phrases and "设保卡" not in phrases
    assert len(phrases) == len(set(phrases)) > 300
    assert not any("+" in p for p in phrases)


# ------------------------------------------------------------------ gain, grammar, choice
def test_gain_control_raises_quiet_audio_without_clipping():
    import numpy as np

    from voice.audio import MAX_GAIN, GainControl, normalize_gain

    quiet = (np.sin(np.arange(16000) / 5) * 1000).astype("<i2").tobytes()
    louder = np.frombuffer(normalize_gain(quiet), dtype="<i2")
    assert 0.85 * 32767 <= np.abs(louder).max() <= 32767
    # Streamed in odd-sized pieces: the gain only goes down, nothing clips, no byte is lost.
    control = GainControl()
    out = b"".join(control.process(quiet[i : i + 3333]) for i in range(0, len(quiet), 3333)) + control.carry
    assert len(out) == len(quiet) and np.abs(np.frombuffer(out, dtype="<i2")).max() <= 32767
    # Loud speech passes unchanged; near-silence is left alone (noise is not blown up).
    loud = (np.sin(np.arange(1600) / 5) * 30000).astype("<i2").tobytes()
    assert normalize_gain(loud) == loud
    hiss = (np.sin(np.arange(1600) / 5) * 20).astype("<i2").tobytes()
    assert normalize_gain(hiss) == hiss
    tiny = (np.sin(np.arange(1600) / 5) * 100).astype("<i2").tobytes()
    assert np.abs(np.frombuffer(normalize_gain(tiny), dtype="<i2")).max() == pytest.approx(100 * MAX_GAIN, rel=0.01)


def test_phrases_are_cut_into_the_models_words():
    from voice.grammar import grammar_json, segment

    vocabulary = frozenset({"社保", "卡", "社", "保", "丢了", "丢", "了", "咋", "补", "补办"})
    assert segment("社保卡丢了咋补？", vocabulary) == ["社保", "卡", "丢了", "咋", "补"]
    assert segment("护照", vocabulary) == []  # a character the model does not know drops the phrase
    grammar = json.loads(grammar_json(["社保卡", "社保卡", "护照", "补办"], vocabulary))
    assert grammar == ["社保 卡", "补办", "[unk]"]


def test_the_symbol_table_of_a_lookahead_graph_is_read(tmp_path):
    import struct

    from voice.grammar import model_vocabulary

    words = ["<eps>", "!SIL", "[unk]", "社保", "卡", "#0", "<s>", "</s>"]
    table = struct.pack("<i", 2125658996) + struct.pack("<i", 9) + b"words.txt" + struct.pack("<qq", len(words), len(words))
    for key, word in enumerate(words):
        data = word.encode()
        table += struct.pack("<i", len(data)) + data + struct.pack("<q", key)
    (tmp_path / "graph").mkdir()
    (tmp_path / "graph" / "Gr.fst").write_bytes(b"\xd6\xfd\xb2\x7e" + b"header" * 5 + table + b"arcs")
    assert model_vocabulary(tmp_path) == frozenset({"[unk]", "社保", "卡"})


def test_the_biased_transcript_is_preferred_unless_the_free_one_is_clearly_better():
    from voice.biased import choose

    both = {"free": "我要把社保卡", "biased": "我要办社保卡"}
    assert choose(both, {"free": 0.9, "biased": 0.9}, 0.5) == "biased"
    assert choose(both, {"free": 0.9, "biased": 0.3}, 0.5) == "free"  # only the free one links an item
    assert choose(both, {"free": 0.95, "biased": 0.6}, 0.5) == "free"  # clearly surer
    assert choose(both, {"free": 0.2, "biased": 0.1}, 0.5) == "biased"
    assert choose({"free": "你好", "biased": ""}, {}, 0.5) == "free"
    assert choose({"free": "", "biased": "低保"}, {}, 0.5) == "biased"
