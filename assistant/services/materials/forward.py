"""Handing a received material on to the case-management system (办件系统).

:class:`CaseSystem` is the interface; :func:`get_case_system` picks the implementation:

* :class:`LocalCaseSystem` (default): the applications live in our own tables (the
  local progress provider). The receipt goes on the application's timeline as a step
  "已收到补交材料：…" that keeps the status and lists the materials still missing, so
  the next progress lookup and the desk show it. An application that is not in our
  tables (another system answers lookups) keeps the upload here only.
* :class:`HttpCaseSystem` (``BANSHI_MATERIALS_FORWARD_URL``): ``POST
  {url}/applications/{number}/materials`` with a JSON body::

      {"upload_id": "…uuid…", "material": "近期免冠证件照片", "mime": "image/jpeg",
       "size": 123456, "pages": 1, "doc_type": "photo", "verdict": "ok",
       "reasons": [], "data_base64": "…"}

  signed like the status events the system sends us (``X-Banshi-Timestamp``: Unix
  seconds; ``X-Banshi-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``
  under ``BANSHI_CMS_WEBHOOK_SECRET``) with ``Idempotency-Key: <upload_id>`` (a
  retry of the same upload must not create a second one). ``2xx`` (optionally
  ``{"reference": "…"}``) and ``409`` (already received) count as delivered; other
  ``4xx`` are final (:class:`ForwardFailed` with ``retryable=False``); ``5xx``,
  timeouts and connection errors are retried later by the uploads' forwarding sweep.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from typing import List, Optional, Protocol, runtime_checkable

import httpx
from sqlalchemy import select

from assistant.config.settings import Settings
from assistant.services.progress.events import sign
from assistant.services.progress.records import CST
from assistant.storage.database import session_factory
from assistant.storage.tables import STATUS_SUPPLEMENT, Application, ApplicationEvent

logger = logging.getLogger(__name__)

RECEIVED_NOTE = "已收到补交材料：{material}，等待工作人员审核。"
EVENT_PREFIX = "upload:"  # the timeline step of an upload: event_id upload:<upload id>
LOCAL_REF = "local"
KEPT_REF = "kept"  # not an application of our tables: the upload is kept here only
MAX_REF_CHARS = 64


class ForwardFailed(Exception):
    """The case-management system did not take the material (``retryable``: try later)."""

    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason[:200])
        self.reason = reason[:200]
        self.retryable = retryable


@dataclass(frozen=True)
class Material:
    """One upload as it is handed on."""

    upload_id: str
    number: str
    material: str
    mime: str
    data: bytes
    pages: int = 1
    doc_type: Optional[str] = None
    verdict: str = "ok"
    reasons: List[str] = field(default_factory=list)


@runtime_checkable
class CaseSystem(Protocol):
    async def forward_material(self, material: Material) -> str:
        """Hand the material on; a reference for our records. Raises ForwardFailed."""

    async def aclose(self) -> None:
        """Release connections."""


def _now_cst() -> dt.datetime:
    return dt.datetime.now(CST).replace(tzinfo=None)


def record_receipt(db_url: str, number: str, material: str, upload_id: str) -> str:
    """The local timeline step for a received material (once per upload id)."""
    event_id = EVENT_PREFIX + upload_id
    with session_factory(db_url)() as session:
        application = session.get(Application, number)
        if application is None:
            return KEPT_REF
        if session.execute(select(ApplicationEvent.id).where(ApplicationEvent.event_id == event_id)).first():
            return LOCAL_REF
        missing: List[str] = []
        if application.status == STATUS_SUPPLEMENT:
            latest = session.execute(
                select(ApplicationEvent.missing_materials)
                .where(ApplicationEvent.number == number)
                .order_by(ApplicationEvent.at.desc(), ApplicationEvent.id.desc())
                .limit(1)
            ).scalar_one_or_none()
            try:
                missing = [str(m) for m in json.loads(latest or "[]")]
            except ValueError:
                missing = []
        remaining = [m for m in missing if m != material]
        session.add(ApplicationEvent(
            number=number, status=application.status, at=_now_cst(),
            note=RECEIVED_NOTE.format(material=material), event_id=event_id,
            missing_materials=json.dumps(remaining, ensure_ascii=False) if remaining else None,
        ))
        session.commit()
    logger.info("materials.forward.local_recorded")
    return LOCAL_REF


class LocalCaseSystem:
    def __init__(self, db_url: str) -> None:
        self.db_url = db_url

    async def forward_material(self, material: Material) -> str:
        return await asyncio.to_thread(
            record_receipt, self.db_url, material.number, material.material, material.upload_id
        )

    async def aclose(self) -> None:
        return None


class HttpCaseSystem:
    def __init__(self, url: str, secret: str, timeout_s: float = 10.0,
                 client: Optional[httpx.AsyncClient] = None) -> None:
        self.url = url.rstrip("/")
        self.secret = secret
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), follow_redirects=False)

    @staticmethod
    def body_of(material: Material) -> bytes:
        return json.dumps({
            "upload_id": material.upload_id,
            "material": material.material,
            "mime": material.mime,
            "size": len(material.data),
            "pages": material.pages,
            "doc_type": material.doc_type,
            "verdict": material.verdict,
            "reasons": material.reasons,
            "data_base64": base64.b64encode(material.data).decode("ascii"),
        }, ensure_ascii=False).encode("utf-8")

    async def forward_material(self, material: Material) -> str:
        body = self.body_of(material)
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Banshi-Timestamp": stamp,
            "X-Banshi-Signature": sign(self.secret, stamp, body),
            "Idempotency-Key": material.upload_id,
        }
        url = f"{self.url}/applications/{material.number}/materials"
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise ForwardFailed("timeout", retryable=True) from None
        except httpx.TransportError as exc:
            raise ForwardFailed(type(exc).__name__, retryable=True) from None
        if response.status_code == 409:
            return "duplicate"
        if response.status_code >= 500:
            raise ForwardFailed(f"http_{response.status_code}", retryable=True)
        if not 200 <= response.status_code < 300:
            raise ForwardFailed(f"http_{response.status_code}", retryable=False)
        try:
            reference = response.json().get("reference")
        except (ValueError, AttributeError):
            reference = None
        return str(reference)[:MAX_REF_CHARS] if reference else "http"

    async def aclose(self) -> None:
        await self._client.aclose()


def get_case_system(settings: Settings) -> CaseSystem:
    if settings.materials_forward_url:
        return HttpCaseSystem(settings.materials_forward_url, settings.cms_webhook_secret or "",
                              settings.materials_forward_timeout_s)
    return LocalCaseSystem(settings.db_url)
