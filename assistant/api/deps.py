"""FastAPI dependencies: the runtime, the catalog and the settings of the running app,
and the conversation-token check."""

from __future__ import annotations

from typing import Annotated, Optional

from fastapi import Depends, HTTPException, Request

from assistant.config.settings import Settings
from assistant.dialogue.runtime import AssistantRuntime
from assistant.security import chat_session
from assistant.services.conversation import ready_runtime
from knowledge.catalog import Catalog

BAD_TOKEN = "会话已失效，请刷新页面后重试"


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
    if chat_session.needs_token(sender_id) and not chat_session.verify(settings.secret(), sender_id, token):
        raise HTTPException(status_code=403, detail=BAD_TOKEN)
