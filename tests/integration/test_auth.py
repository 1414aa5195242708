"""Desk accounts, sessions, CSRF, login rate limits and the admin API.

The real ASGI app (without the Rasa model, which these endpoints do not need) on a
real SQLite database, through starlette's TestClient.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from typing import Dict, List, Optional, Tuple

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from assistant.api.app import create_app
from assistant.security import accounts, sessions
from assistant.security.access import AssistCallerDep
from assistant.security.login import LoginThrottle
from assistant.security.sessions import Principal
from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import AuditRecord, Operator, OperatorSession, SuggestionMark
from tests.conftest import routes_under, run_cli
from tests.conftest import isolated_settings

ADMIN_PREFIX = "/api/v1/admin"
API_KEY = "test-assist-key"  # BANSHI_ASSIST_API_KEYS in tests/conftest.py
_numbers = itertools.count(1)


def _admin_routes() -> List[Tuple[str, str]]:
    """Every (method, path) of the app under /api/v1/admin, read from the app itself."""
    found = routes_under(ADMIN_PREFIX)
    assert found, "no admin routes found"
    return found


ADMIN_ROUTES = _admin_routes()


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def app_settings(settings, tmp_path_factory):
    return isolated_settings(settings, tmp_path_factory.mktemp("auth"))


@pytest.fixture(scope="module")
def app(app_settings):
    application = create_app(app_settings, load_model=False)

    @application.post("/test/assist")
    def assist_probe(caller: AssistCallerDep) -> Dict[str, str]:
        return {"username": caller.username, "kind": caller.kind, "role": caller.role}

    with TestClient(application):  # runs the lifespan (migrations, catalog) once
        yield application


@pytest.fixture
def db_url(app_settings) -> str:
    return app_settings.db_url


@pytest.fixture
def new_client(app):
    """A fresh client (own cookie jar) per call."""

    def make(base_url: str = "http://testserver") -> TestClient:
        return TestClient(app, base_url=base_url)

    return make


@pytest.fixture
def make_operator(db_url):
    """Create an account with a unique username; returns (username, password)."""

    def make(role: str = "operator", password: Optional[str] = None, display_name: Optional[str] = None):
        username = f"{role[:3]}{next(_numbers):03d}"
        password = password or f"Pw-{username}-secret!"
        accounts.create_operator(db_url, username, password, role=role, display_name=display_name)
        return username, password

    return make


def login(client: TestClient, username: str, password: str):
    return client.post("/api/v1/desk/login", json={"username": username, "password": password})


@pytest.fixture
def logged_in(new_client, make_operator):
    """A client logged in with a new account of the given role; returns (client, username, csrf)."""

    def make(role: str = "operator"):
        client = new_client()
        username, password = make_operator(role)
        reply = login(client, username, password)
        assert reply.status_code == 200, reply.text
        return client, username, reply.json()["csrf_token"]

    return make


def audit_rows(db_url: str, action: Optional[str] = None) -> List[AuditRecord]:
    query = select(AuditRecord).order_by(AuditRecord.id)
    if action:
        query = query.where(AuditRecord.action == action)
    with session_factory(db_url)() as db:
        return list(db.execute(query).scalars().all())


def set_cookie_header(reply) -> str:
    headers = [v for k, v in reply.headers.multi_items() if k.lower() == "set-cookie"]
    assert len(headers) == 1, headers
    return headers[0]


# ------------------------------------------------------------------- login
def test_login_ok_sets_cookie_and_me_returns_the_same_body(new_client, make_operator):
    client = new_client()
    username, password = make_operator("operator", display_name="张三")
    reply = login(client, username, password)
    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {"username", "display_name", "role", "csrf_token"}
    assert body["username"] == username and body["display_name"] == "张三" and body["role"] == "operator"
    assert len(body["csrf_token"]) >= 32
    assert client.cookies.get(sessions.COOKIE_NAME)
    me = client.get("/api/v1/desk/me")
    assert me.status_code == 200 and me.json() == body


def test_wrong_password_and_unknown_user_get_the_same_401(new_client, make_operator):
    client = new_client()
    username, password = make_operator()
    wrong = login(client, username, password + "x")
    unknown = login(client, "nobody-here", password)
    for reply in (wrong, unknown):
        assert reply.status_code == 401
        assert reply.json() == {"detail": "用户名或密码不正确"}
        assert "set-cookie" not in reply.headers
    assert client.get("/api/v1/desk/me").status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"username": "a", "password": "b", "extra": 1},
        {"username": 123, "password": "1234567890"},
        {"username": "a"},
        {"username": "a" * 65, "password": "1234567890"},
    ],
)
def test_login_rejects_malformed_bodies(new_client, body):
    reply = new_client().post("/api/v1/desk/login", json=body)
    assert reply.status_code == 422
    assert reply.json()["detail"]


def test_me_without_cookie_is_401(new_client):
    reply = new_client().get("/api/v1/desk/me")
    assert reply.status_code == 401 and reply.json() == {"detail": "请先登录"}
    forged = new_client()
    forged.cookies.set(sessions.COOKIE_NAME, "not-a-real-token")
    assert forged.get("/api/v1/desk/me").status_code == 401


def test_cookie_flags(new_client, make_operator):
    username, password = make_operator()
    header = set_cookie_header(login(new_client(), username, password))
    assert header.startswith(f"{sessions.COOKIE_NAME}=")
    assert "HttpOnly" in header
    assert re.search(r"SameSite=strict", header, re.I)
    assert "Path=/" in header
    assert "Secure" not in header  # plain http (e.g. localhost)
    secure = set_cookie_header(login(new_client("https://testserver"), username, password))
    assert "Secure" in secure


def test_password_is_stored_as_argon2id_only(new_client, make_operator, db_url, app_settings):
    username, password = make_operator()
    assert login(new_client(), username, password).status_code == 200
    with session_factory(db_url)() as db:
        row = db.execute(select(Operator).where(Operator.username == username)).scalar_one()
        sessions = db.execute(select(OperatorSession).where(OperatorSession.operator_id == row.id)).scalars().all()
    assert row.password_hash.startswith("$argon2id$")
    assert password not in row.password_hash
    assert sessions and all(len(s.token_hash) == 64 for s in sessions)
    # Nowhere in the database files (main file and write-ahead log).
    for path in app_settings.data_dir.glob("banshi.db*"):
        assert password.encode() not in path.read_bytes(), path


def test_outdated_hash_is_replaced_at_login(new_client, make_operator, db_url):
    username, password = make_operator()
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(password)
    with session_factory(db_url)() as db:
        db.execute(update(Operator).where(Operator.username == username).values(password_hash=weak))
        db.commit()
    assert login(new_client(), username, password).status_code == 200
    with session_factory(db_url)() as db:
        stored = db.execute(select(Operator.password_hash).where(Operator.username == username)).scalar_one()
    assert stored != weak and not PasswordHasher().check_needs_rehash(stored)
    assert login(new_client(), username, password).status_code == 200


def test_login_audit_rows_name_the_user_but_never_the_password(new_client, make_operator, db_url):
    username, password = make_operator()
    client = new_client()
    before = len(audit_rows(db_url))
    assert login(client, username, password + "-wrong").status_code == 401
    assert login(client, "ghost-user", password).status_code == 401
    assert login(client, username, password).status_code == 200
    rows = audit_rows(db_url)[before:]
    logins = [(r.actor, r.subject, r.result) for r in rows if r.action == "desk.login"]
    assert logins == [
        (f"operator:{username}", username, "failed"),
        ("anonymous", None, "failed"),
        (f"operator:{username}", username, "ok"),
    ]
    for row in rows:
        for value in (row.actor, row.action, row.subject, row.channel, row.result):
            assert password not in (value or "")
        assert "ghost-user" not in (row.subject or "") + row.actor


# ---------------------------------------------------------------- sessions
def test_expired_session_is_refused_and_deleted(logged_in, db_url):
    client, username, _ = logged_in()
    assert client.get("/api/v1/desk/me").status_code == 200
    with session_factory(db_url)() as db:
        operator_id = db.execute(select(Operator.id).where(Operator.username == username)).scalar_one()
        db.execute(
            update(OperatorSession)
            .where(OperatorSession.operator_id == operator_id)
            .values(expires_at=utcnow() - dt.timedelta(seconds=1))
        )
        db.commit()
    reply = client.get("/api/v1/desk/me")
    assert reply.status_code == 401 and reply.json()["detail"] == "请先登录"
    with session_factory(db_url)() as db:
        left = db.execute(select(OperatorSession).where(OperatorSession.operator_id == operator_id)).all()
    assert left == []


def test_disabled_account_is_refused_at_once(logged_in, new_client, make_operator, db_url):
    client, username, _ = logged_in()
    accounts.set_active(db_url, username, False)
    assert client.get("/api/v1/desk/me").status_code == 401
    # Even if its session rows were still there, the account flag is checked per request.
    other, name2, _ = logged_in()
    with session_factory(db_url)() as db:
        db.execute(update(Operator).where(Operator.username == name2).values(active=False))
        db.commit()
    assert other.get("/api/v1/desk/me").status_code == 401
    # And it cannot log in again, with the usual message.
    username3, password3 = make_operator()
    accounts.set_active(db_url, username3, False)
    reply = login(new_client(), username3, password3)
    assert reply.status_code == 401 and reply.json()["detail"] == "用户名或密码不正确"


@pytest.mark.parametrize("header", [None, "", "wrong-token"])
def test_logout_without_the_right_csrf_token_is_403(logged_in, header):
    client, _, _ = logged_in()
    headers = {} if header is None else {sessions.CSRF_HEADER: header}
    reply = client.post("/api/v1/desk/logout", headers=headers)
    assert reply.status_code == 403 and reply.json() == {"detail": "页面已过期，请刷新后重试"}
    assert client.get("/api/v1/desk/me").status_code == 200  # still logged in


def test_logout_ends_the_session(logged_in, db_url):
    client, username, csrf = logged_in()
    token = client.cookies.get(sessions.COOKIE_NAME)
    reply = client.post("/api/v1/desk/logout", headers={sessions.CSRF_HEADER: csrf})
    assert reply.status_code == 204
    assert f'{sessions.COOKIE_NAME}=""' in reply.headers["set-cookie"] or "Max-Age=0" in reply.headers["set-cookie"]
    with session_factory(db_url)() as db:
        assert db.get(OperatorSession, sessions.token_hash(token)) is None
    # Replaying the old cookie does not work either.
    client.cookies.set(sessions.COOKIE_NAME, token)
    assert client.get("/api/v1/desk/me").status_code == 401
    assert [r.result for r in audit_rows(db_url, "desk.logout") if r.subject == username] == ["ok"]


def test_logout_without_session_is_401(new_client):
    assert new_client().post("/api/v1/desk/logout").status_code == 401


# -------------------------------------------------------------- rate limit
def test_login_rate_limit_returns_429_with_retry_after(settings, tmp_path):
    strict = isolated_settings(settings, tmp_path, **{"login_rate_limit": "3/minute"})
    with TestClient(create_app(strict, load_model=False)) as client:
        accounts.create_operator(strict.db_url, "limited", "Limited-pass-123")
        for _ in range(3):
            assert login(client, "limited", "wrong-password").status_code == 401
        reply = login(client, "limited", "Limited-pass-123")  # right password, still throttled
        assert reply.status_code == 429
        assert reply.json() == {"detail": "登录尝试过于频繁，请稍后再试"}
        assert 1 <= int(reply.headers["Retry-After"]) <= 60
        # The same client IP is throttled for other usernames too.
        assert login(client, "someone-else", "whatever-password").status_code == 429
    results = [r.result for r in audit_rows(strict.db_url, "desk.login")]
    assert results == ["failed"] * 3 + ["throttled"] * 2


def test_login_throttle_counts_per_username_across_ips():
    throttle = LoginThrottle("2/minute")
    assert throttle.hit("10.0.0.1", "alice") is None
    assert throttle.hit("10.0.0.2", "Alice") is None
    assert throttle.hit("10.0.0.3", "alice") is not None  # third try on that name
    assert throttle.hit("10.0.0.4", "bob") is None  # other names from new IPs are fine


# ------------------------------------------------------------------ api key
def test_assist_caller_accepts_api_key_or_session_with_csrf(new_client, logged_in):
    client = new_client()
    reply = client.post("/test/assist", headers={"Authorization": f"Bearer {API_KEY}"})
    assert reply.status_code == 200
    assert reply.json() == {"username": "apikey:test…", "kind": "apikey", "role": "apikey"}
    bad = client.post("/test/assist", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.json()["detail"] == "API 密钥无效"
    assert client.post("/test/assist", headers={"Authorization": "Basic eDp5"}).status_code == 401
    nobody = client.post("/test/assist")
    assert nobody.status_code == 401 and nobody.json()["detail"] == "请先登录"

    desk, username, csrf = logged_in()
    assert desk.post("/test/assist").status_code == 403  # cookie without CSRF header
    ok = desk.post("/test/assist", headers={sessions.CSRF_HEADER: csrf})
    assert ok.status_code == 200 and ok.json() == {"username": username, "kind": "session", "role": "operator"}


def test_principal_is_frozen():
    principal = Principal(username="a", role="operator", display_name="A", kind="session")
    with pytest.raises(Exception):
        principal.role = "admin"  # type: ignore[misc]


# -------------------------------------------------------------------- admin
def _call(client: TestClient, method: str, path: str, csrf: Optional[str] = None):
    path = re.sub(r"\{[^}]+\}", "someone", path)
    headers = {sessions.CSRF_HEADER: csrf} if csrf else {}
    body = {} if method in {"POST", "PUT", "PATCH"} else None
    return client.request(method, path, headers=headers, json=body)


@pytest.mark.parametrize("method,path", ADMIN_ROUTES)
def test_every_admin_route_needs_an_admin(method, path, new_client, logged_in):
    anonymous = _call(new_client(), method, path)
    assert anonymous.status_code == 401 and anonymous.json()["detail"] == "请先登录"
    operator, _, csrf = logged_in("operator")
    forbidden = _call(operator, method, path, csrf)
    assert forbidden.status_code == 403 and forbidden.json()["detail"] == "没有权限"
    admin, _, admin_csrf = logged_in("admin")
    assert _call(admin, method, path, admin_csrf).status_code not in (401, 403)
    if method != "GET":
        assert _call(admin, method, path).status_code == 403  # admin without CSRF


def test_admin_manages_operators_and_every_change_is_audited(logged_in, new_client, db_url):
    admin, admin_name, csrf = logged_in("admin")
    headers = {sessions.CSRF_HEADER: csrf}
    created = admin.post(
        "/api/v1/admin/operators",
        headers=headers,
        json={"username": "desk.new", "password": "New-password-1", "role": "operator", "display_name": "新同事"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["username"] == "desk.new" and created.json()["active"] is True
    duplicate = admin.post(
        "/api/v1/admin/operators", headers=headers, json={"username": "desk.new", "password": "New-password-1"}
    )
    assert duplicate.status_code == 409 and duplicate.json()["detail"] == "该用户名已存在"
    short = admin.post(
        "/api/v1/admin/operators", headers=headers, json={"username": "desk.short", "password": "short"}
    )
    assert short.status_code == 422 and short.json()["detail"] == "密码至少需要10个字符"
    bad_name = admin.post(
        "/api/v1/admin/operators", headers=headers, json={"username": "Bad Name", "password": "New-password-1"}
    )
    assert bad_name.status_code == 422 and "用户名" in bad_name.json()["detail"]
    listed = admin.get("/api/v1/admin/operators").json()
    assert "desk.new" in {o["username"] for o in listed}
    assert all("password" not in key for o in listed for key in o)

    # The new operator logs in; disabling ends the session at once.
    colleague = new_client()
    assert login(colleague, "desk.new", "New-password-1").status_code == 200
    disabled = admin.patch("/api/v1/admin/operators/desk.new", headers=headers, json={"active": False})
    assert disabled.status_code == 200 and disabled.json()["active"] is False
    assert colleague.get("/api/v1/desk/me").status_code == 401
    changed = admin.patch(
        "/api/v1/admin/operators/desk.new",
        headers=headers,
        json={"active": True, "role": "admin", "password": "Another-pass-2"},
    )
    assert changed.status_code == 200 and changed.json()["role"] == "admin"
    assert login(new_client(), "desk.new", "New-password-1").status_code == 401
    assert login(new_client(), "desk.new", "Another-pass-2").status_code == 200
    missing = admin.patch("/api/v1/admin/operators/nobody", headers=headers, json={"active": False})
    assert missing.status_code == 404 and missing.json()["detail"] == "没有找到该账号"
    bad_role = admin.patch("/api/v1/admin/operators/desk.new", headers=headers, json={"role": "root"})
    assert bad_role.status_code == 422

    rows = [r for r in audit_rows(db_url) if r.action.startswith("admin.")]
    mine = [(r.action, r.subject, r.result) for r in rows if r.actor == f"operator:{admin_name}"]
    assert mine == [
        ("admin.operator.create", "desk.new", "ok"),
        ("admin.operator.create", "desk.new", "duplicate"),
        ("admin.operator.disable", "desk.new", "ok"),
        ("admin.operator.enable", "desk.new", "ok"),
        ("admin.operator.password", "desk.new", "ok"),
        ("admin.operator.role", "desk.new", "ok"),
        ("admin.operator.update", "nobody", "not_found"),
    ]
    for row in rows:
        assert "password-1" not in (row.result + (row.subject or ""))


def test_the_last_active_admin_cannot_be_removed(settings, tmp_path):
    alone = isolated_settings(settings, tmp_path)
    with TestClient(create_app(alone, load_model=False)) as client:
        accounts.create_operator(alone.db_url, "only.admin", "Only-admin-pass", role="admin")
        csrf = login(client, "only.admin", "Only-admin-pass").json()["csrf_token"]
        for change in ({"active": False}, {"role": "operator"}):
            reply = client.patch(
                "/api/v1/admin/operators/only.admin", headers={sessions.CSRF_HEADER: csrf}, json=change
            )
            assert reply.status_code == 409 and reply.json()["detail"] == "至少需要保留一个启用的管理员账号"
        assert client.get("/api/v1/desk/me").json()["role"] == "admin"


def test_admin_audit_log_and_suggestion_marks(logged_in, make_operator, new_client, db_url):
    admin, _, _ = logged_in("admin")
    username, password = make_operator()
    login(new_client(), username, password + "-nope")
    rows = admin.get("/api/v1/admin/audit", params={"limit": 500}).json()
    assert rows and set(rows[0]) == {"id", "at", "actor", "action", "subject", "channel", "result"}
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids, reverse=True)  # newest first
    logins = admin.get("/api/v1/admin/audit", params={"action": "desk.login", "limit": 2}).json()
    assert len(logins) == 2 and {r["action"] for r in logins} == {"desk.login"}
    assert (logins[0]["subject"], logins[0]["result"]) == (username, "failed")
    for limit in (0, 501):
        assert admin.get("/api/v1/admin/audit", params={"limit": limit}).status_code == 422

    with session_factory(db_url)() as db:
        for rank, mark in enumerate(("used", "wrong"), start=1):
            db.add(SuggestionMark(operator=username, ticket_id=7, query="社保卡怎么办", rank=rank, mark=mark))
        db.commit()
    marks = admin.get("/api/v1/admin/suggestion-marks", params={"limit": 2}).json()
    assert [(m["mark"], m["rank"], m["operator"]) for m in marks] == [("wrong", 2, username), ("used", 1, username)]
    assert admin.get("/api/v1/admin/suggestion-marks", params={"limit": 501}).status_code == 422


# ---------------------------------------------------------------------- CLI
def test_cli_add_user_and_list_users(settings, tmp_path, monkeypatch):
    cli_settings = isolated_settings(settings, tmp_path)
    monkeypatch.setenv("BANSHI_DATA_DIR", str(tmp_path))
    if cli_settings.database_url:  # the PostgreSQL pass: the CLI uses the same database
        monkeypatch.setenv("BANSHI_DATABASE_URL", cli_settings.database_url)
    monkeypatch.setenv("BANSHI_NEW_PASSWORD", "Cli-password-42")
    created = run_cli(["desk", "add-user", "cli.admin", "--role", "admin", "--display-name", "王管理"])
    assert created.returncode == 0, created.stderr[-2000:]
    assert "已创建账号 cli.admin（admin）" in created.stdout
    assert "Cli-password-42" not in created.stdout + created.stderr

    duplicate = run_cli(["desk", "add-user", "cli.admin"])
    assert duplicate.returncode == 2 and "already exists" in duplicate.stderr
    invalid = run_cli(["desk", "add-user", "No Spaces"])
    assert invalid.returncode == 2 and "username" in invalid.stderr
    monkeypatch.setenv("BANSHI_NEW_PASSWORD", "short")
    short = run_cli(["desk", "add-user", "cli.short"])
    assert short.returncode == 2 and "at least 10" in short.stderr
    listed = run_cli(["desk", "list-users"])
    assert listed.returncode == 0 and "cli.admin\tadmin" in listed.stdout and "cli.short" not in listed.stdout

    # The account works on the desk.
    with TestClient(create_app(cli_settings, load_model=False)) as client:
        reply = login(client, "cli.admin", "Cli-password-42")
        assert reply.status_code == 200
        assert reply.json()["role"] == "admin" and reply.json()["display_name"] == "王管理"


def test_cli_set_password_reenables_and_ends_sessions(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("BANSHI_DATA_DIR", str(tmp_path))
    isolated = isolated_settings(settings, tmp_path)
    db_url = isolated.db_url
    if isolated.database_url:  # the PostgreSQL pass: the CLI uses the same database
        monkeypatch.setenv("BANSHI_DATABASE_URL", isolated.database_url)
    accounts.create_operator(db_url, "cli.other", "Old-password-42", role="admin")
    accounts.create_operator(db_url, "cli.forgot", "Old-password-42", role="admin")
    accounts.set_active(db_url, "cli.forgot", False)
    monkeypatch.setenv("BANSHI_NEW_PASSWORD", "New-password-42")
    reset = run_cli(["desk", "set-password", "cli.forgot"])
    assert reset.returncode == 0 and "已重设密码 cli.forgot（admin）" in reset.stdout
    info = accounts.get_operator(db_url, "cli.forgot")
    assert info.active
    unknown = run_cli(["desk", "set-password", "cli.nobody"])
    assert unknown.returncode == 2 and "no such account" in unknown.stderr
