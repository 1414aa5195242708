"""POST /api/v1/kiosk/inbox: the central server's side of the kiosk outbox.

Kiosks (``assistant/services/outbox.py``) deliver each message at least once; this
endpoint applies each message id once. The ``inbox_messages`` row and the
message's effect (a handoff ticket, a feedback row, a stored appointment
request) are written in one transaction, and the row's primary key is the
sender's UUID: a second delivery of the same id, even concurrent with the
first, fails on that key and is answered 200 ``duplicate`` with no second effect.

Pre-applications from the kiosk (kind ``preapplication``) are stored sealed by their
receipt number (``assistant/services/prefill/central.py``; the inbox row keeps no field
values); a receipt number another kiosk already used is refused with 409. The photo of
a material comes as its bytes to ``POST /api/v1/kiosk/inbox/material`` (query: message
id, kiosk, receipt, material, SHA-256), bounded like any photo, applied once by its id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import logging
import re
import uuid
from typing import Any, Dict, Optional, Tuple

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictStr, validator
from sqlalchemy.exc import IntegrityError

from assistant.api.deps import SettingsDep
from assistant.api.schemas import SENDER_ID_RE, ErrorResponse
from assistant.config.settings import Settings
from assistant.security.pii import hash_id, mask_pii
from assistant.security.pii import is_receipt_number
from assistant.services import metrics
from assistant.services.handoff import tickets
from assistant.services.outbox import MAX_PAYLOAD_BYTES
from assistant.services.prefill import central as prefill
from assistant.services.prefill.photos import CONTENT_TYPES, PhotoRefused
from assistant.services.reviews import collect as reviews
from assistant.storage import database
from assistant.storage.tables import OUTBOX_KIND_REVIEW, OUTBOX_KINDS, InboxMessage
from knowledge import db

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/kiosk", tags=["kiosk"])

KIOSK_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
HANDOFF_REASONS = ("request_human", "complaint", "fallback")
RATINGS = ("good", "bad")
MAX_CONVERSATION_CHARS = 128  # handoff_tickets.conversation_id, feedback.conversation_id
MAX_SENDER_ID_CHARS = 1024  # a kiosk's conversation id (longer ones are hashed to fit)
MAX_ITEM_ID_CHARS = 64
MAX_RATING_TEXT_CHARS = 1000
KIOSK_CHANNEL = "kiosk"

BAD_KIOSK_KEY = "自助终端凭证无效"
ERRORS = {401: {"model": ErrorResponse}, 409: {"model": ErrorResponse}, 422: {"model": ErrorResponse}}
MATERIAL_ERRORS = {
    **ERRORS,
    413: {"model": ErrorResponse},
    415: {"model": ErrorResponse},
}
BAD_RECEIPT = "回执号格式不正确"
NOT_A_PHOTO = "只能上传 JPG 或 PNG 格式的照片"

STATUS_ACCEPTED = "accepted"
STATUS_DUPLICATE = "duplicate"


def require_kiosk(request: Request) -> None:
    """``Authorization: Bearer <key>`` with one of ``BANSHI_KIOSK_API_KEYS`` (constant-time)."""
    settings: Settings = request.app.state.settings
    scheme, _, key = (request.headers.get("authorization") or "").partition(" ")
    key = key.strip()
    matched = False
    for candidate in (k.strip() for k in settings.kiosk_api_keys.split(",")):
        if candidate:
            matched |= hmac.compare_digest(key.encode(), candidate.encode())
    if scheme.lower() != "bearer" or not key or not matched:
        logger.warning("kiosk.inbox.unauthorized")
        raise HTTPException(status_code=401, detail=BAD_KIOSK_KEY, headers={"WWW-Authenticate": "Bearer"})


# -------------------------------------------------------------- validation
def _conversation(payload: Dict[str, Any]) -> str:
    value = payload.get("conversation_id")
    if not isinstance(value, str) or not value or len(value) > MAX_SENDER_ID_CHARS or not SENDER_ID_RE.match(value):
        raise ValueError("payload.conversation_id 缺失或格式不正确")
    return value


def _optional_str(payload: Dict[str, Any], field: str, limit: int) -> None:
    value = payload.get(field)
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        raise ValueError(f"payload.{field} 格式不正确")


def _check_handoff(payload: Dict[str, Any]) -> None:
    _conversation(payload)
    if payload.get("reason") not in HANDOFF_REASONS:
        raise ValueError(f"payload.reason 只能是 {', '.join(HANDOFF_REASONS)} 之一")
    _optional_str(payload, "item_id", MAX_ITEM_ID_CHARS)
    if not isinstance(payload.get("summary", {}), dict):
        raise ValueError("payload.summary 必须是对象")


def _check_rating(payload: Dict[str, Any]) -> None:
    _conversation(payload)
    if payload.get("rating") is not None and payload.get("rating") not in RATINGS:
        raise ValueError(f"payload.rating 只能是 {', '.join(RATINGS)} 之一")
    _optional_str(payload, "text", MAX_RATING_TEXT_CHARS)
    _optional_str(payload, "item_id", MAX_ITEM_ID_CHARS)


CHECKS = {
    "handoff": _check_handoff,
    "rating": _check_rating,
    "appointment": lambda payload: None,
    "preapplication": prefill.check_payload,
    "material": lambda payload: _refuse_material(),
    OUTBOX_KIND_REVIEW: reviews.check_turn_review,
}


def _refuse_material() -> None:
    raise ValueError("material 须上传到 /api/v1/kiosk/inbox/material")


class InboxRequest(BaseModel):
    id: uuid.UUID = Field(..., description="The kiosk's message id (UUID4): the idempotency key")
    kiosk_id: StrictStr = Field(..., description="The sending kiosk", example="hall-3-kiosk-2")
    kind: StrictStr = Field(..., description=" | ".join(OUTBOX_KINDS))
    payload: Dict[str, Any] = Field(..., description=f"The message (JSON object, at most {MAX_PAYLOAD_BYTES} bytes)")
    created_at: Optional[dt.datetime] = Field(None, description="When the kiosk stored the message")

    class Config:
        extra = "forbid"

    @validator("kiosk_id")
    def _kiosk_id(cls, value: str) -> str:
        if not KIOSK_ID_RE.match(value):
            raise ValueError("kiosk_id 只能包含字母、数字和 _.-，长度1到64")
        return value

    @validator("kind")
    def _kind(cls, value: str) -> str:
        if value not in OUTBOX_KINDS:
            raise ValueError(f"kind 只能是 {', '.join(OUTBOX_KINDS)} 之一")
        return value

    @validator("payload")
    def _payload(cls, value: Dict[str, Any], values: Dict[str, Any]) -> Dict[str, Any]:
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(f"payload 太大，最多 {MAX_PAYLOAD_BYTES // 1024} KB")
        kind = values.get("kind")
        if kind in CHECKS:
            CHECKS[kind](value)
        return value


class InboxResponse(BaseModel):
    status: str = Field(..., description="accepted (applied now) | duplicate (applied before)")
    id: str
    ref: Optional[str] = Field(None, description="What the message produced: ticket:<id>, feedback:<id>, stored")


# ------------------------------------------------------------------ effects
def masked(value: Any) -> Any:
    """Every string in ``value`` with personal data masked (kiosks mask already; this is
    the central's own guarantee for what it stores)."""
    if isinstance(value, str):
        return mask_pii(value)
    if isinstance(value, dict):
        return {key: masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    return value


def central_conversation_id(kiosk_id: str, conversation_id: str) -> str:
    """``kiosk:<kiosk_id>:<conversation>``; hashed when that would not fit the column."""
    value = f"kiosk:{kiosk_id}:{conversation_id}"
    return value if len(value) <= MAX_CONVERSATION_CHARS else f"kiosk:{kiosk_id}:{hash_id(conversation_id)}"


def _open_ticket(session, body: InboxRequest, settings: Settings) -> str:
    """The conversation's open ticket, or a new one, inside the inbox transaction."""
    payload = body.payload
    conversation_id = central_conversation_id(body.kiosk_id, payload["conversation_id"])
    summary = masked(dict(payload.get("summary") or {}))
    summary.setdefault("channel", KIOSK_CHANNEL)
    summary["kiosk_id"] = body.kiosk_id
    ticket, _ = tickets.open_ticket_in(
        session,
        conversation_id=conversation_id,
        channel=KIOSK_CHANNEL,
        reason=payload["reason"],
        item_id=payload.get("item_id"),
        summary=summary,
        deferred=not settings.hours.is_open(),
    )
    return f"ticket:{ticket.id}"


def _add_rating(session, body: InboxRequest) -> str:
    payload = body.payload
    row = db.Feedback(
        conversation_id=central_conversation_id(body.kiosk_id, payload["conversation_id"]),
        kind="feedback",
        rating=payload.get("rating"),
        text=mask_pii((payload.get("text") or "").strip())[:MAX_RATING_TEXT_CHARS],
        item_id=payload.get("item_id"),
        channel=KIOSK_CHANNEL,
    )
    session.add(row)
    session.flush()
    return f"feedback:{row.id}"


def apply_message(settings: Settings, body: InboxRequest) -> Tuple[bool, Optional[str]]:
    """Record the message and apply it, in one transaction. (False, ref) when already applied.
    ``prefill.ReceiptConflict`` (nothing stored) for a receipt number taken by another message."""
    message_id = str(body.id)
    created_at = body.created_at
    if created_at is not None and created_at.tzinfo is not None:
        created_at = created_at.astimezone(dt.timezone.utc).replace(tzinfo=None)
    kept = prefill.stored_payload(body.payload) if body.kind == "preapplication" else masked(body.payload)
    with database.session_factory(settings.db_url)() as session:
        row = InboxMessage(
            id=message_id,
            kiosk_id=body.kiosk_id,
            kind=body.kind,
            payload=json.dumps(kept, ensure_ascii=False),
            sent_at=created_at,
        )
        session.add(row)
        try:
            # The key claims the id first: a concurrent delivery of the same id waits
            # here for this transaction and then fails on the key.
            session.flush()
        except IntegrityError:
            session.rollback()
            existing = session.get(InboxMessage, message_id)
            return False, existing.result_ref if existing is not None else None
        if body.kind == "handoff":
            row.result_ref = _open_ticket(session, body, settings)
        elif body.kind == "rating":
            row.result_ref = _add_rating(session, body)
        elif body.kind == OUTBOX_KIND_REVIEW:
            review, _ = reviews.add_turn_review(session, {**kept, "channel": KIOSK_CHANNEL})
            row.result_ref = f"review:{review.id}"
        elif body.kind == "preapplication":
            try:
                row.result_ref = prefill.apply_preapplication_in(
                    session, settings, body.kiosk_id, message_id, body.payload
                )
            except (prefill.ReceiptConflict, IntegrityError):
                session.rollback()
                existing = session.get(InboxMessage, message_id)
                if existing is not None:  # the same message, applied concurrently
                    return False, existing.result_ref
                raise prefill.ReceiptConflict(body.payload["receipt"]) from None
        else:
            row.result_ref = "stored"
        try:
            session.commit()
        except IntegrityError:  # the key check was deferred to the commit (some databases)
            session.rollback()
            existing = session.get(InboxMessage, message_id)
            return False, existing.result_ref if existing is not None else None
        return True, row.result_ref


@router.post(
    "/inbox",
    response_model=InboxResponse,
    responses={**ERRORS, 201: {"model": InboxResponse}},
    dependencies=[Depends(require_kiosk)],
)
async def receive(body: InboxRequest, request: Request, settings: SettingsDep) -> JSONResponse:
    """Apply one kiosk message: 201 ``accepted`` the first time, 200 ``duplicate`` after.

    ``handoff`` opens (or updates) a ticket on conversation ``kiosk:<kiosk_id>:<conversation_id>``,
    ``rating`` adds a feedback row, ``appointment`` is stored for the booking desk,
    ``review`` (a kiosk turn not understood) joins the review queue,
    ``preapplication`` is stored sealed by its receipt number (409 when another kiosk's
    message already used that number).
    """
    try:
        created, ref = await asyncio.to_thread(apply_message, settings, body)
    except prefill.ReceiptConflict:
        logger.warning("kiosk.inbox.receipt_conflict id=%s kiosk=%s", body.id, body.kiosk_id)
        raise HTTPException(status_code=409, detail=prefill.CONFLICT) from None
    status = STATUS_ACCEPTED if created else STATUS_DUPLICATE
    logger.info(
        "kiosk.inbox.%s id=%s kiosk=%s kind=%s ref=%s", status, body.id, body.kiosk_id, body.kind, ref
    )
    if created and body.kind == "handoff":
        metrics.record_handoff(body.payload.get("reason"), KIOSK_CHANNEL)
        live = getattr(request.app.state, "live", None)
        if live is not None:
            await live.bump()  # the desk sees the new ticket now
    return JSONResponse(
        InboxResponse(status=status, id=str(body.id), ref=ref).dict(), status_code=201 if created else 200
    )


@router.post(
    "/inbox/material",
    response_model=InboxResponse,
    responses={**MATERIAL_ERRORS, 201: {"model": InboxResponse}},
    dependencies=[Depends(require_kiosk)],
)
async def receive_material(
    request: Request,
    settings: SettingsDep,
    id: uuid.UUID = Query(..., description="The kiosk's message id (the idempotency key)"),
    kiosk_id: str = Query(..., min_length=1, max_length=64, regex=KIOSK_ID_RE.pattern),
    receipt: str = Query(..., min_length=1, max_length=32, description="The pre-application's receipt number"),
    material: str = Query(..., min_length=1, max_length=prefill.MAX_MATERIAL_CHARS, description="The catalog's material name"),
    sha256: str = Query(..., min_length=64, max_length=64, regex=r"^[0-9a-f]{64}$"),
    created_at: Optional[dt.datetime] = Query(None, description="When the citizen handed it in at the kiosk"),
) -> JSONResponse:
    """A photo of a material for a pre-application: the body is the photo (``image/jpeg``
    or ``image/png``, at most ``BANSHI_PREFILL_MAX_PHOTO_BYTES``; type by content, pixels
    bounded). 201 ``accepted`` the first time, 200 ``duplicate`` for the same id after;
    409 unless the receipt's pre-application came first, from the same kiosk."""
    if not is_receipt_number(receipt):
        raise HTTPException(status_code=422, detail=BAD_RECEIPT)
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type not in CONTENT_TYPES:
        raise HTTPException(status_code=415, detail=NOT_A_PHOTO)
    data = await request.body()
    if created_at is not None and created_at.tzinfo is not None:
        created_at = created_at.astimezone(dt.timezone.utc).replace(tzinfo=None)
    upload = prefill.MaterialUpload(str(id), kiosk_id, receipt, material, sha256, content_type, created_at, data)
    try:
        size = await asyncio.to_thread(prefill.check_material, settings, upload)
    except PhotoRefused as exc:
        logger.info("kiosk.inbox.material_refused id=%s code=%s bytes=%d", id, exc.code, len(data))
        raise HTTPException(status_code=exc.status, detail=exc.message) from None
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    try:
        created, ref = await asyncio.to_thread(prefill.store_material, settings, upload, size)
    except prefill.ReceiptConflict:
        logger.warning("kiosk.inbox.receipt_conflict id=%s kiosk=%s kind=material", id, kiosk_id)
        raise HTTPException(status_code=409, detail=prefill.CONFLICT) from None
    except prefill.NoPreapplication:
        raise HTTPException(status_code=409, detail=prefill.NO_PREAPPLICATION) from None
    status = STATUS_ACCEPTED if created else STATUS_DUPLICATE
    logger.info("kiosk.inbox.%s id=%s kiosk=%s kind=material bytes=%d", status, id, kiosk_id, len(data))
    return JSONResponse(
        InboxResponse(status=status, id=str(id), ref=ref).dict(), status_code=201 if created else 200
    )
