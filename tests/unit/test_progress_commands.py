"""The words that manage progress notices and reminders (服务找人), answered before the
dialogue: list, cancel (all, one by number, one kind), set a reminder with the date
or month said in many ways, and the answer to "哪年哪月到期？"."""

from __future__ import annotations

import datetime as dt

import pytest

from assistant.services.progress import commands
from assistant.services.progress.commands import COMMAND_CANCEL, COMMAND_LIST, command_of
from assistant.services.progress.reminder_words import (
    ANSWER,
    CANCEL_KIND,
    CANCEL_ONE,
    ID_CARD,
    PASSPORT,
    PENSION,
    PICKUP,
    REMIND,
    SUPPLEMENT,
    answer_of,
    number_of,
    parse,
    when_of,
)

TODAY = dt.date(2026, 12, 5)  # a Saturday


@pytest.mark.parametrize("text", ["退订提醒", "取消提醒", "不要再提醒了", "别提醒我了。", "关闭通知",
                                  "我想取消办件的提醒", "退订", "TD", "取消 所有 提醒！", "退定提醒", "删除提醒",
                                  "ｔｄ", "取消全部提醒吧"])
def test_cancel(text):
    assert command_of(text) == COMMAND_CANCEL


@pytest.mark.parametrize("text", ["我的提醒", "查看提醒", "我的提醒有哪些？", "看看我的订阅", "我得提醒",
                                  "提醒列表", "我设置了哪些提醒", "我有哪些提醒", "查看我的提醒。"])
def test_list(text):
    assert command_of(text) == COMMAND_LIST


@pytest.mark.parametrize("text, index", [
    ("取消第2个提醒", 2), ("取消第二个", 2), ("删除第3条提醒", 3), ("取消提醒第2个", 2), ("退订第十个提醒", 10),
    ("请取消第1个提醒。", 1), ("取消第 2 个提醒", 2), ("取消第２个提醒", 2), ("不要第三个提醒了", 3),
])
def test_cancel_one(text, index):
    said = parse(text, TODAY)
    assert said is not None and said.command == CANCEL_ONE and said.index == index


@pytest.mark.parametrize("text, kind", [
    ("取消身份证提醒", ID_CARD), ("不要再提醒我护照了", PASSPORT), ("取消养老金认证的提醒", PENSION),
    ("身份证到期提醒取消掉", ID_CARD),
])
def test_cancel_kind(text, kind):
    said = parse(text, TODAY)
    assert said is not None and said.command == CANCEL_KIND and said.kind == kind


@pytest.mark.parametrize("text", ["提醒我", "取消预约", "我要退休了提醒一下材料", "社保卡怎么办", "", "退订提醒" * 10,
                                  "怎么取消社保卡挂失的提醒短信呢请问", "身份证怎么办理", "身份证到期了怎么换",
                                  "护照过期了需要什么材料", "收到了补正提醒", "领取养老金提醒我", "身份证明年3月到期",
                                  "补交材料在哪里交", "他们叫我补交材料", "补交材料的通知我收到了", "身份证" * 30 + "提醒我"])
def test_not_a_command(text):
    assert command_of(text) is None


@pytest.mark.parametrize("text, kind, month", [
    ("身份证明年3月到期，提醒我", ID_CARD, dt.date(2027, 3, 1)),
    ("护照2027年5月到期提醒我换", PASSPORT, dt.date(2027, 5, 1)),
    ("身分证二〇二七年三月到期 提醒我一下", ID_CARD, dt.date(2027, 3, 1)),
    ("身份证二零二八年十二月到期，提醒我", ID_CARD, dt.date(2028, 12, 1)),
    ("身份证两千零二十八年十一月到期记得提醒我", ID_CARD, dt.date(2028, 11, 1)),
    ("护照27年5月过期，到时候提醒我", PASSPORT, dt.date(2027, 5, 1)),
    ("户照后年十月到期提醒我", PASSPORT, dt.date(2028, 10, 1)),
    ("我的身份证十二月到期，请提醒我", ID_CARD, dt.date(2026, 12, 1)),  # this month, still to come
    ("身份证3月份到期，提醒我", ID_CARD, dt.date(2027, 3, 1)),  # no year: the next March
    ("身份证2028-02到期提醒我", ID_CARD, dt.date(2028, 2, 1)),
    ("身份证2028/2到期提醒我", ID_CARD, dt.date(2028, 2, 1)),
    ("身份证有效期至2030.07，提醒我", ID_CARD, dt.date(2030, 7, 1)),
    ("护照下个月到期提醒我", PASSPORT, dt.date(2027, 1, 1)),
    ("身份证2027年3月15日到期提醒我", ID_CARD, dt.date(2027, 3, 1)),
    ("ｓｈｅｎ身份证２０２７年３月到期提醒我", ID_CARD, dt.date(2027, 3, 1)),
    ("我的身份证快过期了，能提醒我吗", ID_CARD, None),
    ("身份正到期题醒我", ID_CARD, None),
    ("护照快到期了，到时候通知我", PASSPORT, None),
])
def test_remind_with_a_month(text, kind, month):
    said = parse(text, TODAY)
    assert said is not None and said.command == REMIND and said.kind == kind
    assert (said.when.month if said.when else None) == month


@pytest.mark.parametrize("text, kind, day", [
    ("养老金认证提醒我", PENSION, None),
    ("养老金资格认证提醒我一下", PENSION, None),
    ("生存认证提醒我", PENSION, None),
    ("养老认正提醒我", PENSION, None),
    ("退休金年审记得提醒我", PENSION, None),
    ("养老金资格认证明年3月底截止，提醒我", PENSION, dt.date(2027, 3, 31)),
    ("养老金认证2027年1月10号前要做，提醒我", PENSION, dt.date(2027, 1, 10)),
    ("养老金认证三月三十一日截止提醒我", PENSION, dt.date(2027, 3, 31)),
    ("补交材料截止前提醒我", SUPPLEMENT, None),
    ("补正材料12月20日截止，提醒我", SUPPLEMENT, dt.date(2026, 12, 20)),
    ("补交材料十二月二十号截止提醒我", SUPPLEMENT, dt.date(2026, 12, 20)),
    ("可以领的时候提醒我", PICKUP, None),
    ("明天提醒我去领证", PICKUP, dt.date(2026, 12, 6)),
    ("下周三提醒我去领取", PICKUP, dt.date(2026, 12, 9)),
    ("三天后提醒我去取证", PICKUP, dt.date(2026, 12, 8)),
])
def test_remind_with_a_day(text, kind, day):
    said = parse(text, TODAY)
    assert said is not None and said.command == REMIND and said.kind == kind
    assert (said.when.day if said.when else None) == day


@pytest.mark.parametrize("token, value", [
    ("3", 3), ("12", 12), ("十", 10), ("十二", 12), ("二十", 20), ("二十七", 27), ("三十一", 31), ("两", 2),
    ("二〇二七", 2027), ("二零二八", 2028), ("两千零二十七", 2027), ("一百", 100), ("x", None), ("2十", None),
])
def test_numbers(token, value):
    assert number_of(token) == value


@pytest.mark.parametrize("text, month, day", [
    ("2027年3月", dt.date(2027, 3, 1), None),
    ("明年三月", dt.date(2027, 3, 1), None),
    ("今年十二月", dt.date(2026, 12, 1), None),
    ("三月", dt.date(2027, 3, 1), None),
    ("12月", dt.date(2026, 12, 1), None),
    ("一月份", dt.date(2027, 1, 1), None),
    ("下下个月", dt.date(2027, 2, 1), None),
    ("这个月底", dt.date(2026, 12, 1), dt.date(2026, 12, 31)),
    ("月底", dt.date(2026, 12, 1), dt.date(2026, 12, 31)),
    ("12月20号", dt.date(2026, 12, 1), dt.date(2026, 12, 20)),
    ("12月1日", dt.date(2027, 12, 1), dt.date(2027, 12, 1)),  # passed this year: next year's
    ("2027/3/15", dt.date(2027, 3, 1), dt.date(2027, 3, 15)),
    ("2027-03-15", dt.date(2027, 3, 1), dt.date(2027, 3, 15)),
    ("12.20", dt.date(2026, 12, 1), dt.date(2026, 12, 20)),
    ("明天", dt.date(2026, 12, 1), dt.date(2026, 12, 6)),
    ("大后天", dt.date(2026, 12, 1), dt.date(2026, 12, 8)),
    ("十天后", dt.date(2026, 12, 1), dt.date(2026, 12, 15)),
    ("下周一", dt.date(2026, 12, 1), dt.date(2026, 12, 7)),
    ("星期天", dt.date(2026, 12, 1), dt.date(2026, 12, 6)),
    ("2月30日", None, None),  # no such day
    ("2027-13", None, None),
])
def test_dates(text, month, day):
    when = when_of(text, TODAY)
    if month is None:
        assert when is None
    else:
        assert when is not None and when.month == month and when.day == day


@pytest.mark.parametrize("text, month, kind", [
    ("2027年3月", dt.date(2027, 3, 1), None),
    ("大概是明年3月吧", dt.date(2027, 3, 1), None),
    ("明年三月到期", dt.date(2027, 3, 1), None),
    ("二〇二九年一月。", dt.date(2029, 1, 1), None),
    ("护照2028年5月", dt.date(2028, 5, 1), PASSPORT),
    ("12月20号", dt.date(2026, 12, 1), None),
    ("明天", dt.date(2026, 12, 1), None),
])
def test_answers(text, month, kind):
    said = answer_of(text, TODAY)
    assert said is not None and said.command == ANSWER and not said.unknown
    assert said.when.month == month and said.kind == kind


@pytest.mark.parametrize("text", ["不知道", "我也不清楚", "忘了", "记不清了", "不确定。"])
def test_unknown_answers(text):
    said = answer_of(text, TODAY)
    assert said is not None and said.unknown


@pytest.mark.parametrize("text", ["好的", "2002", "ZW20251102003", "13800002002", "社保卡怎么办", "3", "",
                                  "我明年三月要去北京办户口迁移手续", "不用了"])
def test_not_answers(text):
    assert answer_of(text, TODAY) is None


def test_a_question_is_pending_for_a_while_only():
    value = commands.ask_value(ID_CARD, now=1000)
    assert value == "ask:id_card_expiry@1000"
    assert commands.pending_kind(value, now=1000 + 60) == ID_CARD
    assert commands.pending_kind(value, now=1000 + commands.ASK_TTL_S + 1) is None
    assert commands.pending_kind("progress_subscription", now=1000) is None
    assert commands.pending_kind("ask:unknown_kind@1000", now=1000) is None
    assert commands.pending_kind("ask:id_card_expiry@x", now=1000) is None
    assert commands.pending_kind(None) is None


def test_the_context_comes_from_verified_slots_only():
    slots = {"application_number": "ZW20251102003", "progress_outcome": "verified", "progress_status": "supplement",
             "pending_offer": commands.ask_value(SUPPLEMENT)}
    context = commands.Context.of(slots)
    assert (context.number, context.status, context.pending) == ("ZW20251102003", "supplement", SUPPLEMENT)
    unverified = commands.Context.of({**slots, "progress_outcome": None})
    assert unverified.number is None and unverified.status is None
