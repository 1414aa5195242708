"""The catalog files: complete, valid, and failing loudly when broken."""

import shutil
from pathlib import Path

import pytest
import yaml

from knowledge.catalog import CatalogError, load_catalog, load_spec, merge_materials
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


def test_bundles_merge_shared_documents_once(catalog):
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
