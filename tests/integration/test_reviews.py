"""The review queue (the improvement loop) through the real app without the model, on
SQLite or PostgreSQL (BANSHI_TEST_BACKEND): turns noted as the gateway notes them,
handoff tickets, bad ratings and operators' "wrong" marks collected from their tables,
masked; filters, counts and the trend; assign (checked against the catalog and the
domain's intents), accept into the export files (which ``rasa data validate`` accepts
beside nlu_data) or dismiss; audit rows; who may call what (built from the route list)."""

from __future__ import annotations

import datetime as dt
import itertools
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, List

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from assistant.api.app import create_app
from assistant.dialogue import reviewed
from assistant.security import accounts
from assistant.services.handoff import tickets
from assistant.services.reviews import collect, export, queue
from assistant.storage.database import session_factory
from assistant.storage.review_tables import ReviewItem
from assistant.storage.tables import AuditRecord
from knowledge import db as knowledge_db
from tests.conftest import ROOT, isolated_settings, routes_under

API = "/api/v1/admin/reviews"
PASSWORD = "reviews-password-1"
ITEM = "birth_registration"
# Personal data in every kind of source: none of it may reach the queue.
PHONE, ID_NUMBER, NAME = "13812345678", "110101199003071234", "张三"
_names = itertools.count(1)


def _routes() -> List:
    found = routes_under(API) + [r for r in routes_under("/admin") if r[1] == "/admin/reviews"]
    assert ("GET", "/admin/reviews") in found and ("POST", API + "/{review_id}/accept") in found, found
    return found


ROUTES = _routes()


@pytest.fixture(scope="module")
def app_settings(settings, tmp_path_factory):
    data = tmp_path_factory.mktemp("reviews")
    return isolated_settings(settings, data, timezone="Asia/Shanghai", review_export_dir=data / "exported")


@pytest.fixture(scope="module")
def app(app_settings):
    application = create_app(app_settings, load_model=False)
    with TestClient(application):
        yield application


def login(app, role: str) -> TestClient:
    name = f"rv{role[:3]}{next(_names):03d}"
    accounts.create_operator(app.state.settings.db_url, name, PASSWORD, role=role)
    client = TestClient(app)
    reply = client.post("/api/v1/desk/login", json={"username": name, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    client.headers["X-CSRF-Token"] = reply.json()["csrf_token"]
    client.username = name  # type: ignore[attr-defined]
    return client


@pytest.fixture(scope="module")
def admin(app) -> TestClient:
    return login(app, "admin")


@pytest.fixture(scope="module")
def seeded(app, app_settings) -> Dict[str, int]:
    """One of each source, as the running service writes them."""
    db_url = app_settings.db_url
    fallback = collect.note_turn(
        db_url, f"我叫{NAME}，电话{PHONE}，想问游艇驾驶证怎么考", "web",
        {"intent": {"name": "nlu_fallback", "confidence": 0.2}}, {"answer": None, "item": None})
    again = collect.note_turn(  # the same words again: the same row, seen twice
        db_url, f"我叫{NAME}，电话{PHONE}，想问游艇驾驶证怎么考？", "wechat",
        {"intent": {"name": "nlu_fallback", "confidence": 0.1}}, {"answer": None, "item": None})
    assert again == fallback
    low = collect.note_turn(db_url, "孩子出生了上户口要去哪里", "kiosk",
                            {"intent": {"name": "ask_location", "confidence": 0.31}}, {"answer": "location", "item": ITEM})
    fine = collect.note_turn(db_url, "办护照要带什么材料", "web",
                             {"intent": {"name": "ask_materials", "confidence": 0.97}}, {"answer": "materials", "item": "passport"})
    payload = collect.note_turn(db_url, "/request_human", "web",
                                {"intent": {"name": "request_human", "confidence": 0.1}}, {"answer": None})
    assert fine is None and payload is None
    covered = collect.note_turn(db_url, "游泳馆的年卡怎么办", "web",
                                {"intent": {"name": "ask_service", "confidence": 0.9}}, {"answer": "not_covered"})
    tickets.open_ticket(
        db_url, conversation_id="rv-conv-ticket", channel="wechat", reason="request_human", item_id=ITEM,
        summary={"question": f"身份证号{ID_NUMBER}，孩子落户要什么材料", "intent": "ask_materials"},
        hours=app_settings.hours,
    )
    knowledge_db.keep_feedback(db_url, "rv-conv-rating", "feedback", "差评，答非所问", "bad", ITEM, "web")
    knowledge_db.keep_feedback(db_url, "rv-conv-good", "feedback", "好评", "good", ITEM, "web")
    operator = login(app, "operator")
    marked = operator.post("/api/v1/desk/marks", json={
        "query": f"我叫{NAME}，手机{PHONE}，社保卡丢了怎么补", "rank": 1, "mark": "wrong",
        "item_id": ITEM, "question_type": "materials", "confidence": 0.62})
    assert marked.status_code == 201, marked.text
    used = operator.post("/api/v1/desk/marks", json={"query": "护照怎么办", "rank": 1, "mark": "used", "item_id": ITEM})
    assert used.status_code == 201
    return {"fallback": fallback, "low": low, "not_covered": covered}


def reviews(client: TestClient, **params) -> Dict:
    reply = client.get(API, params={"limit": 200, **params})
    assert reply.status_code == 200, reply.text
    return reply.json()


def by_reason(found: Dict) -> Dict[str, List[Dict]]:
    out: Dict[str, List[Dict]] = {}
    for item in found["items"]:
        out.setdefault(item["reason"], []).append(item)
    return out


def all_review_text(db_url: str) -> str:
    with session_factory(db_url)() as db:
        rows = db.execute(select(ReviewItem)).scalars().all()
    return "\n".join(f"{r.text}|{r.detail}|{r.note}" for r in rows)


# ------------------------------------------------------------------ the queue
def test_every_source_appears_in_the_queue_masked(admin, seeded, app_settings):
    found = by_reason(reviews(admin))
    assert sorted(found) == ["bad_rating", "handoff", "low_confidence", "not_covered", "not_understood", "wrong_mark"]
    (fallback,) = found["not_understood"]
    assert fallback["text"] == f"我叫张*，电话138****5678，想问游艇驾驶证怎么考" and fallback["seen"] == 2
    assert fallback["channel"] == "web" and fallback["intent"] == "nlu_fallback"
    (low,) = found["low_confidence"]
    assert low["confidence"] == pytest.approx(0.31) and low["item_id"] == ITEM and low["item_name"]
    (ticket,) = found["handoff"]
    assert ticket["text"] == "身份证号110101********1234，孩子落户要什么材料" and ticket["channel"] == "wechat"
    assert ticket["source"].startswith("ticket:") and ticket["detail"] == "request_human"
    (rating,) = found["bad_rating"]  # no tracker events here: the rating's own words
    assert rating["text"] == "差评，答非所问" and rating["detail"] == "差评：差评，答非所问"
    (mark,) = found["wrong_mark"]
    assert mark["text"] == "我叫张*，手机138****5678，社保卡丢了怎么补" and mark["item_id"] == ITEM
    assert "（建议回答：要带什么材料）" in mark["detail"] and mark["confidence"] == pytest.approx(0.62)
    stored = all_review_text(app_settings.db_url)
    for secret in (PHONE, ID_NUMBER, NAME):
        assert secret not in stored


def test_collection_reads_each_row_once(admin, seeded):
    first = reviews(admin)["total"]
    assert reviews(admin)["total"] == first  # the cursors moved: nothing added twice
    reply = admin.get(API + "/summary")
    assert reply.status_code == 200
    assert reply.json()["counts"]["pending"] == first


@pytest.mark.parametrize("params,reasons", [
    ({"reason": "wrong_mark"}, {"wrong_mark"}),
    ({"channel": "wechat"}, {"handoff"}),
    ({"channel": "kiosk"}, {"low_confidence"}),
    ({"state": "done"}, set()),
])
def test_filters(admin, seeded, params, reasons):
    assert {item["reason"] for item in reviews(admin, **params)["items"]} == reasons


@pytest.mark.parametrize("params", [
    {"state": "closed"}, {"reason": "boredom"}, {"channel": "fax"}, {"limit": 0}, {"limit": 10_000},
    {"offset": -1}, {"state": "x" * 100},
])
def test_bad_filters_are_refused_in_chinese(admin, params):
    reply = admin.get(API, params=params)
    assert reply.status_code == 422 and any("\u4e00" <= ch <= "\u9fff" for ch in reply.json()["detail"])


# ------------------------------------------------------- assign and accept
def _item(admin, reason: str) -> Dict:
    return by_reason(reviews(admin, state="all"))[reason][0]


@pytest.mark.parametrize("body,detail", [
    ({}, queue.EMPTY_ASSIGNMENT),
    ({"item_id": "no_such_item"}, queue.UNKNOWN_ITEM),
    ({"intent": "ask_everything"}, queue.UNKNOWN_INTENT),
    ({"intent": "nlu_fallback"}, queue.UNKNOWN_INTENT),
    ({"item_id": ITEM, "not_covered": True}, queue.NOT_COVERED_WITH_ITEM),
])
def test_assignments_are_checked(admin, seeded, body, detail):
    review = _item(admin, "not_understood")
    reply = admin.post(f"{API}/{review['id']}/assign", json=body)
    assert reply.status_code == 422 and reply.json()["detail"] == detail


@pytest.mark.parametrize("body", [
    {"item_id": 7}, {"intent": "x" * 65}, {"note": "长" * 201}, {"not_covered": "yes"}, {"extra": 1},
])
def test_malformed_bodies_are_refused(admin, seeded, body):
    review = _item(admin, "not_understood")
    assert admin.post(f"{API}/{review['id']}/assign", json=body).status_code == 422


def test_unknown_ids_and_accept_before_assign(admin, seeded):
    assert admin.post(f"{API}/999999/assign", json={"intent": "ask_service"}).status_code == 404
    assert admin.post(f"{API}/0/accept").status_code == 422
    assert admin.post(f"{API}/{2**31}/accept").status_code == 422
    review = _item(admin, "wrong_mark")
    early = admin.post(f"{API}/{review['id']}/accept")
    assert early.status_code == 409 and early.json()["detail"] == queue.NOT_ASSIGNED


def test_assign_then_accept_writes_the_export_files(admin, seeded, app_settings):
    low = _item(admin, "low_confidence")
    assigned = admin.post(f"{API}/{low['id']}/assign",
                          json={"item_id": ITEM, "intent": "ask_location", "note": "出生登记的地点"})
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["status"] == "assigned" and assigned.json()["assigned_by"] == admin.username
    accepted = admin.post(f"{API}/{low['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["review"]["status"] == "done" and body["review"]["outcome"] == "accepted"
    assert body["situation"]["status"] == "added" and body["situation"]["text"] == "孩子出生了上户口要去哪里"
    assert [d["kind"] for d in body["review"]["destinations"]] == ["situation", "training"]
    again = admin.post(f"{API}/{low['id']}/assign", json={"intent": "ask_service"})
    assert again.status_code == 409 and again.json()["detail"] == queue.ALREADY_DONE

    fallback = _item(admin, "not_understood")
    assert admin.post(f"{API}/{fallback['id']}/assign", json={"not_covered": True, "intent": "ask_service"}).status_code == 200
    assert admin.post(f"{API}/{fallback['id']}/accept").status_code == 200
    covered = _item(admin, "not_covered")
    dismissed = admin.post(f"{API}/{covered['id']}/dismiss", json={"note": "测试消息"})
    assert dismissed.status_code == 200 and dismissed.json()["outcome"] == "dismissed"

    out = Path(app_settings.review_export_dir)
    nlu = yaml.safe_load((out / export.NLU_FILE).read_text(encoding="utf-8"))
    examples = {block["intent"]: block["examples"] for block in nlu["nlu"]}
    assert examples == {
        "ask_location": "- 孩子出生了上户口要去哪里\n",
        "ask_service": "- 想问游艇驾驶证怎么考\n",  # no personal data, not even masked
    }
    situations = yaml.safe_load((out / export.SITUATIONS_FILE).read_text(encoding="utf-8"))
    assert situations["items"] == [{"id": ITEM, "name": situations["items"][0]["name"],
                                    "situations": ["孩子出生了上户口要去哪里"]}]
    not_covered = yaml.safe_load((out / export.NOT_COVERED_FILE).read_text(encoding="utf-8"))
    assert not_covered == [{"text": "我叫张*，电话138****5678，想问游艇驾驶证怎么考", "intent": "ask_service"}]
    download = admin.get(f"{API}/export/{export.NLU_FILE}")
    assert download.status_code == 200 and "孩子出生了上户口要去哪里" in download.text
    assert admin.get(f"{API}/export/secret_key").status_code == 404

    done = {item["id"] for item in reviews(admin, state="done")["items"]}
    assert {low["id"], fallback["id"], covered["id"]} <= done
    summary = admin.get(API + "/summary", params={"days": 3}).json()
    assert summary["counts"]["done"] >= 3 and len(summary["trend"]) == 3
    assert summary["trend"][-1]["open"] == summary["counts"]["pending"]


def test_rasa_data_validate_accepts_the_exported_examples(admin, app_settings, tmp_path):
    """The reviewed examples `banshi train` puts into nlu_data (the export's NLU file
    has the same) pass ``rasa data validate`` (what `make validate` runs), with a text
    the hand-written data already has left out."""
    hand_written = "办社保卡要带什么材料"
    review = collect.note_turn(app_settings.db_url, hand_written, "web",
                               {"intent": {"name": "ask_materials", "confidence": 0.2}}, {"answer": "materials"})
    tricky = collect.note_turn(app_settings.db_url, "- [医保](卡) 丢了 {补办} 咋弄", "web",
                               {"intent": {"name": "nlu_fallback", "confidence": 0.2}}, {"answer": None})
    for review_id, intent in ((review, "ask_materials"), (tricky, "ask_service")):
        assert admin.post(f"{API}/{review_id}/assign", json={"intent": intent}).status_code == 200
        assert admin.post(f"{API}/{review_id}/accept").status_code == 200
    path = Path(app_settings.review_export_dir) / export.NLU_FILE
    text = path.read_text(encoding="utf-8")
    assert hand_written not in text and "［医保］（卡） 丢了 ｛补办｝ 咋弄" in text
    # What `banshi train` writes into nlu_data/reviewed: the same examples.
    training = tmp_path / "reviewed" / "accepted.yml"
    assert reviewed.write(app_settings.db_url, training, ROOT / "nlu_data") >= 1
    assert yaml.safe_load(training.read_text(encoding="utf-8")) == yaml.safe_load(text)
    rasa = Path(sys.executable).with_name("rasa")
    result = subprocess.run(
        [str(rasa), "data", "validate", "--config", "config.yml", "--domain", "domain.yml",
         "--data", "nlu_data", str(training), "--fail-on-warnings"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_an_export_that_cannot_be_written_still_accepts_and_says_so(app, admin, app_settings, tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("x")
    review = collect.note_turn(app_settings.db_url, "导出失败测试的问题", "web",
                               {"intent": {"name": "nlu_fallback", "confidence": 0.1}}, {"answer": None})
    assert admin.post(f"{API}/{review}/assign", json={"intent": "ask_service"}).status_code == 200
    app.state.settings = app_settings.copy(update={"review_export_dir": blocked})
    try:
        reply = admin.post(f"{API}/{review}/accept")
    finally:
        app.state.settings = app_settings
    assert reply.status_code == 200 and reply.json()["files"] is None
    assert reply.json()["review"]["outcome"] == "accepted" and "导出文件没有写成功" in reply.json()["warning"]


def test_every_action_is_audited(admin, seeded, app_settings):
    with session_factory(app_settings.db_url)() as db:
        rows = db.execute(select(AuditRecord).where(AuditRecord.actor == f"operator:{admin.username}")).scalars().all()
    seen = {(r.action, r.result) for r in rows}
    assert {("admin.review.view", "ok"), ("admin.review.assign", "ok"), ("admin.review.assign", "invalid"),
            ("admin.review.assign", "not_found"), ("admin.review.assign", "conflict"), ("admin.review.accept", "ok"),
            ("admin.review.accept", "conflict"), ("admin.review.dismiss", "ok"), ("admin.review.export", "ok")} <= seen
    assert all(r.subject is None or r.subject.startswith("review:") or ":" in r.subject or r.subject in export.FILES
               for r in rows if r.action.startswith("admin.review."))


def test_options_name_the_catalog_and_the_domain(admin):
    body = admin.get(API + "/options").json()
    intents = {i["id"] for i in body["intents"]}
    assert "ask_service" in intents and "nlu_fallback" not in intents
    assert ITEM in {i["id"] for i in body["items"]} and len(body["reasons"]) == 6


def test_trend_counts_reviews_open_at_each_days_end(app_settings):
    db_url = app_settings.db_url
    now = dt.datetime(2030, 1, 10, 4, 0)  # 12:00 in Shanghai
    with session_factory(db_url)() as db, db.begin():
        for created, done in ((dt.datetime(2030, 1, 8, 2), None), (dt.datetime(2030, 1, 8, 3), dt.datetime(2030, 1, 9, 1)),
                              (dt.datetime(2030, 1, 9, 20), None)):  # 1-10 04:00 local
            db.add(ReviewItem(reason="handoff", status="done" if done else "open", text="趋势", text_key=f"t{created}",
                              seen=1, not_covered=False, created_at=created, last_seen_at=created, done_at=done))
    days = {row["day"]: row for row in queue.trend(db_url, "Asia/Shanghai", 3, now=now)}
    before = days["2030-01-08"]["open"]
    assert days["2030-01-08"]["new"] == 2 + 0 and days["2030-01-09"]["open"] == before - 1
    assert days["2030-01-10"]["open"] == before and days["2030-01-10"]["new"] == 1


def test_two_replicas_collecting_at_once_add_each_row_once(app, app_settings):
    """Marks written meanwhile, collected by several threads at once (as several
    gateway replicas showing the queue): each mark becomes one review."""
    operator = login(app, "operator")
    ids = []
    for n in range(12):
        reply = operator.post("/api/v1/desk/marks", json={"query": f"并发测试问题{n}号怎么办", "rank": 1, "mark": "wrong"})
        assert reply.status_code == 201
        ids.append(reply.json()["id"])
    errors: List[BaseException] = []

    def run() -> None:
        try:
            collect.collect(app_settings)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    collect.collect(app_settings)  # whatever a lost race left for the next round
    assert errors == []
    with session_factory(app_settings.db_url)() as db:
        sources = [r.source for r in db.execute(select(ReviewItem).where(ReviewItem.reason == "wrong_mark")).scalars()]
    for mark_id in ids:
        assert sources.count(f"mark:{mark_id}") == 1


# ------------------------------------------------------------------- access
@pytest.mark.parametrize("method,path", ROUTES)
def test_every_review_route_refuses_operators_and_anonymous_users(app, method, path):
    concrete = path.replace("{review_id}", "1").replace("{name}", export.NLU_FILE)
    anonymous = TestClient(app).request(method, concrete, json={} if method == "POST" else None)
    operator = login(app, "operator")
    forbidden = operator.request(method, concrete, json={} if method == "POST" else None)
    if path.startswith("/admin/"):
        assert anonymous.status_code == 401 and "login-form" in anonymous.text
        assert forbidden.status_code == 403 and "login-form" not in forbidden.text
        page = login(app, "admin").get(concrete)
        assert page.status_code == 200 and "/static/admin/reviews.js" in page.text
        return
    assert anonymous.status_code == 401 and anonymous.json()["detail"] == "请先登录"
    assert forbidden.status_code == 403 and forbidden.json()["detail"] == "没有权限"
    admin = login(app, "admin")
    assert admin.request(method, concrete, json={} if method == "POST" else None).status_code not in (401, 403)
    if method != "GET":
        del admin.headers["X-CSRF-Token"]
        assert admin.request(method, concrete, json={}).status_code == 403


def test_reviews_past_their_retention_are_deleted_accepted_ones_stay(settings, tmp_path):
    from assistant.services.reviews.config import TUNABLES
    from assistant.storage.database import get_engine
    from assistant.storage.migrate import migrate

    own = isolated_settings(settings, tmp_path / "purge")
    migrate(get_engine(own.db_url))
    now = dt.datetime(2030, 6, 1, 4, 0)
    old_open = now - dt.timedelta(days=TUNABLES.open_days + 1)
    old_done = now - dt.timedelta(days=TUNABLES.dismissed_days + 1)
    rows = {  # text: (status, outcome, last seen, done)
        "旧的待处理": ("open", None, old_open, None),
        "近的待处理": ("open", None, now - dt.timedelta(days=1), None),
        "旧的已驳回": ("done", "dismissed", old_done, old_done),
        "近的已驳回": ("done", "dismissed", old_done, now - dt.timedelta(days=1)),
        "旧的已采纳": ("done", "accepted", old_open, old_open),
    }
    with session_factory(own.db_url)() as db, db.begin():
        for text, (status, outcome, seen, done) in rows.items():
            db.add(ReviewItem(reason="handoff", status=status, outcome=outcome, text=text, text_key=text,
                              seen=1, not_covered=False, created_at=seen, last_seen_at=seen, done_at=done))
    assert queue.purge(own.db_url, now=now) == 2
    with session_factory(own.db_url)() as db:
        left = set(db.execute(select(ReviewItem.text)).scalars())
    assert left == {"近的待处理", "近的已驳回", "旧的已采纳"}
