"""Chinese speech for the voice tests: espeak-ng's Mandarin (``cmn-latn-pinyin``) and
real recordings from ``bench/data/speech`` (AISHELL-1, Apache-2.0).

espeak-ng's Mandarin is robotic; the Chinese Vosk model transcribes it poorly by
free decoding but the catalog-biased recogniser gets these questions right
(checked by the tests that use them).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from voice.metrics import char_error_rate, han  # noqa: F401 (re-exported for the tests)

ROOT = Path(__file__).resolve().parent.parent
ESPEAK = shutil.which("espeak-ng")
MANDARIN_VOICE = "cmn-latn-pinyin"
# A female variant: the small model hears its digits said one by one (bench/callmode_phone.py).
FEMALE_VOICE = "cmn-latn-pinyin+f3"
# Questions the kiosk tests speak, with the item each must be answered about.
QUESTION = "低保怎么申请"
QUESTION_ITEM = "subsistence_allowance"
SECOND_QUESTION = "养老金认证怎么弄"
SECOND_ITEM = "pension_certification"
# A real recording of read speech (AISHELL-1 BAC009S0764W0121) and what was said.
RECORDING = ROOT / "bench" / "data" / "speech" / "clips" / "aishell1_1.wav"
RECORDING_TEXT = "甚至出现交易几乎停滞的情况"

def require_voice(settings) -> None:
    """The voice tests need espeak-ng and the Chinese model (bootstrap installs both)."""
    if not ESPEAK:
        pytest.fail("espeak-ng is not installed (scripts/bootstrap.sh installs it)")
    if not (Path(settings.vosk_model_dir) / "am" / "final.mdl").is_file():
        pytest.fail(f"no Chinese Vosk model at {settings.vosk_model_dir} (tests/conftest.py installs it)")


def mandarin_wav(text: str, path: Path, rate: int = 150, voice: str = MANDARIN_VOICE) -> bytes:
    """``text`` spoken by espeak-ng's Mandarin voice (or a variant of it, such as
    ``FEMALE_VOICE``), as the WAV file espeak-ng writes."""
    subprocess.run([ESPEAK, "-v", voice, "-s", str(rate), "-w", str(path), text], check=True, timeout=30)
    return path.read_bytes()
