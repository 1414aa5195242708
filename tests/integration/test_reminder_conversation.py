"""Reminders (服务找人) set in the conversation, through the real gateway, model and
action server: "身份证明年3月到期，提醒我", the month asked when it is missing and
taken from the next message, "我的提醒" listing notices and reminders, "取消第2个提醒",
"退订提醒"; after a 需补正 lookup the deadline reminder offered after the status offer;
after a finished application's lookup the pickup reminder; none at a kiosk."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import List

import pytest

from assistant.services.progress import commands, reminders, subscriptions
from assistant.services.progress.importer import import_csv, load_demo_data
from tests.chat_session import Chat

pytestmark = pytest.mark.model

SUPPLEMENT = "ZW20251102003"  # 需补正 in the demo data, phone tail 3003
PICKUP = "ZW20261201009"  # 办结, 窗口领取 (imported below), phone tail 9009
STATUS_OFFER = "办件状态有变化时，要我提醒您吗？"
DEADLINE_OFFER = "要我在补交材料的截止日期前提醒您吗？"
PICKUP_OFFER = "要我提醒您去领取吗？"
PICKUP_CSV = (
    "number,item_id,applicant_name,phone,id_number,promised_date,pickup_method,status,at,note,missing_materials\n"
    f"{PICKUP},id_card_reissue,赵敏,13800009009,,,窗口领取,受理,2026-11-20 09:00,已受理。,\n"
    f"{PICKUP},id_card_reissue,赵敏,13800009009,,,窗口领取,办结,2026-11-28 15:00,证件已制作完成，请到受理窗口领取。,\n"
)


@pytest.fixture(scope="module")
def demo(settings, tmp_path_factory):
    load_demo_data(settings.db_url, settings.secret())
    path = Path(tmp_path_factory.mktemp("pickup")) / "pickup.csv"
    path.write_text(PICKUP_CSV, encoding="utf-8")
    import_csv(settings.db_url, path, settings.secret())


def today(settings) -> dt.date:
    return commands.today_in(settings.timezone)


def reminders_of(settings, chat: Chat) -> List[reminders.ReminderView]:
    return reminders.list_reminders(settings.db_url, settings.secret(), chat.channel, chat.sender_id)


def test_an_expiry_month_said_at_once_and_one_asked_for(client, settings, demo):
    chat = Chat(client)
    year = today(settings).year + 1
    reply = chat.say("身份证明年3月到期，提醒我")
    assert reply["answer"] == "followup" and reply["intent"] is None  # answered by the gateway
    assert f"身份证{year}年3月到期" in reply["messages"][0]["text"] and "退订提醒" in reply["messages"][0]["text"]
    (card,) = reminders_of(settings, chat)
    assert (card.kind, card.due_on, card.number) == ("id_card_expiry", f"{year}-03", None)

    # Without the month: asked in plain words; the next message is the answer.
    asked = chat.texts("护照快到期了，到时候提醒我")
    assert asked == commands.ASK_TEXT["passport_expiry"]
    done = chat.texts(f"{year + 1}年五月")
    assert f"护照{year + 1}年5月到期" in done
    assert sorted((r.kind, r.due_on) for r in reminders_of(settings, chat)) == [
        ("id_card_expiry", f"{year}-03"), ("passport_expiry", f"{year + 1}-05")]
    # The question is answered: a month said now is the dialogue's again.
    assert "已经记下" not in chat.texts(f"{year + 2}年6月")
    assert len(reminders_of(settings, chat)) == 2

    # The same reminder twice is one.
    assert "已经设置过了" in chat.texts(f"身份证{year}年3月到期提醒我")
    listed = chat.texts("我的提醒")
    assert "1. 身份证到期提醒" in listed and "2. 护照到期提醒" in listed and "取消第1个提醒" in listed
    assert "取消第 2 个提醒：护照到期提醒" in chat.texts("取消第二个提醒")
    assert [r.kind for r in reminders_of(settings, chat)] == ["id_card_expiry"]
    assert "没有第 5 个提醒" in chat.texts("取消第5个提醒")
    assert "已经为您取消 1 个提醒" in chat.texts("退订提醒")
    assert reminders_of(settings, chat) == []
    assert "您目前没有设置提醒" in chat.texts("我的提醒")


def test_a_pension_reminder_asks_the_date_and_takes_a_bad_one_again(client, settings, demo):
    chat = Chat(client)
    assert chat.texts("养老金认证提醒我") == commands.ASK_TEXT["pension_certification"]
    too_far = chat.texts(f"{today(settings).year + 3}年3月31日")
    assert "这个日期不对" in too_far  # more than 400 days ahead: said again, the question stays
    assert reminders_of(settings, chat) == []
    deadline = today(settings) + dt.timedelta(days=90)
    done = chat.texts(f"{deadline.month}月{deadline.day}号")
    assert "养老金资格认证" in done and "以后每年都会提醒" in done
    (pension,) = reminders_of(settings, chat)
    assert (pension.kind, pension.due_on) == ("pension_certification", deadline.isoformat())


def test_not_knowing_the_month_closes_the_question(client, settings, demo):
    chat = Chat(client)
    assert chat.texts("身份证到期提醒我") == commands.ASK_TEXT["id_card_expiry"]
    assert chat.texts("不知道") == commands.UNKNOWN_TEXT["id_card_expiry"]
    assert "已经记下" not in chat.texts("明年3月")
    assert reminders_of(settings, chat) == []
    # Declining the question works like declining an offer.
    assert chat.texts("护照到期提醒我") == commands.ASK_TEXT["passport_expiry"]
    assert "不提醒您" in chat.texts("不用了")
    assert "已经记下" not in chat.texts("明年3月")
    assert reminders_of(settings, chat) == []


def test_after_a_supplement_lookup_the_deadline_reminder_is_offered_and_set(client, settings, demo):
    chat = Chat(client)
    messages = chat.verified_lookup(SUPPLEMENT, "3003")
    assert "请补交这些材料" in messages[0]["text"]
    assert messages[-1]["text"] == STATUS_OFFER  # one offer at a time
    after_yes = chat.texts("好的")
    assert "我会在这里提醒您" in after_yes and after_yes.endswith(DEADLINE_OFFER)
    assert chat.texts("好的") == commands.ASK_TEXT["supplement_deadline"]
    deadline = today(settings) + dt.timedelta(days=15)
    done = chat.texts(f"{deadline.month}月{deadline.day}日")
    assert "ZW2025****003" in done and "补交材料截止日期" in done and SUPPLEMENT not in done
    (deadline_reminder,) = reminders_of(settings, chat)
    assert (deadline_reminder.kind, deadline_reminder.due_on) == ("supplement_deadline", deadline.isoformat())
    assert subscriptions.numbers_of(settings.db_url, settings.secret(), "web", chat.sender_id) == [SUPPLEMENT]

    listed = chat.texts("我的提醒")
    assert "1. 办件 ZW2025****003：状态有变化时提醒" in listed and "2. 补正材料截止提醒" in listed
    assert "已经为您取消 2 个提醒" in chat.texts("退订提醒")
    assert subscriptions.numbers_of(settings.db_url, settings.secret(), "web", chat.sender_id) == []
    assert reminders_of(settings, chat) == []


def test_a_deadline_reminder_typed_after_the_lookup_uses_the_verified_number(client, settings, demo):
    chat = Chat(client)
    assert "先查到您的办件" in chat.texts("补交材料截止前提醒我")  # not verified yet
    assert chat.verified_lookup(SUPPLEMENT, "3003")[-1]["text"] == STATUS_OFFER
    deadline = today(settings) + dt.timedelta(days=10)
    done = chat.texts(f"补交材料{deadline.month}月{deadline.day}日截止，提醒我")
    assert "ZW2025****003" in done
    (made,) = reminders_of(settings, chat)
    assert (made.kind, made.due_on) == ("supplement_deadline", deadline.isoformat())


def test_after_a_finished_lookup_the_pickup_reminder_is_offered(client, settings, demo):
    chat = Chat(client)
    messages = chat.verified_lookup(PICKUP, "9009")
    assert "领取方式：窗口领取" in messages[0]["text"] and messages[-1]["text"] == STATUS_OFFER
    declined = chat.say("不用了")["messages"]
    assert declined[-1]["text"] == PICKUP_OFFER
    asked = chat.say("/affirm")["messages"][-1]  # the 提醒我 button
    assert asked["text"] == commands.ASK_TEXT["ready_for_pickup"]
    assert [b["payload"] for b in asked["buttons"]] == ["明天", "后天"]
    done = chat.texts(asked["buttons"][0]["payload"])
    assert "明天上午9点提醒您去领取" in done and "ZW2026****009" in done
    (pickup,) = reminders_of(settings, chat)
    tomorrow = today(settings) + dt.timedelta(days=1)
    assert (pickup.kind, pickup.due_on) == ("ready_for_pickup", tomorrow.isoformat())
    assert subscriptions.numbers_of(settings.db_url, settings.secret(), "web", chat.sender_id) == []


def test_no_reminders_at_a_kiosk(client, settings, demo):
    kiosk = Chat(client, channel="kiosk")
    assert kiosk.texts("身份证明年3月到期，提醒我") == reminders.UNKNOWN_CHANNEL
    messages = kiosk.verified_lookup(SUPPLEMENT, "3003")
    assert all(m.get("text") not in (STATUS_OFFER, DEADLINE_OFFER) for m in messages)
    assert reminders_of(settings, kiosk) == []


@pytest.mark.asyncio(loop_scope="session")
async def test_on_wechat_the_month_is_asked_and_the_reminder_set(live_server, wechat_api, settings, demo):
    import secrets

    from assistant.channels.wechat_sim import WeChatSimulator

    year = today(settings).year + 2
    openid = "oRemind" + secrets.token_hex(8)
    async with WeChatSimulator(f"{live_server}/channels/wechat", settings.wechat_token, settings.wechat_app_id,
                               settings.wechat_encoding_aes_key) as sim:
        asked = await sim.send_text(openid, "护照快到期了，提醒我")
        assert asked.ok and asked.text == commands.ASK_TEXT["passport_expiry"]
        done = await sim.send_text(openid, f"{year}年五月")
        assert f"护照{year}年5月到期" in done.text
        listed = await sim.send_text(openid, "我的提醒")
        assert "1. 护照到期提醒" in listed.text
    (made,) = reminders.list_reminders(settings.db_url, settings.secret(), "wechat", f"wx-{openid}")
    assert (made.kind, made.due_on) == ("passport_expiry", f"{year}-05")
