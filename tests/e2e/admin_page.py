"""Browser tests of the staff pages (/admin/…, /desk): a watched page and the sign-in form."""

from __future__ import annotations

import contextlib
from typing import Iterator, List, Tuple

# Records every CSP violation the page reports, from before its first script runs.
CSP_WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
  {directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber}));
"""
VIEWPORT = {"width": 1366, "height": 900}


@contextlib.contextmanager
def watched_page(browser, timeout_ms: int = 20000) -> Iterator[Tuple[object, List[str]]]:
    """A page in a context of its own (closed after the block) that keeps CSP violations
    in ``window.__csp`` and page errors and console errors in the list."""
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    page.add_init_script(CSP_WATCH)
    errors: List[str] = []
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        yield page, errors
    finally:
        context.close()


def sign_in(page, url: str, username: str, password: str):
    """Open ``url`` (a staff page answers with its login form first) and sign in; the
    first response (401 with the form)."""
    response = page.goto(url)
    page.fill("#username", username)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("#login-btn")
    return response


def unexpected(errors: List[str]) -> List[str]:
    """The errors other than the login form's own 401."""
    return [e for e in errors if "status of 401" not in e]
