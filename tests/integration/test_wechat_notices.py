"""Status notices to WeChat users: a customer-service text inside the 48-hour window,
a template message (BANSHI_WECHAT_NOTICE_TEMPLATE_ID) outside it — decided by the
window kept in the database, or by WeChat's 45015 — against the simulator's fake API."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from assistant.channels import wechat_store
from assistant.channels.wechat_api import WeChatApi
from assistant.channels.wechat_notices import TemplateConfig, WeChatNoticeSender, template_data
from assistant.services.progress import dispatch, notices
from assistant.services.progress import subscriptions as subs
from assistant.services.progress.dispatch import NoticeDetail
from assistant.storage.database import session_factory
from assistant.storage.tables import ProgressNotice, WeChatUser
from tests.conftest import isolated_settings

NUMBER = "ZW20251102004"
NOON = dt.datetime(2026, 12, 5, 4, 0, tzinfo=dt.timezone.utc)  # 12:00 in Beijing
TEMPLATE = "TPL_banshi_progress_01"
TEXT = "您的办件ZW2025****004有新进展：已办结。可在“办事助手”里输入办件编号查看详情。"


@pytest.fixture
def api(settings):
    client = WeChatApi(settings.wechat_api_base, settings.wechat_app_id, settings.wechat_app_secret)
    yield client


def last_wrote(url: str, sender_id: str, ago: dt.timedelta) -> None:
    wechat_store.note_inbound(url, sender_id)
    with session_factory(url)() as session:
        session.execute(update(WeChatUser).where(WeChatUser.sender_id == sender_id)
                        .values(last_inbound_at=dt.datetime.utcnow() - ago))
        session.commit()


async def test_inside_the_window_a_text_outside_it_a_template_message(settings, tmp_path, wechat_api, api):
    isolated = isolated_settings(settings, tmp_path)
    url, secret = isolated.db_url, isolated.secret()
    inside, outside, closed = "oNoticeInside01", "oNoticeOutside01", "oNoticeClosed01"
    last_wrote(url, f"wx-{inside}", dt.timedelta(hours=1))
    last_wrote(url, f"wx-{outside}", dt.timedelta(hours=49))
    last_wrote(url, f"wx-{closed}", dt.timedelta(hours=47))  # we think it is open; WeChat says 45015
    wechat_api.close_window(closed)
    for openid in (inside, outside, closed):
        subs.subscribe(url, secret, NUMBER, "wechat", f"wx-{openid}", "reviewing")
    assert notices.enqueue(url, NUMBER, "completed", "Asia/Shanghai", NOON) == 3
    sender = WeChatNoticeSender(api, url, TEMPLATE)
    try:
        counts = await dispatch.dispatch_due(url, secret, {"wechat": sender}, NOON.replace(tzinfo=None))
    finally:
        await api.close()
    assert counts["sent"] == 3
    assert wechat_api.messages_to(inside) == [TEXT] and wechat_api.templates_to(inside) == []
    expected = {"thing1": "办件进度通知", "character_string2": "ZW2025****004", "phrase3": "已办结",
                "time4": "2026年12月5日 12:00"}
    for openid in (outside, closed):
        assert wechat_api.messages_to(openid) == []
        [sent] = wechat_api.templates_to(openid)
        assert sent.template_id == TEMPLATE and sent.data == expected
    with session_factory(url)() as session:
        used = dict(session.execute(select(WeChatUser.sender_id, WeChatUser.sends_since_inbound)).all())
    # The text counted against the window; the refused one was given back.
    assert used == {f"wx-{inside}": 1, f"wx-{outside}": 0, f"wx-{closed}": 0}


async def test_outside_the_window_without_a_template_the_notice_waits_and_is_retried(settings, tmp_path,
                                                                                   wechat_api, api):
    isolated = isolated_settings(settings, tmp_path)
    url, secret = isolated.db_url, isolated.secret()
    openid = "oNoticeNoTpl01"
    last_wrote(url, f"wx-{openid}", dt.timedelta(days=3))
    subs.subscribe(url, secret, NUMBER, "wechat", f"wx-{openid}", "reviewing")
    notices.enqueue(url, NUMBER, "completed", "Asia/Shanghai", NOON)
    try:
        counts = await dispatch.dispatch_due(url, secret, {"wechat": WeChatNoticeSender(api, url, None)},
                                             NOON.replace(tzinfo=None))
    finally:
        await api.close()
    assert counts["retry"] == 1 and counts["sent"] == 0
    assert wechat_api.messages_to(openid) == [] and wechat_api.templates_to(openid) == []
    with session_factory(url)() as session:
        assert session.execute(select(ProgressNotice.state)).scalar_one() == "pending"


async def test_an_unsubscribed_user_is_given_up_at_once(settings, tmp_path, wechat_api, api):
    isolated = isolated_settings(settings, tmp_path)
    url, secret = isolated.db_url, isolated.secret()
    openid = "oNoticeGone01"
    last_wrote(url, f"wx-{openid}", dt.timedelta(days=3))
    subs.subscribe(url, secret, NUMBER, "wechat", f"wx-{openid}", "reviewing")
    notices.enqueue(url, NUMBER, "completed", "Asia/Shanghai", NOON)
    wechat_api.fail_templates.append(43004)  # the user unfollowed the account
    try:
        counts = await dispatch.dispatch_due(url, secret, {"wechat": WeChatNoticeSender(api, url, TEMPLATE)},
                                             NOON.replace(tzinfo=None))
    finally:
        await api.close()
    assert counts["failed"] == 1


def test_template_values_are_cut_to_what_wechat_accepts():
    config = TemplateConfig.load()
    detail = NoticeDetail("reminder", "一二三四五六七八九十一二三四五六七八九十多出来", "", "很长的状态说明",
                          dt.datetime(2027, 1, 2, 1, 5))
    data = template_data(config, "text", detail)
    assert data == {"thing1": "一二三四五六七八九十一二三四五六七八九十", "character_string2": "—",
                    "phrase3": "很长的状态", "time4": "2027年1月2日 09:05"}
