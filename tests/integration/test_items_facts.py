"""The facts under test (knowledge/facts.tsv) as the API and the assistant state them,
the audited fixes through GET /api/v1/items/{id}, and a regional override of a fact
and its source. No model needed: the catalog is served without one."""

import pytest
from fastapi.testclient import TestClient

from assistant.api.app import create_app
from knowledge.facts import answer_text, card_text, load_facts
from tests.conftest import isolated_settings

FACTS = load_facts()


@pytest.fixture(scope="module")
def api(settings, tmp_path_factory):
    served = isolated_settings(settings, tmp_path_factory.mktemp("items-api"), **{"region_override": None})
    with TestClient(create_app(served, load_model=False)) as client:
        yield client


@pytest.fixture(scope="module")
def cards(api):
    return {item: api.get(f"/api/v1/items/{item}").json() for item in {f.item for f in FACTS}}


def test_the_table_covers_every_record_with_enough_facts(catalog):
    assert {f.item for f in FACTS} == set(catalog.records)
    assert len(FACTS) >= 60 + 40


@pytest.mark.parametrize("fact", FACTS, ids=lambda f: f"{f.line}-{f.item}-{f.field}")
def test_fact_holds_in_the_api_and_in_the_answer(fact, cards, catalog):
    assert fact.holds(card_text(cards[fact.item], fact.field)), f"{fact} (GET /api/v1/items/{fact.item})"
    assert fact.holds(answer_text(catalog, fact.item, fact.field)), f"{fact} (answer)"


def test_marriage_bundle_requires_neither_household_register_nor_marriage_certificate(api):
    card = api.get("/api/v1/items/bundle_marriage_birth").json()
    required = [m["name"] for m in card["materials"] if m["required"]]
    assert required == ["居民身份证", "申请结婚登记声明书", "近期免冠证件照片", "申请表"]
    assert not any("户口簿" in name or "结婚证" in name for name in required)
    register = next(m for m in card["materials"] if m["name"] == "居民户口簿")
    assert register["condition"] == "同时办理婚后户口迁移时"
    assert "结婚证" in card["produces"] and card["reviewed"]


def test_lost_id_card_costs_40_yuan_with_its_source(api):
    card = api.get("/api/v1/items/id_card_reissue").json()
    assert card["fees"].startswith("丢失补领工本费40元；")
    assert card["fact_sources"]["fees"] == ["idfee2003"]
    source = next(s for s in card["sources"] if s["id"] == "idfee2003")
    assert source["number"] == "发改价格〔2003〕2322号" and source["checked"]


def test_after_death_bundle_card(api):
    card = api.get("/api/v1/items/bundle_after_death").json()
    names = [m["name"] for m in card["materials"]]
    assert "继承权或受遗赠权证明" in names and "借款合同" not in names and "房屋租赁合同" not in names


def test_regional_override_of_a_fact_and_its_source(settings, tmp_path):
    override = tmp_path / "region.yml"
    override.write_text(
        "items:\n"
        "  passport:\n"
        "    fees: 本市普通护照每本120元；加急服务另收费用，以窗口公示为准。\n"
        "    fees_source: [passfee2019, city]\n"
        "    sources:\n"
        "      - {id: city, title: 本市出入境办事指南, issuer: 本市公安局出入境管理支队, checked: 2026-12-01}\n",
        encoding="utf-8",
    )
    served = isolated_settings(settings, tmp_path / "data", **{"region_override": override})
    with TestClient(create_app(served, load_model=False)) as client:
        card = client.get("/api/v1/items/passport").json()
    assert card["fees"].startswith("本市普通护照每本120元")
    assert card["fact_sources"]["fees"] == ["passfee2019", "city"]
    assert {"passfee2019", "city", "guide"} <= {s["id"] for s in card["sources"]}
