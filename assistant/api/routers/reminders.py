"""A web-chat conversation's reminders (服务找人): ``POST/GET/DELETE
/api/v1/chat/{conversation_id}/reminders`` (``assistant/services/progress/reminders.py``),
and its status notices ("状态有变化时提醒我", ``subscriptions.py``): listed beside the
reminders (``GET …/reminders`` → ``subscriptions``), cancelled with ``DELETE
/api/v1/chat/{conversation_id}/subscriptions[/{id}]``. The web chat's "提醒" panel
uses these; in the conversation "我的提醒" / "退订提醒" do the same (``commands.py``).

Every call needs the conversation's token (from ``POST /api/v1/chat/sessions``),
in the ``X-Chat-Token`` header or, for POST, in the body like the chat API: 401
without one, 403 with a wrong one. A reminder is shown in this conversation (live,
or when the citizen comes back); kiosk conversations cannot have reminders
(nothing is pushed to a kiosk). Refusals are 4xx with a sentence in Chinese.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Dict, Optional

from fastapi import APIRouter, Header, HTTPException, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictStr

from assistant.api.deps import BAD_TOKEN, MAX_ROW_ID, NEED_TOKEN, SettingsDep
from assistant.api.schemas import SENDER_ID_RE, ErrorResponse
from assistant.security import chat_session
from assistant.services.progress import reminders, subscriptions
from assistant.services.progress.notices import masked_number

router = APIRouter(prefix="/api/v1/chat", tags=["reminders"])

CHANNEL = "web"
NOT_FOUND = "没有找到这条提醒，可能已经取消或发送过了。"
SUBSCRIPTION_TITLE = "办件状态提醒"
BAD_CONVERSATION = "会话编号格式不正确"
ERRORS = {401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, 404: {"model": ErrorResponse},
          422: {"model": ErrorResponse}}

ConversationId = Path(..., min_length=1, max_length=128, description="The web chat's conversation id (web-…)")


class ReminderRequest(BaseModel):
    kind: StrictStr = Field(..., max_length=32, description="supplement_deadline | ready_for_pickup | "
                            "pension_certification | id_card_expiry | passport_expiry")
    number: Optional[StrictStr] = Field(None, max_length=32, description="Application number (ZW…)")
    due_on: Optional[StrictStr] = Field(None, max_length=10, description="Deadline or day, YYYY-MM-DD")
    expiry_month: Optional[StrictStr] = Field(None, max_length=16, description="Expiry month, YYYY-MM")
    token: Optional[StrictStr] = Field(None, max_length=128, description="Conversation token (or X-Chat-Token)")

    class Config:
        extra = "forbid"


def _admit(settings, conversation_id: str, token: Optional[str]) -> str:
    """The channel's recipient (the conversation id) once its token checks out."""
    if not SENDER_ID_RE.match(conversation_id):
        raise HTTPException(422, BAD_CONVERSATION)
    if not token:
        raise HTTPException(401, NEED_TOKEN)
    if not chat_session.verify(settings.secret(), conversation_id, token):
        raise HTTPException(403, BAD_TOKEN)
    if not conversation_id.startswith(chat_session.WEB_PREFIX):
        raise HTTPException(422, reminders.UNKNOWN_CHANNEL)
    return conversation_id


def _date(value: Optional[str]) -> Optional[dt.date]:
    if value is None or value == "":
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, reminders.NEED_DATE) from None


@router.post("/{conversation_id}/reminders", status_code=201,
             responses={200: {"description": "the same reminder was already set"}, **ERRORS})
async def create_reminder(
    body: ReminderRequest,
    settings: SettingsDep,
    conversation_id: str = ConversationId,
    x_chat_token: Optional[str] = Header(None, max_length=128),
) -> JSONResponse:
    """Set a reminder: ``kind`` and what it needs (``number``; ``due_on``;
    ``expiry_month`` for ID cards and passports — the month only)."""
    recipient = _admit(settings, conversation_id, x_chat_token or body.token)
    try:
        made = await asyncio.to_thread(
            lambda: reminders.remind(
                settings.db_url, settings.secret(), kind=body.kind, channel=CHANNEL, recipient=recipient,
                timezone=settings.timezone, number=body.number, due_on=_date(body.due_on),
                expiry_month=body.expiry_month,
            )
        )
    except reminders.ReminderError as exc:
        raise HTTPException(422, str(exc)) from None
    listed = await asyncio.to_thread(reminders.list_reminders, settings.db_url, settings.secret(), CHANNEL, recipient)
    view = next((r.as_dict() for r in listed if r.id == made.id), None)
    return JSONResponse({"id": made.id, "created": made.created, "reminder": view},
                        status_code=201 if made.created else 200)


@router.get("/{conversation_id}/reminders", responses=ERRORS)
async def get_reminders(
    settings: SettingsDep,
    conversation_id: str = ConversationId,
    x_chat_token: Optional[str] = Header(None, max_length=128),
) -> Dict:
    """The conversation's pending reminders, soonest first, and its status
    subscriptions, oldest first (numbers masked)."""
    recipient = _admit(settings, conversation_id, x_chat_token)
    listed = await asyncio.to_thread(reminders.list_reminders, settings.db_url, settings.secret(), CHANNEL, recipient)
    subscribed = await asyncio.to_thread(subscriptions.active, settings.db_url, settings.secret(), CHANNEL, recipient)
    return {
        "reminders": [r.as_dict() for r in listed],
        "subscriptions": [{"id": sid, "number": masked_number(number), "title": SUBSCRIPTION_TITLE}
                          for sid, number in subscribed],
    }


@router.delete("/{conversation_id}/reminders", responses=ERRORS)
async def cancel_all(
    settings: SettingsDep,
    conversation_id: str = ConversationId,
    x_chat_token: Optional[str] = Header(None, max_length=128),
) -> Dict:
    """Cancel every pending reminder of the conversation ("退订提醒")."""
    recipient = _admit(settings, conversation_id, x_chat_token)
    ended = await asyncio.to_thread(reminders.cancel_reminder, settings.db_url, settings.secret(), CHANNEL, recipient)
    return {"cancelled": ended}


@router.delete("/{conversation_id}/reminders/{reminder_id}", responses=ERRORS)
async def cancel_one(
    settings: SettingsDep,
    conversation_id: str = ConversationId,
    reminder_id: int = Path(..., ge=1, le=MAX_ROW_ID),
    x_chat_token: Optional[str] = Header(None, max_length=128),
) -> Dict:
    """Cancel one pending reminder; 404 when the conversation has none with this id."""
    recipient = _admit(settings, conversation_id, x_chat_token)
    ended = await asyncio.to_thread(reminders.cancel_reminder, settings.db_url, settings.secret(), CHANNEL, recipient,
                                    reminder_id)
    if not ended:
        raise HTTPException(404, NOT_FOUND)
    return {"cancelled": ended}


@router.delete("/{conversation_id}/subscriptions", responses=ERRORS)
async def unsubscribe_all(
    settings: SettingsDep,
    conversation_id: str = ConversationId,
    x_chat_token: Optional[str] = Header(None, max_length=128),
) -> Dict:
    """Cancel every status subscription of the conversation."""
    recipient = _admit(settings, conversation_id, x_chat_token)
    ended = await asyncio.to_thread(subscriptions.cancel, settings.db_url, settings.secret(), CHANNEL, recipient)
    return {"cancelled": ended}


@router.delete("/{conversation_id}/subscriptions/{subscription_id}", responses=ERRORS)
async def unsubscribe_one(
    settings: SettingsDep,
    conversation_id: str = ConversationId,
    subscription_id: int = Path(..., ge=1, le=MAX_ROW_ID),
    x_chat_token: Optional[str] = Header(None, max_length=128),
) -> Dict:
    """Cancel one status subscription; 404 when the conversation has none with this id."""
    recipient = _admit(settings, conversation_id, x_chat_token)
    ended = await asyncio.to_thread(lambda: subscriptions.cancel(
        settings.db_url, settings.secret(), CHANNEL, recipient, subscription_id=subscription_id))
    if not ended:
        raise HTTPException(404, NOT_FOUND)
    return {"cancelled": ended}
