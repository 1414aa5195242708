"""The catalog files: complete, valid, and failing loudly when broken."""

import shutil
from pathlib import Path

import pytest
import yaml

from knowledge.bundles import merge_materials
from knowledge.catalog import CatalogError, load_catalog, load_spec
from knowledge.schema import BundleRecord, ItemRecord, Material, MaterialForm

CATALOG_DIR = Path(__file__).resolve().parents[2] / "knowledge" / "catalog"


def test_every_spec_id_is_in_the_catalog(catalog):
    spec = load_spec()
    assert len(spec) == 55
    assert set(catalog.records) == set(spec)
    assert sum(isinstance(r, ItemRecord) for r in catalog.items()) == 43
    assert sum(isinstance(r, BundleRecord) for r in catalog.items()) == 12


def test_every_record_has_every_field(catalog):
    for record in catalog.items():
        assert record.name and record.summary and record.applicants and record.source
        assert record.aliases and record.examples and record.conditions and record.steps
        assert record.time_limit and record.fees and record.legal_basis
        assert record.where.window and record.where.online and record.where.phone
        assert catalog.materials_for(record.id), record.id
        assert record.verified.year >= 2024


def test_bundles_list_each_document_once(catalog):
    for record in catalog.items():
        if isinstance(record, BundleRecord):
            names = [m.name for m in catalog.materials_for(record.id)]
            assert len(names) == len(set(names)), record.id
    newborn = [m.name for m in catalog.materials_for("bundle_newborn")]
    assert "出生医学证明" in newborn


def test_merge_keeps_required_and_larger_count():
    optional = Material(name="居民身份证", form=MaterialForm.ORIGINAL, e_license=True, required=False, condition="代办时")
    required = Material(name="居民身份证", form=MaterialForm.ORIGINAL, count=2, e_license=True)
    merged = merge_materials([[optional], [required]])
    assert len(merged) == 1 and merged[0].required and merged[0].count == 2


@pytest.fixture
def broken_dir(tmp_path):
    target = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, target)
    return target


def test_missing_field_names_file_and_field(broken_dir):
    path = broken_dir / "items" / "passport.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["fees"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_catalog(broken_dir)
    assert any("passport.yml" in p and "fees" in p for p in err.value.problems)


def test_bad_material_form_is_reported(broken_dir):
    path = broken_dir / "items" / "passport.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["materials"][0]["form"] = "photocopy"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_catalog(broken_dir)
    assert any("passport.yml" in p and "materials[0].form" in p for p in err.value.problems)


def test_missing_file_and_unknown_member_are_reported(broken_dir):
    (broken_dir / "items" / "passport.yml").unlink()
    path = broken_dir / "bundles" / "bundle_newborn.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["members"].append("no_such_item")
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_catalog(broken_dir)
    text = "\n".join(err.value.problems)
    assert "passport.yml: (file): missing" in text
    assert "bundle_newborn.yml: members: 'no_such_item'" in text


def test_invalid_yaml_is_reported(broken_dir):
    (broken_dir / "items" / "passport.yml").write_text("id: [unclosed", encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_catalog(broken_dir)
    assert any("passport.yml: (file): invalid YAML" in p for p in err.value.problems)


def test_regional_override_replaces_fields(tmp_path):
    override = tmp_path / "region.yml"
    override.write_text(
        "items:\n  passport:\n    fees: 本地收费标准：每本120元。\n    where:\n      window: 本市出入境接待大厅\n      online: [本市政务App]\n      phone: '12367'\n",
        encoding="utf-8",
    )
    catalog = load_catalog(override=override)
    assert catalog.records["passport"].fees == "本地收费标准：每本120元。"
    assert catalog.records["passport"].where.window == "本市出入境接待大厅"
    bad = tmp_path / "bad.yml"
    bad.write_text("items:\n  nope: {fees: x}\n  passport: {verified: not-a-date}\n", encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_catalog(override=bad)
    assert any("items.nope: unknown id" in p for p in err.value.problems)
    assert any("verified" in p for p in err.value.problems)


# --- sources, curated bundles and their checks (issue 11) -------------------------


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path.name, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def problems_of(catalog_dir: Path) -> str:
    with pytest.raises(CatalogError) as err:
        load_catalog(catalog_dir)
    return "\n".join(err.value.problems)


def test_bundle_requiring_its_own_output_is_refused(broken_dir):
    startup = broken_dir / "bundles" / "bundle_business_startup.yml"
    edit(startup, "materials:\n", "materials:\n  - name: 营业执照\n    form: original\n    count: 1\n    e_license: true\n")
    # Caught even when the bundle forgets to say it issues the licence: its member does.
    edit(startup, "produced: [营业执照, 印章, 发票]", "produced: [印章, 发票]")
    edit(
        broken_dir / "bundles" / "bundle_marriage_birth.yml",
        "materials:\n",
        "materials:\n  - name: 结婚证书\n    form: original\n    count: 1\n    e_license: true\n",
    )
    text = problems_of(broken_dir)
    assert (
        "bundle_business_startup.yml: materials[0]: requires '营业执照', which member company_registration produces"
        in text
    )
    # 结婚证书 is 结婚证 under another name; the bundle states it produces it.
    assert "bundle_marriage_birth.yml: materials[0]: requires '结婚证书', which this bundle produces" in text


def test_duplicate_material_under_two_names_is_refused(broken_dir):
    edit(
        broken_dir / "bundles" / "bundle_school_entry.yml",
        "materials_source:",
        "  - name: 租房合同\n    form: copy\n    count: 1\n    e_license: false\n"
        "    required: false\n    condition: 租房居住时\nmaterials_source:",
    )
    text = problems_of(broken_dir)
    assert "bundle_school_entry.yml: materials: [9] 租房合同: the same document as '房屋租赁合同' (listed twice)" in text


def test_fee_without_a_source_is_refused(broken_dir):
    edit(broken_dir / "items" / "passport.yml", "fees_source: passfee2019\n", "")
    edit(broken_dir / "items" / "hk_macau_permit.yml", "fees_source: [passfee2019, hkfee2017]", "fees_source: [nope]")
    text = problems_of(broken_dir)
    assert "passport.yml: fees_source: missing: the fees needs a source" in text
    assert "hk_macau_permit.yml: fees_source: unknown source 'nope'" in text


def test_required_material_without_a_source_is_refused(broken_dir):
    edit(broken_dir / "items" / "passport.yml", "materials_source: guide\n", "")
    assert "passport.yml: materials: [0] 居民身份证: a required material needs a source" in problems_of(broken_dir)


def test_bundle_contradicting_its_members_is_refused(broken_dir):
    bundle = broken_dir / "bundles" / "bundle_ss_card.yml"
    edit(bundle, "cross_province:\n  available: true", "cross_province:\n  available: false")
    edit(broken_dir / "items" / "social_security_card_reissue.yml", "\nfees: ", "\nfees: 补换卡工本费20元。")
    edit(broken_dir / "bundles" / "bundle_disability.yml", "\ntime_limit: ", "\ntime_limit: 5个工作日内办结。")
    edit(broken_dir / "items" / "disability_certificate.yml", "\ntime_limit: ", "\ntime_limit: 一般30个工作日内发证。")
    text = problems_of(broken_dir)
    assert (
        "bundle_ss_card.yml: cross_province.available: False contradicts member(s) "
        "social_security_card, social_security_card_reissue" in text
    )
    assert "bundle_ss_card.yml: fees: says free but member social_security_card_reissue charges 20元" in text
    assert "bundle_disability.yml: time_limit: promises 5 day(s) but member disability_certificate takes at least 30" in text


def test_a_stated_reason_allows_a_bundle_to_differ(broken_dir):
    bundle = broken_dir / "bundles" / "bundle_ss_card.yml"
    edit(bundle, "cross_province:\n  available: true", "cross_province:\n  available: false")
    edit(bundle, "reviewed:", "differs_from_members:\n  cross_province: 实体卡一般在参保地办理。\nreviewed:")
    assert load_catalog(broken_dir).records["bundle_ss_card"].cross_province.available is False


def test_bundle_list_not_reviewed_is_refused(broken_dir):
    edit(broken_dir / "bundles" / "bundle_newborn.yml", "reviewed: 2026-12-04\n", "")
    assert "bundle_newborn.yml: reviewed: missing: the materials list was not reviewed" in problems_of(broken_dir)


def test_bundle_materials_are_its_own_list_not_the_union(catalog):
    withdrawal = {m.name for m in catalog.materials_for("housing_fund_withdrawal")}
    after_death = {m.name for m in catalog.materials_for("bundle_after_death")}
    assert "借款合同" in withdrawal and "借款合同" not in after_death
    assert catalog.materials_for("bundle_after_death") == catalog.records["bundle_after_death"].materials


def test_draft_from_members_is_only_a_starting_point(catalog):
    from knowledge.bundles import draft_materials

    bundle = catalog.records["bundle_marriage_birth"]
    draft = {m.name: m for m in draft_materials(catalog.records, bundle)}
    assert "结婚证" not in draft  # an output, left out
    # What the old merge did: the household register required for everyone.
    assert draft["居民户口簿"].required is True


def test_regional_override_replaces_a_fact_and_its_source(tmp_path):
    from knowledge.answers import answer

    override = tmp_path / "region.yml"
    override.write_text(
        "items:\n"
        "  id_card_reissue:\n"
        "    fees: 本市丢失补领工本费40元；临时居民身份证工本费10元，当场领取。\n"
        "    fees_source: city2026\n"
        "    sources:\n"
        "      - id: city2026\n"
        "        title: 本市居民身份证办事指南\n"
        "        issuer: 本市公安局\n"
        "        checked: 2026-12-01\n"
        "      - id: guide\n"
        "        title: 本市户政办事指南\n"
        "        issuer: 本市公安局\n"
        "        checked: 2026-12-02\n"
        "    cross_province:\n"
        "      note: 本市所有派出所都可以受理外省户籍居民的补领申请。\n",
        encoding="utf-8",
    )
    catalog = load_catalog(override=override)
    record = catalog.records["id_card_reissue"]
    assert [s.id for s in record.sources] == ["idfee2003", "city2026", "guide"]  # merged by id
    assert record.cross_province.available is True  # mappings merge key by key
    text = answer(catalog, "id_card_reissue", "fee")
    assert "收费：本市丢失补领工本费40元" in text
    assert text.splitlines()[-1] == "来源：本市公安局 本市居民身份证办事指南，2026-12-01 核对"
    assert "本市户政办事指南，2026-12-02 核对" in answer(catalog, "id_card_reissue", "time_limit")
    bad = tmp_path / "bad.yml"
    bad.write_text("items:\n  passport:\n    fees_source: nope\n", encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_catalog(override=bad)
    assert any("bad.yml: fees_source: unknown source 'nope'" in p for p in err.value.problems)


def test_stale_lists_records_not_checked_in_time(catalog):
    import datetime as dt

    from knowledge.catalog import months_before, stale_records

    assert months_before(dt.date(2027, 3, 31), 1) == dt.date(2027, 2, 28)
    assert months_before(dt.date(2027, 1, 15), 12) == dt.date(2026, 1, 15)
    newest = max(max(s.checked for s in r.sources) for r in catalog.items())
    assert stale_records(catalog, 12, today=newest) == []
    later = stale_records(catalog, 12, today=dt.date(2028, 1, 1))
    assert "id_card_reissue: verified 2026-11-01" in later
    assert any(line.startswith("id_card_reissue: source idfee2003 (") for line in later)


def test_generated_intent_examples_are_up_to_date(catalog):
    from knowledge import nlu_examples

    assert nlu_examples.GENERATED_FILE.read_text(encoding="utf-8") == nlu_examples.render(catalog), (
        "nlu_data/generated/situations.yml is stale: run `banshi train` (or `banshi kb dict`)"
    )


def test_every_record_describes_situations_without_naming_itself(catalog):
    from knowledge.schema import MIN_SITUATIONS, short_name

    for record in catalog.items():
        assert len(record.situations) >= MIN_SITUATIONS, record.id
        assert not [s for s in record.situations if short_name(record.name) in s], record.id
        assert all(n.item != record.id for n in record.not_this), record.id


def test_the_validator_refuses_too_few_situations_and_a_near_miss_of_itself(tmp_path):
    import shutil

    import yaml

    from knowledge.catalog import DEFAULT_CATALOG_DIR, CatalogError, load_catalog

    shutil.copytree(DEFAULT_CATALOG_DIR, tmp_path / "catalog")
    path = tmp_path / "catalog" / "items" / "passport.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    head = path.read_text(encoding="utf-8").split("\nsituations:")[0]
    tail = yaml.safe_dump(
        {"situations": data["situations"][:3], "not_this": [{"text": "护照怎么办", "item": "passport"}]},
        allow_unicode=True,
    )
    path.write_text(head + "\n" + tail, encoding="utf-8")
    with pytest.raises(CatalogError) as error:
        load_catalog(tmp_path / "catalog")
    problems = "\n".join(error.value.problems)
    assert "passport.yml: situations: 3 given, at least 10 needed" in problems
    assert "passport.yml: not_this[0].item: a near-miss must belong to another record" in problems
