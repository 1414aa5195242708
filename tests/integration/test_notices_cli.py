"""`banshi notices status` and `banshi notices dispatch`, run as an operator runs them."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from assistant.api.serving import serve_in_thread
from assistant.services.progress import notices, reminders
from assistant.services.progress import subscriptions as subs
from tests.conftest import isolated_settings, run_cli
from tests.notify_support import FakeSms

NOON = dt.datetime(2026, 12, 5, 4, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def sms():
    fake = FakeSms()
    with serve_in_thread(fake.app) as url:
        fake.url = f"{url}/sms"
        yield fake


def test_status_then_dispatch_sends_what_is_due(settings, tmp_path, monkeypatch, sms):
    isolated = isolated_settings(settings, tmp_path)
    url, secret = isolated.db_url, isolated.secret()
    monkeypatch.setenv("BANSHI_DATA_DIR", str(tmp_path))  # the same database and secret key
    monkeypatch.setenv("BANSHI_DATABASE_URL", url)
    monkeypatch.setenv("BANSHI_SMS_URL", sms.url)
    subs.subscribe(url, secret, "ZW20251102002", "sms", "13800138000", "reviewing")
    subs.subscribe(url, secret, "ZW20251102002", "kiosk", "kiosk-abc", "reviewing")
    notices.enqueue(url, "ZW20251102002", "completed", "Asia/Shanghai", NOON)
    reminders.remind(url, secret, kind="id_card_expiry", channel="sms", recipient="13900139000",
                     expiry_month="2027-03", now=NOON)
    status = run_cli(["notices", "status", "--json"], timeout=180)
    assert status.returncode == 0, status.stderr[-2000:]
    report = json.loads(status.stdout)
    assert report["notices"]["by_state"] == {"pending": {"kiosk": 1, "sms": 1}}
    assert report["reminders"]["by_status"] == {"pending": {"id_card_expiry": 1}}
    sent = run_cli(["notices", "dispatch"], timeout=180)
    assert sent.returncode == 0, sent.stdout + sent.stderr[-2000:]
    # Quiet hours may hold the reminder back (it depends on the time of day the test runs).
    assert "状态通知：发送 1，稍后重试 0，放弃 0，不推送 1" in sent.stdout
    phones = sms.phones()
    assert phones[0] == "13800138000" and set(phones) <= {"13800138000", "13900139000"}
    text = run_cli(["notices", "status"], timeout=180)
    assert "已发送" in text.stdout and "不推送（查询时显示）" in text.stdout
