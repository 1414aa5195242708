"""The review queue of the improvement loop (admins only): ``/admin/reviews`` (the
page) and ``/api/v1/admin/reviews/…`` (its data and the two steps of a review).

- ``GET /api/v1/admin/reviews?state&reason&channel&limit&offset`` → a page of reviews
  (masked texts; audited ``admin.review.view``), after collecting new handoffs, bad
  ratings and "wrong" marks (``assistant/services/reviews/collect.py``);
- ``GET /api/v1/admin/reviews/summary?days`` → counts and the trend of open reviews;
- ``GET /api/v1/admin/reviews/options`` → reasons, states, channels, intents, items;
- ``POST /api/v1/admin/reviews/{id}/assign`` → the right item and intent, or "not
  covered" (checked against the catalog and the domain's intents);
- ``POST /api/v1/admin/reviews/{id}/accept`` → the assignment becomes data: a text
  assigned to an item a situation of it, live (a catalog revision), an intent a
  training example of the next training (``assistant/services/reviews/adopt.py``); the
  export files are rewritten (``assistant/services/reviews/export.py``). Accepted
  reviews in the list say where they went (``destinations``);
- ``POST /api/v1/admin/reviews/{id}/dismiss`` → nothing to learn from it;
- ``GET /api/v1/admin/reviews/export/{file}`` → one export file.

Every API route needs an admin session and, for POST, the CSRF header (router-level
dependency); every action writes an audit row (``admin.review.*``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, Optional

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, StrictBool, StrictStr

from assistant.api.admin_pages import NO_STORE, admin_page
from assistant.api.deps import MAX_ROW_ID
from assistant.api.schemas import ErrorResponse
from assistant.security import access, audit as audit_log
from assistant.security.access import AdminDep
from assistant.security.sessions import Principal
from assistant.services.analytics import labels
from assistant.services.reviews import adopt, collect, export, queue
from assistant.services.reviews.config import TUNABLES
from assistant.storage.review_tables import OUTCOME_ACCEPTED, REVIEW_REASONS

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix="/api/v1/admin/reviews",
    tags=["admin"],
    dependencies=[Depends(access.require_admin)],
    responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
)
page_router = APIRouter(include_in_schema=False)

AUDIT_CHANNEL = "admin"
NO_FILE = "没有这个导出文件"
NOT_EXPORTED = "还没有审核通过的数据，暂无导出文件"
EXPORT_FAILED = "已审核通过，但导出文件没有写成功，请联系系统管理员检查导出目录"
ReviewId = Path(..., ge=1, le=MAX_ROW_ID, description="a review's id")


class AssignBody(BaseModel):
    item_id: Optional[StrictStr] = Field(None, max_length=64, description="a catalog item id")
    intent: Optional[StrictStr] = Field(None, max_length=64, description="an intent of the domain")
    not_covered: StrictBool = Field(False, description="no catalog item covers it")
    note: Optional[StrictStr] = Field(None, max_length=200)

    class Config:
        extra = "forbid"


class DismissBody(BaseModel):
    note: Optional[StrictStr] = Field(None, max_length=200)

    class Config:
        extra = "forbid"


def _settings(request: Request):
    return request.app.state.settings


def _audit(request: Request, admin: Principal, action: str, subject: Optional[str], result: str = "ok") -> None:
    audit_log.record_audit_safely(
        _settings(request).db_url, actor=admin.actor, action=action, subject=subject,
        channel=AUDIT_CHANNEL, result=result,
    )


async def _step(request: Request, admin: Principal, action: str, review_id: int, work) -> Dict[str, Any]:
    """Run one step of a review; refusals become 4xx with their reason, all audited."""
    subject = f"review:{review_id}"
    try:
        found = await asyncio.to_thread(work)
    except queue.ReviewError as exc:
        result = {404: "not_found", 409: "conflict"}.get(exc.status, "invalid")
        await asyncio.to_thread(_audit, request, admin, action, subject, result)
        raise HTTPException(status_code=exc.status, detail=str(exc)) from None
    await asyncio.to_thread(_audit, request, admin, action, subject)
    logger.info("%s id=%s user=%s", action, review_id, admin.username)
    return found


@router.get("")
async def list_reviews(
    admin: AdminDep,
    request: Request,
    response: Response,
    state: str = Query(queue.STATE_PENDING, max_length=16, description="pending | open | assigned | done | all"),
    reason: Optional[str] = Query(None, max_length=16, description=" | ".join(REVIEW_REASONS)),
    channel: Optional[str] = Query(None, max_length=16, description="web | wechat | kiosk | hotline | ..."),
    limit: int = Query(TUNABLES.page_size, ge=1, le=TUNABLES.max_page_size),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> Dict[str, Any]:
    """A page of reviews, the most recently seen first (texts masked). Audited."""
    settings = _settings(request)
    filters = queue.ListFilters(state=state, reason=reason or None, channel=channel or None)
    try:
        filters.check()
    except queue.ReviewError as exc:
        raise HTTPException(status_code=exc.status, detail=str(exc)) from None
    await asyncio.to_thread(collect.collect_safely, settings)
    catalog = request.app.state.catalog
    found = await asyncio.to_thread(queue.list_items, settings.db_url, catalog, filters, limit, offset)
    await asyncio.to_thread(adopt.destinations, settings, catalog, found["items"])
    await asyncio.to_thread(_audit, request, admin, "admin.review.view", f"{state}:{reason or '*'}:{channel or '*'}")
    response.headers["Cache-Control"] = "no-store"
    return found


@router.get("/summary")
async def summary(
    admin: AdminDep,
    request: Request,
    days: int = Query(TUNABLES.trend_days, ge=1, le=TUNABLES.max_trend_days),
) -> Dict[str, Any]:
    """How many reviews are open, assigned and done, the open ones per reason, and per
    local day the reviews not done at its end (``open``) and those that came in (``new``)."""
    settings = _settings(request)
    await asyncio.to_thread(collect.collect_safely, settings)
    counts = await asyncio.to_thread(queue.counts, settings.db_url)
    trend = await asyncio.to_thread(queue.trend, settings.db_url, settings.timezone, days)
    return {"counts": counts, "trend": trend}


@router.get("/options")
def options(admin: AdminDep, request: Request) -> Dict[str, Any]:
    """What the queue can be filtered by and what an assignment may name."""
    catalog = request.app.state.catalog
    return {
        "states": list(queue.STATES),
        "reasons": [{"id": key, "name": queue.REASON_LABELS[key]} for key in REVIEW_REASONS],
        "channels": [{"id": key, "name": name} for key, name in labels.CHANNELS.items()],
        "intents": [{"id": key, "name": labels.label(labels.INTENTS, key)} for key in sorted(queue.intent_names())],
        "items": sorted(({"id": r.id, "name": r.name} for r in catalog.items()), key=lambda r: r["id"]),
        "files": list(export.FILES),
    }


@router.post("/{review_id}/assign", responses={404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}})
async def assign(body: AssignBody, admin: AdminDep, request: Request, review_id: int = ReviewId) -> Dict[str, Any]:
    """The right catalog item and intent, or "not covered". Can be changed until accepted."""
    settings, catalog = _settings(request), request.app.state.catalog

    def work() -> Dict[str, Any]:
        return queue.assign(
            settings.db_url, catalog, review_id, admin.username, item_id=body.item_id or None,
            intent=body.intent or None, not_covered=body.not_covered, note=body.note or None,
        )

    return await _step(request, admin, "admin.review.assign", review_id, work)


@router.post("/{review_id}/accept", responses={404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}})
async def accept(admin: AdminDep, request: Request, review_id: int = ReviewId) -> Dict[str, Any]:
    """The second look: the assignment becomes data. A text assigned to an item becomes
    a situation of it (a catalog revision, live on every replica; refused by the
    catalog's validation: 422, not accepted); an intent, a training example of the next
    training. The export files are rewritten."""
    settings, catalog = _settings(request), request.app.state.catalog

    def work() -> Dict[str, Any]:
        review = queue.acceptable(settings.db_url, catalog, review_id)
        # Accepted first (a concurrent accept or dismiss now gets 409), then the data:
        # a situation refused by the catalog takes the acceptance back.
        done = queue.finish(settings.db_url, catalog, review_id, admin.username, OUTCOME_ACCEPTED)
        adoption = None
        if review["assigned_item"]:
            try:
                adoption = adopt.adopt(settings, catalog, review_id, review["assigned_item"], review["text"],
                                       admin.actor)
            except Exception:
                queue.reopen(settings.db_url, review_id)
                raise
        return {"review": done, "situation": adoption.public() if adoption else None}

    found = await _step(request, admin, "admin.review.accept", review_id, work)
    situation = found["situation"]
    if situation and situation["revision"]:
        await asyncio.to_thread(_audit, request, admin, "admin.catalog.publish", situation["item_id"])
        try:
            await request.app.state.catalog_watcher.refresh()  # this process at once; the others poll
        except Exception:  # published all the same: the watcher's next poll takes it up
            logger.warning("admin.review.refresh_failed id=%s", review_id, exc_info=True)
    catalog = request.app.state.catalog

    def finish_up() -> Dict[str, Any]:
        adopt.destinations(settings, catalog, [found["review"]])
        try:
            return {**found, "files": export.write_exports(settings, catalog)}
        except OSError:  # accepted all the same: the next accept rewrites every file
            logger.exception("admin.review.export_failed id=%s", review_id)
            return {**found, "files": None, "warning": EXPORT_FAILED}

    return await asyncio.to_thread(finish_up)


@router.post("/{review_id}/dismiss", responses={404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}})
async def dismiss(
    admin: AdminDep, request: Request, body: Optional[DismissBody] = None, review_id: int = ReviewId
) -> Dict[str, Any]:
    """Nothing to learn from it (noise, a test): done without data."""
    settings, catalog = _settings(request), request.app.state.catalog
    note = body.note if body is not None else None

    def work() -> Dict[str, Any]:
        return queue.dismiss(settings.db_url, catalog, review_id, admin.username, note or None)

    return await _step(request, admin, "admin.review.dismiss", review_id, work)


@router.get("/export/{name}", responses={200: {"content": {"text/yaml": {}}}, 404: {"model": ErrorResponse}})
async def export_file(admin: AdminDep, request: Request, name: str = Path(..., max_length=40)) -> FileResponse:
    """One export file of the accepted reviews (YAML). Audited."""
    if name not in export.FILES:
        raise HTTPException(status_code=404, detail=NO_FILE)
    path = export.export_dir(_settings(request)) / name
    if not path.is_file():
        raise HTTPException(status_code=404, detail=NOT_EXPORTED)
    await asyncio.to_thread(_audit, request, admin, "admin.review.export", name)
    return FileResponse(path, media_type="text/yaml; charset=utf-8", filename=name, headers=NO_STORE)


@page_router.get("/admin/reviews")
def reviews_page(request: Request) -> FileResponse:
    """The review queue for admins; a login form (401) or a refusal (403) for anyone else."""
    return admin_page(request, "reviews.html")
