"""/api/v1/admin: operator accounts, the audit log and suggestion marks (admins only).

Every route of this router requires an admin session (router-level dependency, plus
CSRF for unsafe methods); every change writes an audit row (``admin.operator.*``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field, StrictBool, StrictStr, validator
from sqlalchemy import select

from assistant.api.schemas import ErrorResponse
from assistant.security import access, accounts, audit as audit_log
from assistant.security.access import AdminDep
from assistant.security.sessions import Principal
from assistant.storage.database import session_factory
from assistant.storage.tables import ROLE_NAMES, SuggestionMark

router = APIRouter(
    prefix="/api/v1/admin",
    tags=["admin"],
    dependencies=[Depends(access.require_admin)],
    responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}},
)

USERNAME_RULE = "用户名只能包含小写字母、数字和 _ . -，长度3到32位"
PASSWORD_RULE = f"密码至少需要{accounts.MIN_PASSWORD_CHARS}个字符"
ROLE_RULE = "角色只能是 operator 或 admin"
DUPLICATE = "该用户名已存在"
NOT_FOUND = "没有找到该账号"
LAST_ADMIN = "至少需要保留一个启用的管理员账号"
AUDIT_CHANNEL = "admin"


def _check_password(value: Optional[str]) -> Optional[str]:
    if value is None:
        return value
    if len(value) < accounts.MIN_PASSWORD_CHARS:
        raise ValueError(PASSWORD_RULE)
    if len(value) > accounts.MAX_PASSWORD_CHARS:
        raise ValueError(f"密码不能超过{accounts.MAX_PASSWORD_CHARS}个字符")
    return value


def _check_role(value: Optional[str]) -> Optional[str]:
    if value is not None and value not in ROLE_NAMES:
        raise ValueError(ROLE_RULE)
    return value


class OperatorCreate(BaseModel):
    username: StrictStr = Field(..., example="zhangsan", pattern=accounts.USERNAME_RE.pattern)
    password: StrictStr = Field(
        ..., minLength=accounts.MIN_PASSWORD_CHARS, maxLength=accounts.MAX_PASSWORD_CHARS
    )
    role: StrictStr = Field("operator", description="operator | admin", enum=["operator", "admin"])
    display_name: Optional[StrictStr] = Field(None, max_length=64, example="张三")

    class Config:
        extra = "forbid"

    @validator("username")
    def _username(cls, value: str) -> str:
        if not accounts.USERNAME_RE.match(value):
            raise ValueError(USERNAME_RULE)
        return value

    _password = validator("password", allow_reuse=True)(_check_password)
    _role = validator("role", allow_reuse=True)(_check_role)


class OperatorPatch(BaseModel):
    active: Optional[StrictBool] = None
    role: Optional[StrictStr] = Field(None, description="operator | admin")
    password: Optional[StrictStr] = None

    class Config:
        extra = "forbid"

    _password = validator("password", allow_reuse=True)(_check_password)
    _role = validator("role", allow_reuse=True)(_check_role)


class OperatorOut(BaseModel):
    username: str
    display_name: str
    role: str
    active: bool
    created_at: str


def _out(info: accounts.OperatorInfo) -> OperatorOut:
    return OperatorOut(**info.as_dict())


def _db_url(request: Request) -> str:
    return request.app.state.settings.db_url


def _audit(request: Request, admin: Principal, action: str, subject: str, result: str) -> None:
    audit_log.record_audit_safely(
        _db_url(request), actor=admin.actor, action=action, subject=subject, channel=AUDIT_CHANNEL, result=result
    )


@router.get("/operators", response_model=List[OperatorOut])
def list_operators(admin: AdminDep, request: Request) -> List[OperatorOut]:
    return [_out(info) for info in accounts.list_operators(_db_url(request))]


@router.post("/operators", status_code=201, response_model=OperatorOut, responses={409: {"model": ErrorResponse}})
def create_operator(body: OperatorCreate, admin: AdminDep, request: Request) -> OperatorOut:
    action = "admin.operator.create"
    try:
        info = accounts.create_operator(
            _db_url(request), body.username, body.password, role=body.role, display_name=body.display_name
        )
    except accounts.DuplicateUsername:
        _audit(request, admin, action, body.username, "duplicate")
        raise HTTPException(status_code=409, detail=DUPLICATE)
    except ValueError:  # the body validators make this unlikely
        _audit(request, admin, action, body.username, "invalid")
        raise HTTPException(status_code=422, detail="账号信息不正确")
    _audit(request, admin, action, body.username, "ok")
    return _out(info)


@router.patch(
    "/operators/{username}",
    response_model=OperatorOut,
    responses={404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}},
)
def update_operator(
    body: OperatorPatch,
    admin: AdminDep,
    request: Request,
    username: str = Path(..., max_length=64),
) -> OperatorOut:
    """Enable/disable, change role, reset password. Disabling or a new password ends the sessions.

    Audit actions: admin.operator.enable/disable/role/password (one row per change).
    """
    changed = sorted(k for k, v in body.dict(exclude_unset=True).items() if v is not None)
    action = "admin.operator.update"
    subject = username if accounts.USERNAME_RE.match(username) else None
    try:
        info = accounts.update_operator(
            _db_url(request), username, active=body.active, role=body.role, password=body.password
        )
    except accounts.OperatorNotFound:
        if subject:
            _audit(request, admin, action, subject, "not_found")
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    except accounts.LastAdminError:
        _audit(request, admin, action, username, "last_admin")
        raise HTTPException(status_code=409, detail=LAST_ADMIN)
    # One row per kind of change, so that the log can be filtered by action.
    for name in changed:
        if name == "active":
            _audit(request, admin, "admin.operator.enable" if body.active else "admin.operator.disable", username, "ok")
        else:
            _audit(request, admin, f"admin.operator.{name}", username, "ok")
    if not changed:
        _audit(request, admin, action, username, "ok")
    return _out(info)


@router.get("/audit")
def list_audit(
    admin: AdminDep,
    request: Request,
    limit: int = Query(100, ge=1, le=500),
    action: Optional[str] = Query(None, max_length=64),
) -> List[Dict[str, Any]]:
    """Audit rows, newest first."""
    return audit_log.list_audit(_db_url(request), limit=limit, action=action or None)


@router.get("/suggestion-marks")
def list_suggestion_marks(
    admin: AdminDep, request: Request, limit: int = Query(100, ge=1, le=500)
) -> List[Dict[str, Any]]:
    """Operators' verdicts on suggested answers, newest first."""
    query = select(SuggestionMark).order_by(SuggestionMark.id.desc()).limit(limit)
    with session_factory(_db_url(request))() as db:
        rows = db.execute(query).scalars().all()
    return [
        {
            "id": r.id,
            "operator": r.operator,
            "ticket_id": r.ticket_id,
            "query": r.query,
            "rank": r.rank,
            "item_id": r.item_id,
            "question_type": r.question_type,
            "confidence": r.confidence,
            "mark": r.mark,
            "created_at": r.created_at.isoformat(),
        }
        for r in rows
    ]
