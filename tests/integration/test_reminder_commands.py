"""The reminder commands carried out on the database (``commands.run``), without the
dialogue: set with the month said or asked, the answer taken, refusals said in plain
Chinese with the question kept open, the application's reminders only for a verified
number, one numbered list of notices and reminders, cancel one / a kind / all, nothing
at a kiosk; no full application number in any reply. SQLite or PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from assistant.services.progress import commands, reminders, subscriptions
from assistant.services.progress.commands import Context, answer_of, parse, run
from tests.conftest import isolated_settings

TZ = "Asia/Shanghai"
MORNING = dt.datetime(2026, 12, 5, 2, 0, tzinfo=dt.timezone.utc)  # 10:00 in Beijing, a Saturday
EVENING = dt.datetime(2026, 12, 5, 14, 0, tzinfo=dt.timezone.utc)  # 22:00: quiet hours
TODAY = dt.date(2026, 12, 5)
NUMBER = "ZW20251102003"
VERIFIED = Context(number=NUMBER, status="supplement")


@pytest.fixture
def db(settings, tmp_path):
    isolated = isolated_settings(settings, tmp_path)
    return isolated.db_url, isolated.secret()


def said(text):
    found = parse(text, TODAY) or answer_of(text, TODAY)
    assert found is not None, text
    return found


def do(db, text, recipient="web-cmd-1", channel="web", context=None, now=MORNING):
    reply = run(db[0], db[1], said(text), channel, recipient, TZ, context, now)
    assert NUMBER not in reply.text
    return reply


def kinds(db, recipient="web-cmd-1", channel="web"):
    return [(r.kind, r.due_on) for r in reminders.list_reminders(db[0], db[1], channel, recipient)]


def test_a_month_said_at_once_sets_the_reminder_and_only_the_month(db):
    reply = do(db, "身份证明年3月到期，提醒我")
    assert reply.text.startswith("好的，已经记下：您的身份证2027年3月到期。我会马上提醒您办理换领。")
    assert reply.pending is None  # any question pending is closed
    assert kinds(db) == [("id_card_expiry", "2027-03")]
    later = do(db, "护照二〇二八年十二月到期，提醒我换")
    assert "护照2028年12月到期" in later.text and "在2028年6月1日上午9点" in later.text
    assert "已经设置过了" in do(db, "身份证2027年3月到期提醒我").text
    assert len(kinds(db)) == 2


def test_a_missing_month_is_asked_and_the_answer_taken(db):
    asked = do(db, "身份证快到期了，提醒我")
    assert asked.text == commands.ASK_TEXT["id_card_expiry"]
    assert commands.pending_kind(asked.pending, now=MORNING.timestamp()) == "id_card_expiry"
    pending = Context(pending="id_card_expiry")
    too_early = do(db, "2020年3月", context=pending)
    assert too_early.text == reminders.BAD_MONTH.format(years=20)
    assert commands.pending_kind(too_early.pending, now=MORNING.timestamp()) == "id_card_expiry"  # still open
    year_only = do(db, "身份证明年到期提醒我")
    assert year_only.text == commands.NEED_YEAR_TEXT and year_only.pending
    done = do(db, "大概是二〇三〇年五月吧", context=pending)
    assert "身份证2030年5月到期" in done.text and done.pending is None
    assert kinds(db) == [("id_card_expiry", "2030-05")]
    unknown = do(db, "不知道", context=Context(pending="passport_expiry"))
    assert unknown.text == commands.UNKNOWN_TEXT["passport_expiry"] and unknown.pending is None


def test_the_pension_check_needs_its_date(db):
    asked = do(db, "养老金认证提醒我")
    assert asked.text == commands.ASK_TEXT["pension_certification"] and asked.pending
    done = do(db, "3月底", context=Context(pending="pension_certification"))
    assert "2027年3月31日前完成" in done.text and "以后每年都会提醒" in done.text
    assert kinds(db) == [("pension_certification", "2027-03-31")]
    too_far = do(db, "养老金认证2029年1月10日截止提醒我")
    assert too_far.text == reminders.BAD_DATE.format(days=400) and too_far.pending


def test_application_reminders_need_the_verified_number(db):
    assert "先查到您的办件" in do(db, "补交材料截止前提醒我").text
    assert kinds(db) == []
    asked = do(db, "补交材料截止前提醒我", context=VERIFIED)
    assert asked.text == commands.ASK_TEXT["supplement_deadline"]
    done = do(db, "12月20号", context=Context(pending="supplement_deadline", number=NUMBER, status="supplement"))
    assert "编号 ZW2025****003 的补交材料截止日期是12月20日，我会在12月18日上午9点提醒您。" in done.text
    assert kinds(db) == [("supplement_deadline", "2026-12-20")]
    reviewing = do(db, "补交材料12月20日截止提醒我", context=Context(number=NUMBER, status="reviewing"))
    assert "现在不需要补交材料" in reviewing.text
    # A finished application: which day to go and pick it up (buttons the gateway takes).
    finished = Context(number="ZW20251102004", status="completed")
    asked = do(db, "领证的时候提醒我", recipient="web-cmd-2", context=finished)
    assert asked.text == commands.ASK_TEXT["ready_for_pickup"]
    assert [b["payload"] for b in asked.buttons] == ["明天", "后天"]
    done = do(db, "明天", recipient="web-cmd-2",
              context=Context(pending="ready_for_pickup", number="ZW20251102004", status="completed"))
    assert "明天上午9点提醒您去领取" in done.text and "ZW2025****004" in done.text
    assert kinds(db, "web-cmd-2") == [("ready_for_pickup", "2026-12-06")]
    # Not finished yet: reminded on the day it is (no day asked).
    waiting = do(db, "可以领的时候提醒我", recipient="web-cmd-3", context=Context(number=NUMBER, status="reviewing"))
    assert waiting.text.startswith("好的，编号 ZW2025****003 的办件办好后，我会提醒您去领取。")
    assert kinds(db, "web-cmd-3") == [("ready_for_pickup", "2026-12-05")]


def test_one_numbered_list_and_cancelling_one_a_kind_or_all(db):
    db_url, secret = db
    subscriptions.subscribe(db_url, secret, NUMBER, "web", "web-cmd-4", "supplement")
    do(db, "身份证2027年3月到期，提醒我", recipient="web-cmd-4")
    do(db, "护照2028年5月到期，提醒我", recipient="web-cmd-4")
    do(db, "养老金认证2027年3月31日截止提醒我", recipient="web-cmd-4")
    listed = do(db, "我的提醒", recipient="web-cmd-4").text
    assert listed.startswith("您设置了这些提醒：\n1. 办件 ZW2025****003：状态有变化时提醒\n")
    assert "2. 身份证到期提醒：2027年3月到期，马上提醒" in listed
    assert "3. 养老金资格认证提醒：2027年3月31日，2027年3月1日上午9点提醒" in listed
    assert "4. 护照到期提醒：2028年5月到期，2027年11月1日上午9点提醒" in listed
    assert do(db, "取消第3个提醒", recipient="web-cmd-4").text == "好的，已经取消第 3 个提醒：养老金资格认证提醒。"
    assert "没有第 9 个提醒" in do(db, "取消第9个提醒", recipient="web-cmd-4").text
    assert do(db, "取消护照提醒", recipient="web-cmd-4").text == "好的，已经取消护照到期提醒。"
    assert "没有设置护照到期提醒" in do(db, "取消护照提醒", recipient="web-cmd-4").text
    assert do(db, "取消第1个提醒", recipient="web-cmd-4").text == "好的，已经取消第 1 个提醒：办件 ZW2025****003 的状态提醒。"
    assert subscriptions.numbers_of(db_url, secret, "web", "web-cmd-4") == []
    assert kinds(db, "web-cmd-4") == [("id_card_expiry", "2027-03")]
    subscriptions.subscribe(db_url, secret, NUMBER, "web", "web-cmd-4", "supplement")
    assert "已经为您取消 2 个提醒" in do(db, "退订提醒", recipient="web-cmd-4").text
    assert "您目前没有设置提醒" in do(db, "我的提醒", recipient="web-cmd-4").text


def test_nothing_is_set_at_a_kiosk_and_the_night_is_quiet(db):
    kiosk = do(db, "身份证明年3月到期，提醒我", recipient="kiosk-cmd-1", channel="kiosk")
    assert kiosk.text == reminders.UNKNOWN_CHANNEL
    assert do(db, "我的提醒", recipient="kiosk-cmd-1", channel="kiosk").text == commands.NOTHING_HERE_TEXT
    assert kinds(db, "kiosk-cmd-1", "kiosk") == []
    # A reminder due at once but set at 22:00 goes at 08:00 and says so.
    night = do(db, "身份证明年1月到期提醒我", recipient="web-cmd-5", now=EVENING)
    assert "我会在明天上午8点提醒您" in night.text
