"""After a verified progress lookup: the offer "状态有变化时提醒我", taking it up or not,
"我的提醒" and "退订提醒" — through the real gateway, model and action server."""

from __future__ import annotations

from typing import List

import pytest

from assistant.services.progress import notices, subscriptions
from assistant.services.progress.importer import load_demo_data
from tests.chat_session import Chat

pytestmark = pytest.mark.model

NUMBER = "ZW20251102002"  # 审核中 in the demo data, phone tail 2002
OFFER = "办件状态有变化时，要我提醒您吗？"


@pytest.fixture(scope="module")
def demo(settings):
    load_demo_data(settings.db_url, settings.secret())


def subscribed(settings, chat: Chat) -> List[str]:
    return subscriptions.numbers_of(settings.db_url, settings.secret(), chat.channel, chat.sender_id)


def test_the_offer_taken_up_subscribes_and_a_status_change_queues_a_notice(client, settings, demo):
    chat = Chat(client)
    messages = chat.verified_lookup(NUMBER, "2002")
    assert "身份证" in messages[0]["text"]  # the progress answer comes first
    offer = next(m for m in messages if m.get("text") == OFFER)
    assert [b["title"] for b in offer["buttons"]] == ["提醒我", "不用了"]
    reply = chat.texts(offer["buttons"][0]["payload"])
    assert "ZW2025****002" in reply and "状态有变化时，我会在这里提醒您" in reply and "退订提醒" in reply
    assert subscribed(settings, chat) == [NUMBER]
    # The next status change is queued for this conversation (the dispatcher sends it).
    assert notices.enqueue(settings.db_url, NUMBER, "completed", settings.timezone) >= 1
    # Asked again, no second offer for the same number.
    again = chat.verified_lookup(NUMBER, "2002")
    assert all(m.get("text") != OFFER for m in again)
    listed = chat.texts("我的提醒")
    assert "ZW2025****002" in listed and NUMBER not in listed
    assert "已经为您取消 1 个提醒" in chat.texts("退订提醒")
    assert subscribed(settings, chat) == []
    assert "没有设置提醒" in chat.texts("我的提醒")


def test_a_typed_yes_takes_the_offer_and_no_declines_it(client, settings, demo):
    yes = Chat(client)
    yes.verified_lookup(NUMBER, "2002")
    assert "我会在这里提醒您" in yes.texts("好的")
    assert subscribed(settings, yes) == [NUMBER]

    no = Chat(client)
    no.verified_lookup(NUMBER, "2002")
    assert "不提醒您" in no.texts("不用了")
    assert subscribed(settings, no) == []
    assert "还有其他想问的吗" in no.texts("好的")  # nothing pending any more
    assert subscribed(settings, no) == []


def test_no_offer_where_nothing_can_be_pushed_and_none_without_verification(client, settings, demo):
    kiosk = Chat(client, channel="kiosk")
    assert all(m.get("text") != OFFER for m in kiosk.verified_lookup(NUMBER, "2002"))
    assert "还有其他想问的吗" in kiosk.texts("好的")
    assert subscribed(settings, kiosk) == []

    stranger = Chat(client)
    assert "还有其他想问的吗" in stranger.texts("好的")  # nothing offered: nothing subscribed
    assert subscribed(settings, stranger) == []
