"""Progress subscriptions: once per recipient, sealed at rest, audited, one notice per change."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import select

from assistant.security.sealed import seal, unseal
from assistant.services.progress import subscriptions as subs
from assistant.storage.database import session_factory
from assistant.storage.tables import AuditRecord, ProgressNotice, ProgressSubscription
from tests.conftest import isolated_settings

NUMBER = "ZW20251102002"


@pytest.fixture
def db(settings, tmp_path):
    isolated = isolated_settings(settings, tmp_path)
    return isolated.db_url, isolated.secret()


def test_subscribe_once_list_cancel_and_audit(db):
    url, secret = db
    first = subs.subscribe(url, secret, NUMBER, "wechat", "oOpenId123", "reviewing")
    again = subs.subscribe(url, secret, NUMBER, "wechat", "oOpenId123", "reviewing")
    assert first.created and not again.created and again.id == first.id
    subs.subscribe(url, secret, "ZW20251102003", "wechat", "oOpenId123", "supplement")
    assert sorted(subs.numbers_of(url, secret, "wechat", "oOpenId123")) == [NUMBER, "ZW20251102003"]
    assert subs.numbers_of(url, secret, "web", "oOpenId123") == []  # per channel
    assert subs.cancel(url, secret, "wechat", "oOpenId123", NUMBER) == 1
    assert subs.numbers_of(url, secret, "wechat", "oOpenId123") == ["ZW20251102003"]
    assert subs.cancel(url, secret, "wechat", "oOpenId123") == 1
    with session_factory(url)() as session:
        rows = session.execute(select(ProgressSubscription)).scalars().all()
        audit = [(r.action, r.subject) for r in session.execute(select(AuditRecord).order_by(AuditRecord.id)).scalars()]
    assert all("oOpenId123" not in r.recipient_sealed for r in rows)  # sealed at rest
    assert audit.count(("progress.subscribe", NUMBER)) == 1 and audit.count(("progress.unsubscribe", NUMBER)) == 1


def test_one_notice_per_status_change(db):
    import datetime as dt

    from assistant.services.progress import notices

    url, secret = db
    noon = dt.datetime(2026, 12, 5, 4, 0, tzinfo=dt.timezone.utc)  # 12:00 in Beijing
    subs.subscribe(url, secret, NUMBER, "web", "web-conversation-1", "reviewing")
    subs.subscribe(url, secret, NUMBER, "sms", "13800138000", "reviewing")
    assert notices.enqueue(url, NUMBER, "reviewing", "Asia/Shanghai", noon) == 0  # nothing new
    assert notices.enqueue(url, NUMBER, "supplement", "Asia/Shanghai", noon) == 2
    assert notices.enqueue(url, NUMBER, "supplement", "Asia/Shanghai", noon) == 0  # told once
    subs.cancel(url, secret, "sms", "13800138000")
    assert notices.enqueue(url, NUMBER, "completed", "Asia/Shanghai", noon) == 1
    with session_factory(url)() as session:
        queued = session.execute(select(ProgressNotice).order_by(ProgressNotice.id)).scalars().all()
    assert [(n.channel, n.status, n.state) for n in queued] == [
        ("web", "supplement", "pending"), ("sms", "supplement", "pending"), ("web", "completed", "pending")]
    assert all("13800138000" not in n.text for n in queued)


def test_limits_and_sealing(db):
    url, secret = db
    with pytest.raises(ValueError):
        subs.subscribe(url, secret, NUMBER, "carrier-pigeon", "x", "reviewing")
    for i in range(subs.MAX_PER_RECIPIENT):
        subs.subscribe(url, secret, f"ZW202511021{i:02d}", "web", "busy-1", "accepted")
    with pytest.raises(ValueError):
        subs.subscribe(url, secret, "ZW20991231999", "web", "busy-1", "accepted")
    token = seal(secret, "a", "13800138000")
    assert unseal(secret, "a", token) == "13800138000"
    with pytest.raises(InvalidTag):
        unseal(secret, "b", token)  # another purpose cannot open it
