"""FastAPI dependencies: the runtime, the catalog and the settings of the running app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from assistant.dialogue.runtime import AssistantRuntime
from assistant.config.settings import Settings
from knowledge.catalog import Catalog

NOT_READY = "助手正在启动，请稍后再试"


def get_runtime(request: Request) -> AssistantRuntime:
    runtime: AssistantRuntime = request.app.state.runtime
    if not runtime.ready:
        raise HTTPException(status_code=503, detail=NOT_READY)
    return runtime


def get_catalog(request: Request) -> Catalog:
    return request.app.state.catalog


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


RuntimeDep = Annotated[AssistantRuntime, Depends(get_runtime)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
