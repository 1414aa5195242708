"""Phone numbers said on a call: can the Vosk model hear them from audio?

The call mode's ticket draft takes the caller's phone number from the transcript
(``assistant.services.callmode.draft.find_phone``). Streamed espeak-ng speech of
the bench's calls gives no phone number (``bench/callmode.py --audio``). This bench
finds where the chain breaks and whether a recogniser restricted to digit words
(a Vosk runtime grammar, a second ``KaldiRecognizer`` on the same audio) would mend it:

1. Isolated digits (each said three times, apart), decoded with the digit grammar:
   what each digit is heard as, per voice. A digit the model mishears alone cannot
   be right inside a number.
2. Phone numbers said as a caller does (a cue, then 3-4-4 digit groups, 幺 or 一
   for 1; seeded random mainland mobile numbers), decoded by:
   * ``free``: the call mode's recogniser (the model's own language model);
   * ``digits``: a grammar of the digit words only (零 一 幺 二 两 … 九);
   * ``digits+cues``: the digit words plus the cue words (电话 手机 号码 …) and
     是/我, so the words around a number have a path of their own;
   * ``listener``: what the call mode runs (``callmode/digits.py``): the digits+cues
     recogniser streamed in 0.1-s frames, a number only when exactly 11 digits
     follow a cue (its phone right / WRONG are the draft's).
   Styles (``--styles``): ``groups`` (3-4-4, as the calls say it) and ``each`` (digit
   by digit with a short pause after each, as a caller reading a number out slowly).
   Figures: digit error rate (edit distance between the digits heard and the 11 said,
   over the 11), phone right (``find_phone`` of the transcript is the number),
   phone WRONG (a number was found but not the one said: the harmful case, a
   callback to a stranger), real-time factor of that decoder alone.
3. Real speech without a number (the Mandarin recordings of ``bench/data/speech``):
   how often each decoder gives ``find_phone`` a number where none was said (a
   digit-only grammar turns any speech into digits).
4. ``--wav-dir DIR`` (optional): real recordings instead of espeak, a
   ``numbers.tsv`` there with ``file<TAB>number`` lines.

Voices: espeak-ng ``cmn-latn-pinyin`` (the bench's default, a male voice) and its
female variants ``+f2``, ``+f3``: callers are men and women; no voice is slowed or
made clearer than a caller would speak.

    .venv/bin/python bench/callmode_phone.py [--numbers 30] [--voices cmn-latn-pinyin,cmn-latn-pinyin+f3]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.services.callmode.digits import PhoneListener, digit_asr  # noqa: E402
from assistant.services.callmode.draft import SPOKEN_DIGITS, find_phone  # noqa: E402
from voice.asr import Asr  # noqa: E402
from voice.audio import pcm16_from_wav  # noqa: E402

SPEECH = ROOT / "bench" / "data" / "speech"
VOSK_MODEL = ROOT / "data" / "vosk" / "vosk-model-small-cn-0.22"
VOICES = ("cmn-latn-pinyin", "cmn-latn-pinyin+f2", "cmn-latn-pinyin+f3")
RATE = 150  # espeak-ng words per minute, as bench/callmode.py
DIGIT_WORDS = ("零", "一", "幺", "二", "两", "三", "四", "五", "六", "七", "八", "九")
CUE_WORDS = ("电话", "手机", "号码", "手机号", "电话号码", "是", "我")
GRAMMARS: Dict[str, Optional[Tuple[str, ...]]] = {
    "free": None,
    "digits": DIGIT_WORDS,
    "digits+cues": DIGIT_WORDS + CUE_WORDS,
}
LISTENER = "listener"
STYLES = ("groups", "each")
CUES = ("电话", "我电话是", "手机", "号码是", "我的手机号是", "你记一下 电话")
HAN_DIGITS = "零一二三四五六七八九"
SEED = 16


@dataclass
class Tally:
    said: int = 0
    digit_errors: int = 0
    right: int = 0
    wrong: int = 0
    audio_s: float = 0.0
    busy_s: float = 0.0
    examples: List[str] = field(default_factory=list)


def phone_cases(n: int, seed: int = SEED, style: str = "groups") -> List[Tuple[str, str]]:
    """(what the caller says, the number): a cue, then the number in 3-4-4 groups
    (``groups``) or digit by digit with a pause after each (``each``)."""
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        number = "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))
        yao = rng.random() < 0.5
        words = "".join("幺" if (c == "1" and yao) else HAN_DIGITS[int(c)] for c in number)
        cue = rng.choice(CUES)
        if style == "each":
            cases.append((f"{cue}，" + "，".join(words), number))
        else:
            cases.append((f"{cue} {words[:3]} {words[3:7]} {words[7:]}", number))
    return cases


def espeak_pcm(text: str, voice: str, workdir: Path) -> bytes:
    path = workdir / "said.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(RATE), "-w", str(path), text], check=True, timeout=30)
    return pcm16_from_wav(path.read_bytes(), max_bytes=50_000_000, max_seconds=120)


def digits_heard(text: str) -> str:
    return "".join(SPOKEN_DIGITS.get(c, c) for c in text if c in SPOKEN_DIGITS or c.isdigit())


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[:], i
        for j, cb in enumerate(b, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
    return row[-1]


def recognisers(model_dir: Path, names: Sequence[str] = (*GRAMMARS, LISTENER)) -> Dict[str, Asr]:
    out = {}
    if LISTENER in names:
        out[LISTENER] = digit_asr(model_dir, Path(tempfile.mkdtemp(prefix="banshi-bench-views-")))
        out[LISTENER].warm_up()
    for name, words in GRAMMARS.items():
        if name not in names:
            continue
        grammar = json.dumps(list(words), ensure_ascii=False) if words else None
        asr = Asr(model_dir, grammar=grammar)
        asr.warm_up()
        out[name] = asr
    return out


def decode(asr: Asr, pcm: bytes) -> Tuple[str, float]:
    stream = asr.stream()
    stream.feed_sync(pcm)
    text = stream.finish_sync()
    return text, stream.busy_seconds


def listen(asr: Asr, pcm: bytes) -> Tuple[str, Optional[str], float]:
    """The call mode's listener on ``pcm`` in 0.1-s frames: (text, number, busy seconds)."""
    listener = PhoneListener(asr.stream())
    for start in range(0, len(pcm), 3200):
        listener.feed_sync(pcm[start : start + 3200])
    listener.finish_sync()
    return " ".join(listener.stream.segments), listener.last, listener.stream.busy_seconds


def confusions(asr: Asr, voice: str, workdir: Path) -> str:
    """What each digit said alone (three times, apart) is heard as."""
    cells = []
    for digit in HAN_DIGITS:
        text, _ = decode(asr, espeak_pcm("，".join([digit] * 3), voice, workdir))
        cells.append(f"{digit}→{text.replace(' ', '') or '∅'}")
    return " ".join(cells)


def score(asrs: Dict[str, Asr], clips: Sequence[Tuple[bytes, str]]) -> Dict[str, Tally]:
    tallies = {name: Tally() for name in asrs}
    for pcm, number in clips:
        for name, asr in asrs.items():
            if name == LISTENER:
                text, found, busy = listen(asr, pcm)
            else:
                text, busy = decode(asr, pcm)
                found = find_phone([text])
            t = tallies[name]
            t.said += 1
            t.audio_s += len(pcm) / 32000
            t.busy_s += busy
            heard = digits_heard(text)
            t.digit_errors += min(edit_distance(heard, number), edit_distance(heard[-11:], number))
            if found == number:
                t.right += 1
            elif found:
                t.wrong += 1
            if len(t.examples) < 3:
                t.examples.append(f"{number} → {text}")
    return tallies


def print_table(title: str, tallies: Dict[str, Dict[str, Tally]]) -> None:
    print(f"\n{title}\n")
    print("| speech | decoder | numbers | digit error | phone right | phone WRONG | RTF |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for source, by_decoder in tallies.items():
        for name, t in by_decoder.items():
            n = max(1, t.said)
            print(
                f"| {source} | {name} | {t.said} | {100 * t.digit_errors / (11 * n):.0f} % "
                f"| {100 * t.right / n:.0f} % | {100 * t.wrong / n:.0f} % | {t.busy_s / max(t.audio_s, 1e-9):.3f} |"
            )


def false_phones(asrs: Dict[str, Asr]) -> None:
    """Real recordings where no number is said: phones found anyway, per decoder."""
    import csv

    rows = list(csv.DictReader((SPEECH / "clips.tsv").open(encoding="utf-8"), delimiter="\t"))
    counts = {name: 0 for name in asrs}
    seconds = 0.0
    for row in rows:
        pcm = pcm16_from_wav((SPEECH / "clips" / row["file"]).read_bytes(), max_bytes=50_000_000, max_seconds=120)
        seconds += len(pcm) / 32000
        for name, asr in asrs.items():
            if name == LISTENER:
                text, found, _ = listen(asr, pcm)
            else:
                text = decode(asr, pcm)[0]
                found = find_phone([text])
            counts[name] += found is not None
            if found is not None:
                print(f"  {name}: {row['file']} ({row['text']}) → {found}: {text}")
    print(f"\nReal recordings with no number said ({len(rows)} clips, {seconds:.0f} s): a phone number found anyway\n")
    print("| decoder | clips with a phone |")
    print("| --- | ---: |")
    for name, count in counts.items():
        print(f"| {name} | {count} / {len(rows)} |")


def real_clips(folder: Path) -> List[Tuple[bytes, str]]:
    clips = []
    for line in (folder / "numbers.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, number = line.split("\t")[:2]
            pcm = pcm16_from_wav((folder / name).read_bytes(), max_bytes=50_000_000, max_seconds=120)
            clips.append((pcm, re.sub(r"\D", "", number)))
    return clips


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--numbers", type=int, default=30, help="phone numbers per voice")
    parser.add_argument("--voices", default=",".join(VOICES), help="espeak-ng voices, comma-separated")
    parser.add_argument("--wav-dir", type=Path, help="real recordings with numbers.tsv (file<TAB>number)")
    parser.add_argument("--vosk-model", type=Path, default=VOSK_MODEL)
    parser.add_argument("--examples", action="store_true", help="print a few transcripts per decoder")
    parser.add_argument("--decoders", default=",".join((*GRAMMARS, LISTENER)), help="comma-separated")
    parser.add_argument("--styles", default=",".join(STYLES), help="groups, each (comma-separated)")
    parser.add_argument("--no-confusions", action="store_true", help="skip the isolated-digit table")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    asrs = recognisers(args.vosk_model, [d for d in args.decoders.split(",") if d])
    voices = [v for v in args.voices.split(",") if v]
    tallies: Dict[str, Dict[str, Tally]] = {}
    with tempfile.TemporaryDirectory(prefix="banshi-bench-phone-") as tmp:
        workdir = Path(tmp)
        if not args.no_confusions and "digits" in asrs:
            print("\nIsolated digits, digit grammar (said → heard)\n")
            print("| voice | heard |")
            print("| --- | --- |")
            for voice in voices:
                print(f"| {voice} | {confusions(asrs['digits'], voice, workdir)} |")
        for style in [s for s in args.styles.split(",") if s]:
            cases = phone_cases(args.numbers, style=style)
            for voice in voices:
                clips = [(espeak_pcm(text, voice, workdir), number) for text, number in cases]
                tallies[f"espeak {voice}, {style}"] = score(asrs, clips)
    false_phones(asrs)
    if args.wav_dir:
        tallies[f"recordings {args.wav_dir.name}"] = score(asrs, real_clips(args.wav_dir))
    print_table(f"Phone numbers said after a cue (seed {SEED})", tallies)
    if args.examples:
        for source, by_decoder in tallies.items():
            for name, t in by_decoder.items():
                for example in t.examples:
                    print(f"  {source} / {name}: {example}")
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
