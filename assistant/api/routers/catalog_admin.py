"""Catalog administration (admins only): ``/admin/catalog`` (the page) and
``/api/v1/admin/catalog/…``: browse and search items and bundles, validate a draft
exactly as ``banshi kb validate`` does, preview the chat answers of a draft, publish
with a reason, the history of a record (who, when, why) and one-click revert.

A publish takes effect without retraining: this process swaps the catalog and the item
linker at once, every other gateway and action server within ``catalog_poll_seconds``
(``assistant.services.catalog_live``, ``knowledge.revisions``). Every publish and
revert is audited (``admin.catalog.publish`` / ``admin.catalog.revert``, refused ones
too, with result ``invalid``). Retraining (only intent data needs it) runs in a
background process: ``POST …/retrain`` starts it (audited ``admin.catalog.retrain``),
``GET …/retrain`` shows its progress (``assistant.services.retrain``) and which replicas
took up its model (``assistant.services.model_live``); ``GET …/model`` the model this
replica uses.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any, Dict, List, Optional

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field, StrictStr, conint, validator

from assistant.api.paths import STATIC_DIR
from assistant.api.schemas import ErrorResponse
from assistant.config.settings import PROJECT_ROOT
from assistant.security import access, audit as audit_log
from assistant.security.access import AdminDep
from assistant.security.accounts import ROLE_ADMIN
from assistant.security.sessions import Principal, principal_from_request
from assistant.services import retrain
from assistant.storage import catalog_tables, model_tables, training_tables
from knowledge import answers, problems_zh, record_diff, revisions
from knowledge.catalog import Catalog

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix="/api/v1/admin/catalog",
    tags=["admin"],
    dependencies=[Depends(access.require_admin)],
    responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)
page_router = APIRouter(include_in_schema=False)

PAGE_DIR = STATIC_DIR / "admin"
NO_STORE = {"Cache-Control": "no-store"}
AUDIT_CHANNEL = "admin"
ACTION_PUBLISH = "admin.catalog.publish"
ACTION_REVERT = "admin.catalog.revert"
ACTION_RETRAIN = "admin.catalog.retrain"
RECORD_ID = r"^[a-z][a-z0-9_]*$"
MAX_PROBLEMS = 50
MAX_RESULTS = 100
NOT_FOUND = "没有找到该事项"
NO_REVISION = "没有找到该版本"
INVALID = "草稿未通过校验，请按下列问题修改后再试。"
NOT_A_RECORD = "草稿内容应为一个事项的全部字段（JSON 对象）"
REASON_RULE = "请填写修改原因（2到500个字）"
WRONG_RECORD = "该版本不属于这个事项"
RETRAIN_RUNNING = "已有一次训练正在进行，请等它结束后再试。"

RecordPath = Path(..., max_length=64, regex=RECORD_ID)
RevisionPath = Path(..., ge=1, le=2**31 - 1)


def _reason(value: str) -> str:
    value = value.strip()
    if not 2 <= len(value) <= catalog_tables.MAX_REASON_CHARS:
        raise ValueError(REASON_RULE)
    return value


class Draft(BaseModel):
    document: Dict[str, Any] = Field(..., description="the whole record (as GET …/records/{id} returns it)")

    class Config:
        extra = "forbid"


class PublishBody(Draft):
    reason: StrictStr = Field(..., max_length=catalog_tables.MAX_REASON_CHARS, example="收费标准调整")

    _reason = validator("reason", allow_reuse=True)(_reason)


class RevertBody(BaseModel):
    revision: conint(strict=True, ge=0, le=2**31 - 1) = Field(  # type: ignore[valid-type]
        ..., description="the revision to restore (0: the file)"
    )
    reason: StrictStr = Field(..., max_length=catalog_tables.MAX_REASON_CHARS)

    class Config:
        extra = "forbid"

    _reason = validator("reason", allow_reuse=True)(_reason)


def _settings(request: Request):
    return request.app.state.settings


def _catalog(request: Request) -> Catalog:
    return request.app.state.catalog


def _known(request: Request, record_id: str) -> None:
    if record_id not in _catalog(request):
        raise HTTPException(status_code=404, detail=NOT_FOUND)


async def _audit(request: Request, admin: Principal, action: str, subject: str, result: str) -> None:
    await asyncio.to_thread(functools.partial(
        audit_log.record_audit_safely, _settings(request).db_url, actor=admin.actor, action=action,
        subject=subject, channel=AUDIT_CHANNEL, result=result,
    ))


def _problems(request: Request, problems: List[str]) -> List[str]:
    """The problems without this machine's paths, at most MAX_PROBLEMS."""
    prefixes = (f"{_settings(request).catalog_dir}/", f"{PROJECT_ROOT}/")
    cleaned = []
    for problem in problems[:MAX_PROBLEMS]:
        for prefix in prefixes:
            problem = problem.replace(prefix, "")
        cleaned.append(problem)
    return cleaned


def _refused(request: Request, problems: List[str], document: Optional[Dict[str, Any]] = None) -> JSONResponse:
    """422: the problems in Chinese (``problems``), as ``banshi kb validate`` prints them
    (``details``) and each with the draft's field it is about (``fields``: ``field``
    such as ``materials[1].name``, or null for the whole record, and ``problem``)."""
    details = _problems(request, problems)
    explained = [problems_zh.explain(p) for p in details]
    fields = [{"field": problems_zh.locate(d, document), "problem": p} for d, p in zip(details, explained)]
    return JSONResponse(
        {"detail": INVALID, "problems": explained, "details": details, "fields": fields}, status_code=422
    )


def _warnings(request: Request, warnings: List[str]) -> List[str]:
    return list(dict.fromkeys(problems_zh.explain_fact(w) for w in _problems(request, warnings)))


def _matches(record, query: str) -> bool:
    text = query.strip().lower()
    return not text or text in record.id or text in record.name or any(text in a for a in record.aliases)


@router.get("/records")
def list_records(
    admin: AdminDep,
    request: Request,
    q: Optional[str] = Query(None, max_length=64, description="id, name or alias contains"),
    kind: Optional[str] = Query(None, regex="^(item|bundle)$"),
    limit: int = Query(MAX_RESULTS, ge=1, le=MAX_RESULTS),
) -> Dict[str, Any]:
    """Items and bundles (id, name, department, fee, time limit, latest revision)."""
    catalog = _catalog(request)
    revised = catalog_tables.revised_records(_settings(request).db_url)
    found = [
        {
            "id": r.id, "kind": r.kind, "name": r.name, "department": r.department,
            "fees": r.fees, "time_limit": r.time_limit, "verified": r.verified.isoformat(),
            "revision": revised.get(r.id, 0),
        }
        for r in sorted(catalog.items(), key=lambda r: (r.kind, r.id))
        if (kind is None or r.kind == kind) and _matches(r, q or "")
    ]
    return {"version": catalog.fingerprint, "total": len(found), "records": found[:limit]}


@router.get("/records/{record_id}")
def get_record(admin: AdminDep, request: Request, record_id: str = RecordPath) -> Dict[str, Any]:
    """The record in effect (the document to edit) and the file's version."""
    _known(request, record_id)
    settings = _settings(request)
    files = revisions.files_catalog(settings.catalog_dir, settings.region_override)
    document = revisions.current_document(settings.db_url, settings.catalog_dir, settings.region_override, record_id)
    return {
        "id": record_id,
        "name": document.get("name"),
        "kind": document.get("kind"),
        "document": document,
        "file_document": revisions.record_document(files.records[record_id]),
        "revision": catalog_tables.revised_records(settings.db_url).get(record_id, 0),
        "version": _catalog(request).fingerprint,
    }


def _check(request: Request, record_id: str, document: Dict[str, Any]) -> revisions.Checked:
    settings = _settings(request)
    return revisions.validate(settings.db_url, settings.catalog_dir, settings.region_override, record_id, document)


@router.post("/records/{record_id}/validate", responses={422: {"model": ErrorResponse}})
async def validate_draft(body: Draft, admin: AdminDep, request: Request, record_id: str = RecordPath) -> Any:
    """The checks of ``banshi kb validate`` on the catalog with this draft: 200 with the
    warnings (facts under test that the draft changes), or 422 with the problems."""
    _known(request, record_id)
    checked = await asyncio.to_thread(_check, request, record_id, body.document)
    if checked.problems:
        return _refused(request, checked.problems, body.document)
    return {"ok": True, "warnings": _warnings(request, checked.warnings)}


@router.post("/records/{record_id}/preview", responses={422: {"model": ErrorResponse}})
async def preview_draft(body: Draft, admin: AdminDep, request: Request, record_id: str = RecordPath) -> Any:
    """The chat answers of the draft, one per kind of question (as the chat shows them)."""
    _known(request, record_id)
    checked = await asyncio.to_thread(_check, request, record_id, body.document)
    if checked.problems:
        return _refused(request, checked.problems, body.document)
    texts = {question: answers.answer(checked.catalog, record_id, question) for question in answers.ANSWERS}
    labels = {answers.OVERVIEW: "概况", **answers.QUESTION_LABELS}
    return {
        "answers": [{"question": q, "label": labels.get(q, q), "text": t} for q, t in texts.items()],
        "warnings": _warnings(request, checked.warnings),
    }


async def _publish(
    request: Request, admin: Principal, record_id: str, document: Optional[Dict[str, Any]], reason: str,
    action: str, reverted_to: Optional[int] = None,
) -> Any:
    settings = _settings(request)
    audit_action = ACTION_PUBLISH if action == catalog_tables.ACTION_PUBLISH else ACTION_REVERT
    try:
        revision, version, checked = await asyncio.to_thread(
            revisions.publish, settings.db_url, settings.catalog_dir, settings.region_override, record_id,
            document, admin.actor, reason, action, reverted_to,
        )
    except revisions.RevisionError as exc:
        await _audit(request, admin, audit_action, record_id, "invalid")
        return _refused(request, exc.problems, document)
    await _audit(request, admin, audit_action, record_id, "ok")
    try:
        await request.app.state.catalog_watcher.refresh()  # this process at once; the others poll
    except Exception:  # published all the same: the watcher's next poll takes it up
        logger.warning("admin.catalog.refresh_failed record=%s", record_id, exc_info=True)
    logger.info("admin.catalog.published record=%s revision=%s user=%s", record_id, revision, admin.username)
    return JSONResponse(
        {"revision": revision, "version": version, "warnings": _warnings(request, checked.warnings)},
        status_code=201,
    )


@router.post("/records/{record_id}/publish", status_code=201, responses={422: {"model": ErrorResponse}})
async def publish_draft(body: PublishBody, admin: AdminDep, request: Request, record_id: str = RecordPath) -> Any:
    """Validate and publish the draft with its reason; every replica answers from it
    within seconds, without retraining."""
    _known(request, record_id)
    return await _publish(request, admin, record_id, body.document, body.reason, catalog_tables.ACTION_PUBLISH)


@router.post("/records/{record_id}/revert", status_code=201, responses={422: {"model": ErrorResponse}})
async def revert_record(body: RevertBody, admin: AdminDep, request: Request, record_id: str = RecordPath) -> Any:
    """Put back the record as a revision left it (``revision: 0``: as the file has it)."""
    _known(request, record_id)
    document = None
    if body.revision != revisions.FILE_VERSION:
        target = await asyncio.to_thread(catalog_tables.get_revision, _settings(request).db_url, body.revision)
        if target is None:
            raise HTTPException(status_code=404, detail=NO_REVISION)
        if target.record_id != record_id:
            raise HTTPException(status_code=422, detail=WRONG_RECORD)
        document = target.document
    return await _publish(
        request, admin, record_id, document, body.reason, catalog_tables.ACTION_REVERT, body.revision
    )


@router.get("/records/{record_id}/history")
def record_history(
    admin: AdminDep, request: Request, record_id: str = RecordPath, limit: int = Query(50, ge=1, le=200)
) -> Dict[str, Any]:
    """The record's revisions, newest first (without the documents)."""
    _known(request, record_id)
    rows = catalog_tables.history(_settings(request).db_url, record_id, limit)
    return {"id": record_id, "revisions": [row.summary() for row in rows]}


@router.get("/records/{record_id}/revisions/{revision_id}/diff")
def revision_diff(
    admin: AdminDep, request: Request, record_id: str = RecordPath, revision_id: int = RevisionPath
) -> Dict[str, Any]:
    """What a revision of the record changed compared to the version before it, field by
    field (``changes``; the fee first, marked ``important``), with the revision's summary."""
    _known(request, record_id)
    settings = _settings(request)
    row = catalog_tables.get_revision(settings.db_url, revision_id)
    if row is None or row.record_id != record_id:
        raise HTTPException(status_code=404, detail=NO_REVISION)
    changes = revisions.revision_changes(row, settings.catalog_dir, settings.region_override)
    return {**row.summary(), "changes": changes, "summary": record_diff.summary(changes)}


@router.get("/revisions/{revision_id}")
def get_revision(admin: AdminDep, request: Request, revision_id: int = RevisionPath) -> Dict[str, Any]:
    """One revision with the record after and before the change."""
    row = catalog_tables.get_revision(_settings(request).db_url, revision_id)
    if row is None:
        raise HTTPException(status_code=404, detail=NO_REVISION)
    return {**row.summary(), "document": row.document, "previous": row.previous}


@router.get("/retrain")
async def retrain_state(admin: AdminDep, request: Request) -> Dict[str, Any]:
    """The newest retraining run as every replica sees it: ``status`` idle (never run),
    running, succeeded or failed, with its times, phase, percent, last output line and
    the model it produced; ``replicas``: each gateway's outcome with that model (loaded,
    failed with the reason, or kept by setting)."""
    url = _settings(request).db_url
    run = await asyncio.to_thread(retrain.current, url)
    if run is None:
        return {"status": training_tables.STATUS_IDLE}
    replicas = await asyncio.to_thread(model_tables.loads_of, url, run.id) if run.model_path else []
    return {**run.public(), "replicas": replicas}


@router.get("/model")
def model_in_use(admin: AdminDep, request: Request) -> Dict[str, Any]:
    """The Rasa model this gateway replica uses: file, model id, the training run it came
    from (null: the model it started with), when it was loaded, the last model that failed."""
    return request.app.state.model_watcher.status()


@router.post("/retrain", status_code=202, responses={409: {"model": ErrorResponse}})
async def retrain_start(admin: AdminDep, request: Request) -> Any:
    """Start retraining (only intent data needs it) in a background process; 409 while
    a run is under way on any replica. Every replica takes up the new model within seconds."""
    run = await asyncio.to_thread(request.app.state.retrainer.start, admin.actor)
    if run is None:
        await _audit(request, admin, ACTION_RETRAIN, "retrain", "refused")
        return JSONResponse({"detail": RETRAIN_RUNNING}, status_code=409)
    await _audit(request, admin, ACTION_RETRAIN, f"run:{run.id}", "ok")
    return JSONResponse(run.public(), status_code=202)


@page_router.get("/admin/catalog")
def catalog_page(request: Request) -> FileResponse:
    """The catalog editor for admins; a login form (401) or a refusal (403) for anyone else."""
    principal = principal_from_request(request)
    if principal is None:
        return FileResponse(PAGE_DIR / "login.html", status_code=401, headers=NO_STORE)
    if principal.role != ROLE_ADMIN:
        logger.warning("desk.admin.forbidden user=%s path=%s", principal.username, request.url.path)
        return FileResponse(PAGE_DIR / "forbidden.html", status_code=403, headers=NO_STORE)
    return FileResponse(PAGE_DIR / "catalog.html", headers=NO_STORE)

