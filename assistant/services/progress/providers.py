"""Application progress (办件进度): where it comes from (the providers).

An application (办件) has a number like ``ZW20250318007`` (``ZW`` + 11 digits) and a
timeline of status steps (受理 → 审核中 → 需补正 → 办结 / 不予受理). The dialogue asks
for the number, verifies the last four digits of the applicant's phone, then shows
the timeline. Where the data comes from is a :class:`ProgressProvider`:

* :class:`LocalProvider` reads the ``applications`` / ``application_events`` tables,
  filled by ``banshi progress import FILE.csv`` or ``banshi demo-data``.
* :class:`HttpProvider` asks a real case-management system (``BANSHI_PROGRESS_PROVIDER=http``).

HTTP contract of the case-management system
-------------------------------------------
``GET {BANSHI_PROGRESS_URL}/applications/{number}`` with
``Authorization: Bearer {BANSHI_PROGRESS_TOKEN}`` answers

* ``404``: unknown number;
* ``200`` with a JSON object (the same fields as :class:`ApplicationView`)::

    {
      "number": "ZW20250318007",
      "item_id": "passport",                 # an id of knowledge/spec/service-items.tsv
      "applicant_masked": "张*",              # never the full name
      "phone_last4": "1234",
      "status": "supplement",                 # accepted|reviewing|supplement|completed|rejected
      "steps": [                              # any order; shown oldest first
        {"status": "accepted", "at": "2025-03-18T09:30:00+08:00", "note": "窗口受理",
         "missing_materials": []},
        {"status": "supplement", "at": "2025-03-19T15:00:00+08:00", "note": "照片不合格",
         "missing_materials": ["近期免冠证件照片"]}
      ],
      "promised_date": "2025-03-28",          # ISO 8601 date or null
      "pickup_method": "邮寄"                  # or null
    }

  Dates and times are ISO 8601; a time with an offset is converted to China
  Standard Time (UTC+8), a time without one is taken as UTC+8 already. Unknown
  fields are ignored. Timeouts, connection errors and 5xx answers are retried
  ``progress_retries`` times with a short exponential backoff; after that, and for
  any other 4xx or an invalid body, :class:`ProgressUnavailable` is raised.

Personal data: names are stored masked (``张*``), phone and ID numbers only as
HMAC-SHA256 hashes with a random per-record salt plus their last 4 characters.
Nothing here logs a raw phone or ID number.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
from typing import List, Optional, Protocol, runtime_checkable

import httpx
from pydantic import BaseModel, ValidationError, validator
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from assistant.security.pii import mask_pii
from assistant.services.progress.records import (
    CST,
    ApplicationView,
    ProgressStep,
    mask_name,
    normalize_number,
    parse_status,
)
from assistant.storage.database import session_factory
from assistant.storage.tables import Application, ApplicationEvent

logger = logging.getLogger("banshi.progress")


# ---------------------------------------------------------------- providers
class ProgressUnavailable(Exception):
    """The progress backend cannot answer right now (down, slow, misconfigured)."""


@runtime_checkable
class ProgressProvider(Protocol):
    """Where application progress comes from."""

    async def lookup(self, number: str) -> Optional[ApplicationView]:
        """The application, None for an unknown number; raises ProgressUnavailable."""

    async def aclose(self) -> None:
        """Release connections."""


def _loads_list(text: Optional[str]) -> List[str]:
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def load_view(db_url: str, number: str) -> Optional[ApplicationView]:
    """The application ``number`` from the local tables (sync), None when unknown."""
    number = normalize_number(number) or ""
    if not number:
        return None
    with session_factory(db_url)() as session:
        app = session.get(Application, number)
        if app is None:
            return None
        events = (
            session.execute(
                select(ApplicationEvent)
                .where(ApplicationEvent.number == number)
                .order_by(ApplicationEvent.at, ApplicationEvent.id)
            )
            .scalars()
            .all()
        )
    return ApplicationView(
        number=app.number,
        item_id=app.item_id,
        applicant_masked=app.applicant_masked,
        phone_last4=app.phone_last4,
        status=app.status,
        steps=[
            ProgressStep(e.status, e.at, e.note or "", _loads_list(e.missing_materials))
            for e in events
        ],
        promised_date=app.promised_date,
        pickup_method=app.pickup_method,
    )


class LocalProvider:
    """Progress from the ``applications`` tables of our own database."""

    def __init__(self, db_url: str):
        self.db_url = db_url

    async def lookup(self, number: str) -> Optional[ApplicationView]:
        try:
            return await asyncio.to_thread(load_view, self.db_url, number)
        except SQLAlchemyError as exc:
            logger.error("progress.local.unavailable error=%s", type(exc).__name__)
            raise ProgressUnavailable("database error") from exc

    async def aclose(self) -> None:
        return None


def _status_code(cls, value: str) -> str:
    code = parse_status(value)
    if code is None:
        raise ValueError("unknown status")
    return code


class _StepPayload(BaseModel):
    status: str
    at: dt.datetime
    note: str = ""
    missing_materials: List[str] = []

    _status = validator("status", allow_reuse=True)(_status_code)

    @validator("at")
    def _local_time(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is not None:
            value = value.astimezone(CST).replace(tzinfo=None)
        return value


class _ApplicationPayload(BaseModel):
    number: str
    item_id: str
    applicant_masked: str
    phone_last4: str
    status: str
    steps: List[_StepPayload] = []
    promised_date: Optional[dt.date] = None
    pickup_method: Optional[str] = None

    _status = validator("status", allow_reuse=True)(_status_code)

    @validator("phone_last4")
    def _last4(cls, value: str) -> str:
        if not re.fullmatch(r"\d{4}", value):
            raise ValueError("must be 4 digits")
        return value

    @validator("applicant_masked")
    def _masked(cls, value: str) -> str:
        # Defence in depth: a system sending the full name still shows only 张*.
        return value if "*" in value else mask_name(value)


MAX_RESPONSE_BYTES = 1024 * 1024


class HttpProvider:
    """Progress from a case-management system over HTTP (see the module docstring)."""

    def __init__(
        self,
        url: str,
        token: Optional[str],
        timeout_s: float = 3.0,
        retries: int = 2,
        backoff_s: float = 0.2,
        client: Optional[httpx.AsyncClient] = None,
    ):
        self.url = url.rstrip("/")
        self.retries = max(0, int(retries))
        self.backoff_s = backoff_s
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s), headers=headers, follow_redirects=False
        )

    async def lookup(self, number: str) -> Optional[ApplicationView]:
        canonical = normalize_number(number)
        if canonical is None:  # never put arbitrary text into the URL
            return None
        url = f"{self.url}/applications/{canonical}"
        reason = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = await self._client.get(url)
            except httpx.TimeoutException:
                reason = "timeout"
            except httpx.TransportError as exc:
                reason = type(exc).__name__
            else:
                if response.status_code == 404:
                    return None
                if response.status_code >= 500:
                    reason = f"http_{response.status_code}"
                elif response.status_code != 200:
                    logger.error(
                        "progress.http.refused status=%d number=%s", response.status_code, canonical
                    )
                    raise ProgressUnavailable(f"HTTP {response.status_code}")
                else:
                    return self._parse(canonical, response)
            logger.warning(
                "progress.http.retry attempt=%d of=%d reason=%s", attempt + 1, self.retries + 1, reason
            )
        logger.error("progress.http.unavailable attempts=%d reason=%s", self.retries + 1, reason)
        raise ProgressUnavailable(reason)

    @staticmethod
    def _parse(number: str, response: httpx.Response) -> ApplicationView:
        if len(response.content) > MAX_RESPONSE_BYTES:
            logger.error("progress.http.invalid reason=too_large bytes=%d", len(response.content))
            raise ProgressUnavailable("response too large")
        try:
            payload = _ApplicationPayload.parse_raw(response.content)
        except ValidationError as exc:
            # Field names and error types only: the values may hold personal data.
            fields = ",".join(
                ".".join(str(p) for p in err["loc"]) + ":" + err["type"] for err in exc.errors()
            )
            logger.error("progress.http.invalid reason=schema fields=%s", fields)
            raise ProgressUnavailable("invalid response") from None
        if payload.number.upper() != number:
            logger.error("progress.http.invalid reason=number_mismatch")
            raise ProgressUnavailable("invalid response")
        steps = sorted(
            (
                ProgressStep(s.status, s.at, mask_pii(s.note), [m for m in s.missing_materials if m])
                for s in payload.steps
            ),
            key=lambda s: s.at,
        )
        return ApplicationView(
            number=number,
            item_id=payload.item_id,
            applicant_masked=payload.applicant_masked,
            phone_last4=payload.phone_last4,
            status=payload.status,
            steps=steps,
            promised_date=payload.promised_date,
            pickup_method=payload.pickup_method,
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def get_provider(settings) -> ProgressProvider:
    """The provider the settings ask for (``BANSHI_PROGRESS_PROVIDER``)."""
    if settings.progress_provider == "http":
        return HttpProvider(
            settings.progress_url,
            settings.progress_token,
            timeout_s=settings.progress_timeout_s,
            retries=settings.progress_retries,
        )
    return LocalProvider(settings.db_url)
