"""Reminders that find people (服务找人): set once, sealed, audited; sent once when due
(also by several schedulers at once), never in quiet hours or past the daily cap,
not after a cancel; the yearly one comes back; texts in plain Chinese, masked."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import select, update

from assistant.api.serving import serve_in_thread
from assistant.services.progress import dispatch, notices, reminders, webchat
from assistant.services.progress import subscriptions as subs
from assistant.services.progress.reminders import ReminderError, remind
from assistant.services.progress.importer import load_demo_data
from assistant.storage.database import session_factory
from assistant.storage.tables import Application, AuditRecord, ChatNotice, Reminder
from tests.conftest import isolated_settings
from tests.notify_support import FakeSms

TZ = "Asia/Shanghai"
MORNING = dt.datetime(2026, 12, 5, 2, 0, tzinfo=dt.timezone.utc)  # 10:00 in Beijing
ID_CARD_TEXT = "您的身份证将于2027年3月到期，可以提前3个月办理换领。回复“身份证换领”查看要带的材料。"


@pytest.fixture
def db(settings, tmp_path):
    isolated = isolated_settings(settings, tmp_path)
    return isolated.db_url, isolated.secret()


@pytest.fixture
def sms():
    fake = FakeSms()
    with serve_in_thread(fake.app) as url:
        fake.url = f"{url}/sms"
        yield fake


def test_texts_moments_and_months():
    cfg = reminders.config()
    card = cfg.kinds["id_card_expiry"]
    assert reminders.reminder_text(card, "web", None, dt.date(2027, 3, 1)) == ID_CARD_TEXT
    assert reminders.reminder_text(card, "sms", None, dt.date(2027, 3, 1)).endswith(
        "可以在“办事助手”里问“身份证换领”查看要带的材料。")
    supplement = reminders.reminder_text(cfg.kinds["supplement_deadline"], "wechat", "ZW20251102003",
                                         dt.date(2026, 12, 20))
    assert supplement == "您的办件ZW2025****003需要补交材料，截止日期是2026年12月20日。回复“查进度”查看要补交的材料。"
    early = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    # Three months before March 2027, at 09:00 Beijing time (01:00 UTC).
    assert reminders.send_moment(card, dt.date(2027, 3, 1), TZ, early) == dt.datetime(2026, 12, 1, 1, 0)
    passport = cfg.kinds["passport_expiry"]
    assert reminders.send_moment(passport, dt.date(2027, 8, 1), TZ, early) == dt.datetime(2027, 2, 1, 1, 0)
    # Already inside the lead time: at once.
    assert reminders.send_moment(card, dt.date(2027, 1, 1), TZ, MORNING) == MORNING.replace(tzinfo=None)
    for text in ("2027-03", "2027-3", "2027/03", "2027年3月"):
        assert reminders.parse_month(text) == dt.date(2027, 3, 1)
    for bad in ("2027-13", "三月", "", "2027-03-01", "x" * 100):
        with pytest.raises(ReminderError):
            reminders.parse_month(bad)
    assert reminders.add_months(dt.date(2027, 3, 31), -1) == dt.date(2027, 2, 28)


def test_set_once_sealed_audited_and_bounded(db):
    url, secret = db
    made = remind(url, secret, kind="id_card_expiry", channel="web", recipient="web-reminder-1",
                  expiry_month="2027-03", now=MORNING)
    again = remind(url, secret, kind="id_card_expiry", channel="web", recipient="web-reminder-1",
                   expiry_month="2027年3月", now=MORNING)
    assert made.created and not again.created and again.id == made.id
    refusals = [
        (dict(kind="lottery"), reminders.UNKNOWN_KIND),
        (dict(kind="id_card_expiry", channel="kiosk"), reminders.UNKNOWN_CHANNEL),
        (dict(kind="id_card_expiry"), reminders.NEED_MONTH),
        (dict(kind="id_card_expiry", expiry_month="2026-11"), reminders.BAD_MONTH.format(years=20)),
        (dict(kind="passport_expiry", expiry_month="2099-01"), reminders.BAD_MONTH.format(years=20)),
        (dict(kind="supplement_deadline", number="ZW123"), reminders.NEED_NUMBER),
        (dict(kind="supplement_deadline", number="ZW20251102003"), reminders.NEED_DATE),
        (dict(kind="supplement_deadline", number="ZW20251102003", due_on=dt.date(2026, 12, 1)),
         reminders.BAD_DATE.format(days=400)),
        (dict(kind="pension_certification", due_on=dt.date(2029, 1, 1)), reminders.BAD_DATE.format(days=400)),
    ]
    for fields, message in refusals:
        values = {"channel": "web", "recipient": "web-reminder-1", "now": MORNING, **fields}
        with pytest.raises(ReminderError) as caught:
            remind(url, secret, **values)
        assert str(caught.value) == message, fields
    for month in range(4, 4 + 9):  # up to the limit of ten
        remind(url, secret, kind="passport_expiry", channel="web", recipient="web-reminder-1",
               expiry_month=f"2027-{month:02d}", now=MORNING)
    with pytest.raises(ReminderError) as caught:
        remind(url, secret, kind="passport_expiry", channel="web", recipient="web-reminder-1",
               expiry_month="2028-01", now=MORNING)
    assert str(caught.value) == "您已经设置了10条提醒，请先取消不需要的，再设置新的。"
    listed = reminders.list_reminders(url, secret, "web", "web-reminder-1")
    assert len(listed) == 10 and listed[0].as_dict()["kind"] == "id_card_expiry" and listed[0].due_on == "2027-03"
    assert reminders.list_reminders(url, secret, "web", "web-someone-else") == []
    with session_factory(url)() as session:
        rows = session.execute(select(Reminder)).scalars().all()
        audit = session.execute(select(AuditRecord.action, AuditRecord.subject)).all()
    assert all("web-reminder-1" not in r.recipient_sealed for r in rows)
    assert audit.count(("reminder.create", "id_card_expiry")) == 1 and len(audit) == 10


async def test_a_due_reminder_is_sent_once_by_several_schedulers(db, sms):
    url, secret = db
    remind(url, secret, kind="id_card_expiry", channel="sms", recipient="13800138000", expiry_month="2027-03",
           now=MORNING)
    chat = "web-returning-citizen"
    remind(url, secret, kind="passport_expiry", channel="web", recipient=chat, expiry_month="2027-05",
           now=MORNING)
    sender = dispatch.HttpSmsSender(sms.url)
    senders = {"sms": sender, "web": webchat.WebChatSender(url, secret)}
    later = MORNING + dt.timedelta(minutes=5)
    results = await asyncio.gather(*(reminders.send_due_reminders(url, secret, senders, TZ, later) for _ in range(3)))
    assert sum(r["sent"] for r in results) == 2
    assert sms.received == [{"phone": "13800138000", "text": ID_CARD_TEXT.replace(
        "回复“身份证换领”", "可以在“办事助手”里问“身份证换领”")}]
    again = await reminders.send_due_reminders(url, secret, senders, TZ, later + dt.timedelta(hours=1))
    assert again["sent"] == 0 and len(sms.received) == 1
    # The web chat's copy waits for the conversation, shown once.
    shown = webchat.take_pending(url, webchat.conversation_key(secret, chat))
    assert [n["text"] for n in shown] == [
        "您的护照将于2027年5月到期，有效期不足6个月时可以申请换发。回复“护照换发”查看要带的材料。"]
    assert shown[0]["kind"] == "reminder"
    assert webchat.take_pending(url, webchat.conversation_key(secret, chat)) == []
    with session_factory(url)() as session:
        states = session.execute(select(Reminder.status)).scalars().all()
        audit = session.execute(select(AuditRecord.result).where(AuditRecord.action == "reminder.sent")).scalars().all()
    assert states == ["sent", "sent"] and sorted(audit) == ["sent", "sent"]
    await sender.client.aclose()


async def test_quiet_hours_and_the_daily_cap_defer_a_reminder(db, sms):
    url, secret = db
    night = dt.datetime(2026, 12, 5, 14, 30, tzinfo=dt.timezone.utc)  # 22:30 in Beijing
    remind(url, secret, kind="id_card_expiry", channel="sms", recipient="13900139000", expiry_month="2027-02",
           now=night)
    senders = {"sms": dispatch.HttpSmsSender(sms.url)}
    counts = await reminders.send_due_reminders(url, secret, senders, TZ, night + dt.timedelta(minutes=1))
    assert counts["deferred"] == 1 and sms.received == []
    with session_factory(url)() as session:
        assert session.execute(select(Reminder.send_at)).scalar_one() == dt.datetime(2026, 12, 6, 0, 0)  # 08:00
    assert (await reminders.send_due_reminders(url, secret, senders, TZ, night + dt.timedelta(hours=5)))["sent"] == 0
    morning = dt.datetime(2026, 12, 6, 0, 0, tzinfo=dt.timezone.utc)
    assert (await reminders.send_due_reminders(url, secret, senders, TZ, morning))["sent"] == 1
    assert len(sms.received) == 1

    # Three status notices to the same phone in the last day: the reminder waits a day.
    load_demo_data(url, secret)
    for number in ("ZW20251102001", "ZW20251102002", "ZW20251102003"):
        subs.subscribe(url, secret, number, "sms", "13700137000", "x")
        notices.enqueue(url, number, "completed", TZ, morning)
    remind(url, secret, kind="passport_expiry", channel="sms", recipient="13700137000", expiry_month="2027-01",
           now=morning)
    counts = await reminders.send_due_reminders(url, secret, senders, TZ, morning + dt.timedelta(hours=2))
    assert counts == {"sent": 0, "deferred": 1, "retry": 0, "failed": 0, "obsolete": 0}
    with session_factory(url)() as session:
        pending = session.execute(select(Reminder).where(Reminder.status == "pending")).scalars().one()
    assert pending.send_at == dt.datetime(2026, 12, 7, 0, 0)
    await senders["sms"].client.aclose()


async def test_cancelled_reminders_are_not_sent(db, sms):
    url, secret = db
    first = remind(url, secret, kind="id_card_expiry", channel="sms", recipient="13600136000",
                   expiry_month="2027-03", now=MORNING)
    remind(url, secret, kind="passport_expiry", channel="sms", recipient="13600136000", expiry_month="2027-04",
           now=MORNING)
    assert reminders.cancel_reminder(url, secret, "sms", "13500135000", first.id) == 0  # not theirs
    assert reminders.cancel_reminder(url, secret, "sms", "13600136000", first.id) == 1
    assert reminders.cancel_reminder(url, secret, "sms", "13600136000", first.id) == 0  # once
    assert [r.kind for r in reminders.list_reminders(url, secret, "sms", "13600136000")] == ["passport_expiry"]
    assert reminders.cancel_reminder(url, secret, "sms", "13600136000") == 1
    senders = {"sms": dispatch.HttpSmsSender(sms.url)}
    assert (await reminders.send_due_reminders(url, secret, senders, TZ, MORNING + dt.timedelta(days=1)))["sent"] == 0
    assert sms.received == []
    with session_factory(url)() as session:
        audit = session.execute(select(AuditRecord.action).where(AuditRecord.action == "reminder.cancel")).all()
    assert len(audit) == 2
    await senders["sms"].client.aclose()


async def test_application_reminders_follow_the_status_and_the_yearly_one_returns(db, sms):
    url, secret = db
    load_demo_data(url, secret)
    senders = {"sms": dispatch.HttpSmsSender(sms.url)}
    # 需补正 deadline: sent while the application still needs materials, dropped once it does not.
    remind(url, secret, kind="supplement_deadline", channel="sms", recipient="13300133000",
           number="ZW20251102003", due_on=dt.date(2026, 12, 6), now=MORNING)
    remind(url, secret, kind="supplement_deadline", channel="sms", recipient="13300133001",
           number="ZW20251102002", due_on=dt.date(2026, 12, 6), now=MORNING)  # 审核中, not 需补正
    # Ready for pickup: waits while the application is not finished.
    remind(url, secret, kind="ready_for_pickup", channel="sms", recipient="13300133002", number="ZW20251102001",
           now=MORNING)
    remind(url, secret, kind="pension_certification", channel="sms", recipient="13300133003",
           due_on=dt.date(2026, 12, 31), now=MORNING)
    counts = await reminders.send_due_reminders(url, secret, senders, TZ, MORNING + dt.timedelta(minutes=1))
    assert counts == {"sent": 2, "deferred": 1, "retry": 0, "failed": 0, "obsolete": 1}
    texts = {body["phone"]: body["text"] for body in sms.received}
    assert texts["13300133000"].startswith("您的办件ZW2025****003需要补交材料，截止日期是2026年12月6日。")
    assert texts["13300133003"].startswith("今年的养老金领取资格认证请在2026年12月31日前完成")
    with session_factory(url)() as session:
        session.execute(update(Application).where(Application.number == "ZW20251102001").values(status="completed"))
        session.commit()
    tomorrow = MORNING + dt.timedelta(days=1, minutes=2)
    assert (await reminders.send_due_reminders(url, secret, senders, TZ, tomorrow))["sent"] == 1
    assert sms.received[-1] == {"phone": "13300133002", "text":
                                "您的办件ZW2025****001已经办好，可以领取了。可以在“办事助手”里问“查进度”查看领取方式。"}
    with session_factory(url)() as session:
        rows = session.execute(select(Reminder.kind, Reminder.status, Reminder.due_on).order_by(Reminder.id)).all()
    assert ("pension_certification", "pending", dt.date(2027, 12, 31)) in rows  # next year's
    assert ("supplement_deadline", "obsolete", dt.date(2026, 12, 6)) in rows
    await senders["sms"].client.aclose()


async def test_a_wechat_reminder_outside_the_window_is_a_template_message(settings, tmp_path, wechat_api):
    from assistant.channels.wechat_api import WeChatApi
    from assistant.channels.wechat_notices import WeChatNoticeSender

    isolated = isolated_settings(settings, tmp_path)
    url, secret = isolated.db_url, isolated.secret()
    openid = "oReminderTpl01"  # never wrote to the account: no window
    remind(url, secret, kind="id_card_expiry", channel="wechat", recipient=f"wx-{openid}", expiry_month="2027-03",
           now=MORNING)
    api = WeChatApi(settings.wechat_api_base, settings.wechat_app_id, settings.wechat_app_secret)
    try:
        senders = {"wechat": WeChatNoticeSender(api, url, "TPL_reminder")}
        assert (await reminders.send_due_reminders(url, secret, senders, TZ, MORNING))["sent"] == 1
    finally:
        await api.close()
    [sent] = wechat_api.templates_to(openid)
    assert sent.data == {"thing1": "身份证到期提醒", "character_string2": "—", "phrase3": "即将到期",
                         "time4": "2026年12月5日 10:00"}
    with session_factory(url)() as session:
        assert session.execute(select(ChatNotice)).first() is None


def test_old_reminders_and_web_notices_are_deleted_after_their_retention(db):
    url, secret = db
    done = remind(url, secret, kind="id_card_expiry", channel="web", recipient="web-old", expiry_month="2027-03",
                  now=MORNING)
    remind(url, secret, kind="passport_expiry", channel="web", recipient="web-old", expiry_month="2027-04",
           now=MORNING)
    reminders.cancel_reminder(url, secret, "web", "web-old", done.id)
    shown, _ = webchat.store(url, secret, "web-old", "已读的通知")
    kept, key = webchat.store(url, secret, "web-old", "还没看的通知")
    webchat.take_pending(url, key)  # both shown now
    waiting, _ = webchat.store(url, secret, "web-away", "没人回来看的通知")
    later = dt.datetime.utcnow() + dt.timedelta(days=8)
    assert webchat.purge(url, later) == 2  # shown more than 7 days ago; the unseen one waits 30 days
    assert webchat.purge(url, later + dt.timedelta(days=23)) == 1
    assert reminders.purge(url, dt.datetime.utcnow() + dt.timedelta(days=89)) == 0
    assert reminders.purge(url, dt.datetime.utcnow() + dt.timedelta(days=91)) == 1  # the cancelled one
    with session_factory(url)() as session:
        assert session.execute(select(Reminder.status)).scalars().all() == ["pending"]
