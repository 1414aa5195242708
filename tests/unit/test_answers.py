"""Answers built from the catalog: structured, sourced, bundle lists merged."""

from knowledge.answers import answer, button_payload, follow_up_buttons, record_card


def test_materials_answer_is_numbered_with_source(catalog):
    text = answer(catalog, "social_security_card", "materials")
    assert "1. 居民身份证" in text
    assert "来源：" in text and "核对" in text


def test_bundle_materials_list_departments_and_once_per_document(catalog):
    text = answer(catalog, "bundle_newborn", "materials")
    assert "涉及部门" in text
    lines = [ln for ln in text.splitlines() if ln[:1].isdigit()]
    names = [ln.split(". ", 1)[1].split("（")[0].split("：")[0] for ln in lines]
    assert len(names) == len(set(names))


def test_every_question_type_answers_every_record(catalog):
    for record in catalog.items():
        for question in ["overview", "materials", "conditions", "process", "fee", "time_limit", "location"]:
            text = answer(catalog, record.id, question)
            assert record.name in text and "来源" in text


def test_follow_up_buttons_skip_the_asked_question():
    buttons = follow_up_buttons("passport", "materials")
    assert all("ask_materials" not in b["payload"] for b in buttons)
    assert buttons[0]["payload"] == button_payload("ask_process", "passport")
    assert button_payload("ask_fee", "passport") == '/ask_fee{"service_item":"passport"}'


def test_record_card_has_all_fields(catalog):
    card = record_card(catalog, "bundle_restaurant")
    assert card["kind"] == "bundle" and card["members"] and card["materials"]
    assert set(card) >= {"where", "fees", "time_limit", "verified", "source", "legal_basis"}
