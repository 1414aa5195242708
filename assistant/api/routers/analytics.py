"""The analytics dashboard (admins only): ``/admin/analytics`` (the page) and
``/api/v1/admin/analytics/…`` (its data and the CSV files).

- ``GET /api/v1/admin/analytics/report?start&end&channel&item`` → every table of the
  report (``assistant/services/analytics/report.py``) and the totals; default: the
  last 7 local days (audited: ``admin.analytics.view``);
- ``GET /api/v1/admin/analytics/export/{table}.csv?…`` → one table as CSV (audited:
  ``admin.analytics.export``);
- ``GET /api/v1/admin/analytics/options`` → the channels and items to filter by.

Every API route needs an admin session (router-level dependency). The page answers
401 with a login form to anonymous visitors, 403 to operators, and the dashboard to
admins; its scripts and the charting library (Chart.js, MIT, ``static/vendor``) are
files served from here: nothing from a CDN (the hall may be offline), no inline
script (the CSP).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Dict, Optional

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse

from assistant.api.admin_pages import NO_STORE, admin_page
from assistant.api.schemas import ErrorResponse
from assistant.security import access, audit as audit_log
from assistant.security.access import AdminDep
from assistant.security.sessions import Principal
from assistant.services.analytics import labels
from assistant.services.analytics.export import to_csv
from assistant.services.analytics.report import (
    TABLE_NAMES,
    BadFilters,
    Filters,
    build_report,
    default_filters,
    table_rows,
)

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix="/api/v1/admin/analytics",
    tags=["admin"],
    dependencies=[Depends(access.require_admin)],
    responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
)
page_router = APIRouter(include_in_schema=False)

DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
BAD_DATE = "日期格式不正确，请使用 年-月-日，例如 2026-11-02"
NO_TABLE = "没有这张统计表"
AUDIT_CHANNEL = "admin"


def _date(value: Optional[str]) -> Optional[dt.date]:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise HTTPException(status_code=422, detail=BAD_DATE)


def _filters(request: Request, start: Optional[str], end: Optional[str], channel: Optional[str], item: Optional[str]) -> Filters:
    """The asked range: ``end`` defaults to today, ``start`` to 6 days before ``end``."""
    default = default_filters(request.app.state.settings)
    last = _date(end) or default.end
    first = _date(start) or last - (default.end - default.start)
    filters = Filters(start=first, end=last, channel=channel or None, item=item or None)
    try:
        return filters.check(request.app.state.catalog)
    except BadFilters as exc:
        raise HTTPException(status_code=422, detail=str(exc))


StartQuery = Query(None, regex=DATE_PATTERN, description="first local day, YYYY-MM-DD (default: 6 days ago)")
EndQuery = Query(None, regex=DATE_PATTERN, description="last local day, inclusive (default: today)")
ChannelQuery = Query(None, max_length=16, description="web | wechat | kiosk | hotline | api | cli | sms | other")
ItemQuery = Query(None, max_length=64, description="a catalog item id")


def _audit(request: Request, admin: Principal, action: str, subject: str) -> None:
    audit_log.record_audit_safely(
        request.app.state.settings.db_url, actor=admin.actor, action=action, subject=subject,
        channel=AUDIT_CHANNEL, result="ok",
    )


def _report(request: Request, filters: Filters) -> Dict[str, Any]:
    try:
        return build_report(request.app.state.settings, request.app.state.catalog, filters)
    except BadFilters as exc:
        raise HTTPException(status_code=422, detail=str(exc))


@router.get("/report")
def report(
    admin: AdminDep,
    request: Request,
    response: Response,
    start: Optional[str] = StartQuery,
    end: Optional[str] = EndQuery,
    channel: Optional[str] = ChannelQuery,
    item: Optional[str] = ItemQuery,
) -> Dict[str, Any]:
    """Every table of the report and its totals (days are local days of BANSHI_TIMEZONE).
    Audited (``admin.analytics.view``): it shows citizens' words, masked."""
    filters = _filters(request, start, end, channel, item)
    body = _report(request, filters)
    _audit(request, admin, "admin.analytics.view", f"{filters.start.isoformat()}..{filters.end.isoformat()}")
    response.headers["Cache-Control"] = "no-store"
    return body


@router.get("/options")
def options(admin: AdminDep, request: Request) -> Dict[str, Any]:
    """What the report can be filtered by: channels and catalog items (with names)."""
    catalog = request.app.state.catalog
    return {
        "channels": [{"id": key, "name": name} for key, name in labels.CHANNELS.items()],
        "items": sorted(({"id": r.id, "name": r.name} for r in catalog.items()), key=lambda r: r["id"]),
        "tables": list(TABLE_NAMES),
    }


@router.get("/export/{table}.csv", responses={200: {"content": {"text/csv": {}}}, 404: {"model": ErrorResponse}})
def export_csv(
    admin: AdminDep,
    request: Request,
    table: str = Path(..., max_length=32),
    start: Optional[str] = StartQuery,
    end: Optional[str] = EndQuery,
    channel: Optional[str] = ChannelQuery,
    item: Optional[str] = ItemQuery,
) -> Response:
    """One table of the report as CSV (UTF-8 with BOM, Chinese headers). Audited."""
    if table not in TABLE_NAMES:
        raise HTTPException(status_code=404, detail=NO_TABLE)
    filters = _filters(request, start, end, channel, item)
    columns, rows = table_rows(_report(request, filters), table)
    _audit(request, admin, "admin.analytics.export", table)
    logger.info("admin.analytics.exported table=%s rows=%d user=%s", table, len(rows), admin.username)
    name = f"banshi-{table}-{filters.start.isoformat()}-{filters.end.isoformat()}.csv"
    return Response(
        to_csv(columns, rows),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"', **NO_STORE},
    )


@page_router.get("/admin/analytics")
def analytics_page(request: Request) -> FileResponse:
    """The dashboard for admins; a login form (401) or a refusal (403) for anyone else."""
    return admin_page(request, "analytics.html")
