"""The admin catalog page's history with differences and its field-level problems, on
the real app: GET …/records/{id}/revisions/{n}/diff lists what a revision changed
compared to the version before it (the fee first, marked important; materials added,
removed and changed; aliases added), and a refused draft's problems name the field
(``fields``) so that the page shows each one next to its input. SQLite or PostgreSQL
(BANSHI_TEST_BACKEND)."""

from __future__ import annotations

import copy

import pytest
from fastapi.testclient import TestClient

from assistant.api.app import create_app
from knowledge import problems_zh
from tests.conftest import isolated_settings
from tests.integration.test_catalog_admin import API, ITEM, NEW_FEE, document, fee_edit, login

NEW_MATERIAL = {
    "name": "户口簿首页和本人页", "form": "copy", "count": 2, "e_license": True, "note": "测试用",
    "required": False, "condition": "户籍地与居住地不一致时", "source": None,
}
NEW_ALIAS = "差异测试证"


@pytest.fixture(scope="module")
def app(settings, tmp_path_factory):
    application = create_app(isolated_settings(settings, tmp_path_factory.mktemp("catalog_diff")), load_model=False)
    with TestClient(application):
        yield application


@pytest.fixture(scope="module")
def admin(app):
    return login(app)[0]


def publish(client, doc: dict, reason: str) -> int:
    reply = client.post(f"{API}/records/{ITEM}/publish", json={"document": doc, "reason": reason})
    assert reply.status_code == 201, reply.text
    return reply.json()["revision"]


def diff_of(client, revision: int, record_id: str = ITEM):
    return client.get(f"{API}/records/{record_id}/revisions/{revision}/diff")


def test_a_revision_shows_what_it_changed_the_fee_first(admin):
    original = document(admin)
    draft = fee_edit(original, NEW_FEE)
    draft["materials"] = draft["materials"][1:] + [NEW_MATERIAL]
    draft["materials"][0]["count"] = 3
    draft["aliases"] = draft["aliases"] + [NEW_ALIAS]
    first = publish(admin, draft, "收费和材料调整（差异测试）")

    body = diff_of(admin, first).json()
    assert body["id"] == first and body["reason"] == "收费和材料调整（差异测试）"
    changes = body["changes"]
    fee = changes[0]
    assert fee["field"] == "fees" and fee["important"] is True and fee["label"] == "收费标准"
    assert (fee["before"], fee["after"]) == (original["fees"], NEW_FEE)
    assert [c for c in changes[1:] if c["important"]] == []
    by_field = {c["field"]: c for c in changes}
    materials = by_field["materials"]
    assert materials["added"] == ["户口簿首页和本人页（复印件2份，需要时提供：户籍地与居住地不一致时，可用电子证照）"]
    assert materials["removed"][0].startswith(original["materials"][0]["name"] + "（")
    changed = materials["changed"]
    assert [c["name"] for c in changed] == [original["materials"][1]["name"]]
    assert changed[0]["fields"] == [{"field": "count", "label": "份数", "before": "1", "after": "3"}]
    assert by_field["aliases"]["added"] == [NEW_ALIAS] and by_field["aliases"]["removed"] == []
    assert by_field["verified"]["after"] == draft["verified"]
    assert "收费标准" in body["summary"] and "材料清单" in body["summary"]

    # The next revision is compared with the first, not with the file.
    second_fee = "普通护照每本150元（差异测试）。"
    second = publish(admin, fee_edit(draft, second_fee), "再次调整收费")
    changes = diff_of(admin, second).json()["changes"]
    assert [(c["field"], c["before"], c["after"]) for c in changes if c["field"] == "fees"] == [
        ("fees", NEW_FEE, second_fee)
    ]
    assert "materials" not in {c["field"] for c in changes}

    # A revert to the file: the change back, the file's text after.
    back = admin.post(f"{API}/records/{ITEM}/revert", json={"revision": 0, "reason": "恢复原版"})
    assert back.status_code == 201
    changes = diff_of(admin, back.json()["revision"]).json()["changes"]
    assert (changes[0]["field"], changes[0]["before"], changes[0]["after"]) == ("fees", second_fee, original["fees"])
    assert {c["field"] for c in changes} >= {"fees", "materials", "aliases"}


def test_the_diff_route_refuses_what_it_cannot_show(admin):
    revision = publish(admin, fee_edit(document(admin), "普通护照每本160元（差异测试）。"), "路由测试")
    assert diff_of(admin, revision, "hk_macau_permit").status_code == 404  # another record's revision
    assert diff_of(admin, 2**31 - 2).json()["detail"] == "没有找到该版本"
    assert diff_of(admin, 0).status_code == 422
    assert diff_of(admin, revision, "no_such_item").status_code == 404
    assert admin.post(f"{API}/records/{ITEM}/revert", json={"revision": 0, "reason": "恢复原版"}).status_code == 201


def test_the_diff_is_for_admins_only(app, admin):
    revision = admin.get(f"{API}/records/{ITEM}/history").json()["revisions"][0]["id"]
    operator, _ = login(app, "operator")
    assert diff_of(operator, revision).status_code == 403
    assert diff_of(TestClient(app), revision).status_code == 401


def test_refused_problems_name_the_field_of_the_draft(admin):
    doc = document(admin)
    draft = copy.deepcopy(doc)
    draft["materials"][1]["name"] = " "
    draft["materials"][2]["count"] = 0
    draft["materials"].append({**NEW_MATERIAL, "required": False, "condition": ""})
    draft["sources"][0]["checked"] = "2999-01-01"
    reply = admin.post(f"{API}/records/{ITEM}/validate", json={"document": draft})
    assert reply.status_code == 422
    body = reply.json()
    fields = {f["field"]: f["problem"] for f in body["fields"]}
    assert [f["problem"] for f in body["fields"]] == body["problems"]
    last = len(draft["materials"]) - 1
    assert fields["materials[1].name"] == "材料清单第2项的名称：不能为空"
    assert fields["materials[2].count"] == "材料清单第3项的份数：不能小于1"
    assert fields[f"materials[{last}].condition"].endswith("非必需的材料要写明在什么情况下需要")
    assert fields["sources[0].checked"].endswith("日期不能晚于今天")

    # The source rule of a changed fee (Chinese messages of knowledge.revisions).
    source_id = doc["fees_source"][0]
    index = [s["id"] for s in doc["sources"]].index(source_id)
    older = fee_edit(doc, NEW_FEE)
    older["sources"][index]["checked"] = "2001-01-01"
    fields = {f["field"] for f in admin.post(f"{API}/records/{ITEM}/validate", json={"document": older}).json()["fields"]}
    assert fields == {f"sources[{index}].checked"}
    unknown = {**fee_edit(doc, NEW_FEE), "fees_source": ["nosuch"]}
    fields = [f["field"] for f in admin.post(f"{API}/records/{ITEM}/validate", json={"document": unknown}).json()["fields"]]
    assert fields == ["fees_source"]


@pytest.mark.parametrize("problem, field", [
    ("items/passport.yml: materials: [3] 户口簿: unknown source 'x'", "materials[3].source"),
    ("items/passport.yml: materials: [2] 照片: the same document as '相片' (listed twice)", "materials[2].name"),
    ("items/passport.yml: sources: duplicate source id 'guide'", "sources[1].id"),
    ("items/passport.yml: (file): missing; required by the spec", None),
    ("修改了材料清单，来源 guide 不在本事项的来源列表（sources）中", "materials[0].source"),
    ("修改了收费标准，请注明依据的来源（fees_source）", "fees_source"),
    ("核实日期（verified）不能早于原来的 2026-01-01", "verified"),
    ("草稿的 id 与要修改的事项不一致", None),
])
def test_locate_reads_each_kind_of_problem(problem, field):
    draft = {"sources": [{"id": "guide"}, {"id": "guide"}], "materials": [{"name": "户口簿", "source": "guide"}]}
    assert problems_zh.locate(problem, draft) == field
