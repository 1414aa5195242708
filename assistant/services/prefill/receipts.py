"""Receipt numbers of kiosk pre-applications: ``KS`` + the kiosk's code + ``-`` + the
kiosk's local date + ``-`` + a 4-digit sequence of that kiosk and day, e.g.
``KSHALL3-20261205-0001``. Unique across kiosks as long as their codes differ
(``Settings.receipt_code``); the central server refuses a receipt number that another
kiosk already used (HTTP 409: visible in ``banshi outbox status``)."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Optional, Tuple
from zoneinfo import ZoneInfo

from assistant.security.pii import is_receipt_number

PREFIX = "KS"
MAX_SEQ = 9999
MAX_CHARS = 32
# In free text: lower case, full-width characters, blanks or hyphens (or nothing)
# between the parts; the code is as short as possible, so that 12 digits remain.
_SEP = r"[\s\-_]*"
_IN_TEXT_RE = re.compile(
    rf"(?<![A-Z0-9])KS{_SEP}([A-Z0-9]{{1,8}}?){_SEP}(\d{{4}}){_SEP}(\d{{2}}){_SEP}(\d{{2}}){_SEP}(\d{{4}})(?![0-9])"
)


def format_receipt(code: str, day: str, seq: int) -> str:
    if not 1 <= seq <= MAX_SEQ:
        raise ValueError(f"sequence out of range: {seq}")
    receipt = f"{PREFIX}{code}-{day}-{seq:04d}"
    if not is_receipt_number(receipt):
        raise ValueError(f"not a receipt number: {receipt!r}")
    return receipt


def parse_receipt(receipt: str) -> Tuple[str, str, int]:
    """(code, day YYYYMMDD, sequence) of a canonical receipt number."""
    if not is_receipt_number(receipt):
        raise ValueError(f"not a receipt number: {receipt!r}")
    head, day, seq = receipt.rsplit("-", 2)
    return head[len(PREFIX):], day, int(seq)


def _real_day(day: str) -> bool:
    try:
        dt.date(int(day[:4]), int(day[4:6]), int(day[6:]))
    except ValueError:
        return False
    return True


def normalize_receipt(text: Optional[str]) -> Optional[str]:
    """The first receipt number in ``text``, canonical, or None:
    ``"我的回执 ks hall3 2026-1205-0001"`` → ``"KSHALL3-20261205-0001"``."""
    if not text:
        return None
    plain = unicodedata.normalize("NFKC", text).upper()
    for match in _IN_TEXT_RE.finditer(plain):
        code, year, month, date, seq = match.groups()
        day = year + month + date
        if _real_day(day) and int(seq) >= 1:
            return format_receipt(code, day, int(seq))
    return None


def local_day(now_utc: dt.datetime, timezone: str) -> str:
    """YYYYMMDD of a naive UTC time in the given time zone."""
    return now_utc.replace(tzinfo=dt.timezone.utc).astimezone(ZoneInfo(timezone)).strftime("%Y%m%d")
