"""Analytics: a seeded week (tests/analytics_seed.py: Rasa events written by banshi's
tracker store, tickets, ratings, notices) → every table of the report, exactly as
computed here from the plan; filters; CSV files; who may see them (built from the
app's route list); the rollup's day bookkeeping. The real app without the model, on
SQLite or PostgreSQL (BANSHI_TEST_BACKEND)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
from collections import Counter, defaultdict
from typing import Dict, List, Optional, Tuple

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from assistant.api.app import create_app
from assistant.services.analytics import export, rollup
from assistant.services.analytics.report import Filters, build_report
from assistant.storage.database import session_factory
from assistant.storage.analytics_tables import AnalyticsDay, AnalyticsTurn
from assistant.storage.tables import AuditRecord
from tests.analytics_seed import DAYS, FIRST_DAY, LAST_DAY, PII_TEXT, SeedWeek, seed_week
from tests.conftest import isolated_settings, routes_under, run_cli
from tests.staff import new_staff

API = "/api/v1/admin/analytics"
WEEK = {"start": FIRST_DAY.isoformat(), "end": LAST_DAY.isoformat()}
PASSWORD = "analytics-password-1"
# What each not-understood message of the seed becomes: masked, punctuation folded.
TOPICS = {
    "游艇驾驶证怎么考？": "游艇驾驶证怎么考",
    PII_TEXT: "我叫张* 电话138****5678 想问游艇驾驶证怎么考",
    "今天天气怎么样": "今天天气怎么样",
    "嗯那个就是说吧": "嗯那个就是说吧",
    "嗯嗯嗯": "嗯嗯嗯",
}


def _analytics_routes() -> List[Tuple[str, str]]:
    found = [(m, p.replace("{table}", "top_items")) for m, p in routes_under(API) + routes_under("/admin")]
    assert ("GET", "/admin/analytics") in found and len(found) >= 4, found
    return found


ROUTES = _analytics_routes()


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def app_settings(settings, tmp_path_factory):
    # No background rollup: the week is seeded in the past after the app started (its
    # pass would find those days empty and complete); test_analytics_rollup.py tests it.
    return isolated_settings(settings, tmp_path_factory.mktemp("analytics"), timezone="Asia/Shanghai",
                             analytics_rollup_minutes=0)


@pytest.fixture(scope="module")
def app(app_settings):
    application = create_app(app_settings, load_model=False)
    with TestClient(application):
        yield application


@pytest.fixture(scope="module")
def week(app, app_settings) -> SeedWeek:
    return seed_week(app_settings)


def login(app, role: str) -> TestClient:
    return new_staff(app, role, PASSWORD, prefix="an")[0]


@pytest.fixture(scope="module")
def admin(app, week) -> TestClient:
    return login(app, "admin")


# ------------------------------------------------------------------ the oracle
def nearest_rank(values: List[int], p: int) -> Optional[int]:
    ordered = sorted(values)
    return ordered[(p * len(ordered) + 99) // 100 - 1] if ordered else None


def rate(part: int, whole: int) -> Optional[float]:
    return round(part / whole, 4) if whole else None


def expected(week: SeedWeek, channel: Optional[str] = None, item: Optional[str] = None) -> Dict[str, object]:
    """The report's numbers, computed from the plan (not from the database)."""
    turns = [t for t in week.week_turns() if channel in (None, t.channel) and item in (None, t.item)]
    in_week = lambda day: FIRST_DAY <= day <= LAST_DAY  # noqa: E731
    tickets = [t for t in week.tickets if in_week(t[0]) and channel in (None, t[1]) and item in (None, t[3])]
    ratings = [r for r in week.ratings if in_week(r[0]) and channel in (None, r[1]) and item in (None, r[3])]
    notices = [n for n in week.notices if in_week(n[0]) and channel in (None, n[1])]
    wechat = [w for w in week.wechat if in_week(w[0])] if channel in (None, "wechat") else []

    per_day_channel: Dict[Tuple[str, str], set] = defaultdict(set)
    turns_day_channel: Counter = Counter()
    per_day: Dict[str, set] = defaultdict(set)
    for t in turns:
        per_day_channel[(t.day.isoformat(), t.channel)].add(t.sender)
        turns_day_channel[(t.day.isoformat(), t.channel)] += 1
        per_day[t.day.isoformat()].add(t.sender)
    days = [d.isoformat() for d in DAYS]
    handoffs_per_day = Counter(t[0].isoformat() for t in tickets)
    reasons = Counter(t[2] for t in tickets)

    def rating_counts(rows) -> Dict[str, object]:
        kinds = Counter(r[2] for r in rows)
        return {"good": kinds["good"], "bad": kinds["bad"], "neutral": kinds["neutral"],
                "complaints": kinds["complaint"], "satisfaction": rate(kinds["good"], kinds["good"] + kinds["bad"])}

    items = Counter(t.item for t in turns if t.item)
    item_conversations = {key: len({t.sender for t in turns if t.item == key}) for key in items}
    intents = Counter(t.script.intent for t in turns)
    topics = Counter(TOPICS[t.script.text] for t in turns if not t.understood)
    last_seen = {topic: max(t.day for t in turns if not t.understood and TOPICS[t.script.text] == topic).isoformat()
                 for topic in topics}
    delays: Dict[str, List[int]] = defaultdict(list)
    for t in turns:
        delays[t.channel].append(t.delay_ms)
        delays["all"].append(t.delay_ms)
    notice_states: Dict[str, Counter] = defaultdict(Counter)
    for _, ch, state in notices:
        notice_states[ch][state] += 1
    wechat_states = Counter(state for _, state in wechat)
    conversations = len({t.sender for t in turns})
    good = sum(1 for r in ratings if r[2] == "good")
    bad = sum(1 for r in ratings if r[2] == "bad")
    return {
        "conversations_daily": sorted(
            (day, ch, len(senders), turns_day_channel[(day, ch)]) for (day, ch), senders in per_day_channel.items()),
        "understood_daily": [
            (d, sum(1 for t in turns if t.day.isoformat() == d),
             sum(1 for t in turns if t.day.isoformat() == d and t.understood)) for d in days],
        "handoffs_daily": [(d, len(per_day[d]), handoffs_per_day[d], rate(handoffs_per_day[d], len(per_day[d])))
                           for d in days],
        "handoff_reasons": sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])),
        "ratings_by_item": {key: rating_counts([r for r in ratings if r[3] == key]) for key in {r[3] for r in ratings}},
        "ratings_by_channel": {key: rating_counts([r for r in ratings if r[1] == key]) for key in {r[1] for r in ratings}},
        "top_items": sorted(((k, v, item_conversations[k]) for k, v in items.items()), key=lambda x: (-x[1], x[0]))[:10],
        "top_questions": sorted(intents.items(), key=lambda kv: (-kv[1], kv[0]))[:10],
        "not_covered": sorted(((k, v, last_seen[k]) for k, v in topics.items()), key=lambda x: (-x[1], x[0]))[:20],
        "response_times": {ch: (len(v), [nearest_rank(v, p) for p in (50, 90, 95, 99)]) for ch, v in delays.items()},
        "notices": {ch: dict(states) for ch, states in notice_states.items()},
        "wechat": dict(wechat_states),
        "totals": {
            "conversations": conversations,
            "turns": len(turns),
            "understood": sum(1 for t in turns if t.understood),
            "handoffs": len(tickets),
            "handoff_rate": rate(len(tickets), conversations),
            "good": good,
            "bad": bad,
            "complaints": sum(1 for r in ratings if r[2] == "complaint"),
            "satisfaction": rate(good, good + bad),
        },
    }


def check_report(body: dict, want: Dict[str, object]) -> None:
    tables = {name: table["rows"] for name, table in body["tables"].items()}
    assert [(r["day"], r["channel"], r["conversations"], r["turns"]) for r in tables["conversations_daily"]] == \
        want["conversations_daily"]
    assert [(r["day"], r["turns"], r["understood"]) for r in tables["understood_daily"]] == want["understood_daily"]
    assert all(r["rate"] == rate(r["understood"], r["turns"]) for r in tables["understood_daily"])
    assert [(r["day"], r["conversations"], r["handoffs"], r["rate"]) for r in tables["handoffs_daily"]] == \
        want["handoffs_daily"]
    assert [(r["reason"], r["count"]) for r in tables["handoff_reasons"]] == want["handoff_reasons"]
    assert {r["item_id"]: {k: r[k] for k in ("good", "bad", "neutral", "complaints", "satisfaction")}
            for r in tables["ratings_by_item"]} == want["ratings_by_item"]
    assert {r["channel"]: {k: r[k] for k in ("good", "bad", "neutral", "complaints", "satisfaction")}
            for r in tables["ratings_by_channel"]} == want["ratings_by_channel"]
    assert [(r["item_id"], r["turns"], r["conversations"]) for r in tables["top_items"]] == want["top_items"]
    assert [(r["intent"], r["turns"]) for r in tables["top_questions"]] == want["top_questions"]
    assert [(r["topic"], r["count"], r["last_day"]) for r in tables["not_covered"]] == want["not_covered"]
    assert {r["channel"]: (r["turns"], [r["p50_ms"], r["p90_ms"], r["p95_ms"], r["p99_ms"]])
            for r in tables["response_times"]} == want["response_times"]
    notices = {r["channel"]: {s: r[s] for s in ("pending", "sent", "failed", "capped") if r[s]}
               for r in tables["notifications"] if r["kind"] == "progress"}
    assert notices == want["notices"]
    wechat = [{s: r[s] for s in ("pending", "sent", "failed", "capped") if r[s]}
              for r in tables["notifications"] if r["kind"] == "wechat"]
    assert wechat == ([want["wechat"]] if want["wechat"] else [])
    totals = body["totals"]
    for key, value in want["totals"].items():
        assert totals[key] == value, key


# ------------------------------------------------------------------ the numbers
def test_the_seeded_week_in_numbers(admin, week):
    reply = admin.get(f"{API}/report", params=WEEK)
    assert reply.status_code == 200, reply.text
    assert reply.headers["cache-control"] == "no-store"
    body = reply.json()
    check_report(body, expected(week))
    # A few literal figures of the plan (the oracle itself could be wrong).
    totals = body["totals"]
    assert (totals["conversations"], totals["turns"], totals["understood"]) == (38, 81, 57)
    assert (totals["handoffs"], totals["good"], totals["bad"], totals["complaints"]) == (13, 3, 5, 4)
    assert (totals["notices_sent"], totals["notices_failed"], totals["notices_pending"]) == (42, 4, 4)
    assert body["range"] == {**body["range"], "start": "2026-11-02", "end": "2026-11-08", "days": 7,
                             "timezone": "Asia/Shanghai"}
    # The question a second before midnight, answered after it, is the last day's, 1.5 s.
    last = body["tables"]["understood_daily"]["rows"][-1]
    assert last["day"] == "2026-11-08"
    web = next(r for r in body["tables"]["response_times"]["rows"] if r["channel"] == "web")
    assert web["p99_ms"] == 1500


@pytest.mark.parametrize("channel,item", [("wechat", None), (None, "passport"), ("kiosk", "social_security_card_reissue"),
                                          ("hotline", None)])
def test_filters_by_channel_and_item(admin, week, channel, item):
    params = {**WEEK, **({"channel": channel} if channel else {}), **({"item": item} if item else {})}
    reply = admin.get(f"{API}/report", params=params)
    assert reply.status_code == 200, reply.text
    check_report(reply.json(), expected(week, channel, item))


def test_the_same_report_from_the_service_for_a_day(app_settings, week, app):
    one_day = build_report(app_settings, app.state.catalog, Filters(DAYS[3], DAYS[3]))
    day_turns = [t for t in week.week_turns() if t.day == DAYS[3]]
    assert one_day["totals"]["turns"] == len(day_turns)
    assert one_day["totals"]["conversations"] == len({t.sender for t in day_turns})


# ------------------------------------------------------------------ personal data
def test_no_raw_text_or_ids_are_kept(app_settings, admin, week):
    around = {"start": (FIRST_DAY - dt.timedelta(days=1)).isoformat(), "end": (LAST_DAY + dt.timedelta(days=1)).isoformat()}
    assert admin.get(f"{API}/report", params=around).json()["totals"]["turns"] == 81 + 3  # and the edges outside
    with session_factory(app_settings.db_url)() as db:
        rows = db.execute(select(AnalyticsTurn)).scalars().all()
    assert len(rows) == 81 + 3
    kept = " ".join(f"{r.conversation} {r.topic or ''}" for r in rows)
    assert "13812345678" not in kept and "张三" not in kept
    assert not any(t.sender in kept for t in week.turns)
    assert all(r.topic is None for r in rows if r.understood)


# ------------------------------------------------------------------ CSV
def test_every_table_as_csv(admin, app_settings, week):
    body = admin.get(f"{API}/report", params=WEEK).json()
    for name, table in body["tables"].items():
        reply = admin.get(f"{API}/export/{name}.csv", params=WEEK)
        assert reply.status_code == 200, (name, reply.text)
        assert reply.headers["content-type"].startswith("text/csv")
        assert f'filename="banshi-{name}-2026-11-02-2026-11-08.csv"' in reply.headers["content-disposition"]
        assert reply.content.startswith("\ufeff".encode())
        rows = list(csv.reader(io.StringIO(reply.content.decode("utf-8-sig"))))
        assert rows[0] == [c["label"] for c in table["columns"]]
        assert len(rows) == len(table["rows"]) + 1
    topics = admin.get(f"{API}/export/not_covered.csv", params=WEEK).content.decode("utf-8-sig")
    assert "我叫张* 电话138****5678 想问游艇驾驶证怎么考" in topics and "13812345678" not in topics
    with session_factory(app_settings.db_url)() as db:
        audited = db.execute(
            select(func.count()).select_from(AuditRecord).where(AuditRecord.action == "admin.analytics.export")
        ).scalar_one()
    assert audited >= len(body["tables"]) + 1
    with session_factory(app_settings.db_url)() as db:
        viewed = db.execute(select(AuditRecord).where(AuditRecord.action == "admin.analytics.view")).scalars().all()
    assert any(r.subject == "2026-11-02..2026-11-08" and r.actor.startswith("operator:") for r in viewed)


def test_csv_cells_never_run_as_formulas():
    data = export.to_csv([("topic", "群众的说法"), ("count", "次数")],
                         [{"topic": "=HYPERLINK(\"http://x\")", "count": 3}, {"topic": "+1", "count": None},
                          {"topic": "-2", "count": 0}, {"topic": "@a", "count": 1}, {"topic": "正常", "count": 2}])
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == ["'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@a", "正常"]
    assert [r[1] for r in rows[1:]] == ["3", "", "0", "1", "2"]


# ------------------------------------------------------------------ bad requests
@pytest.mark.parametrize("params,status,detail", [
    ({"start": "2026-11-08", "end": "2026-11-02"}, 422, "结束日期不能早于开始日期"),
    ({"start": "2025-01-01", "end": "2026-11-02"}, 422, "统计范围最长366天，请缩短日期范围"),
    ({"start": "2026-02-30", "end": "2026-03-02"}, 422, "日期格式不正确，请使用 年-月-日，例如 2026-11-02"),
    ({"start": "2026/11/02"}, 422, None),
    ({"start": "0001-01-01", "end": "0001-01-02"}, 422, "日期须在2000年到2099年之间"),
    ({"start": "9999-12-30", "end": "9999-12-31"}, 422, "日期须在2000年到2099年之间"),
    ({"channel": "fax"}, 422, "没有这个渠道"),
    ({"item": "no_such_item"}, 422, "没有这个事项"),
    ({"item": "x" * 65}, 422, None),
])
def test_bad_filters_are_a_clear_4xx(admin, params, status, detail):
    reply = admin.get(f"{API}/report", params=params)
    assert reply.status_code == status, reply.text
    if detail:
        assert reply.json()["detail"] == detail


def test_unknown_table_is_404(admin):
    reply = admin.get(f"{API}/export/secrets.csv", params=WEEK)
    assert reply.status_code == 404 and reply.json()["detail"] == "没有这张统计表"


def test_default_range_is_the_last_seven_days(admin):
    body = admin.get(f"{API}/report").json()
    assert body["range"]["days"] == 7
    assert dt.date.fromisoformat(body["range"]["end"]) - dt.date.fromisoformat(body["range"]["start"]) == dt.timedelta(6)


# ------------------------------------------------------------------ who may see it
@pytest.mark.parametrize("method,path", ROUTES)
def test_every_analytics_route_refuses_operators_and_anonymous_users(app, week, method, path):
    anonymous = TestClient(app).request(method, path)
    assert anonymous.status_code == 401
    operator = login(app, "operator")
    refused = operator.request(method, path)
    assert refused.status_code == 403
    admin = login(app, "admin")
    allowed = admin.request(method, path)
    assert allowed.status_code == 200, allowed.text
    if path.startswith("/api/"):
        assert anonymous.json()["detail"] == "请先登录" and refused.json()["detail"] == "没有权限"
    else:  # the page: a login form for anonymous visitors, a plain refusal for operators
        assert 'id="login-form"' in anonymous.text and "没有权限" in refused.text
        if path == "/admin/analytics":  # other admin pages (/admin/catalog, ...) have their own tests
            assert 'src="/static/vendor/chartjs/chart.umd.min.js"' in allowed.text
        for reply in (anonymous, refused, allowed):
            assert reply.headers["cache-control"] == "no-store"
            assert "script-src 'self'" in reply.headers["content-security-policy"]


def test_the_charting_library_is_served_locally_with_its_licence(app):
    client = TestClient(app)
    library = client.get("/static/vendor/chartjs/chart.umd.min.js")
    assert library.status_code == 200 and "Chart.js v4.6.2" in library.text[:200]
    licence = client.get("/static/vendor/chartjs/LICENSE.md")
    assert licence.status_code == 200 and "MIT" in licence.text


# ------------------------------------------------------------------ rollup bookkeeping
@pytest.fixture
def fresh(settings, tmp_path):
    isolated = isolated_settings(settings, tmp_path, timezone="Asia/Shanghai")
    return isolated, seed_week(isolated)


def day_rows(url: str) -> Dict[dt.date, Tuple[bool, int]]:
    with session_factory(url)() as db:
        return {r.day: (r.complete, r.turns) for r in db.execute(select(AnalyticsDay)).scalars()}


def test_a_day_is_complete_once_it_settled_and_never_read_again(fresh):
    config, week = fresh
    noon_last_day = dt.datetime(2026, 11, 8, 4, 0)  # 12:00 in Beijing, UTC naive
    done = rollup.refresh(config, FIRST_DAY, LAST_DAY, now=noon_last_day)
    assert done.days == DAYS
    rows = day_rows(config.db_url)
    assert [rows[d][0] for d in DAYS] == [True] * 6 + [False]  # today is not complete
    # Within a minute nothing is read again; after it, only the unfinished day.
    assert rollup.refresh(config, FIRST_DAY, LAST_DAY, now=noon_last_day + dt.timedelta(seconds=30)).days == []
    later = rollup.refresh(config, FIRST_DAY, LAST_DAY, now=noon_last_day + dt.timedelta(seconds=61))
    assert later.days == [LAST_DAY]
    # The next morning the last day is complete, and the days after today are skipped.
    morning = dt.datetime(2026, 11, 9, 1, 0)
    assert rollup.refresh(config, FIRST_DAY, LAST_DAY + dt.timedelta(days=5), now=morning).days == [
        LAST_DAY, LAST_DAY + dt.timedelta(days=1)]
    rows = day_rows(config.db_url)
    assert rows[LAST_DAY] == (True, sum(1 for t in week.turns if t.day == LAST_DAY))
    assert LAST_DAY + dt.timedelta(days=2) not in rows


def test_replicas_refreshing_one_day_at_once_leave_one_copy(fresh):
    config, week = fresh
    engine = rollup.tracker_engine(config.trackers_url)
    turns = rollup.read_day(engine, DAYS[2], rollup.ZoneInfo(config.timezone), config.secret())
    assert len(turns) == sum(1 for t in week.turns if t.day == DAYS[2])
    results: List[bool] = []
    moment = dt.datetime(2026, 11, 4, 8, 0)
    threads = [threading.Thread(target=lambda: results.append(
        rollup.store_day(config.db_url, DAYS[2], turns, moment, False))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) >= 1
    with session_factory(config.db_url)() as db:
        stored = db.execute(select(func.count()).select_from(AnalyticsTurn).where(AnalyticsTurn.day == DAYS[2])).scalar_one()
    assert stored == len(turns)


def test_the_tracker_store_gets_its_timestamp_index(fresh):
    config, _ = fresh
    rollup.refresh(config, FIRST_DAY, FIRST_DAY)
    from sqlalchemy import inspect

    indexes = {i["name"] for i in inspect(rollup.tracker_engine(config.trackers_url)).get_indexes("events")}
    assert rollup.TIMESTAMP_INDEX in indexes


def test_topics_are_masked_and_folded():
    assert rollup.topic_of(PII_TEXT) == TOPICS[PII_TEXT]
    # The ID number masked by mask_pii, the digits it leaves folded too.
    assert rollup.topic_of("身份证号110101199003071234能办吗") == "身份证号#********1234能办吗"
    assert rollup.topic_of("卡号6222020200112233445，ABC") == "卡号# abc"
    assert rollup.topic_of("  ？？ ") is None


def test_the_refresh_command():
    done = run_cli(["analytics", "refresh", "--start", "2026-10-05", "--end", "2026-10-11"])
    assert done.returncode == 0, done.stderr
    assert "已统计 7 天" in done.stdout
    again = run_cli(["analytics", "refresh", "--start", "2026-10-05", "--end", "2026-10-11"])
    assert "已统计 0 天" in again.stdout  # complete days are never read again
    bad = run_cli(["analytics", "refresh", "--start", "2026/10/05"])
    assert bad.returncode == 2 and "日期格式不正确" in bad.stderr
    backwards = run_cli(["analytics", "refresh", "--start", "2026-10-11", "--end", "2026-10-05"])
    assert backwards.returncode == 2 and "结束日期不能早于开始日期" in backwards.stderr
