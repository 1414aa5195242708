"""Applications (办件) as the dialogue shows them: their numbers (``ZW`` + 11 digits),
status steps and labels, the phone check, and how personal data is masked or hashed."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from assistant.storage.tables import (
    APPLICATION_STATUSES,
    STATUS_ACCEPTED,
    STATUS_COMPLETED,
    STATUS_LABELS,
    STATUS_REJECTED,
    STATUS_REVIEWING,
    STATUS_SUPPLEMENT,
)

# China Standard Time has no daylight saving time: a fixed offset is exact.
CST = dt.timezone(dt.timedelta(hours=8))

# ------------------------------------------------------------------ numbers
DASHES = "\\-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff70_"
_SEP = f"[\\s{DASHES}]*"
# ZW + 11 digits, separators allowed inside, not glued to other letters or digits: a number
# as people type it, normalised to pii.APPLICATION_NUMBER (the canonical form) below.
_NUMBER_RE = re.compile(
    rf"(?<![A-Za-z0-9])ZW{_SEP}((?:[0-9]{_SEP}){{10}}[0-9])(?![0-9])", re.IGNORECASE
)


def normalize_number(text: Optional[str]) -> Optional[str]:
    """The first application number in ``text`` as ``ZW`` + 11 digits, or None.

    Tolerates lowercase, full-width characters, spaces and hyphens inside:
    ``"我的办件号是ｚｗ 2025-0318-007"`` → ``"ZW20250318007"``.
    """
    if not text:
        return None
    match = _NUMBER_RE.search(unicodedata.normalize("NFKC", text))
    if match is None:
        return None
    return "ZW" + re.sub(r"[^0-9]", "", match.group(1))


# -------------------------------------------------------------- personal data
def _pii_digits(value: str) -> str:
    """Digits only (plus the ``X`` check character of ID numbers), full-width tolerated."""
    return re.sub(r"[^0-9X]", "", unicodedata.normalize("NFKC", value or "").upper())


def pii_hash(secret: bytes, salt: str, value: str) -> str:
    """HMAC-SHA256 (hex) of ``salt`` + the digits of ``value`` keyed with the secret key."""
    return hmac.new(secret, (salt + _pii_digits(value)).encode(), hashlib.sha256).hexdigest()


def mask_name(name: str) -> str:
    """``"张三"`` → ``"张*"``: the first character, a star for each other one."""
    name = "".join((name or "").split())
    if not name:
        return ""
    return name[0] + "*" * (len(name) - 1)


# -------------------------------------------------------------------- views
@dataclass
class ProgressStep:
    status: str  # one of models.APPLICATION_STATUSES
    at: dt.datetime  # naive, China Standard Time
    note: str = ""
    missing_materials: List[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


@dataclass
class ApplicationView:
    number: str
    item_id: str
    applicant_masked: str
    phone_last4: str
    status: str
    steps: List[ProgressStep] = field(default_factory=list)  # oldest first
    promised_date: Optional[dt.date] = None
    pickup_method: Optional[str] = None

    @property
    def label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def latest(self) -> Optional[ProgressStep]:
        return self.steps[-1] if self.steps else None

    @property
    def missing_materials(self) -> List[str]:
        """What the applicant still has to bring (the latest 需补正 step), else []."""
        latest = self.latest
        if self.status == STATUS_SUPPLEMENT and latest is not None:
            return list(latest.missing_materials)
        return []


def verify_phone_tail(view: ApplicationView, digits: str) -> bool:
    """Whether ``digits`` (the last 4 digits, or the whole 11-digit mobile number) match.

    Constant-time comparison; anything that is not 4 or 11 digits is a mismatch.
    """
    value = re.sub(r"[^0-9]", "", unicodedata.normalize("NFKC", digits or ""))
    if len(value) == 11:
        value = value[-4:]
    if len(value) != 4 or not view.phone_last4:
        return False
    return hmac.compare_digest(value.encode(), str(view.phone_last4).encode())


# ----------------------------------------------------------------- statuses
_STATUS_ALIASES: Dict[str, str] = {
    "受理": STATUS_ACCEPTED,
    "已受理": STATUS_ACCEPTED,
    "审核中": STATUS_REVIEWING,
    "审核": STATUS_REVIEWING,
    "需补正": STATUS_SUPPLEMENT,
    "需补正材料": STATUS_SUPPLEMENT,
    "补正": STATUS_SUPPLEMENT,
    "办结": STATUS_COMPLETED,
    "已办结": STATUS_COMPLETED,
    "不予受理": STATUS_REJECTED,
}


def parse_status(value: str) -> Optional[str]:
    """A status code from a code (``reviewing``) or its Chinese label (``审核中``); else None."""
    value = unicodedata.normalize("NFKC", value or "").strip()
    if value.lower() in APPLICATION_STATUSES:
        return value.lower()
    return _STATUS_ALIASES.get(value)
