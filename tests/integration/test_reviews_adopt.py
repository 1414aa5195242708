"""Closing the improvement loop, through the real app on SQLite or PostgreSQL
(BANSHI_TEST_BACKEND): accepting a review assigned to an item publishes its text,
without personal data, as a situation of the item through a catalog revision (author
the admin, reason "审核采纳：<id>…") that the item linker stored in the trained model
links live, without retraining, in this process and on a second replica; no duplicate
(a situation already there, an alias, the service's own name), the situation cap; the
item's history and one-click revert; where each accepted review went, including a
training example waiting for the next training or in the model of a run."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import tarfile
import threading
import time
from pathlib import Path
from typing import Dict, List

import pytest
from fastapi.testclient import TestClient

from assistant.api.app import create_app
from assistant.services.reviews import adopt, collect
from assistant.storage import catalog_tables, training_tables
from assistant.storage.database import session_factory
from knowledge import live, revisions
from knowledge.catalog import load_catalog
from knowledge.linker import ItemLinker
from knowledge.schema import short_name
from tests.conftest import isolated_settings
from tests.staff import staff_client

API = "/api/v1/admin/reviews"
CATALOG_API = "/api/v1/admin/catalog"
PASSWORD = "reviews-adopt-password-1"
ITEM = "passport"
PHONE, NAME = "13812345678", "张三"
SITUATION = "下个月公司派我去德国出差，要先弄啥"
SAID = f"我叫{NAME}，电话{PHONE}，{SITUATION}"
VISIBLE_WITHIN_S = 5.0
_turns = itertools.count(1)


@pytest.fixture(scope="module")
def app_settings(settings, tmp_path_factory):
    data = tmp_path_factory.mktemp("reviews_adopt")
    return isolated_settings(settings, data, timezone="Asia/Shanghai", review_export_dir=data / "exported")


@pytest.fixture(scope="module")
def app(app_settings):
    application = create_app(app_settings, load_model=False)
    with TestClient(application):
        yield application


@pytest.fixture(scope="module")
def admin(app) -> TestClient:
    client, name = staff_client(app, "admin", PASSWORD, prefix="adopt")
    client.username = name  # type: ignore[attr-defined]
    return client


@pytest.fixture(scope="module")
def trained_linker(trained_model, tmp_path_factory):
    """The item linker stored in the Rasa model (not retrained here), registered as the
    model's component registers it; the files' catalog is put back afterwards."""
    target = tmp_path_factory.mktemp("adopt_linker")
    with tarfile.open(trained_model) as archive:
        for member in [m for m in archive.getmembers() if "ServiceItemLinker" in m.name and m.isfile()]:
            member.name = Path(member.name).name
            archive.extract(member, target)
    linker = ItemLinker.load(target)
    live.register(linker)
    yield linker
    files = load_catalog()
    live.install(files, files)


def note(app_settings, text: str, intent: str = "nlu_fallback") -> int:
    """A turn the gateway would put in the queue (each with its own words' row)."""
    review = collect.note_turn(app_settings.db_url, text, "web", {"intent": {"name": intent, "confidence": 0.1}},
                               {"answer": None, "item": None})
    assert review is not None
    return review


def accept(admin: TestClient, review: int, **assignment) -> Dict:
    assigned = admin.post(f"{API}/{review}/assign", json=assignment)
    assert assigned.status_code == 200, assigned.text
    accepted = admin.post(f"{API}/{review}/accept")
    assert accepted.status_code == 200, accepted.text
    return accepted.json()


def history(admin: TestClient) -> List[Dict]:
    reply = admin.get(f"{CATALOG_API}/records/{ITEM}/history")
    assert reply.status_code == 200
    return reply.json()["revisions"]


def destinations(admin: TestClient, review: int) -> List[Dict]:
    found = admin.get(API, params={"state": "done", "limit": 200}).json()["items"]
    return next(item for item in found if item["id"] == review)["destinations"]


def linked(linker: ItemLinker, text: str) -> List[str]:
    return [item for item, _ in live.current(linker).link(text)]


def test_an_accepted_situation_is_linked_live_everywhere_and_can_be_reverted(app, app_settings, admin, trained_linker):
    assert ITEM not in linked(trained_linker, SITUATION)[:1]
    before = len(history(admin))
    review = note(app_settings, SAID)
    with TestClient(create_app(app_settings, load_model=False)) as replica:
        started = time.monotonic()
        body = accept(admin, review, item_id=ITEM, intent="ask_service")
        situation = body["situation"]
        assert situation["status"] == adopt.ADDED and situation["text"] == SITUATION, situation
        assert f"#{situation['revision']}" in situation["message"]
        # This process links the text at once, by the model's own linker: no retraining.
        assert linked(trained_linker, SITUATION)[0] == ITEM
        assert app.state.catalog.records[ITEM].situations[-1] == SITUATION
        # A second replica on the same database takes the revision up by itself.
        while time.monotonic() - started < VISIBLE_WITHIN_S + 1:
            if SITUATION in replica.app.state.catalog.records[ITEM].situations:
                break
            time.sleep(0.1)
        assert SITUATION in replica.app.state.catalog.records[ITEM].situations
        assert time.monotonic() - started <= VISIBLE_WITHIN_S

    revisions_now = history(admin)
    assert len(revisions_now) == before + 1
    latest = revisions_now[0]
    assert latest["id"] == situation["revision"] and latest["author"] == f"operator:{admin.username}"
    assert latest["reason"].startswith(f"{adopt.REASON_PREFIX}{review}（")
    full = admin.get(f"{CATALOG_API}/revisions/{latest['id']}").json()
    added = set(full["document"]["situations"]) - set(full["previous"]["situations"])
    assert added == {SITUATION}
    for secret in (PHONE, NAME, "*"):  # no personal data, not even masked
        assert all(secret not in text for text in full["document"]["situations"])
        assert secret not in latest["reason"]
    went = destinations(admin, review)
    assert went[0]["kind"] == "situation" and f"#{latest['id']}" in went[0]["text"] and "实时生效" in went[0]["text"]
    assert went[1] == {"kind": "training", "text": adopt.TRAINING_WAITING.format(intent="ask_service")}

    # One click on the history: back to the record before the situation.
    target = revisions_now[1]["id"] if len(revisions_now) > 1 else revisions.FILE_VERSION
    reverted = admin.post(f"{CATALOG_API}/records/{ITEM}/revert", json={"revision": target, "reason": "撤回审核采纳的情形"})
    assert reverted.status_code == 201, reverted.text
    assert SITUATION not in app.state.catalog.records[ITEM].situations
    assert ITEM not in linked(trained_linker, SITUATION)[:1]
    assert "此后已撤回" in destinations(admin, review)[0]["text"]


def test_no_duplicates(app, app_settings, admin):
    record = app.state.catalog.records[ITEM]
    existing = record.situations[0]
    alias = next(a for a in record.aliases if len(a) >= 4 and "+" not in a)
    named = f"请问{short_name(record.name)}这件事要准备什么东西"
    before = len(history(admin))
    cases = [  # (the words, the status, the message)
        (f"{existing}？", adopt.PRESENT, adopt.ALREADY.format(name=record.name)),
        (alias, adopt.SKIPPED, adopt.AN_ALIAS.format(name=record.name)),
        (named, adopt.SKIPPED, adopt.NAMES_SERVICE.format(name=short_name(record.name))),
        ("我叫李四，电话13900001111", adopt.SKIPPED, adopt.NOTHING_LEFT),
        ("出国" + "要办的手续" * 20, adopt.SKIPPED, adopt.TOO_LONG.format(n=adopt.TUNABLES.situation_max_chars)),
    ]
    for said, status, message in cases:
        review = note(app_settings, said)
        situation = accept(admin, review, item_id=ITEM)["situation"]
        assert (situation["status"], situation["message"], situation["revision"]) == (status, message, None), said
        assert destinations(admin, review)[0]["text"] == message
    assert len(history(admin)) == before  # nothing published
    assert app.state.catalog.records[ITEM].situations == record.situations


def test_the_same_words_accepted_twice_are_added_once(app, app_settings, admin):
    words = "孩子要去国外读书，出国前证件怎么弄"
    first = accept(admin, note(app_settings, words), item_id=ITEM)["situation"]
    second = accept(admin, note(app_settings, words + "？", intent="ask_service"), item_id=ITEM)["situation"]
    assert first["status"] == adopt.ADDED and second["status"] == adopt.PRESENT
    assert app.state.catalog.records[ITEM].situations.count(words) == 1


def test_an_item_at_the_situation_cap_gets_no_more(app, app_settings, admin, monkeypatch):
    count = len(app.state.catalog.records[ITEM].situations)
    monkeypatch.setattr(adopt, "TUNABLES", dataclasses.replace(adopt.TUNABLES, max_situations=count))
    situation = accept(admin, note(app_settings, "退休了想跟老伴出国旅游一趟，先要弄个啥"), item_id=ITEM)["situation"]
    assert situation["status"] == adopt.SKIPPED
    assert situation["message"] == adopt.FULL.format(name=app.state.catalog.records[ITEM].name, n=count)
    assert "达到上限" in situation["message"]


def test_a_training_example_says_when_a_model_has_it(app_settings, admin):
    review = note(app_settings, "我想知道那个证件现在能不能线上弄")
    accept(admin, review, intent="ask_process")
    waiting = adopt.TRAINING_WAITING.format(intent="ask_process")
    assert destinations(admin, review) == [{"kind": "training", "text": waiting}]
    url = app_settings.db_url
    run = training_tables.start_run(url, "operator:test", "host")
    assert run is not None
    assert destinations(admin, review)[0]["text"] == waiting  # still running
    assert training_tables.finish_run(url, run, training_tables.STATUS_SUCCEEDED, exit_code=0)
    finished = training_tables.get_run(url, run).finished_at  # the run's own time: right also at midnight
    day = (finished + dt.timedelta(hours=8)).date().isoformat()  # Asia/Shanghai (no daylight saving)
    assert destinations(admin, review)[0]["text"] == adopt.TRAINING_IN_MODEL.format(intent="ask_process", day=day)


def test_not_covered_says_so(app_settings, admin):
    review = note(app_settings, "游泳馆的年卡到期了怎么续")
    accept(admin, review, not_covered=True)
    assert destinations(admin, review) == [{"kind": "not_covered", "text": adopt.NOT_COVERED_LIST}]


def test_a_situation_the_catalog_refuses_is_not_accepted(app, app_settings, admin):
    """The record in effect no longer validates (say, the files changed under a published
    revision): the catalog's validation refuses the draft, nothing is published, and the
    review stays assigned with a Chinese message saying why."""
    record = app.state.catalog.records[ITEM]
    broken = revisions.record_document(record)
    broken["aliases"] = broken["aliases"][:1]  # fewer than the schema's minimum
    with session_factory(app_settings.db_url)() as db, db.begin():
        catalog_tables.add_revision(db, ITEM, record.kind, catalog_tables.ACTION_PUBLISH, "operator:test",
                                    "测试：不再通过校验的版本", broken, revisions.record_document(record))
    try:
        review = note(app_settings, "要带孩子去国外看病，孩子的证件咋弄")
        assert admin.post(f"{API}/{review}/assign", json={"item_id": ITEM}).status_code == 200
        before = len(history(admin))
        refused = admin.post(f"{API}/{review}/accept")
        assert refused.status_code == 422, refused.text
        detail = refused.json()["detail"]
        assert detail.startswith("这句话作为事项") and "尚未采纳" in detail and any("\u4e00" <= c <= "\u9fff" for c in detail[-10:])
        assert len(history(admin)) == before
        pending = admin.get(API, params={"state": "assigned", "limit": 200}).json()["items"]
        assert review in {item["id"] for item in pending}
    finally:
        with session_factory(app_settings.db_url)() as db, db.begin():
            catalog_tables.add_revision(db, ITEM, record.kind, catalog_tables.ACTION_REVERT, "operator:test",
                                        "测试结束，恢复", None, broken, revisions.FILE_VERSION)


def test_an_accept_racing_a_dismiss_never_leaves_a_situation_without_its_review(app, app_settings, admin):
    """Two admins at once: one accepts (the situation is published), one dismisses. The
    review is accepted and its situation live, or dismissed and nothing published."""
    other, _ = staff_client(app, "admin", PASSWORD, prefix="adopt")
    for n in range(4):
        words = f"办完了还要再去一趟窗口吗第{n + 1}回"
        review = note(app_settings, words)
        assert admin.post(f"{API}/{review}/assign", json={"item_id": ITEM}).status_code == 200
        answers: Dict[str, int] = {}
        racers = [threading.Thread(target=lambda: answers.__setitem__("accept", admin.post(f"{API}/{review}/accept").status_code)),
                  threading.Thread(target=lambda: answers.__setitem__("dismiss", other.post(f"{API}/{review}/dismiss").status_code))]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(timeout=60)
        assert sorted(answers.values()) == [200, 409], answers
        published = any(words in (r.get("reason") or "") for r in history(admin))
        assert published == (answers["accept"] == 200), (answers, published)
