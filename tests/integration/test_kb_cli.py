"""`banshi kb validate | stale | propose-bundle`, run as a maintainer runs them (no model)."""

import shutil

import pytest
import yaml

from tests.conftest import ROOT, run_cli

CATALOG = ROOT / "knowledge" / "catalog"


@pytest.fixture
def copy(tmp_path):
    target = tmp_path / "catalog"
    shutil.copytree(CATALOG, target)
    return target


def edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text, (path.name, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_validate_checks_the_catalog_and_the_facts():
    result = run_cli(["kb", "validate"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "catalog ok: 43 items, 12 bundles" in result.stdout


@pytest.mark.parametrize(
    "path, old, new, expected",
    [
        pytest.param(
            "bundles/bundle_restaurant.yml",
            "materials:\n",
            "materials:\n  - name: 食品经营许可证\n    form: copy\n    count: 1\n    e_license: true\n",
            "bundle_restaurant.yml: materials[0]: requires '食品经营许可证', which this bundle produces",
            id="bundle requires its own output",
        ),
        pytest.param(
            "bundles/bundle_newborn.yml",
            "materials_source:",
            "  - name: 户口本\n    form: original\n    count: 1\n    e_license: false\nmaterials_source:",
            "bundle_newborn.yml: materials: [7] 户口本: the same document as '居民户口簿' (listed twice)",
            id="duplicate material under two names",
        ),
        pytest.param(
            "items/id_card_reissue.yml",
            "fees_source: idfee2003\n",
            "",
            "id_card_reissue.yml: fees_source: missing: the fees needs a source",
            id="fee without a source",
        ),
        pytest.param(
            "bundles/bundle_retirement.yml",
            "cross_province:\n  available: false",
            "cross_province:\n  available: true",
            "bundle_retirement.yml: cross_province.available: True contradicts member(s) retirement_pension",
            id="bundle contradicts a member",
        ),
    ],
)
def test_validate_fails_naming_file_and_field(copy, path, old, new, expected):
    edit(copy / path, old, new)
    result = run_cli(["kb", "validate", "--catalog", str(copy)])
    assert result.returncode == 1
    assert expected in result.stderr, result.stderr


def test_validate_fails_when_a_fact_does_not_hold(tmp_path):
    facts = tmp_path / "facts.tsv"
    facts.write_text(
        "item\tfield\texpected\tsource\n"
        "id_card_reissue\tfees\t40元\t发改价格〔2003〕2322号\n"
        "id_card_reissue\tfees\t补领工本费20元\t(the old, wrong fee)\n",
        encoding="utf-8",
    )
    result = run_cli(["kb", "validate", "--facts", str(facts)])
    assert result.returncode == 1
    assert f"{facts}:3: id_card_reissue fees: expected '补领工本费20元' (in the knowledge card" in result.stderr
    assert ":2:" not in result.stderr


def test_stale_lists_what_was_not_checked_in_time():
    everything = run_cli(["kb", "stale", "--months", "0"])
    assert everything.returncode == 1
    assert "id_card_reissue: verified 2026-11-01" in everything.stdout
    recent = run_cli(["kb", "stale", "--months", "1200"])
    assert recent.returncode == 0 and "0 record date(s) or source(s) not checked within 1200 months" in recent.stdout


def test_propose_bundle_prints_a_draft_from_the_members():
    result = run_cli(["kb", "propose-bundle", "bundle_marriage_birth"])
    assert result.returncode == 0, result.stderr
    assert "Left out as outputs (the bundle or a member produces them): 生育登记凭证、结婚证" in result.stdout
    draft = yaml.safe_load(result.stdout)["materials"]
    names = [m["name"] for m in draft]
    assert "居民户口簿" in names and "结婚证" not in names
    assert run_cli(["kb", "propose-bundle", "passport"]).returncode == 1
