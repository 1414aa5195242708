"""The intent guard's rules, on messages as the classifier would leave them."""

import pytest
from rasa.shared.nlu.training_data.message import Message

from assistant.dialogue.components.intent_guard import Cues, IntentGuard


def message(text, intent, ranking=(), items=()):
    m = Message(data={"text": text})
    m.set("intent", {"name": intent, "confidence": 0.6})
    m.set("intent_ranking", [{"name": n, "confidence": c} for n, c in ranking] or [{"name": intent, "confidence": 0.6}])
    m.set("service_items", [{"id": i, "name": i, "score": s} for i, s in items])
    return m


@pytest.fixture(scope="module")
def guard():
    return IntentGuard(Cues.load())


def corrected(guard, *args, **kwargs):
    m = message(*args, **kwargs)
    guard.process([m])
    return m.get("intent")["name"]


def test_a_question_about_a_service_is_never_goodbye_or_thanks(guard):
    ranking = [("goodbye", 0.5), ("ask_location", 0.3), ("ask_service", 0.2)]
    assert corrected(guard, "谢谢，那社保卡在哪办", "goodbye", ranking, [("social_security_card", 0.9)]) == "ask_location"


def test_small_talk_stays_small_talk(guard):
    assert corrected(guard, "谢谢你", "thank") == "thank"
    assert corrected(guard, "在吗", "greet") == "greet"


def test_progress_needs_an_application_already_handed_in(guard):
    ranking = [("check_progress", 0.5), ("ask_time_limit", 0.3)]
    assert corrected(guard, "社保卡办下来要多久", "check_progress", ranking, [("social_security_card", 0.9)]) == "ask_time_limit"
    assert corrected(guard, "我上个月交了居住证的申请，想看看现在办到哪了", "ask_service",
                     [("ask_service", 0.6)], [("residence_permit", 0.9)]) == "check_progress"


def test_a_person_needs_words_asking_for_one(guard):
    ranking = [("request_human", 0.5), ("ask_service", 0.4)]
    assert corrected(guard, "灵活就业人员社保怎么交", "request_human", ranking) == "ask_service"
    assert corrected(guard, "我要找人工客服", "request_human", ranking) == "request_human"


def test_a_question_without_complaint_words_is_not_a_complaint(guard):
    ranking = [("complain", 0.5), ("ask_service", 0.4)]
    text = "我家老头子前天夜里走了，派出所、社保那边是不是都得跑一遍"
    assert corrected(guard, text, "complain", ranking, [("bundle_after_death", 0.6)]) == "ask_service"
    assert corrected(guard, "窗口态度太差了，凭什么不给办", "complain", ranking) == "complain"


@pytest.mark.parametrize("text", ["税务局的小姑娘服务真好，个税汇算手把手教我弄完了，给你们点赞", "你这回答错了吧，失业金不是在街道领的"])
def test_ratings_are_feedback(guard, text):
    assert corrected(guard, text, "ask_service", [("ask_service", 0.7), ("feedback", 0.2)]) == "feedback"


@pytest.mark.parametrize("text", ["我的身分证补办申请到那一步了", "居住证办好没"])
def test_progress_words_keep_a_progress_check(guard, text):
    ranking = [("check_progress", 0.6), ("ask_service", 0.3)]
    assert corrected(guard, text, "check_progress", ranking, [("residence_permit", 0.9)]) == "check_progress"


def test_a_question_about_a_linked_item_is_confident_enough_for_no_fallback(guard):
    ranking = [("ask_conditions", 0.23), ("check_progress", 0.21), ("ask_service", 0.2), ("ask_materials", 0.15)]
    m = message("娃刚满月 还没上户口", "ask_conditions", ranking, [("newborn_hukou", 0.99)])
    m.set("intent", {"name": "ask_conditions", "confidence": 0.23})
    guard.process([m])
    assert m.get("intent")["name"] == "ask_conditions"
    assert m.get("intent")["confidence"] == pytest.approx(0.58)
