"""FastAPI dependencies: the runtime, the catalog and the settings of the running app,
and the admission of a conversation (its token; its client, for per-IP limits)."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Optional

from fastapi import Depends, HTTPException, Request
from starlette.requests import HTTPConnection

from assistant.config.settings import Settings
from assistant.dialogue.runtime import AssistantRuntime
from assistant.security import chat_session
from assistant.security.client import client_ip
from assistant.security.client_limits import remember_client
from assistant.services.conversation import ready_runtime
from knowledge.catalog import Catalog

logger = logging.getLogger(__name__)

# Row ids (tickets, messages) fit a 32-bit INTEGER column (PostgreSQL); larger ids in
# a request are refused with 422 instead of overflowing the database driver.
MAX_ROW_ID = 2**31 - 1

BAD_TOKEN = "会话已失效，请刷新页面后重试"
NEED_TOKEN = "请先创建会话（缺少会话令牌）"


def get_runtime(request: Request) -> AssistantRuntime:
    """The dialogue runtime; 503 while the model is still loading."""
    return ready_runtime(request.app)


def get_catalog(request: Request) -> Catalog:
    return request.app.state.catalog


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


RuntimeDep = Annotated[AssistantRuntime, Depends(get_runtime)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def check_token(settings: Settings, sender_id: str, token: Optional[str]) -> None:
    """``web-``/``kiosk-``/``wx-`` ids always need their token; with
    ``require_chat_token`` every id does: 401 without a token, 403 with a wrong one."""
    if not (settings.require_chat_token or chat_session.needs_token(sender_id)):
        return
    if not token and settings.require_chat_token:
        raise HTTPException(status_code=401, detail=NEED_TOKEN)
    if not chat_session.verify(settings.secret(), sender_id, token):
        raise HTTPException(status_code=403, detail=BAD_TOKEN)


async def admit_conversation(conn: HTTPConnection, settings: Settings, sender_id: str, token: Optional[str]) -> None:
    """Check the conversation's token, then remember the client it is used from (the
    action server counts progress lookups per client IP)."""
    check_token(settings, sender_id, token)
    address = client_ip(conn, settings.trusted_proxies)
    try:
        await asyncio.to_thread(remember_client, settings, sender_id, address)
    except Exception:  # the turn still runs; the per-conversation limits still hold
        logger.exception("gateway.client.remember_failed")
