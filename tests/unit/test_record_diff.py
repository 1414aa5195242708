"""knowledge.record_diff on the passport's real record: what the admin page's history
shows for each kind of field (the fee first and important, texts before → after,
materials and sources matched by name and id, list entries added and removed, a new
order, the sub-fields of ``where``), values as Chinese display text."""

from __future__ import annotations

import copy

import pytest

from knowledge import record_diff, revisions
from knowledge.catalog import load_catalog


@pytest.fixture(scope="module")
def passport() -> dict:
    return revisions.record_document(load_catalog().records["passport"])


def test_nothing_changed_lists_nothing(passport):
    assert record_diff.diff(passport, copy.deepcopy(passport)) == []
    assert record_diff.summary([]) is None


def test_each_kind_of_change(passport):
    after = copy.deepcopy(passport)
    after["summary"] = "新的简介"
    after["fees"] = "免费"
    after["where"]["phone"] = "12345"
    after["materials"][0]["e_license"] = True
    after["materials"][0]["form"] = "copy"
    after["materials"] = list(reversed(after["materials"]))
    after["sources"][0]["checked"] = "2026-12-05"
    after["situations"] = after["situations"][1:]
    changes = record_diff.diff(passport, after)
    assert changes[0]["field"] == "fees" and changes[0]["important"] is True
    assert (changes[0]["before"], changes[0]["after"]) == (passport["fees"], "免费")
    by_field = {c["field"]: c for c in changes}
    assert set(by_field) == {"fees", "summary", "where.phone", "materials", "sources", "situations"}
    assert by_field["where.phone"]["label"] == "办理地点的咨询电话"
    materials = by_field["materials"]
    assert materials["added"] == materials["removed"] == [] and materials["reordered"] is True
    assert materials["changed"] == [{"name": passport["materials"][0]["name"], "fields": [
        {"field": "form", "label": "形式", "before": "原件", "after": "复印件"},
        {"field": "e_license", "label": "电子证照", "before": "否", "after": "是"},
    ]}]
    source = by_field["sources"]["changed"][0]
    assert source["name"] == passport["sources"][0]["id"]
    assert source["fields"] == [{"field": "checked", "label": "核对日期", "before": passport["sources"][0]["checked"],
                                 "after": "2026-12-05"}]
    assert by_field["situations"]["removed"] == [passport["situations"][0]] and by_field["situations"]["added"] == []
    assert not by_field["situations"]["reordered"]
    assert record_diff.summary(changes).startswith("收费标准、")


def test_the_source_of_the_fee_is_flagged_with_the_fee(passport):
    after = copy.deepcopy(passport)
    after["fees_source"] = [*after["fees_source"], "another-source"]
    after["summary"] = "新的简介"
    changes = record_diff.diff(passport, after)
    assert changes[0]["field"] == "fees_source" and changes[0]["important"] is True
    assert changes[0]["added"] == ["another-source"]
    assert [c["important"] for c in changes[1:]] == [False]


def test_display_texts():
    assert record_diff.display(None) == record_diff.EMPTY == record_diff.display("")
    assert record_diff.display(False) == "否" and record_diff.display(3) == "3"
    assert record_diff.display("original_and_copy", "form") == "原件和复印件"
    assert record_diff.display("other", "form") == "其他"
    assert record_diff.display(["a", "b"]) == "a、b"
