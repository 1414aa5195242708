"""The follow-through offers, one at a time: status notices first, then for a 需补正
application (or a finished one to pick up) the dated reminder; "好的" to that asks
for the date (the gateway takes the answer), "不用了" declines — on the demo data."""

import time

import pytest

from actions.followup import (
    DATED_OFFER_TEXT,
    DECLINED_STATUS_TEXT,
    DECLINED_TEXT,
    OFFER_TEXT,
    ActionAffirm,
    ActionDeny,
    dated_kind,
    offer_events,
)
from assistant.services.progress import commands, reminders, subscriptions
from assistant.services.progress.importer import load_demo_data

from .conftest import DOMAIN, make_tracker

SUPPLEMENT = "ZW20251102003"


@pytest.fixture(scope="module", autouse=True)
def demo_data(settings):
    load_demo_data(settings.db_url, settings.secret())


def verified(sender_id, offer, channel="web", number=SUPPLEMENT, status="supplement"):
    return make_tracker("好的", "affirm", sender_id=sender_id, channel=channel, slots={
        "application_number": number, "progress_outcome": "verified", "progress_status": status,
        "pending_offer": offer})


def slot(events, name="pending_offer"):
    values = [e["value"] for e in events if e.get("event") == "slot" and e.get("name") == name]
    assert values, events
    return values[-1]


def texts(dispatcher):
    return [m["text"] for m in dispatcher.messages if m.get("text")]


@pytest.mark.parametrize("status, pickup, kind", [
    ("supplement", None, "supplement_deadline"), ("completed", "窗口领取", "ready_for_pickup"),
    ("completed", "邮寄", None), ("completed", "EMS快递", None), ("completed", None, None),
    ("reviewing", "窗口领取", None), ("rejected", None, None),
])
def test_which_dated_reminder_is_worth_offering(status, pickup, kind):
    assert dated_kind(status, pickup) == kind


def test_the_status_offer_comes_first_and_carries_the_dated_one(dispatcher):
    tracker = make_tracker("3003", "inform", sender_id="fu-first")
    events = offer_events(dispatcher, tracker, SUPPLEMENT, "supplement", "邮寄")
    assert texts(dispatcher) == [OFFER_TEXT]
    assert slot(events) == "progress_subscription+supplement_deadline"


def test_no_offer_at_a_kiosk(dispatcher):
    tracker = make_tracker("3003", "inform", sender_id="fu-kiosk", channel="kiosk")
    assert offer_events(dispatcher, tracker, SUPPLEMENT, "supplement", None) == []
    assert texts(dispatcher) == []


async def test_yes_subscribes_then_offers_the_deadline_reminder_then_asks_the_date(dispatcher, settings):
    sender = f"web-fu-yes-{time.time_ns()}"
    events = await ActionAffirm().run(dispatcher, verified(sender, "progress_subscription+supplement_deadline"),
                                      DOMAIN)
    assert subscriptions.numbers_of(settings.db_url, settings.secret(), "web", sender) == [SUPPLEMENT]
    said = texts(dispatcher)
    assert "我会在这里提醒您" in said[0] and said[-1] == DATED_OFFER_TEXT["supplement_deadline"]
    assert slot(events) == "reminder:supplement_deadline"

    dispatcher.messages.clear()
    events = await ActionAffirm().run(dispatcher, verified(sender, "reminder:supplement_deadline"), DOMAIN)
    assert texts(dispatcher) == [commands.ASK_TEXT["supplement_deadline"]]
    assert commands.pending_kind(slot(events)) == "supplement_deadline"
    # Nothing is stored before the date is said (the gateway sets it).
    assert reminders.list_reminders(settings.db_url, settings.secret(), "web", sender) == []

    dispatcher.messages.clear()  # "好的" again: the question again
    events = await ActionAffirm().run(dispatcher, verified(sender, slot(events)), DOMAIN)
    assert texts(dispatcher) == [commands.ASK_TEXT["supplement_deadline"]]
    assert commands.pending_kind(slot(events)) == "supplement_deadline"

    dispatcher.messages.clear()  # "不用了" to the question: nothing pending any more
    events = await ActionDeny().run(dispatcher, verified(sender, slot(events)), DOMAIN)
    assert texts(dispatcher) == [DECLINED_TEXT] and slot(events) is None


async def test_no_to_the_status_offer_still_offers_the_pickup_reminder(dispatcher, settings):
    sender = f"web-fu-no-{time.time_ns()}"
    events = await ActionDeny().run(
        dispatcher, verified(sender, "progress_subscription+ready_for_pickup", status="completed"), DOMAIN)
    assert texts(dispatcher) == [DECLINED_STATUS_TEXT, DATED_OFFER_TEXT["ready_for_pickup"]]
    assert slot(events) == "reminder:ready_for_pickup"
    assert subscriptions.numbers_of(settings.db_url, settings.secret(), "web", sender) == []

    dispatcher.messages.clear()
    events = await ActionAffirm().run(dispatcher, verified(sender, "reminder:ready_for_pickup", status="completed"),
                                      DOMAIN)
    (asked,) = [m for m in dispatcher.messages if m.get("text")]
    assert asked["text"] == commands.ASK_TEXT["ready_for_pickup"]
    assert [b["payload"] for b in asked["buttons"]] == ["明天", "后天"]  # typed answers the gateway takes
    assert commands.pending_kind(slot(events)) == "ready_for_pickup"


async def test_a_dated_offer_without_verification_is_not_taken(dispatcher):
    tracker = make_tracker("好的", "affirm", sender_id="web-fu-stranger",
                           slots={"pending_offer": "reminder:supplement_deadline"})
    events = await ActionAffirm().run(dispatcher, tracker, DOMAIN)
    assert dispatcher.messages[0].get("response") == "utter_anything_else"
    assert slot(events) is None


def test_an_existing_deadline_reminder_is_not_offered_again(dispatcher, settings):
    import datetime as dt

    sender = f"web-fu-again-{time.time_ns()}"
    subscriptions.subscribe(settings.db_url, settings.secret(), SUPPLEMENT, "web", sender, "supplement")
    tracker = make_tracker("3003", "inform", sender_id=sender)
    events = offer_events(dispatcher, tracker, SUPPLEMENT, "supplement", None)
    assert texts(dispatcher) == [DATED_OFFER_TEXT["supplement_deadline"]]  # subscribed: the dated offer at once
    assert slot(events) == "reminder:supplement_deadline"
    reminders.remind(settings.db_url, settings.secret(), kind="supplement_deadline", channel="web", recipient=sender,
                     number=SUPPLEMENT, due_on=dt.date.today() + dt.timedelta(days=20))
    dispatcher.messages.clear()
    assert offer_events(dispatcher, tracker, SUPPLEMENT, "supplement", None) == []
    assert texts(dispatcher) == []
