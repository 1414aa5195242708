"""POST /api/v1/applications/{number}/events: the case-management system tells banshi
that an application's status changed (``assistant/services/progress/events.py``).

Signed with HMAC-SHA256 (``X-Banshi-Timestamp``, ``X-Banshi-Signature``); 201 when
stored, 200 ``duplicate`` for an event id seen before; 401 for a missing, wrong or
stale signature, 404 for an unknown number (or when no secret is configured: the
endpoint is off), 422 for a bad event. Bodies are bounded (``MAX_BODY_BYTES``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import List, Optional

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError, validator

from assistant.api.deps import SettingsDep
from assistant.api.schemas import ErrorResponse
from assistant.security.pii import is_application_number
from assistant.services.progress import events, notices
from assistant.services.progress.records import CST, parse_status

router = APIRouter(prefix="/api/v1/applications", tags=["applications"])

MAX_BODY_BYTES = 16 * 1024
NOT_CONFIGURED = "未配置办件状态推送"
BAD_SIGNATURE = "签名无效或已过期"
UNKNOWN_NUMBER = "没有找到该办件"
BAD_NUMBER = "办件编号格式不正确"
BAD_EVENT = "状态事件格式不正确"
TOO_LARGE = "请求内容太大"


class StatusEvent(BaseModel):
    event_id: str = Field(..., min_length=1, max_length=64, regex=r"^[A-Za-z0-9_.:-]+$")
    status: str = Field(..., max_length=16)
    at: dt.datetime
    note: str = Field("", max_length=500)
    missing_materials: Optional[List[str]] = Field(None, max_items=30)

    @validator("status")
    def _status(cls, value: str) -> str:
        code = parse_status(value)
        if code is None:
            raise ValueError("unknown status")
        return code

    @validator("missing_materials", each_item=True)
    def _material(cls, value: str) -> str:
        if not value or len(value) > 100:
            raise ValueError("bad material")
        return value

    @validator("at")
    def _naive_china_time(cls, value: dt.datetime) -> dt.datetime:
        """Timelines hold China time without a zone (as the importer and the HTTP
        provider store them); a time without a zone is taken as China time."""
        if value.tzinfo is not None:
            value = value.astimezone(CST).replace(tzinfo=None)
        return value


@router.post(
    "/{number}/events",
    status_code=201,
    responses={200: {"description": "duplicate"}, 401: {"model": ErrorResponse}, 404: {"model": ErrorResponse},
               413: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
)
async def post_event(
    number: str,
    request: Request,
    settings: SettingsDep,
    x_banshi_timestamp: str = Header("", max_length=20),
    x_banshi_signature: str = Header("", max_length=100),
):
    if not settings.cms_webhook_secret:
        raise HTTPException(404, NOT_CONFIGURED)  # off: as if the endpoint were not there
    if not is_application_number(number):
        raise HTTPException(404, BAD_NUMBER)
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise HTTPException(413, TOO_LARGE)
    if not events.fresh(x_banshi_timestamp, settings.cms_webhook_window_seconds) or not events.signature_ok(
        settings.cms_webhook_secret, x_banshi_timestamp, body, x_banshi_signature
    ):
        raise HTTPException(401, BAD_SIGNATURE)
    try:
        event = StatusEvent(**json.loads(body))
    except (ValueError, TypeError, ValidationError):
        raise HTTPException(422, BAD_EVENT)
    try:
        outcome = await asyncio.to_thread(
            events.record_event, settings.db_url, number, event.event_id, event.status, event.at, event.note,
            event.missing_materials,
        )
    except events.UnknownApplication:
        raise HTTPException(404, UNKNOWN_NUMBER)
    if outcome != events.STORED:
        return JSONResponse({"result": outcome, "event_id": event.event_id}, status_code=200)
    # Subscribers hear of the application's current status (the newest event's).
    current = await asyncio.to_thread(events.current_status, settings.db_url, number)
    queued = await asyncio.to_thread(notices.enqueue, settings.db_url, number, current, settings.timezone)
    scheduler = getattr(request.app.state, "notices", None)
    if queued and scheduler is not None:
        scheduler.wake()  # sent now by this process (other replicas' rounds find the rest)
    return JSONResponse({"result": outcome, "event_id": event.event_id, "notices": queued}, status_code=201)
