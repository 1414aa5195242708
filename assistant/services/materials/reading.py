"""Photo questions (part 7): the text of a photo sent in the chat, for the normal understanding.

A photo of a notice, a receipt or a form is read with the same offline OCR as the material
pre-check. :func:`read_text` returns the raw text (it may hold ID numbers): the caller gives it to
the NLU and masks it (``mask_pii``) before storing or logging it. :func:`application_numbers_in`
takes the application numbers (``ZW`` + 11 digits) out of the text of a 受理回执, tolerating the
usual OCR confusions (``2W``, ``Zw``, ``O`` for ``0``, spaces and dashes inside).
"""

from __future__ import annotations

import re
import unicodedata
from typing import List

from assistant.security.pii import is_application_number
from assistant.services.materials.inspect import Inspected
from assistant.services.materials.ocr import ocr_upload

MAX_TEXT_CHARS = 4000  # a photo question is a short text; longer OCR output is cut

_DASHES = "\\-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc_"
_SEP = f"[\\s{_DASHES}.:]*"
# ZW as OCR reads it (Z may come out as 2 or z, W as VV), then 11 digits, O/o/I/l tolerated;
# looser than pii.APPLICATION_NUMBER, which the canonical result is checked against.
_DIGIT = "[0-9OoIl|]"
_NUMBER_RE = re.compile(rf"(?<![A-Za-z0-9])(?:ZW|2W|ZVV|2VV){_SEP}((?:{_DIGIT}{_SEP}){{10}}{_DIGIT})(?![0-9])", re.IGNORECASE)
_DIGIT_FIX = str.maketrans({"O": "0", "o": "0", "I": "1", "l": "1", "|": "1"})


async def read_text(data: bytes, inspected: Inspected) -> str:
    """The text of an inspected photo or PDF, line by line, raw (mask before storing or logging)."""
    result = await ocr_upload(data, inspected)
    return result.text[:MAX_TEXT_CHARS]


def application_numbers_in(text: str) -> List[str]:
    """The application numbers in an OCR text, canonical (``ZW`` + 11 digits), in order, once each."""
    found: List[str] = []
    normalized = unicodedata.normalize("NFKC", text or "")
    for match in _NUMBER_RE.finditer(normalized):
        digits = re.sub(r"[^0-9]", "", match.group(1).translate(_DIGIT_FIX))
        number = "ZW" + digits
        if is_application_number(number) and number not in found:
            found.append(number)
    return found
