"""A retrained model taken up without a restart, as the admin sees it on /admin/catalog in
headless Chromium with the real gateway: a succeeded run pointing at a copy of the
trained model (nothing is trained here) shows "已在 1 个网关启用" once the gateway swapped
it in. No CSP violation or script error on the way."""

from __future__ import annotations

import shutil
import uuid

import pytest

from assistant.storage import training_tables

from .conftest import SHOTS
from .admin_page import sign_in, unexpected, watched_page

pytestmark = [pytest.mark.browser, pytest.mark.model]

PASSWORD = "hotload-e2e-password-1"


def test_admin_sees_the_new_model_in_use_on_every_gateway(browser, live_server, settings, trained_model, tmp_path):
    from assistant.security.accounts import create_operator

    name = f"hotload.e2e.{uuid.uuid4().hex[:6]}"
    create_operator(settings.db_url, name, PASSWORD, role="admin", display_name="模型管理员")
    copy = tmp_path / f"banshi-e2e{uuid.uuid4().hex[:6]}.tar.gz"
    shutil.copyfile(trained_model, copy)
    run_id = training_tables.start_run(settings.db_url, f"operator:{name}", "test-host")
    assert run_id is not None
    training_tables.finish_run(settings.db_url, run_id, training_tables.STATUS_SUCCEEDED, exit_code=0,
                               model_path=str(copy))
    with watched_page(browser, 30000) as (page, errors):
        sign_in(page, live_server + "/admin/catalog", name, PASSWORD)
        # The page polls every 3 s while the run's model is not yet reported by any gateway.
        page.wait_for_function(
            "() => document.querySelector('#retrain-status').textContent.includes('已在 1 个网关启用')", timeout=45000
        )
        status = page.inner_text("#retrain-status")
        assert status.startswith("训练完成") and copy.name in status, status
        assert "无需重启" in page.inner_text(".retrain .hint")
        page.screenshot(path=str(SHOTS / "catalog_model_hotload.png"), full_page=True)
        assert page.evaluate("window.__csp") == []
        assert unexpected(errors) == []
