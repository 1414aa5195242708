"""Pre-applications (预填) at the kiosk, and reading them at the desk.

* ``GET /api/v1/kiosk/forms`` — the items that can be pre-applied for at the kiosk, each
  with its fields (kind, bounds, options) and the materials that can be photographed;
  the photo bounds; whether a receipt printer is attached.
* ``POST /api/v1/kiosk/preapplications`` — ``{sender_id, token, item_id, fields: {id:
  value}, photos: [{material, data (base64 JPEG/PNG)}]}`` → 201 ``{receipt, item_id,
  item_name, created_at, materials, state, message, print}``. Works offline: on a kiosk
  everything goes into the outbox (sealed) and reaches the central server when the
  connection returns. 422 with ``problems`` (by field id, ``photo:<n>``) for values that do
  not fit; 413/415 for a photo too large or not a photo; 503 when the kiosk holds too many
  undelivered pre-applications. The body is parsed in a worker thread (it may hold
  several photos: its bound is ``prefill_max_photos`` × ``prefill_max_photo_bytes``).
* ``GET /api/v1/desk/preapplications``, ``GET /api/v1/desk/preapplications/{receipt}``,
  ``GET /api/v1/desk/preapplications/{receipt}/photos/{photo_id}`` — for operators: the
  received pre-applications (masked), one with its fields, a photo. Every read is audited.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
import logging
import re
from typing import Any, Dict, List, Optional

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, StrictStr, ValidationError
from pydantic.error_wrappers import ErrorWrapper

from assistant.api.deps import SettingsDep, admit_conversation
from assistant.api.schemas import SENDER_ID_RE, ErrorResponse
from assistant.config.settings import Settings
from assistant.security.access import OperatorDep
from assistant.security.audit import citizen_actor, record_audit
from assistant.security.pii import hash_id, is_receipt_number
from assistant.services.prefill import central
from assistant.services.prefill.kiosk import PhotoUpload, PrefillRefused, submit
from knowledge.prefill import ItemForm, PrefillError, load_forms

logger = logging.getLogger(__name__)
router = APIRouter(tags=["prefill"])

FORMS_PATH = "/api/v1/kiosk/forms"
SUBMIT_PATH = "/api/v1/kiosk/preapplications"
DESK_PATH = "/api/v1/desk/preapplications"
MAX_SUBMIT_PHOTOS = 20  # the schema's bound; the setting (at most 20) is the real one
BASE64_PREFIX_RE = re.compile(r"^data:image/[a-z]+;base64,")

NO_FORM = "这个事项暂时不能在自助机上预填，请到窗口办理。"
BAD_PHOTO_DATA = "照片数据格式不正确，请重新拍一张。"
NOT_FOUND = "没有找到该预申请"
GONE = "该预申请的资料已按保存期限删除，或无法打开"
NO_PHOTO = "没有找到该照片"
STORED_QUEUED = "已保存在本机。网络恢复后会自动提交到政务服务中心，您不用再来一趟填写。"
STORED_RECEIVED = "已提交到政务服务中心。"
KEEP_RECEIPT = "请记下回执号，以后可以在微信、网页或自助机上用它查询进度。"

AUDIT_SUBMIT = "prefill.submit"
AUDIT_LIST = "prefill.list"
AUDIT_VIEW = "prefill.view"
AUDIT_PHOTO = "prefill.photo.view"
DESK_CHANNEL = "desk"
KIOSK_CHANNEL = "kiosk"


class PhotoIn(BaseModel):
    material: StrictStr = Field(..., min_length=1, max_length=64)
    data: StrictStr = Field(..., min_length=1)

    class Config:
        extra = "forbid"


class PreapplicationIn(BaseModel):
    sender_id: StrictStr = Field(..., min_length=1, max_length=128, regex=SENDER_ID_RE.pattern)
    token: Optional[StrictStr] = Field(None, max_length=128)
    item_id: StrictStr = Field(..., min_length=1, max_length=64)
    fields: Dict[StrictStr, Any] = Field(...)
    photos: List[PhotoIn] = Field(default_factory=list, max_items=MAX_SUBMIT_PHOTOS)

    class Config:
        extra = "forbid"


REQUEST_SCHEMA: Dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["sender_id", "item_id", "fields"],
    "properties": {
        "sender_id": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": SENDER_ID_RE.pattern},
        "token": {"type": "string", "maxLength": 128},
        "item_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "fields": {"type": "object", "maxProperties": 40, "additionalProperties": {"type": "string", "maxLength": 1000}},
        "photos": {
            "type": "array",
            "maxItems": MAX_SUBMIT_PHOTOS,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["material", "data"],
                "properties": {
                    "material": {"type": "string", "minLength": 1, "maxLength": 64},
                    "data": {"type": "string", "minLength": 1, "description": "the photo, base64 (a data: URL prefix is allowed)"},
                },
            },
        },
    },
}


class Submitted(BaseModel):
    receipt: str = Field(..., example="KSHALL3-20261205-0001")
    item_id: str
    item_name: str
    created_at: dt.datetime
    materials: int
    state: str = Field(..., description="pending (waiting in the kiosk's outbox) | received")
    message: str
    print: bool = Field(..., description="A receipt printer is attached: the page prints the receipt")


class PrefillErrorResponse(ErrorResponse):
    problems: Dict[str, str] = Field(default_factory=dict, description="field id (or photo:<n>) → what to fix")


SUBMIT_ERRORS = {
    code: {"model": PrefillErrorResponse} for code in (400, 401, 403, 404, 413, 415, 422, 503)
}
DESK_ERRORS = {code: {"model": ErrorResponse} for code in (401, 403, 404, 410, 422)}


# -------------------------------------------------------------------- forms
def forms_of(request: Request) -> Dict[str, ItemForm]:
    """The forms, loaded once per app (none when the forms file does not fit the catalog)."""
    forms = getattr(request.app.state, "prefill_forms", None)
    if forms is None:
        try:
            forms = load_forms(request.app.state.catalog)
        except PrefillError as exc:
            logger.error("prefill.forms.invalid problems=%d first=%s", len(exc.problems), exc.problems[0])
            forms = {}
        request.app.state.prefill_forms = forms
    return forms


@router.get(FORMS_PATH)
async def forms(request: Request, settings: SettingsDep) -> Dict[str, Any]:
    """The pre-application forms of the kiosk."""
    found = forms_of(request)
    return {
        "items": [form.public() for form in found.values()],
        "limits": {
            "max_photos": settings.prefill_max_photos,
            "max_photo_bytes": settings.prefill_max_photo_bytes,
            "max_photo_pixels": settings.prefill_max_photo_pixels,
        },
        "printer": settings.kiosk_printer,
        "offline": settings.kiosk_mode,
    }


# ------------------------------------------------------------------- submit
def _parse(raw: bytes) -> PreapplicationIn:
    """The body, as FastAPI would have parsed it (the same errors), off the event loop."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RequestValidationError([ErrorWrapper(exc, ("body", exc.pos))]) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestValidationError([ErrorWrapper(json.JSONDecodeError(str(exc), "", 0), ("body", 0))]) from None
    try:
        return PreapplicationIn.parse_obj(data)
    except ValidationError as exc:
        raise RequestValidationError([ErrorWrapper(exc, ("body",))]) from None


def _decode(photo: PhotoIn, index: int, settings: Settings) -> PhotoUpload:
    text = BASE64_PREFIX_RE.sub("", photo.data, count=1)
    if len(text) > (settings.prefill_max_photo_bytes * 4) // 3 + 8:
        raise PrefillRefused(413, f"第{index + 1}张照片太大了，请重新拍一张。", {f"photo:{index}": "照片太大"})
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PrefillRefused(422, BAD_PHOTO_DATA, {f"photo:{index}": BAD_PHOTO_DATA}) from None
    return PhotoUpload(photo.material, data)


def _submit(settings: Settings, form: ItemForm, body: PreapplicationIn):
    photos = [_decode(photo, index, settings) for index, photo in enumerate(body.photos)]
    return submit(settings, form, body.fields, photos)


@router.post(
    SUBMIT_PATH,
    status_code=201,
    response_model=Submitted,
    responses=SUBMIT_ERRORS,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": REQUEST_SCHEMA}}}},
)
async def submit_preapplication(request: Request, settings: SettingsDep) -> JSONResponse:
    """A pre-application with its photos: stored sealed, a receipt number at once."""
    raw = await request.body()
    body = await asyncio.to_thread(_parse, raw)
    await admit_conversation(request, settings, body.sender_id, body.token)
    form = forms_of(request).get(body.item_id)
    if form is None:
        raise HTTPException(status_code=404, detail=NO_FORM)
    try:
        done = await asyncio.to_thread(_submit, settings, form, body)
    except PrefillRefused as exc:
        logger.info(
            "kiosk.prefill.refused sender=%s item=%s status=%s fields=%s",
            hash_id(body.sender_id), body.item_id, exc.status, ",".join(sorted(exc.problems)),
        )
        return JSONResponse({"detail": exc.message, "problems": exc.problems}, status_code=exc.status)
    answer = Submitted(
        receipt=done.receipt,
        item_id=done.item_id,
        item_name=done.item_name,
        created_at=done.created_at.replace(tzinfo=dt.timezone.utc),
        materials=done.materials,
        state=central.STATE_PENDING if done.queued else central.STATE_RECEIVED,
        message=(STORED_QUEUED if done.queued else STORED_RECEIVED) + KEEP_RECEIPT,
        print=settings.kiosk_printer,
    )
    await asyncio.to_thread(
        record_audit, settings.db_url, actor=citizen_actor(body.sender_id), action=AUDIT_SUBMIT,
        subject=done.receipt, channel=KIOSK_CHANNEL, result="queued" if done.queued else "stored",
    )
    outbox = getattr(request.app.state, "outbox", None)
    if outbox is not None and done.queued:
        outbox.wake()  # try at once: the connection may be there
    return JSONResponse(json.loads(answer.json()), status_code=201)


# --------------------------------------------------------------------- desk
def _audit(settings: Settings, actor: str, action: str, subject: Optional[str], result: str) -> None:
    record_audit(settings.db_url, actor=actor, action=action, subject=subject, channel=DESK_CHANNEL, result=result)


ReceiptPath = Path(..., min_length=1, max_length=32)


def _receipt_or_404(receipt: str) -> str:
    if not is_receipt_number(receipt):
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    return receipt


@router.get(DESK_PATH, responses=DESK_ERRORS)
async def list_preapplications(
    principal: OperatorDep, settings: SettingsDep, limit: int = Query(50, ge=1, le=500)
) -> Dict[str, Any]:
    """The newest pre-applications received from kiosks (no personal data; audited)."""
    rows = await asyncio.to_thread(central.list_received, settings.db_url, limit)
    await asyncio.to_thread(_audit, settings, principal.actor, AUDIT_LIST, None, "ok")
    return {"preapplications": rows}


@router.get(DESK_PATH + "/{receipt}", responses=DESK_ERRORS)
async def view_preapplication(principal: OperatorDep, settings: SettingsDep, receipt: str = ReceiptPath) -> Dict[str, Any]:
    """A received pre-application with its fields (personal data: audited)."""
    receipt = _receipt_or_404(receipt)
    try:
        found = await asyncio.to_thread(central.open_received, settings, receipt)
    except central.Unavailable:
        await asyncio.to_thread(_audit, settings, principal.actor, AUDIT_VIEW, receipt, "unavailable")
        raise HTTPException(status_code=410, detail=GONE) from None
    await asyncio.to_thread(_audit, settings, principal.actor, AUDIT_VIEW, receipt, "ok" if found else "not_found")
    if found is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    return found


@router.get(DESK_PATH + "/{receipt}/photos/{photo_id}", responses=DESK_ERRORS)
async def view_photo(
    principal: OperatorDep,
    settings: SettingsDep,
    receipt: str = ReceiptPath,
    photo_id: str = Path(..., min_length=36, max_length=36, regex=r"^[0-9a-f-]{36}$"),
) -> Response:
    """A photo of a material (personal data: audited)."""
    receipt = _receipt_or_404(receipt)
    try:
        found = await asyncio.to_thread(central.open_photo, settings, receipt, photo_id)
    except central.Unavailable:
        await asyncio.to_thread(_audit, settings, principal.actor, AUDIT_PHOTO, receipt, "unavailable")
        raise HTTPException(status_code=410, detail=GONE) from None
    await asyncio.to_thread(_audit, settings, principal.actor, AUDIT_PHOTO, receipt, "ok" if found else "not_found")
    if found is None:
        raise HTTPException(status_code=404, detail=NO_PHOTO)
    content_type, data = found
    return Response(data, media_type=content_type, headers={"Cache-Control": "no-store"})
