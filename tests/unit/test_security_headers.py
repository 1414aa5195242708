"""Security headers on every page, static file and API answer; the pages hold no inline
script, so the Content-Security-Policy can forbid it (the browser check is in
tests/e2e/test_csp.py)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from assistant.api.app import create_app
from assistant.api.paths import STATIC_DIR
from assistant.security.headers import CSP

PAGES = ["/", "/desk", "/kiosk"]
STATIC = sorted(p.relative_to(STATIC_DIR).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file())
HTML = sorted(STATIC_DIR.rglob("*.html"))


@pytest.fixture(scope="module")
def client(settings):
    with TestClient(create_app(settings, load_model=False)) as test_client:
        yield test_client


def directives(policy: str) -> dict:
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in policy.split(";")) if part}


def check_common(response) -> dict:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    policy = directives(headers["content-security-policy"])
    assert policy["frame-ancestors"] == ["'none'"]
    return policy


@pytest.mark.parametrize("path", PAGES + [f"/static/{name}" for name in STATIC])
def test_pages_and_static_files_have_the_headers(client, path):
    response = client.get(path)
    assert response.status_code == 200, path
    policy = check_common(response)
    assert policy["script-src"] == ["'self'"] and policy["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in response.headers["content-security-policy"]
    assert "'unsafe-eval'" not in response.headers["content-security-policy"]
    assert policy["object-src"] == ["'none'"]
    microphone = "microphone=(self)" if path in ("/kiosk", "/desk") else "microphone=()"
    assert microphone in response.headers["permissions-policy"]


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("get", "/api/v1/items", None),
        ("get", "/api/v1/items/nope", None),  # 404
        ("post", "/api/v1/parse", {"text": ""}),  # 422
        ("get", "/nowhere", None),
    ],
)
def test_api_answers_and_errors_have_them_too(client, method, path, body):
    response = getattr(client, method)(path, **({"json": body} if body is not None else {}))
    check_common(response)


def test_a_refused_oversized_body_has_them(client):
    response = client.post("/api/v1/parse", content=b"x" * (65 * 1024), headers={"content-type": "application/json"})
    assert response.status_code == 413
    check_common(response)


def test_api_docs_keep_working_without_framing(client):
    response = client.get("/docs")
    assert response.status_code == 200
    policy = check_common(response)
    assert "https://cdn.jsdelivr.net" in policy["script-src"]


@pytest.mark.parametrize("page", HTML, ids=lambda p: p.relative_to(STATIC_DIR).as_posix())
def test_pages_hold_no_inline_script_or_style(page):
    html = page.read_text(encoding="utf-8")
    for match in re.finditer(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S | re.I):
        attributes, body = match.groups()
        assert "src=" in attributes and not body.strip(), f"inline <script> in {page.name}"
    assert not re.search(r"\son[a-z]+\s*=", html, flags=re.I), f"inline event handler in {page.name}"
    assert "javascript:" not in html.lower(), f"javascript: URL in {page.name}"
    assert not re.search(r"<style\b|\sstyle\s*=", html, flags=re.I), f"inline style in {page.name}"


@pytest.mark.parametrize("script", sorted(STATIC_DIR.rglob("*.js")), ids=lambda p: p.name)
def test_scripts_need_no_eval_or_html_handlers(script):
    code = script.read_text(encoding="utf-8")
    assert not re.search(r"\beval\s*\(|new\s+Function\s*\(|setTimeout\s*\(\s*['\"]", code), script.name
    assert not re.search(r"setAttribute\(\s*['\"](on[a-z]+|style)['\"]", code), script.name
    assert "javascript:" not in code


def test_the_policy_allows_what_the_pages_use():
    policy = directives(CSP)
    assert "blob:" in policy["media-src"]  # the kiosk plays synthesized speech from blobs
    assert policy["connect-src"] == ["'self'"]  # fetch, EventSource and the voice WebSocket
    assert policy["worker-src"] == ["'self'"]  # the kiosk's audio worklet
