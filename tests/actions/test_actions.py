"""Actions run directly with tracker fixtures; assertions on events and responses."""

from sqlalchemy import select

from actions.feedback import ActionRecordComplaint, ActionRecordFeedback, rating_of
from actions.guidance import ActionAnswer, ActionOutOfScope
from actions.handoff import (
    ActionDefaultAskAffirmation,
    ActionDefaultFallback,
    ActionRequestHuman,
)
from assistant import handoff
from assistant.models import HandoffTicket
from knowledge import db
from rasa_sdk.events import SlotSet, UserUtteranceReverted

from .conftest import DOMAIN


def slots_of(events):
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


async def test_materials_for_a_linked_item(tracker, dispatcher):
    events = await ActionAnswer().run(
        dispatcher, tracker("我想办社保卡要带什么", "ask_materials", [("social_security_card", 0.95)]), DOMAIN
    )
    assert slots_of(events) == {
        "service_item": "social_security_card",
        "question_type": "materials",
        "pending_question": None,
    }
    message = dispatcher.messages[0]
    assert "1. 居民身份证" in message["text"]
    assert all("ask_materials" not in b["payload"] for b in message["buttons"])


async def test_follow_up_uses_the_conversation_item(tracker, dispatcher):
    events = await ActionAnswer().run(
        dispatcher, tracker("要交钱吗", "ask_fee", [], {"service_item": "passport"}), DOMAIN
    )
    assert "普通护照签发】收费" in dispatcher.messages[0]["text"]
    assert slots_of(events)["question_type"] == "fee"


async def test_ellipsis_keeps_the_question_type(tracker, dispatcher):
    events = await ActionAnswer().run(
        dispatcher,
        tracker("那护照呢", "ask_service", [("passport", 0.9)], {"service_item": "social_security_card", "question_type": "materials"}),
        DOMAIN,
    )
    assert slots_of(events)["service_item"] == "passport"
    assert slots_of(events)["question_type"] == "materials"
    assert "需要准备" in dispatcher.messages[0]["text"]


async def test_a_full_sentence_is_not_an_ellipsis(tracker, dispatcher):
    events = await ActionAnswer().run(
        dispatcher,
        tracker("我想办护照", "ask_service", [("passport", 0.9)], {"question_type": "materials"}),
        DOMAIN,
    )
    assert slots_of(events)["question_type"] == "overview"


async def test_close_items_get_buttons(tracker, dispatcher):
    events = await ActionAnswer().run(
        dispatcher,
        tracker("公积金", "ask_service", [("housing_fund_withdrawal", 0.80), ("housing_fund_loan", 0.78)]),
        DOMAIN,
    )
    message = dispatcher.messages[0]
    assert "哪一项" in message["text"]
    assert [b["payload"] for b in message["buttons"]] == [
        '/ask_service{"service_item":"housing_fund_withdrawal"}',
        '/ask_service{"service_item":"housing_fund_loan"}',
    ]
    assert "service_item" not in slots_of(events)


async def test_explicit_choice_wins_over_the_linker(tracker, dispatcher):
    events = await ActionAnswer().run(
        dispatcher,
        tracker("/ask_fee", "ask_fee", [("passport", 0.9)], entities=[{"entity": "service_item", "value": "hk_macau_permit"}]),
        DOMAIN,
    )
    assert slots_of(events)["service_item"] == "hk_macau_permit"


async def test_question_without_item_is_remembered(tracker, dispatcher):
    events = await ActionAnswer().run(dispatcher, tracker("要带啥", "ask_materials"), DOMAIN)
    assert "哪项业务" in dispatcher.messages[0]["text"]
    assert slots_of(events)["pending_question"] == "materials"
    dispatcher.messages.clear()
    events = await ActionAnswer().run(
        dispatcher, tracker("护照", "ask_service", [("passport", 0.9)], {"pending_question": "materials"}), DOMAIN
    )
    assert slots_of(events)["question_type"] == "materials"


async def test_weak_items_are_ignored(tracker, dispatcher):
    await ActionAnswer().run(dispatcher, tracker("这个怎么办", "ask_service", [("passport", 0.31)]), DOMAIN)
    assert "哪项业务" in dispatcher.messages[0]["text"]


async def test_out_of_scope_declines_unless_an_item_is_clear(tracker, dispatcher):
    assert await ActionOutOfScope().run(dispatcher, tracker("讲个笑话", "out_of_scope"), DOMAIN) == []
    assert dispatcher.messages[0]["response"] == "utter_out_of_scope"
    dispatcher.messages.clear()
    events = await ActionOutOfScope().run(
        dispatcher, tracker("护照护照", "out_of_scope", [("passport", 0.95)]), DOMAIN
    )
    assert slots_of(events)["service_item"] == "passport"


def test_rating_cues():
    assert rating_of("回答很清楚，好评") == "good"
    assert rating_of("服务不错") == "good"
    assert rating_of("一点都不好，差评") == "bad"
    assert rating_of("回答没用") == "bad"
    assert rating_of("嗯") is None


async def test_feedback_and_complaint_rows(tracker, dispatcher, settings):
    t = tracker("回答没用，差评", "feedback", slots={"service_item": "passport"}, sender_id="act-fb")
    assert await ActionRecordFeedback().run(dispatcher, t, DOMAIN) == []
    assert "抱歉" in dispatcher.messages[0]["text"]
    t = tracker("我要投诉，电话13912345678", "complain", sender_id="act-fb")
    events = await ActionRecordComplaint().run(dispatcher, t, DOMAIN)
    assert events == []
    assert "投诉已记录" in dispatcher.messages[1]["text"] and "转接人工服务" in dispatcher.messages[1]["text"]
    assert dispatcher.messages[1]["custom"]["handoff"]["status"] == "waiting"
    with db.session_factory(settings.db_url)() as session:
        rows = session.execute(select(db.Feedback).where(db.Feedback.conversation_id == "act-fb")).scalars().all()
    assert [(r.kind, r.rating, r.item_id) for r in rows] == [("feedback", "bad", "passport"), ("complaint", "bad", None)]
    assert "13912345678" not in rows[1].text


def _tickets(settings, conversation_id):
    with db.session_factory(settings.db_url)() as session:
        return session.execute(
            select(HandoffTicket).where(HandoffTicket.conversation_id == conversation_id)
        ).scalars().all()


async def test_request_human_opens_one_ticket_with_a_summary(tracker, dispatcher, settings):
    events = [
        {"event": "user", "text": "护照要带什么，我手机13912345678", "parse_data": {"intent": {"name": "ask_materials"}}},
        {"event": "bot", "text": "办理护照需要：1. 居民身份证"},
        {"event": "user", "text": "转人工", "parse_data": {"intent": {"name": "request_human"}}, "input_channel": "web"},
    ]
    t = tracker("转人工", "request_human", slots={"service_item": "passport"}, sender_id="act-ho")
    t.events = events
    assert await ActionRequestHuman().run(dispatcher, t, DOMAIN) == []
    message = dispatcher.messages[0]
    assert "转接人工服务" in message["text"] and "取消人工" in message["text"]
    assert message["custom"]["handoff"]["status"] == "waiting"
    [row] = _tickets(settings, "act-ho")
    assert (row.reason, row.channel, row.item_id, row.status) == ("request_human", "web", "passport", "waiting")
    summary = handoff.get_ticket(settings.db_url, row.id)["summary"]
    assert summary["item_name"] == "普通护照签发"
    assert summary["question"].startswith("护照要带什么") and "13912345678" not in summary["question"]
    assert summary["bot_answer"].startswith("办理护照需要")
    assert summary["verification"] == {"application_number": None, "verified": False, "state": "none"}
    # Asking again does not open a second ticket.
    dispatcher.messages.clear()
    await ActionRequestHuman().run(dispatcher, t, DOMAIN)
    assert "已在排队" in dispatcher.messages[0]["text"]
    assert len(_tickets(settings, "act-ho")) == 1


async def test_after_hours_ticket_says_when_people_are_back(tracker, dispatcher, settings, monkeypatch):
    # Every hour of one Sunday minute: never open now (unless the test runs at 03:00 on a Sunday).
    from assistant.settings import get_settings

    monkeypatch.setattr(get_settings(), "service_hours", "sun 03:00-03:01")
    await ActionRequestHuman().run(dispatcher, tracker("转人工", "request_human", sender_id="act-night"), DOMAIN)
    text = dispatcher.messages[0]["text"]
    assert "现在不是人工服务时间（星期日 03:00-03:01）" in text and "03:00后回复您" in text
    [row] = _tickets(settings, "act-night")
    assert row.deferred
    assert handoff.relaying_ticket(settings.db_url, "act-night") is None  # the bot keeps answering


async def test_fallbacks(tracker, dispatcher, settings):
    events = await ActionDefaultFallback().run(dispatcher, tracker("阿巴阿巴", sender_id="act-fallback"), DOMAIN)
    assert events == [UserUtteranceReverted()]
    assert dispatcher.messages[0]["text"].startswith("抱歉，我没能理解您的问题。已为您转接人工服务")
    [row] = _tickets(settings, "act-fallback")
    assert row.reason == "fallback"
    dispatcher.messages.clear()
    ranking = [{"name": "nlu_fallback", "confidence": 0.3}, {"name": "ask_fee", "confidence": 0.2}]
    await ActionDefaultAskAffirmation().run(
        dispatcher, tracker("护照钱", "nlu_fallback", [("passport", 0.6)], intent_ranking=ranking), DOMAIN
    )
    message = dispatcher.messages[0]
    assert "收费标准" in message["text"]
    assert message["buttons"][0]["payload"] == '/ask_fee{"service_item":"passport"}'
