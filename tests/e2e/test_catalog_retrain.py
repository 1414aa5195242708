"""Retraining from /admin/catalog in headless Chromium with the real gateway: the admin
clicks 重新训练, the progress line polls the run (the training command is
tests/retrain_script.py here, BANSHI_RETRAIN_COMMAND in tests/conftest.py) until it
says the training finished; the button is disabled while it runs. No CSP violation or
script error on the way."""

from __future__ import annotations

import uuid

import pytest

from .conftest import SHOTS
from .admin_page import sign_in, unexpected, watched_page

pytestmark = [pytest.mark.browser, pytest.mark.model]

PASSWORD = "retrain-e2e-password-1"


def test_admin_starts_a_retraining_and_sees_it_finish(browser, live_server, settings):
    from assistant.security.accounts import create_operator

    name = f"retrain.e2e.{uuid.uuid4().hex[:6]}"
    create_operator(settings.db_url, name, PASSWORD, role="admin", display_name="训练管理员")
    with watched_page(browser, 20000) as (page, errors):
        sign_in(page, live_server + "/admin/catalog", name, PASSWORD)
        page.wait_for_function("() => !document.querySelector('#retrain-status').textContent.startsWith('正在查询')")
        assert page.is_enabled("#retrain")
        page.click("#retrain")
        # The button is disabled from the click until this run ends (an earlier run may also say 训练完成).
        page.wait_for_function(
            "() => document.querySelector('#retrain-status').textContent.startsWith('训练完成')"
            " && !document.querySelector('#retrain').disabled", timeout=30000
        )
        status = page.inner_text("#retrain-status")
        assert "开始" in status and "结束" in status, status
        assert page.is_enabled("#retrain")
        page.screenshot(path=str(SHOTS / "catalog_retrain.png"), full_page=True)
        assert page.evaluate("window.__csp") == []
        assert unexpected(errors) == []
