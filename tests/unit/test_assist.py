"""The operator-assist ranking: (item, question type) pairs from parse data (plain dicts)."""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import pytest

from assistant.services.assist import (
    DEFAULTS,
    QUESTION_ORDER,
    AssistResult,
    Candidate,
    build_suggestions,
    item_distribution,
    knowledge_card,
    plan,
    question_distribution,
)
from knowledge.answers import QUESTION_TYPES, answer

KNOWN = {
    "social_security_card",
    "social_security_card_reissue",
    "passport",
    "id_card_reissue",
    "id_card_renewal",
}


def parsed(
    ranking: Sequence[Tuple[str, float]], items: Sequence[Tuple[str, float]] = ()
) -> Dict[str, object]:
    """Parse data as the runtime returns it (intent, intent_ranking, service_items)."""
    return {
        "intent": {"name": ranking[0][0], "confidence": ranking[0][1]} if ranking else {},
        "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking],
        "service_items": [{"id": i, "name": i, "score": s} for i, s in items],
        "entities": [],
    }


def pairs(candidates: List[Candidate]) -> List[Tuple[str, str]]:
    return [(c.item_id, c.question_type) for c in candidates]


# A DIET-like ranking: the top intent takes everything, the runners-up keep an order.
MATERIALS_THEN_FEE = [("ask_materials", 1.0), ("ask_fee", 3e-30), ("thank", 1e-31), ("ask_location", 1e-33)]


def test_clear_item_alternatives_are_other_questions_in_ranking_order():
    result = plan(parsed(MATERIALS_THEN_FEE, [("social_security_card", 0.92)]), "社保卡要带什么材料", KNOWN)
    assert pairs(result.candidates) == [
        ("social_security_card", "materials"),
        ("social_security_card", "fee"),
        ("social_security_card", "location"),
    ]
    assert result.needs_item is False
    assert result.candidates[0].confidence == pytest.approx(0.92 * 0.95, abs=0.01)


def test_unclear_item_alternatives_are_other_items_for_the_same_question():
    data = parsed([("ask_fee", 1.0), ("ask_time_limit", 1e-20)], [("id_card_reissue", 0.6), ("id_card_renewal", 0.4)])
    result = plan(data, "身份证要多少钱", KNOWN)
    assert pairs(result.candidates)[:2] == [("id_card_reissue", "fee"), ("id_card_renewal", "fee")]
    assert result.candidates[0].confidence > result.candidates[1].confidence


def test_confidences_are_probabilities_sorted_and_pairs_unique():
    data = parsed(
        [("ask_process", 0.6), ("ask_service", 0.3), ("ask_conditions", 0.1)],
        [("passport", 0.7), ("id_card_reissue", 0.5), ("id_card_renewal", 0.45)],
    )
    for k in (1, 3, 10):
        result = plan(data, "护照怎么办", KNOWN, k=k)
        confidences = [c.confidence for c in result.candidates]
        assert len(result.candidates) == k
        assert confidences == sorted(confidences, reverse=True)
        assert all(0.0 <= c <= 1.0 for c in confidences)
        assert len(set(pairs(result.candidates))) == k


def test_question_distribution_sums_to_one_and_keeps_the_runner_up_order():
    questions = question_distribution(parsed([("ask_fee", 1.0), ("ask_conditions", 1e-30), ("greet", 1e-31)]))
    assert set(questions) == set(QUESTION_TYPES.values())
    assert sum(questions.values()) == pytest.approx(1.0)
    order = sorted(questions, key=questions.get, reverse=True)
    assert order[:2] == ["fee", "conditions"]
    assert questions["fee"] > 0.85


def test_question_distribution_without_ranking_follows_the_default_order():
    questions = question_distribution({"intent": {"name": "ask_service", "confidence": 0.0}})
    assert sum(questions.values()) == pytest.approx(1.0)
    assert sorted(questions, key=questions.get, reverse=True)[0] == "overview"


def test_item_distribution_shares_close_items_and_keeps_a_lone_score():
    assert item_distribution([("a", 0.8)]) == [("a", 0.8)]
    shared = dict(item_distribution([("a", 0.9), ("b", 0.6)]))
    assert shared["a"] == pytest.approx(0.6) and shared["b"] == pytest.approx(0.4)


def test_out_of_scope_text_gets_nothing():
    result = plan(parsed([("out_of_scope", 1.0)]), "今天天气怎么样", KNOWN)
    assert result.candidates == [] and result.needs_item is False
    # ...even with a weakly linked item (the dialogue's override threshold).
    result = plan(parsed([("out_of_scope", 1.0)], [("passport", 0.6)]), "护照照片好看吗", KNOWN)
    assert result.candidates == [] and result.needs_item is False


def test_out_of_scope_naming_an_item_clearly_gets_an_overview():
    result = plan(parsed([("out_of_scope", 0.9), ("ask_fee", 0.1)], [("passport", 0.9)]), "护照", KNOWN)
    assert pairs(result.candidates)[0] == ("passport", "overview")


def test_small_talk_without_item_gets_nothing_but_a_complaint_about_an_item_gets_it():
    assert plan(parsed([("thank", 1.0)]), "谢谢", KNOWN, {"item_id": "passport"}).candidates == []
    result = plan(parsed([("complain", 1.0)], [("social_security_card", 0.7)]), "社保卡窗口态度差", KNOWN)
    assert result.candidates[0].item_id == "social_security_card"


def test_question_without_item_needs_the_item():
    result = plan(parsed([("ask_fee", 1.0)]), "要多少钱", KNOWN)
    assert result.candidates == [] and result.needs_item is True


def test_only_weak_guesses_are_suggested_but_still_need_the_item():
    below = DEFAULTS.item_min_score - 0.05
    result = plan(parsed([("ask_process", 1.0)], [("passport", below)]), "出国那个证怎么弄", KNOWN)
    assert pairs(result.candidates)[0] == ("passport", "process")
    assert result.needs_item is True
    assert result.candidates[0].confidence < DEFAULTS.item_min_score


def test_unknown_linked_items_are_ignored():
    result = plan(parsed([("ask_fee", 1.0)], [("no_such_item", 0.99), ("passport", 0.8)]), "护照多少钱", KNOWN)
    assert {c.item_id for c in result.candidates} == {"passport"}


def test_context_item_answers_elliptical_text():
    result = plan(parsed([("ask_fee", 1.0)]), "那要多少钱", KNOWN, {"item_id": "passport"})
    assert pairs(result.candidates)[0] == ("passport", "fee")
    assert result.item_from_context is True and result.needs_item is False


def test_weak_text_items_follow_the_context_item():
    data = parsed([("ask_fee", 1.0)], [("id_card_renewal", 0.35)])
    result = plan(data, "那个要多少钱", KNOWN, {"item_id": "passport"})
    assert pairs(result.candidates)[:2] == [("passport", "fee"), ("id_card_renewal", "fee")]


def test_item_named_in_the_text_beats_the_context():
    data = parsed([("ask_fee", 1.0)], [("id_card_reissue", 0.9)])
    result = plan(data, "身份证补办多少钱", KNOWN, {"item_id": "passport", "question_type": "materials"})
    assert pairs(result.candidates)[0] == ("id_card_reissue", "fee")
    assert all(c.item_id != "passport" for c in result.candidates)


def test_elliptical_switch_keeps_the_previous_question():
    data = parsed([("ask_service", 1.0), ("ask_fee", 1e-20)], [("passport", 0.9)])
    context = {"item_id": "social_security_card", "question_type": "materials"}
    result = plan(data, "那护照呢？", KNOWN, context)
    assert pairs(result.candidates)[:2] == [("passport", "materials"), ("passport", "overview")]
    # Not elliptical ("我想办护照"): a new topic, an overview.
    assert pairs(plan(data, "我想办护照", KNOWN, context).candidates)[0] == ("passport", "overview")


def test_pending_question_is_answered_when_the_item_comes():
    data = parsed([("ask_service", 1.0)], [("passport", 0.9)])
    result = plan(data, "护照", KNOWN, {"question_type": "time_limit"})
    assert pairs(result.candidates)[0] == ("passport", "time_limit")


def test_an_explicit_question_is_not_overridden_by_the_context():
    data = parsed([("ask_location", 1.0)], [("passport", 0.9)])
    result = plan(data, "那护照在哪办呢", KNOWN, {"item_id": "social_security_card", "question_type": "fee"})
    assert pairs(result.candidates)[0] == ("passport", "location")


def test_suggestions_carry_answer_card_and_intent(catalog):
    candidates = [Candidate("social_security_card", "materials", 0.9), Candidate("passport", "overview", 0.05)]
    suggestions = build_suggestions(catalog, candidates)
    first = suggestions[0]
    assert (first.rank, first.intent, first.item_name) == (1, "ask_materials", "社会保障卡申领")
    assert first.answer == answer(catalog, "social_security_card", "materials")
    assert suggestions[1].intent == "ask_service" and suggestions[1].rank == 2
    body = AssistResult(suggestions=suggestions, intent="ask_materials").to_dict()
    assert set(body) == {"suggestions", "intent", "items", "needs_item"}
    assert set(body["suggestions"][0]) == {
        "rank", "item_id", "item_name", "question_type", "intent", "answer", "card", "confidence"
    }


def test_knowledge_card_lists_materials_fee_time_and_where(catalog):
    card = knowledge_card(catalog, "social_security_card")
    record = catalog.records["social_security_card"]
    assert card["materials"][0] == "居民身份证"
    assert "监护人居民身份证及户口簿（未成年人由监护人代办时）" in card["materials"]
    assert card["fees"] == record.fees and card["time_limit"] == record.time_limit
    assert card["where"] == {"window": record.where.window, "online": record.where.online, "phone": "12333"}
    assert card["departments"] == ["人社"]
    bundle = knowledge_card(catalog, "bundle_newborn")
    assert len(bundle["materials"]) == len(set(bundle["materials"])) and len(bundle["departments"]) > 1


def test_every_question_type_has_a_place_in_the_order():
    assert set(QUESTION_ORDER) == set(QUESTION_TYPES.values())
