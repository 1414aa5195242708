"""Actions run directly with tracker fixtures; assertions on events and responses."""

from rasa_sdk.events import SlotSet, UserUtteranceReverted
from sqlalchemy import select

from actions.feedback import ActionRecordComplaint, ActionRecordFeedback, rating_of
from actions.guidance import ActionAnswer, ActionOutOfScope
from actions.handoff import (
    ActionDefaultAskAffirmation,
    ActionDefaultFallback,
    ActionRequestHuman,
)
from assistant.services.handoff import tickets
from assistant.storage import database
from assistant.storage.tables import HandoffTicket
from knowledge import db

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
    complaint = [m for m in dispatcher.messages if m.get("text")][1]
    assert "投诉已记录" in complaint["text"] and "工作人员会跟进处理" in complaint["text"]
    assert complaint["custom"]["handoff"]["status"] == "waiting"
    assert complaint["custom"]["handoff"]["follow_up"] is True
    assert [b["payload"] for b in complaint["buttons"]] == ["/request_human"]
    # The complaint is followed up by a person; the assistant keeps answering meanwhile.
    assert tickets.relaying_ticket(settings.db_url, "act-fb") is None
    assert dispatcher.messages[-1]["custom"]["reply"] == {"item": None, "answer": "feedback"}
    with database.session_factory(settings.db_url)() as session:
        rows = session.execute(select(db.Feedback).where(db.Feedback.conversation_id == "act-fb")).scalars().all()
    assert [(r.kind, r.rating, r.item_id) for r in rows] == [("feedback", "bad", "passport"), ("complaint", "bad", None)]
    assert "13912345678" not in rows[1].text


def _tickets(settings, conversation_id):
    with database.session_factory(settings.db_url)() as session:
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
    summary = tickets.get_ticket(settings.db_url, row.id)["summary"]
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
    from assistant.config.settings import get_settings

    monkeypatch.setattr(get_settings(), "service_hours", "sun 03:00-03:01")
    await ActionRequestHuman().run(dispatcher, tracker("转人工", "request_human", sender_id="act-night"), DOMAIN)
    text = dispatcher.messages[0]["text"]
    assert "现在不是人工服务时间（星期日 03:00-03:01）" in text and "03:00后回复您" in text
    [row] = _tickets(settings, "act-night")
    assert row.deferred
    assert tickets.relaying_ticket(settings.db_url, "act-night") is None  # the bot keeps answering


async def test_fallbacks(tracker, dispatcher, settings):
    events = await ActionDefaultFallback().run(dispatcher, tracker("阿巴阿巴", sender_id="act-fallback"), DOMAIN)
    assert events == [UserUtteranceReverted()]
    assert dispatcher.messages[0]["text"].startswith("抱歉，我没能理解您的问题。已请工作人员看一看")
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == ["/request_human"]
    [row] = _tickets(settings, "act-fallback")
    assert row.reason == "fallback"
    # A person follows it up; the assistant keeps answering meanwhile.
    assert tickets.relaying_ticket(settings.db_url, "act-fallback") is None
    dispatcher.messages.clear()
    ranking = [{"name": "nlu_fallback", "confidence": 0.3}, {"name": "ask_fee", "confidence": 0.2}]
    await ActionDefaultAskAffirmation().run(
        dispatcher, tracker("护照钱", "nlu_fallback", [("passport", 0.6)], intent_ranking=ranking), DOMAIN
    )
    message = dispatcher.messages[0]
    assert "收费标准" in message["text"]
    assert message["buttons"][0]["payload"] == '/ask_fee{"service_item":"passport"}'


def _user(text, intent, items=(), scope=None, named=True):
    parse = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "entities": [],
        "service_items": [{"id": i, "name": i, "score": s, "named": named} for i, s in items],
        "service_scope": scope or {},
    }
    return {"event": "user", "text": text, "parse_data": parse, "input_channel": "web"}


def conversation(tracker, turns, slots=None):
    """A tracker whose events are the given user turns (the last one is the latest)."""
    last = turns[-1]
    t = tracker(last["text"], last["parse_data"]["intent"]["name"], [(i["id"], i["score"]) for i in last["parse_data"]["service_items"]], slots or {})
    t.latest_message = last["parse_data"]
    t.events = list(turns)
    return t


async def test_a_condition_question_in_context_stays_on_the_conversation_item(tracker, dispatcher):
    # While talking about 公租房, "we have a 居住证" names another item only as a condition.
    t = conversation(
        tracker,
        [
            _user("公租房怎么申请", "ask_service", [("public_rental_housing", 0.9)]),
            {"event": "slot", "name": "service_item", "value": "public_rental_housing"},
            _user("我们是外地户口，有居住证，能申请吗", "ask_conditions", [("residence_permit", 0.72)]),
        ],
        {"service_item": "public_rental_housing"},
    )
    events = await ActionAnswer().run(dispatcher, t, DOMAIN)
    assert slots_of(events)["service_item"] == "public_rental_housing"
    assert "公共租赁住房申请】谁可以办" in dispatcher.messages[0]["text"]
    assert dispatcher.messages[-1]["custom"]["reply"] == {"item": "public_rental_housing", "answer": "conditions"}


async def test_asking_for_the_other_item_switches(tracker, dispatcher):
    t = conversation(
        tracker,
        [
            {"event": "slot", "name": "service_item", "value": "public_rental_housing"},
            _user("那居住证怎么办", "ask_service", [("residence_permit", 0.8)]),
        ],
        {"service_item": "public_rental_housing"},
    )
    events = await ActionAnswer().run(dispatcher, t, DOMAIN)
    assert slots_of(events)["service_item"] == "residence_permit"


async def test_an_item_named_in_a_complaint_becomes_the_topic(tracker, dispatcher):
    t = conversation(
        tracker,
        [
            {"event": "slot", "name": "service_item", "value": "passport"},
            _user("社保卡窗口的人态度太差了", "complain", [("social_security_card", 0.8)]),
            {"event": "bot", "text": "非常抱歉"},
            _user("那要带啥", "ask_materials"),
        ],
        {"service_item": "passport"},
    )
    events = await ActionAnswer().run(dispatcher, t, DOMAIN)
    assert slots_of(events)["service_item"] == "social_security_card"
    assert dispatcher.messages[0]["text"].startswith("办理【社会保障卡申领】需要准备")


async def test_not_covered_says_so_with_where_to_ask_a_person_and_related_items(tracker, dispatcher):
    t = conversation(
        tracker,
        [_user("单位公积金缴存基数怎么调", "ask_service", [("housing_fund_withdrawal", 0.35)], {"uncovered": 0.8, "none": 0.0})],
    )
    events = await ActionAnswer().run(dispatcher, t, DOMAIN)
    message = dispatcher.messages[0]
    assert message["text"].startswith("这个事项我这里还没有收录")
    assert "住房公积金管理中心" in message["text"] and "12345" in message["text"]
    assert [b["payload"] for b in message["buttons"]] == [
        '/ask_service{"service_item":"housing_fund_withdrawal"}',
        "/request_human",
    ]
    assert "service_item" not in slots_of(events)
    assert dispatcher.messages[-1]["custom"]["reply"] == {"item": None, "answer": "not_covered"}


async def test_not_covered_in_context_is_not_answered_as_the_context_item(tracker, dispatcher):
    t = conversation(
        tracker,
        [
            {"event": "slot", "name": "service_item", "value": "housing_fund_withdrawal"},
            _user("单位公积金缴存基数怎么调", "ask_service", [], {"uncovered": 0.99, "none": 0.0}),
        ],
        {"service_item": "housing_fund_withdrawal"},
    )
    await ActionAnswer().run(dispatcher, t, DOMAIN)
    assert dispatcher.messages[0]["text"].startswith("这个事项我这里还没有收录")


async def test_a_vague_question_without_item_is_asked_back(tracker, dispatcher):
    await ActionAnswer().run(dispatcher, conversation(tracker, [_user("怎么办理", "ask_service")]), DOMAIN)
    assert "哪项业务" in dispatcher.messages[0]["text"]
    assert dispatcher.messages[-1]["custom"]["reply"]["answer"] == "clarify"


async def test_a_second_item_in_the_message_is_offered_as_a_button(tracker, dispatcher):
    t = conversation(
        tracker,
        [_user("注销公司，发票也要先处理吗", "ask_service", [("company_deregistration", 0.9), ("invoice_application", 0.6)])],
    )
    await ActionAnswer().run(dispatcher, t, DOMAIN)
    message = dispatcher.messages[0]
    assert message["text"].startswith("【企业注销登记】")
    assert "您还提到了：发票申领（新办纳税人）" in message["text"]
    assert message["buttons"][0]["payload"] == '/ask_service{"service_item":"invoice_application"}'


async def test_out_of_scope_that_is_a_government_question_is_not_covered(tracker, dispatcher):
    t = conversation(tracker, [_user("养狗要办证吗", "out_of_scope", [], {"uncovered": 0.9, "none": 0.05})])
    await ActionOutOfScope().run(dispatcher, t, DOMAIN)
    assert dispatcher.messages[0]["text"].startswith("这个事项我这里还没有收录")


async def test_asking_for_a_person_after_a_complaint_hands_the_conversation_over(tracker, dispatcher, settings):
    await ActionRecordComplaint().run(dispatcher, tracker("窗口态度太差了", "complain", sender_id="act-cp"), DOMAIN)
    assert tickets.relaying_ticket(settings.db_url, "act-cp") is None
    await ActionRequestHuman().run(dispatcher, tracker("转人工", "request_human", sender_id="act-cp"), DOMAIN)
    held = tickets.relaying_ticket(settings.db_url, "act-cp")
    assert held is not None and not held.follow_up
    assert len(_tickets(settings, "act-cp")) == 1


async def test_a_follow_up_in_context_is_not_taken_for_an_uncovered_service(tracker, dispatcher):
    t = conversation(
        tracker,
        [
            {"event": "slot", "name": "service_item", "value": "housing_fund_loan"},
            _user("审批要多长时间", "ask_time_limit", [], {"uncovered": 0.78, "none": 0.0}),
        ],
        {"service_item": "housing_fund_loan"},
    )
    events = await ActionAnswer().run(dispatcher, t, DOMAIN)
    assert slots_of(events)["service_item"] == "housing_fund_loan"
    assert dispatcher.messages[-1]["custom"]["reply"] == {"item": "housing_fund_loan", "answer": "time_limit"}


async def test_an_inferred_item_does_not_take_a_follow_up_away_from_the_topic(tracker, dispatcher):
    # "租房" makes the linker think of 公租房, but nothing names it: it is about the fund.
    t = conversation(
        tracker,
        [
            {"event": "slot", "name": "service_item", "value": "housing_fund_withdrawal"},
            _user("租房能提吗 我没有租房合同", "ask_conditions", [("public_rental_housing", 0.6)], named=False),
        ],
        {"service_item": "housing_fund_withdrawal"},
    )
    events = await ActionAnswer().run(dispatcher, t, DOMAIN)
    assert slots_of(events)["service_item"] == "housing_fund_withdrawal"


async def test_a_document_of_the_topic_is_not_another_service(tracker, dispatcher):
    # 身份证 is a material of employment registration, not the ID card service.
    t = conversation(
        tracker,
        [
            {"event": "slot", "name": "service_item", "value": "employment_registration"},
            _user("要带什么 身份证要带吗", "ask_materials", [("id_card_reissue", 0.7)]),
        ],
        {"service_item": "employment_registration"},
    )
    events = await ActionAnswer().run(dispatcher, t, DOMAIN)
    assert slots_of(events)["service_item"] == "employment_registration"
