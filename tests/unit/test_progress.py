"""Application progress: numbers, hashing, CSV import, the local provider, the
verification guard and the audit log (SQLite in a temporary directory, no model)."""

import asyncio
import csv
import datetime as dt

import pytest
from sqlalchemy import create_engine, text

from assistant.security.audit import (
    citizen_actor,
    list_audit,
    operator_actor,
    record_audit,
    record_audit_async,
)
from assistant.services.progress import importer, providers
from assistant.services.progress.guard import (
    LOCK_MINUTES,
    MAX_FAILURES,
    locked_until,
    record_failure,
    record_success,
)
from assistant.services.progress.importer import ProgressImportError, import_csv, load_demo_data
from assistant.services.progress.providers import HttpProvider, LocalProvider, ProgressProvider, get_provider
from assistant.services.progress.records import (
    ApplicationView,
    mask_name,
    normalize_number,
    pii_hash,
    verify_phone_tail,
)
from assistant.storage.tables import (
    STATUS_ACCEPTED,
    STATUS_COMPLETED,
    STATUS_REJECTED,
    STATUS_REVIEWING,
    STATUS_SUPPLEMENT,
)
from knowledge.catalog import load_catalog

SECRET = b"s" * 32
COLUMNS = [
    "number", "item_id", "applicant_name", "phone", "id_number", "promised_date",
    "pickup_method", "status", "at", "note", "missing_materials",
]
GOOD = {
    "number": "ZW20250318007",
    "item_id": "passport",
    "applicant_name": "赵小明",
    "phone": "13912345678",
    "id_number": "11010519880512003X",
    "promised_date": "2026-12-20",
    "pickup_method": "邮寄",
    "status": "受理",
    "at": "2026-11-20 09:30",
    "note": "已受理。",
    "missing_materials": "",
}


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'providers.db'}"


def write_csv(path, rows, columns=COLUMNS, bom=False):
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def rows_of(db_url, table):
    with create_engine(db_url).connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table}"))]


def count(db_url, table):
    providers.load_view(db_url, "ZW00000000000")  # make sure the schema exists
    return len(rows_of(db_url, table))


# ------------------------------------------------------------------ numbers
@pytest.mark.parametrize(
    "text, expected",
    [
        ("ZW20250318007", "ZW20250318007"),
        ("zw20250318007", "ZW20250318007"),
        ("ＺＷ２０２５０３１８００７", "ZW20250318007"),  # full-width
        ("zw 2025-0318-007", "ZW20250318007"),
        ("ZW 2025 0318 007", "ZW20250318007"),
        ("我的办件号是ｚｗ２０２５－０３１８－００７，手机尾号1234", "ZW20250318007"),
        ("受理号ZW20250318007办好了吗", "ZW20250318007"),
        ("帮我查一下进度", None),
        ("ZW2025031800", None),  # 10 digits
        ("ZW202503180071", None),  # 12 digits
        ("XZW20250318007", None),
        ("13812345678", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_number(text, expected):
    assert normalize_number(text) == expected


# ------------------------------------------------------------ personal data
def test_pii_hash_is_keyed_salted_and_ignores_separators():
    value = pii_hash(SECRET, "salt1", "138 1234-5678")
    assert value == pii_hash(SECRET, "salt1", "13812345678")
    assert value != pii_hash(SECRET, "salt2", "13812345678")
    assert value != pii_hash(b"t" * 32, "salt1", "13812345678")
    assert len(value) == 64


def test_mask_name():
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("") == ""


def test_verify_phone_tail():
    view = ApplicationView("ZW20250318007", "passport", "张*", "5678", STATUS_ACCEPTED)
    assert verify_phone_tail(view, "5678")
    assert verify_phone_tail(view, "５６７８")
    assert verify_phone_tail(view, "13812345678")
    assert not verify_phone_tail(view, "5679")
    assert not verify_phone_tail(view, "678")
    assert not verify_phone_tail(view, "")


# ------------------------------------------------------------------- import
def test_import_groups_steps_and_takes_latest_status(tmp_path, db_url):
    rows = [
        {**GOOD, "status": "reviewing", "at": "2026-11-21 10:00"},
        {**GOOD},  # older step listed after a newer one
        {**GOOD, "number": "ZW20250318008", "phone": "13700001111", "id_number": "", "status": "不予受理",
         "at": "2026-11-22 08:00", "note": "不符合条件。", "promised_date": "", "pickup_method": ""},
    ]
    report = import_csv(db_url, write_csv(tmp_path / "a.csv", rows, bom=True), SECRET)
    assert (report.applications, report.events) == (2, 3)
    view = providers.load_view(db_url, "ZW20250318007")
    assert view.status == STATUS_REVIEWING
    assert [s.status for s in view.steps] == [STATUS_ACCEPTED, STATUS_REVIEWING]
    assert view.applicant_masked == "赵**" and view.phone_last4 == "5678"
    assert view.promised_date == dt.date(2026, 12, 20) and view.pickup_method == "邮寄"
    other = providers.load_view(db_url, "ZW20250318008")
    assert other.status == STATUS_REJECTED and other.promised_date is None


def test_import_stores_no_raw_personal_data(tmp_path, db_url):
    load_demo_data(db_url, SECRET)
    import_csv(db_url, write_csv(tmp_path / "a.csv", [GOOD]), SECRET)
    with (importer.DEMO_CSV).open(encoding="utf-8") as handle:
        demo = list(csv.DictReader(handle))
    raw = {GOOD["phone"], GOOD["id_number"], GOOD["applicant_name"]}
    for row in demo:
        raw |= {row["phone"], row["id_number"], row["applicant_name"]}
    tables = ("applications", "application_events")
    dump = " ".join(str(cell) for table in tables for r in rows_of(db_url, table) for cell in r)
    assert "ZW20251102001" in dump  # the dump holds the data
    for value in raw:
        assert value not in dump
    # and the hash is what a verification with the full number would compute
    apps = {r[0]: r for r in rows_of(db_url, "applications")}
    number, _item, _name, salt, phone_hash = apps["ZW20250318007"][:5]
    assert phone_hash == pii_hash(SECRET, salt, GOOD["phone"])
    assert len({r[3] for r in apps.values()}) == len(apps)  # one salt per record


BAD_ROWS = [
    ({"number": "ZW2025031800"}, "number"),
    ({"number": "AB20250318007"}, "number"),
    ({"item_id": "no_such_item"}, "item_id"),
    ({"status": "搞定了"}, "status"),
    ({"at": "2026-13-01 09:30"}, "at"),
    ({"at": ""}, "at"),
    ({"promised_date": "明天"}, "promised_date"),
    ({"phone": "1391234567"}, "phone"),
    ({"phone": "1391234567a"}, "phone"),
    ({"phone": "12912345678"}, "phone"),  # no mobile number (pii.MOBILE): it would go unmasked in logs
    ({"id_number": "110105-19880512-003X"}, "id_number"),
    ({"id_number": "1101051988051200"}, "id_number"),
    ({"status": "需补正", "missing_materials": ""}, "missing_materials"),
    ({"status": "受理", "missing_materials": "护照"}, "missing_materials"),
    ({"applicant_name": ""}, "applicant_name"),
    ({"applicant_name": "名" * 33}, "applicant_name"),
]


@pytest.mark.parametrize("change, field", BAD_ROWS)
def test_import_rejects_a_bad_row_and_writes_nothing(tmp_path, db_url, change, field):
    rows = [{**GOOD, "number": "ZW20250318001"}, {**GOOD, **change}]
    with pytest.raises(ProgressImportError) as info:
        import_csv(db_url, write_csv(tmp_path / "bad.csv", rows), SECRET)
    assert f"line 3: {field}: " in str(info.value)
    assert count(db_url, "applications") == 0 and count(db_url, "application_events") == 0
    if field in ("phone", "id_number"):
        assert change[field] not in str(info.value)  # never echoed


def test_import_flags_conflicting_rows_of_one_number(tmp_path, db_url):
    rows = [GOOD, {**GOOD, "phone": "13900000000", "status": "审核中", "at": "2026-11-21 10:00"}]
    with pytest.raises(ProgressImportError, match=r"line 3: phone: "):
        import_csv(db_url, write_csv(tmp_path / "bad.csv", rows), SECRET)


def test_import_reports_every_problem_and_missing_columns(tmp_path, db_url):
    rows = [{**GOOD, "phone": "1"}, {**GOOD, "item_id": "x", "status": "?"}]
    with pytest.raises(ProgressImportError) as info:
        import_csv(db_url, write_csv(tmp_path / "bad.csv", rows), SECRET)
    assert info.value.problems == [
        "line 2: phone: 应为 11 位手机号码",
        "line 3: item_id: 未知的事项编号 'x'（见 knowledge/spec/service-items.tsv）",
        "line 3: status: 应为 受理、审核中、需补正、办结、不予受理 之一（或 accepted 等代码）",
    ]
    path = write_csv(tmp_path / "cols.csv", [{"number": GOOD["number"]}], columns=["number", "item_id"])
    with pytest.raises(ProgressImportError, match="缺少列 applicant_name, phone, status, at"):
        import_csv(db_url, path, SECRET)


def test_import_is_bounded(tmp_path, db_url, monkeypatch):
    path = write_csv(tmp_path / "a.csv", [GOOD, {**GOOD, "at": "2026-11-21 10:00"}])
    monkeypatch.setattr(importer, "MAX_IMPORT_ROWS", 1)
    with pytest.raises(ProgressImportError, match="超过 1 行"):
        import_csv(db_url, path, SECRET)
    monkeypatch.setattr(importer, "MAX_IMPORT_ROWS", 100_000)
    monkeypatch.setattr(importer, "MAX_IMPORT_BYTES", 100)
    with pytest.raises(ProgressImportError, match="文件超过"):
        import_csv(db_url, path, SECRET)
    assert count(db_url, "applications") == 0


def test_reimport_replaces_record_and_steps(tmp_path, db_url):
    load_demo_data(db_url, SECRET)
    before = providers.load_view(db_url, "ZW20251102003")
    assert before.status == STATUS_SUPPLEMENT and len(before.steps) == 3
    update = {**GOOD, "number": "ZW20251102003", "item_id": "social_security_card", "phone": "13800003003",
              "status": "办结", "pickup_method": "窗口领取"}
    report = import_csv(db_url, write_csv(tmp_path / "u.csv", [update]), SECRET)
    assert (report.applications, report.events) == (1, 1)
    after = providers.load_view(db_url, "ZW20251102003")
    assert after.status == STATUS_COMPLETED and len(after.steps) == 1
    assert after.pickup_method == "窗口领取" and after.applicant_masked == "赵**"
    assert providers.load_view(db_url, "ZW20251102004").status == STATUS_COMPLETED  # untouched
    assert count(db_url, "applications") == 5
    assert count(db_url, "application_events") == 11 - 3 + 1


# ----------------------------------------------------------- local provider
DEMO_STATES = {
    "ZW20251102001": (STATUS_ACCEPTED, "1001"),
    "ZW20251102002": (STATUS_REVIEWING, "2002"),
    "ZW20251102003": (STATUS_SUPPLEMENT, "3003"),
    "ZW20251102004": (STATUS_COMPLETED, "4004"),
    "ZW20251102005": (STATUS_REJECTED, "5005"),
}


async def test_local_provider_finds_every_demo_state(db_url):
    report = load_demo_data(db_url, SECRET)
    assert report.numbers == sorted(DEMO_STATES)
    provider = LocalProvider(db_url)
    catalog = load_catalog()
    for number, (status, last4) in DEMO_STATES.items():
        view = await provider.lookup(number)
        assert (view.status, view.phone_last4) == (status, last4)
        assert view.item_id in catalog.records
        assert [s.at for s in view.steps] == sorted(s.at for s in view.steps)
        assert view.steps[-1].status == status
        assert view.applicant_masked.endswith("*")
        if status == STATUS_SUPPLEMENT:
            names = {m.name for m in catalog.records[view.item_id].materials}
            assert view.missing_materials and set(view.missing_materials) <= names
        if status == STATUS_COMPLETED:
            assert view.pickup_method
        if status == STATUS_REJECTED:
            assert view.steps[-1].note
        if status != STATUS_REJECTED:
            assert view.promised_date >= dt.date(2026, 12, 1)
    assert await provider.lookup("zw 2025-1102-003") is not None
    assert await provider.lookup("ZW20991231999") is None
    assert await provider.lookup("没有号码") is None
    await provider.aclose()


def test_get_provider(settings):
    local = get_provider(settings)
    assert isinstance(local, LocalProvider) and isinstance(local, ProgressProvider)
    http = settings.copy(update={"progress_provider": "http", "progress_url": "http://127.0.0.1:9/cms"})
    provider = get_provider(http)
    assert isinstance(provider, HttpProvider) and provider.url == "http://127.0.0.1:9/cms"
    asyncio.run(provider.aclose())


# ------------------------------------------------------- verification guard
def test_three_failures_lock_until_the_lock_expires(db_url):
    number, t0 = "ZW20251102001", dt.datetime(2026, 11, 24, 10, 0)
    for i in range(1, MAX_FAILURES):
        assert record_failure(db_url, number, now=t0 + dt.timedelta(minutes=i)) == (i, None)
        assert locked_until(db_url, number, now=t0 + dt.timedelta(minutes=i)) is None
    t3 = t0 + dt.timedelta(minutes=MAX_FAILURES)
    failures, until = record_failure(db_url, number, now=t3)
    assert failures == MAX_FAILURES and until == t3 + dt.timedelta(minutes=LOCK_MINUTES)
    assert locked_until(db_url, number, now=t3 + dt.timedelta(minutes=LOCK_MINUTES - 1)) == until
    assert locked_until(db_url, "ZW20251102002", now=t3) is None  # other numbers are free
    assert locked_until(db_url, "zw 2025-1102-001", now=t3) == until  # however it is typed
    # still locked: another failure does not extend the lock
    assert record_failure(db_url, number, now=t3 + dt.timedelta(minutes=5))[1] == until
    later = until + dt.timedelta(seconds=1)
    assert locked_until(db_url, number, now=later) is None
    assert record_failure(db_url, number, now=later) == (1, None)  # a fresh count


def test_failures_at_the_same_instant_still_lock(db_url):
    # updated_at must be the given time, not the wall clock (its column's onupdate)
    now = dt.datetime(2030, 1, 1, 8, 0)
    results = [record_failure(db_url, "ZW20251102003", now=now) for _ in range(MAX_FAILURES)]
    assert results[-1] == (MAX_FAILURES, now + dt.timedelta(minutes=LOCK_MINUTES))


def test_success_resets_and_old_failures_expire(db_url):
    number, t0 = "ZW20251102002", dt.datetime(2026, 11, 24, 10, 0)
    record_failure(db_url, number, now=t0)
    record_failure(db_url, number, now=t0)
    record_success(db_url, number)
    assert record_failure(db_url, number, now=t0) == (1, None)
    record_failure(db_url, number, now=t0)
    # the next failure comes long after the last one: the count starts again
    assert record_failure(db_url, number, now=t0 + dt.timedelta(minutes=LOCK_MINUTES + 1)) == (1, None)


# -------------------------------------------------------------------- audit
async def test_audit_records_newest_first_and_filters(db_url):
    actor = citizen_actor("web-conversation-42")
    assert actor.startswith("citizen:") and "web-conversation-42" not in actor
    first = record_audit(db_url, actor=actor, action="providers.lookup", subject="ZW20251102001",
                         channel="web", result="ok")
    second = await record_audit_async(db_url, actor=operator_actor("wang"), action="desk.ticket.view",
                                      subject="17", result="ok")
    assert second > first
    rows = list_audit(db_url)
    assert [r["id"] for r in rows] == [second, first]
    assert rows[1]["actor"] == actor and rows[1]["subject"] == "ZW20251102001"
    assert [r["id"] for r in list_audit(db_url, action="providers.lookup")] == [first]
    assert len(list_audit(db_url, limit=1)) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "13812345678"},
        {"subject": "110105198805120034"},
        {"actor": "citizen:13812345678"},
        {"actor": operator_actor("138 1234 5678")},
        {"result": "wrong_code:13812345678"},
        {"actor": ""},
        {"subject": "x" * 65},
    ],
)
def test_audit_refuses_raw_personal_data(db_url, fields):
    record = {"actor": operator_actor("wang"), "action": "providers.lookup", "result": "ok", **fields}
    with pytest.raises(ValueError):
        record_audit(db_url, **record)
    assert list_audit(db_url) == []


def test_audit_accepts_numbers_that_look_like_phones(db_url):
    # ZW + 11 digits is an application number, even when the digits look like a mobile number.
    actor = operator_actor("wang")
    record_audit(db_url, actor=actor, action="providers.lookup", subject="ZW13812345678", result="ok")
    assert list_audit(db_url)[0]["subject"] == "ZW13812345678"
