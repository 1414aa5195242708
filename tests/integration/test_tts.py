"""Speech synthesis with the real engine (pyttsx3 + espeak-ng) and POST /api/v1/tts."""

from __future__ import annotations

import asyncio
import io
import re
import threading
import wave

import pytest
from fastapi.testclient import TestClient

from assistant.api.app import create_app
from knowledge.answers import QUESTION_LABELS, answer
from voice import tts as tts_module
from voice.speech_text import speech_text, split_sentences
from tests.conftest import isolated_settings
from voice.tts import (
    NO_VOICE,
    Tts,
    TtsUnavailable,
    VoiceProbe,
    choose_voice,
    concat_wavs,
    get_tts,
    is_mandarin_candidate,
    judge_probe,
    wav_duration,
)

LANGUAGE_SWITCH = re.compile(r"\([a-z]{2,3}(?:-[a-z]+)*\)")
SHORT = "您好，请问要办理什么业务"  # 12 characters
TEN = "请带好您的身份证原件"  # 10 characters
FORTY = "请带好您的身份证原件，到政务服务中心一楼综合窗口取号，工作人员会为您办理"  # 36


@pytest.fixture(scope="module")
def tts(settings) -> Tts:
    engine = Tts(settings.tts_rate, settings.tts_rate_elderly, cache_entries=64)
    assert engine.available, engine.probes
    return engine


def _params(wav: bytes):
    with wave.open(io.BytesIO(wav), "rb") as reader:
        return reader.getnchannels(), reader.getsampwidth(), reader.getframerate(), reader.getnframes()


async def test_a_chinese_sentence_becomes_a_wav_file(tts):
    wav = await tts.synthesize(SHORT)
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    channels, width, rate, frames = _params(wav)
    assert (channels, width) == (1, 2) and rate >= 8000 and frames > 0
    seconds = wav_duration(wav)
    assert seconds == pytest.approx(frames / rate)
    # A Mandarin reading at 165 words per minute: roughly 0.15-0.6 s per character.
    assert 0.15 * len(SHORT) < seconds < 0.6 * len(SHORT)


async def test_duration_grows_with_the_text(tts):
    ten = wav_duration(await tts.synthesize(TEN))
    forty = wav_duration(await tts.synthesize(FORTY))
    ratio = forty / ten
    assert 2.5 < ratio < 5.5, (ten, forty)


async def test_the_elderly_rate_is_slower(tts):
    normal = wav_duration(await tts.synthesize(FORTY))
    elderly = wav_duration(await tts.synthesize(FORTY, elderly=True))
    assert 1.2 <= elderly / normal <= 2.0, (normal, elderly)


async def test_the_chosen_voice_is_mandarin_and_the_spelling_voice_is_rejected(tts):
    assert await tts.start() is True
    voice_id = tts.voice_id
    assert voice_id and "cmn" in voice_id.lower()
    probes = {p.voice_id: p for p in tts.probes}
    chosen = probes[voice_id]
    assert chosen.ok and not chosen.language_switch
    # Tonal Mandarin phonemes (tone numbers such as 51, 214), no switch to English.
    assert chosen.phonemes and re.search(r"[a-z]'?[a-zA-Z.@-]*[1-5]{2,3}", chosen.phonemes)
    assert "(en)" not in chosen.phonemes
    # espeak-ng's "cmn" voice (what "zh" resolves to) spells pinyin in English.
    spelling = probes.get("sit/cmn")
    if spelling is not None:
        assert not spelling.ok and spelling.language_switch
        assert "(en)" in (spelling.phonemes or "")
        assert spelling.seconds_per_char > chosen.seconds_per_char
    # Only Mandarin candidates were probed (no Cantonese or Hakka voices).
    assert all(is_mandarin_candidate(p.voice_id, p.name, p.languages) for p in probes.values())


async def test_the_voice_reads_every_catalog_answer_as_mandarin(tts, catalog):
    """Ear-independent: espeak-ng's phonemes for what is said hold no switch to
    English rules (no pinyin spelling, no letters read as English words)."""
    for record in catalog.items():
        text = "\n".join(answer(catalog, record.id, q) for q in ["overview", *QUESTION_LABELS])
        phonemes = await tts.transcribe(text)
        assert phonemes and "(en)" not in phonemes and not LANGUAGE_SWITCH.search(phonemes), record.id
    phonemes = await tts.transcribe("您的办件编号是ZW20251102004，手机尾号4004，9:00-17:00可领取，工本费¥20。")
    assert phonemes and not LANGUAGE_SWITCH.search(phonemes)


def test_voice_choice_rules_are_driver_agnostic():
    def probe(voice_id, seconds_per_char, mainland=True, switch=False, selected=True):
        result = VoiceProbe(voice_id=voice_id, name=voice_id, languages=[], mainland=mainland)
        result.selected = selected
        result.seconds = seconds_per_char * 11
        result.seconds_per_char = seconds_per_char
        result.language_switch = switch
        return judge_probe(result)

    spelling = probe("cmn", 0.46, switch=True)
    reading = probe("cmn-latn-pinyin", 0.30)
    silent = probe("skips-chinese", 0.01)
    unselectable = probe("broken", 0.3, selected=False)
    taiwan = probe("zh-tw", 0.28, mainland=False)
    assert not spelling.ok and not silent.ok and not unselectable.ok and reading.ok
    assert choose_voice([spelling, reading, silent, unselectable, taiwan]) is reading
    assert choose_voice([taiwan, spelling]) is taiwan
    # Without a phoneme check (SAPI5, NSSpeech) the longer (spelling) reading loses.
    assert choose_voice([probe("a", 0.46), probe("b", 0.30)]).voice_id == "b"
    assert choose_voice([spelling, silent]) is None
    # Voice descriptions of the three drivers.
    assert is_mandarin_candidate("sit/cmn-latn-pinyin", "Chinese (Mandarin, latin as Pinyin)", ["cmn-latn-pinyin"])
    assert is_mandarin_candidate(r"HKEY\TTS_MS_ZH-CN_HUIHUI_11.0", "Microsoft Huihui Desktop - Chinese (Simplified)", [])
    assert is_mandarin_candidate("com.apple.speech.synthesis.voice.ting-ting", "Ting-Ting", ["zh_CN"])
    assert not is_mandarin_candidate("sit/yue", "Chinese (Cantonese)", ["yue"])
    assert not is_mandarin_candidate("com.apple.voice.sin-ji", "Sin-ji", ["zh_HK"])
    assert not is_mandarin_candidate("gmw/en", "English (Great Britain)", ["en-gb"])


async def test_the_cache_returns_the_same_bytes_without_synthesis(settings):
    engine = Tts(settings.tts_rate, settings.tts_rate_elderly, cache_entries=8)
    first = await engine.synthesize("社保卡补办要带什么材料")
    calls = engine.synth_count
    second = await engine.synthesize("社保卡补办要带什么材料")
    assert second == first and engine.synth_count == calls and engine.cache_hits == 1
    # The key is the spoken text: the same words written differently hit too.
    await engine.synthesize("  社保卡补办要带什么材料  ")
    assert engine.synth_count == calls and engine.cache_hits == 2
    # The elderly rate is another entry.
    slow = await engine.synthesize("社保卡补办要带什么材料", elderly=True)
    assert slow != first and engine.synth_count == calls + 1


async def test_the_cache_is_bounded(settings):
    engine = Tts(settings.tts_rate, settings.tts_rate_elderly, cache_entries=2)
    for text in ["第一句话", "第二句话", "第三句话"]:
        await engine.synthesize(text)
    calls = engine.synth_count
    await engine.synthesize("第一句话")  # evicted: synthesised again
    assert engine.synth_count == calls + 1
    none = Tts(settings.tts_rate, settings.tts_rate_elderly, cache_entries=0)
    await none.synthesize("第一句话")
    await none.synthesize("第一句话")
    assert none.synth_count == 2 and none.cache_hits == 0


async def test_concurrent_calls_do_not_interleave(settings):
    # espeak-ng's output varies slightly from run to run (up to ~60-100 ms
    # under load), so each result is compared by duration with a sequential one; the
    # texts differ enough in length (and rate) that a mixed-up or cut result shows.
    texts = ["您好", TEN, FORTY, f"您的办件编号是ZW20251102004，已办结。{FORTY}。{FORTY}。"]
    reference_engine = Tts(settings.tts_rate, settings.tts_rate_elderly, cache_entries=0)
    reference = {}
    for text in texts:
        for elderly in (False, True):
            reference[text, elderly] = wav_duration(await reference_engine.synthesize(text, elderly=elderly))
    durations = sorted(reference.values())
    assert all(b - a > 0.3 for a, b in zip(durations, durations[1:])), reference

    def same(wav: bytes, job) -> bool:
        # The nearest sequential reference must be this job's own (references
        # are >0.3 s apart; jitter under load reaches ~0.1 s), and within 0.15 s.
        if wav[:4] != b"RIFF":
            return False
        duration = wav_duration(wav)
        nearest = min(reference, key=lambda key: abs(reference[key] - duration))
        return nearest == job and abs(reference[job] - duration) < 0.15

    engine = Tts(settings.tts_rate, settings.tts_rate_elderly, cache_entries=0)
    jobs = [(text, elderly) for _ in range(3) for text in texts for elderly in (False, True)]
    results = await asyncio.gather(*(engine.synthesize(t, elderly=e) for t, e in jobs))
    for job, wav in zip(jobs, results):
        assert same(wav, job), (job, wav_duration(wav), reference[job])
    assert engine.synth_count == sum(len(split_sentences(speech_text(t))) for t, _ in jobs)

    # From other threads with their own event loops (e.g. TestClient, CLI) too.
    errors = []
    outputs = {}

    def other_loop(index: int) -> None:
        text, elderly = jobs[index]
        try:
            outputs[index] = asyncio.run(engine.synthesize(text, elderly=elderly))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=other_loop, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    for i in range(8):
        assert same(outputs[i], jobs[i]), (jobs[i], wav_duration(outputs[i]), reference[jobs[i]])


async def test_long_answers_come_sentence_by_sentence(settings, catalog):
    engine = Tts(settings.tts_rate, settings.tts_rate_elderly, cache_entries=8)
    text = answer(catalog, "passport", "process")
    sentences = split_sentences(speech_text(text))
    chunks = [chunk async for chunk in engine.synthesize_chunks(text)]
    assert len(chunks) == len(sentences) > 1
    assert all(chunk[:4] == b"RIFF" and wav_duration(chunk) > 0.3 for chunk in chunks)
    whole = await engine.synthesize(text)  # from the cache now
    assert whole == concat_wavs(chunks)
    assert wav_duration(whole) == pytest.approx(sum(wav_duration(c) for c in chunks), abs=0.01)
    # A cached answer comes sentence by sentence too (a WebSocket frame stays small).
    assert [chunk async for chunk in engine.synthesize_chunks(text)] == chunks
    assert engine.cache_hits == 2


async def test_nothing_to_say_is_a_short_silence(tts):
    wav = await tts.synthesize("😊👍")
    assert wav[:4] == b"RIFF" and 0 < wav_duration(wav) < 0.5


def test_get_tts_is_a_singleton(settings):
    engine = get_tts(settings)
    assert get_tts(settings) is engine
    assert (engine.rate, engine.elderly_rate) == (settings.tts_rate, settings.tts_rate_elderly)


@pytest.fixture(scope="module")
def app_client(settings, tmp_path_factory):
    """The gateway without the Rasa model (speech does not need it)."""
    data_dir = tmp_path_factory.mktemp("tts-app")
    app = create_app(isolated_settings(settings, data_dir), load_model=False)
    with TestClient(app) as client:
        yield client


def test_route_returns_wav(app_client):
    reply = app_client.post("/api/v1/tts", json={"text": "您的办件已办结，请在工作日9:00-17:00领取。"})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "audio/wav"
    assert reply.content[:4] == b"RIFF" and wav_duration(reply.content) > 1.0
    slow = app_client.post("/api/v1/tts", json={"text": "您的办件已办结，请在工作日9:00-17:00领取。", "elderly": True})
    assert slow.status_code == 200
    assert wav_duration(slow.content) / wav_duration(reply.content) >= 1.2


def test_route_accepts_a_long_answer(app_client):
    text = ("请带好身份证原件和户口簿，" * 200)[:2000]
    reply = app_client.post("/api/v1/tts", json={"text": text})
    assert reply.status_code == 200 and reply.content[:4] == b"RIFF"


@pytest.mark.parametrize(
    "body, detail",
    [
        ({"text": ""}, "要朗读的文字不能为空"),
        ({"text": "   "}, "要朗读的文字不能为空"),
        ({"text": "长" * 2001}, "要朗读的文字太长，请不超过2000字"),
        ({"text": "你好", "voice": "en"}, "不支持的字段：voice"),
        ({"text": "你好", "elderly": "yes"}, "请求格式不正确：elderly"),
        ({"text": 123}, "字段类型不正确：text"),
        ({}, "缺少字段：text"),
    ],
)
def test_route_rejects_bad_requests_in_chinese(app_client, body, detail):
    reply = app_client.post("/api/v1/tts", json=body)
    assert reply.status_code == 422
    assert reply.json()["detail"] == detail


def test_route_says_when_speech_is_unavailable(app_client, monkeypatch):
    class NoVoice:
        async def synthesize(self, text, *, elderly=False):
            raise TtsUnavailable(NO_VOICE)

    monkeypatch.setattr("assistant.api.routers.tts.get_tts", lambda settings: NoVoice())
    reply = app_client.post("/api/v1/tts", json={"text": "你好"})
    assert reply.status_code == 503
    assert reply.json()["detail"] == "语音合成不可用：没有可用的普通话语音"


def test_no_engine_is_reported_not_raised(monkeypatch):
    """A worker whose engine cannot start answers 'unavailable' with a Chinese reason."""

    def broken_init(self):
        raise OSError("libespeak-ng.so.1: cannot open shared object file")

    monkeypatch.setattr(tts_module._Worker, "_init_engine", broken_init)
    worker = tts_module._Worker()
    choice = worker.choice_future().result(timeout=10)
    assert choice.voice_id is None and choice.error == tts_module.NO_ENGINE
    assert choice.error.startswith("语音合成不可用：")
    engine = Tts(165, 120, 8)
    engine._worker = worker
    assert engine.available is False and engine.voice_id is None
    with pytest.raises(TtsUnavailable, match="^语音合成不可用：没有安装语音引擎$"):
        asyncio.run(engine.synthesize("你好"))


async def test_voice_variant_and_word_gap_are_applied(settings):
    plain = Tts(settings.tts_rate, settings.tts_rate_elderly, cache_entries=0)
    gapped = Tts(settings.tts_rate, settings.tts_rate_elderly, cache_entries=0, variant="f2", word_gap=5)
    text = "办理社保卡需要带身份证原件"
    a, b = await plain.synthesize(text), await gapped.synthesize(text)
    assert a[:4] == b[:4] == b"RIFF" and a != b
    assert wav_duration(b) > wav_duration(a) + 0.3  # the pauses between words
    assert wav_duration(await plain.synthesize(text)) == pytest.approx(wav_duration(a), abs=0.1)  # gap reset
