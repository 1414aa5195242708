"""The call mode's phone number from audio (real espeak-ng speech, real recordings,
the real Chinese Vosk model; no mocks).

Free decoding by the small Chinese model does not write espeak-ng's spoken digit
strings as digits (bench/callmode_phone.py measures it); the call mode's digit
recogniser (``callmode/digits.py``) hears some of them, and its number is marked for
the operator to read back (tests/integration/test_call_mode.py). What must hold
whatever the recogniser hears: a misheard number in the transcript never becomes a
wrong phone number in the draft (the operator would call a stranger back), speech
without a number gives none (neither from the transcript nor from the digit
recogniser), and a number the recogniser does write out is found.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest

from assistant.security.pii import mask_pii
from assistant.services.callmode.digits import PhoneListener, digit_asr
from assistant.services.callmode.draft import build_draft, digits_of, find_phone
from tests.conftest import ROOT, VOSK_MODEL_DIR
from tests.speech import ESPEAK, mandarin_wav
from voice.asr import Asr
from voice.audio import pcm16_from_wav

SPEECH = ROOT / "bench" / "data" / "speech"
# Callers giving their number as the bench's calls do (cue, then 3-4-4 digit groups).
SPOKEN_NUMBERS = {
    "电话 一三七 六一二零 八八四三": "13761208843",
    "号码是 幺八九 幺二三四 七七六五": "18912347765",
    "我叫孙志刚 手机一五零 三八二一 七七六零": "15038217760",
    "我电话 一八六 六七四三 零二五八": "18667430258",
}
# Digits said one by one with a pause after each: the model writes them out as digit words.
DIGITS_SAID_APART = "七，七，八，八，九，九"
# Real recordings where no number is said: read, far-field, accented and spontaneous speech.
NO_NUMBER_CLIPS = ["aishell1_1.wav", "commonvoice_3.wav", "alimeeting_1.wav", "alimeeting_2.wav", "sichuan_9.wav", "qwen3asr_1.wav"]


@pytest.fixture(scope="module")
def asr() -> Asr:
    assert (VOSK_MODEL_DIR / "am" / "final.mdl").is_file(), "the conftest installs the Chinese model"
    recogniser = Asr(VOSK_MODEL_DIR)
    recogniser.warm_up()
    return recogniser


@pytest.fixture(scope="module")
def speak(tmp_path_factory):
    assert ESPEAK, "espeak-ng is not installed (scripts/bootstrap.sh installs it)"
    folder: Path = tmp_path_factory.mktemp("phone-speech")

    def make(text: str) -> bytes:
        path = folder / f"{hashlib.sha1(text.encode()).hexdigest()[:12]}.wav"
        return pcm16_from_wav(mandarin_wav(text, path), max_bytes=10 << 20, max_seconds=60)

    return make


def test_a_misheard_spoken_number_never_becomes_a_wrong_phone(asr, speak):
    heard = {text: asr.transcribe_sync(speak(text)) for text in SPOKEN_NUMBERS}
    assert all(heard.values()), heard  # the recogniser heard speech in every phrase
    for text, number in SPOKEN_NUMBERS.items():
        assert find_phone([heard[text]]) in (None, number), (text, heard[text])
    draft = build_draft(list(heard.values()), [], None, None, None, [], None)
    assert draft.phone in (None, *SPOKEN_NUMBERS.values())
    if draft.phone is None:
        assert draft.summary.endswith("未留回访电话。")


def test_real_speech_without_a_number_gives_no_phone(asr, tmp_path):
    said = {row["file"]: row["text"] for row in csv.DictReader((SPEECH / "clips.tsv").open(encoding="utf-8"), delimiter="\t")}
    for name in NO_NUMBER_CLIPS:
        assert find_phone([said[name]]) is None  # nothing in what was really said
        pcm = pcm16_from_wav((SPEECH / "clips" / name).read_bytes(), max_bytes=50 << 20, max_seconds=120)
        text = asr.transcribe_sync(pcm)
        assert text and find_phone([text]) is None, (name, text)
        # The digit recogniser turns any speech into digit and cue words: still no number.
        listener = PhoneListener(digit_asr(VOSK_MODEL_DIR, tmp_path).stream())
        heard = [listener.feed_sync(pcm[at : at + 3200]) for at in range(0, len(pcm), 3200)]
        heard.append(listener.finish_sync())
        assert not any(heard), (name, listener.stream.segments)


def test_digits_the_recogniser_writes_out_are_read_as_digits(asr, speak):
    """The chain from audio to the draft's digits: digits said apart come out as digit
    words, which the draft reads as digits (and a number made of them is masked in logs)."""
    heard = asr.transcribe_sync(speak(DIGITS_SAID_APART))
    assert digits_of(heard) == "778899", heard
    number = find_phone([f"手机 幺三九 幺二 {heard}"])
    assert number == "13912778899"
    assert mask_pii(f"电话{number}") == "电话139****8899"
