"""Answers built from the catalog: structured, sourced, bundles with their own lists."""

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
    assert set(card) >= {"sources", "fact_sources", "national", "produces", "reviewed"}
    assert card["produces"] == ["营业执照", "食品经营许可证"] and card["reviewed"]
    ids = {s["id"] for s in card["sources"]}
    assert all(set(refs) <= ids for refs in card["fact_sources"].values())
    assert card["materials"] == [m.dict() for m in catalog.records["bundle_restaurant"].materials]


def test_record_card_sources_are_plain_json(catalog):
    import json

    card = record_card(catalog, "marriage_registration")
    json.dumps(card, ensure_ascii=False, default=str)
    law = next(s for s in card["sources"] if s["id"] == "marriage2025")
    assert law == {
        "id": "marriage2025",
        "title": "婚姻登记条例",
        "issuer": "国务院",
        "number": "国务院令第804号",
        "url": "",
        "effective": "2025-05-10",
        "checked": law["checked"],
    }
    assert card["fact_sources"]["fees"] == ["marriage2025"]
