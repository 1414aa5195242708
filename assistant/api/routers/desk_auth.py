"""POST /api/v1/desk/login, POST /api/v1/desk/logout, GET /api/v1/desk/me: desk sessions.

The session is the ``banshi_desk`` cookie; unsafe requests also send the CSRF token
returned here in the ``X-CSRF-Token`` header. The handlers are plain ``def``
(argon2 and the database are blocking), so FastAPI runs them in the threadpool.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, StrictStr

from assistant.api.schemas import ErrorResponse
from assistant.security import accounts, login as desk_login, sessions
from assistant.security.access import OperatorDep
from assistant.security.sessions import Principal

router = APIRouter(prefix="/api/v1/desk", tags=["desk"])


class LoginRequest(BaseModel):
    username: StrictStr = Field(..., min_length=1, max_length=64, example="zhangsan")
    password: StrictStr = Field(..., min_length=1, max_length=accounts.MAX_PASSWORD_CHARS)

    class Config:
        extra = "forbid"


class DeskUser(BaseModel):
    username: str
    display_name: str
    role: str
    csrf_token: str = Field(..., description="Send it as X-CSRF-Token on POST/PUT/PATCH/DELETE")


def _body(principal: Principal) -> DeskUser:
    return DeskUser(
        username=principal.username,
        display_name=principal.display_name,
        role=principal.role,
        csrf_token=principal.csrf_token or "",
    )


@router.post(
    "/login",
    response_model=DeskUser,
    responses={401: {"model": ErrorResponse}, 429: {"model": ErrorResponse}},
)
def login(body: LoginRequest, request: Request, response: Response) -> DeskUser:
    """Log in; sets the ``banshi_desk`` session cookie and returns the CSRF token."""
    result = desk_login.login(request, body.username, body.password)
    settings = request.app.state.settings
    sessions.set_session_cookie(request, response, result.token, settings.desk_session_hours)
    response.headers["Cache-Control"] = "no-store"
    return _body(result.principal)


@router.post("/logout", status_code=204, responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}})
def logout(principal: OperatorDep, request: Request) -> Response:
    """End the session (needs the X-CSRF-Token header)."""
    desk_login.logout(request, principal)
    response = Response(status_code=204)
    sessions.clear_session_cookie(request, response)
    return response


@router.get("/me", response_model=DeskUser, responses={401: {"model": ErrorResponse}})
def me(principal: OperatorDep, response: Response) -> DeskUser:
    """The logged-in operator and the session's CSRF token (for a reloaded page)."""
    response.headers["Cache-Control"] = "no-store"
    return _body(principal)
