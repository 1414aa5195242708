"""Missing materials handed in by photo or PDF (补交材料), and the desk's view of them.

Citizen side (the conversation's token as for the chat, ``?token=``): the web chat's
attach bar, and the kiosk's "拍照补交材料" (document camera or file picker; a kiosk
conversation ``kiosk-…`` has its token from ``POST /api/v1/voice/sessions``, and its
uploads are recorded with channel ``kiosk``):

* ``GET /api/v1/chat/{conversation_id}/uploads`` — what this conversation may hand in:
  ``{verified, number, materials, uploaded, max_bytes}`` (``verified`` false: no
  verified application within the grant's time; the page shows no attach button).
* ``POST /api/v1/chat/{conversation_id}/photos`` — a photo question (拍照提问):
  ``multipart/form-data`` with ``file``; the text read from it (personal numbers
  masked; an application number on it starts the progress lookup) is the turn's
  message. The answer is the chat's (``POST /api/v1/chat``) plus ``read``, the text
  read. Nothing of the photo is stored. 413/415/422 as below, 422 when no text could
  be read.
* ``POST /api/v1/chat/{conversation_id}/uploads`` — ``multipart/form-data`` with
  ``file`` (a photo or PDF) and ``material`` (which missing material; optional when
  only one is missing). 201 ``{id, number, material, verdict, reasons, message,
  forwarded}``; ``message`` is the pre-check's answer for the citizen. Refusals have
  a Chinese ``detail``: 403 (not verified), 409 (nothing to hand in), 413 (too big:
  bytes, pixels, pages), 415 (not a photo or PDF), 422 (no file, unknown material,
  unreadable, a PDF with scripts), 503 (progress system down). Bodies are bounded
  before they are parsed and kept in memory (never spooled to disk unencrypted).

Desk side (a desk session; unsafe methods need the CSRF header):

* ``GET /api/v1/desk/uploads?number=ZW…`` — an application's uploads with the
  pre-check's flags and the masked OCR text (an audited read);
* ``GET /api/v1/desk/uploads/{id}/file`` — the file (audited; images inline, PDFs as
  a download);
* ``DELETE /api/v1/desk/uploads/{id}`` — delete the file (admins only; audited).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, AsyncIterator, Dict, Optional

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.formparsers import MultiPartException, MultiPartParser

from assistant.api.deps import SettingsDep, admit_conversation, check_token
from assistant.api.schemas import SENDER_ID_RE, ErrorResponse
from assistant.security import chat_session
from assistant.security.access import AdminDep, OperatorDep
from assistant.security.client import client_ip, client_key
from assistant.security.pii import hash_id, is_application_number
from assistant.services.conversation import conversation_turn
from assistant.services.materials import inspect, photo, runner, uploads

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/chat", tags=["uploads"])
desk_router = APIRouter(prefix="/api/v1/desk/uploads", tags=["desk"])

# Multipart framing and the material field, beyond the file itself.
FORM_SLACK_BYTES = 64 * 1024
UPLOAD_PATH_RE = re.compile(r"^/api/v1/chat/[^/]+/(uploads|photos)$")
UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

WEB_CHANNEL = "web"
KIOSK_CHANNEL = "kiosk"
BAD_CONVERSATION = "会话编号格式不正确"
NO_FILE = "请选择要上传的照片或 PDF 文件。"
BAD_FORM = "上传格式不正确，请重新选择文件上传。"
TOO_LARGE = "文件太大了，最大 {max_mb} MB。请您压缩后再上传，或者直接拍一张照片。"
TOO_MANY = "您发送照片的次数太多了，请 {minutes} 分钟后再试。"
BAD_NUMBER = "办件编号格式不正确"
NOT_FOUND = "没有找到该材料，或文件已按保存期限删除"
ERRORS: Dict[int, Dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 409, 413, 415, 422, 429, 503)
}
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "照片（JPG、PNG、WebP）或 PDF"},
                        "material": {"type": "string", "maxLength": 100, "description": "补交的是哪一项材料"},
                    },
                }
            }
        },
    }
}


def upload_body_limit(settings) -> int:
    """The largest request body an upload may have (the app's size limit for these paths)."""
    return settings.upload_max_bytes + FORM_SLACK_BYTES


def _conversation(settings, conversation_id: str, token: Optional[str]) -> str:
    if len(conversation_id) > settings.max_sender_id_chars or not SENDER_ID_RE.match(conversation_id):
        raise HTTPException(status_code=422, detail=BAD_CONVERSATION)
    check_token(settings, conversation_id, token)
    return conversation_id


async def _limit(request: Request, settings) -> None:
    """429 when this client has had too many photos read (before the body is read)."""
    client = client_key(settings.secret(), client_ip(request, settings.trusted_proxies) or "unknown")
    wait = await asyncio.to_thread(runner.photo_limit_wait, settings, client)
    if wait is not None:
        raise HTTPException(status_code=429, detail=TOO_MANY.format(minutes=max(1, -(-wait // 60))),
                            headers={"Retry-After": str(wait)})


def channel_of(sender: str) -> str:
    """The channel an upload came by: the kiosk's document camera (kiosk-…), else the web chat."""
    return KIOSK_CHANNEL if sender.startswith(chat_session.KIOSK_PREFIX) else WEB_CHANNEL


def _refused(exc: uploads.UploadError) -> HTTPException:
    return HTTPException(status_code=exc.status, detail=exc.message)


@router.get("/{conversation_id}/uploads", responses=ERRORS)
async def wanted(
    request: Request,
    settings: SettingsDep,
    conversation_id: str = Path(..., min_length=1, max_length=128),
    token: Optional[str] = Query(None, max_length=128),
) -> Dict[str, Any]:
    """Whether this conversation may hand in materials now, and which."""
    sender = _conversation(settings, conversation_id, token)
    services = runner.materials_of(request.app)
    try:
        found = await uploads.wanted(settings, services.provider, sender)
    except uploads.UploadError as exc:
        if exc.status == 403:
            return {"verified": False, "number": None, "materials": [], "uploaded": [],
                    "max_bytes": settings.upload_max_bytes}
        raise _refused(exc) from None
    open_ = found.status == uploads.STATUS_SUPPLEMENT
    return {
        "verified": True,
        "number": found.number,
        "materials": found.missing if open_ else [],
        "uploaded": [{"material": u["material"], "verdict": u["verdict"], "created_at": u["created_at"]}
                     for u in found.uploaded],
        "max_bytes": settings.upload_max_bytes,
    }


async def _read_form(request: Request, settings) -> Dict[str, Any]:
    """The multipart form, read into memory within the bound, then parsed."""
    limit = upload_body_limit(settings)
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise HTTPException(status_code=413, detail=TOO_LARGE.format(max_mb=settings.upload_max_bytes // 2**20))
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise HTTPException(status_code=422, detail=NO_FILE)

    async def stream() -> AsyncIterator[bytes]:
        yield bytes(body)
        yield b""

    parser = MultiPartParser(request.headers, stream(), max_files=1, max_fields=2)
    parser.max_file_size = limit + 1  # the file stays in memory: never spooled to disk unencrypted
    try:
        form = await parser.parse()
    except MultiPartException:
        raise HTTPException(status_code=400, detail=BAD_FORM) from None
    except Exception as exc:  # malformed headers, bad encodings, ...
        logger.info("materials.upload.bad_form error=%s", type(exc).__name__)
        raise HTTPException(status_code=400, detail=BAD_FORM) from None
    upload = form.get("file")
    material = form.get("material")
    if upload is None or isinstance(upload, str):
        raise HTTPException(status_code=422, detail=NO_FILE)
    if material is not None and (not isinstance(material, str) or len(material) > uploads.MAX_MATERIAL_CHARS):
        raise HTTPException(status_code=422, detail=BAD_FORM)
    data = await upload.read()
    await form.close()
    return {"data": data, "material": material}


@router.post("/{conversation_id}/uploads", status_code=201, responses=ERRORS, openapi_extra=UPLOAD_BODY)
async def upload(
    request: Request,
    settings: SettingsDep,
    conversation_id: str = Path(..., min_length=1, max_length=128),
    token: Optional[str] = Query(None, max_length=128),
) -> JSONResponse:
    """Hand in one missing material; the answer says what the pre-check found."""
    sender = _conversation(settings, conversation_id, token)
    await _limit(request, settings)
    form = await _read_form(request, settings)
    services = runner.materials_of(request.app)
    try:
        stored = await uploads.store(settings, services.provider, services.case_system, sender,
                                     channel_of(sender), form["data"], form["material"])
    except uploads.UploadError as exc:
        logger.info("materials.upload.refused sender=%s code=%s", hash_id(sender), exc.code)
        raise _refused(exc) from None
    return JSONResponse(
        {"id": stored.id, "number": stored.number, "material": stored.material, "verdict": stored.verdict,
         "reasons": stored.reasons, "message": stored.message, "forwarded": stored.forwarded},
        status_code=201,
    )


PHOTO_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary", "description": "通知、回执、表格的照片或 PDF"}},
}}}}}


@router.post("/{conversation_id}/photos", responses=ERRORS, openapi_extra=PHOTO_BODY)
async def photo_question(
    request: Request,
    settings: SettingsDep,
    conversation_id: str = Path(..., min_length=1, max_length=128),
    token: Optional[str] = Query(None, max_length=128),
) -> JSONResponse:
    """A photo question: what is read from the photo is answered like a typed message."""
    sender = _conversation(settings, conversation_id, token)
    await admit_conversation(request, settings, sender, token)
    await _limit(request, settings)
    form = await _read_form(request, settings)
    try:
        found = await photo.read_question(settings, form["data"])
    except inspect.UploadRefused as exc:
        raise HTTPException(status_code=uploads.refused_status(exc.code), detail=exc.message) from None
    if not found.text:
        raise HTTPException(status_code=422, detail=photo.UNREAD)
    response = await conversation_turn(request, settings, sender, found.text, "web")
    return JSONResponse({**response, "read": found.text})


# ---------------------------------------------------------------------- desk
@desk_router.get("", responses={401: {"model": ErrorResponse}, 422: {"model": ErrorResponse}})
async def desk_list(
    principal: OperatorDep, settings: SettingsDep, number: str = Query(..., min_length=1, max_length=32)
) -> Dict[str, Any]:
    """An application's uploads, newest first (an audited read)."""
    number = number.strip().upper()
    if not is_application_number(number):
        raise HTTPException(status_code=422, detail=BAD_NUMBER)
    found = await asyncio.to_thread(uploads.list_uploads, settings, number, principal.actor)
    return {"number": number, "uploads": found}


UploadId = Path(..., min_length=36, max_length=36, regex=UUID_RE)


@desk_router.get("/{upload_id}/file", responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}})
async def desk_file(principal: OperatorDep, settings: SettingsDep, upload_id: str = UploadId) -> Response:
    """The uploaded file (an audited read)."""
    opened = await asyncio.to_thread(uploads.open_upload, settings, upload_id, principal.actor)
    if opened is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    record, data = opened
    extension = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}.get(record["mime"], "pdf")
    disposition = "attachment" if extension == "pdf" else "inline"
    return Response(data, media_type=record["mime"], headers={
        "Content-Disposition": f'{disposition}; filename="{record["number"]}-{upload_id[:8]}.{extension}"',
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox",
    })


@desk_router.delete("/{upload_id}", responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse},
                                               404: {"model": ErrorResponse}})
async def desk_delete(principal: AdminDep, settings: SettingsDep, upload_id: str = UploadId) -> Dict[str, Any]:
    """Delete the file now (admins only; the record stays, marked deleted)."""
    if not await asyncio.to_thread(uploads.delete_upload, settings, upload_id, principal.actor):
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    return {"id": upload_id, "deleted": True}
