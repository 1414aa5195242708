"""People who describe their situation, context that follows the conversation, and an
honest "not covered": the examples of issue 10, through the real model and action server."""

import pytest

from tests.integration.test_dialogue import chat

pytestmark = pytest.mark.model

ASK_ITEM = "哪项业务"
NOT_COVERED = "这个事项我这里还没有收录"
QUESTION_INTENTS = {
    "ask_service", "ask_materials", "ask_conditions", "ask_process",
    "ask_fee", "ask_time_limit", "ask_location",
}


@pytest.mark.parametrize(
    "text, items",
    [
        # A death in the family: the funeral grant, or the bundle of what follows a death.
        ("老伴上个月走了，听说社保还能给家里补一笔钱，去哪弄", {"funeral_subsidy", "bundle_after_death"}),
        ("社保在外省交的怎么弄回来", {"pension_transfer"}),
        ("钱包被偷了证件全没了", {"id_card_reissue"}),
        ("我从厂里辞职快一年了一直没找到活干听说能领点钱咋办", {"unemployment_benefit", "employment_registration"}),
    ],
)
def test_a_described_situation_is_answered_for_its_service(client, text, items):
    body = chat(client, f"situ-{abs(hash(text)) % 10**8}", text)
    assert ASK_ITEM not in body["text"] and NOT_COVERED not in body["text"]
    assert body["item"] in items, body
    assert body["intent"] in QUESTION_INTENTS
    assert body.get("handoff") is None


def test_a_service_question_never_opens_a_ticket(client):
    body = chat(client, "situ-flexible", "灵活就业人员社保怎么交")
    assert body["intent"] in QUESTION_INTENTS
    assert body.get("handoff") is None and body["answer"] != "handoff"


def test_a_condition_question_stays_on_the_item_of_the_conversation(client):
    first = chat(client, "situ-ctx", "公租房怎么申请")
    assert first["item"] == "public_rental_housing"
    second = chat(client, "situ-ctx", "我们是外地户口，有居住证，能申请吗")
    assert (second["item"], second["answer"]) == ("public_rental_housing", "conditions"), second
    assert "公共租赁住房申请" in second["text"]
    third = chat(client, "situ-ctx", "那要带啥")
    assert (third["item"], third["answer"]) == ("public_rental_housing", "materials"), third


def test_a_question_the_catalog_does_not_cover_is_not_answered_as_another_item(client):
    chat(client, "situ-nc", "公积金怎么提取")
    body = chat(client, "situ-nc", "单位公积金缴存基数怎么调")
    assert body["text"].startswith(NOT_COVERED), body["text"]
    assert body["item"] is None and body["answer"] == "not_covered"
    assert "12345" in body["text"]
    assert {"title": "转人工", "payload": "/request_human"} in body["buttons"]


@pytest.mark.parametrize("text", ["今天天气怎么样", "帮我写首诗"])
def test_out_of_scope_stays_declined(client, text):
    body = chat(client, f"situ-oos-{len(text)}", text)
    assert body["answer"] == "out_of_scope" and body["item"] is None


def test_traditional_characters_are_understood_like_simplified(client):
    simplified = chat(client, "situ-t1", "身份证丢了要带什么材料")
    traditional = chat(client, "situ-t2", "身份證丟了要帶什麼材料")
    assert (traditional["item"], traditional["answer"]) == (simplified["item"], simplified["answer"])
    assert traditional["item"] == "id_card_reissue"


def test_a_second_item_is_offered_as_a_button(client):
    body = chat(client, "situ-multi", "注销公司，发票也要先处理吗")
    assert body["item"] == "company_deregistration"
    payloads = [b["payload"] for b in body["buttons"]]
    assert any("invoice_application" in p for p in payloads), payloads
