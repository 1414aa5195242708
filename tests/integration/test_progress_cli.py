"""`banshi progress import` and `banshi demo-data`, run as a user runs them, on a
fresh data directory (the database is created and migrated on first use)."""

import pytest

from tests.conftest import BACKEND, run_cli

HEADER = (
    "number,item_id,applicant_name,phone,id_number,promised_date,pickup_method,"
    "status,at,note,missing_materials\n"
)


@pytest.fixture
def fresh_data_dir(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("BANSHI_DATA_DIR", str(data))  # run_cli's subprocess inherits it
    return data


def test_demo_data_prints_numbers_states_and_phone_tails(fresh_data_dir):
    result = run_cli(["demo-data"], timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    if BACKEND == "sqlite":
        assert (fresh_data_dir / "banshi.db").exists()
    lines = result.stdout.splitlines()
    assert "已载入 5 件演示办件" in lines[0]
    expected = [
        ("ZW20251102001", "已受理", "1001"),
        ("ZW20251102002", "审核中", "2002"),
        ("ZW20251102003", "需补正材料", "3003"),
        ("ZW20251102004", "已办结", "4004"),
        ("ZW20251102005", "不予受理", "5005"),
    ]
    rows = [line.split()[:3] for line in lines[2:]]
    assert rows == [list(row) for row in expected]
    again = run_cli(["demo-data"], timeout=120)  # loading twice replaces, does not duplicate
    assert again.returncode == 0 and again.stdout == result.stdout


def test_progress_import_good_file(fresh_data_dir, tmp_path):
    source = tmp_path / "applications.csv"
    source.write_text(
        "\ufeff" + HEADER
        + "ZW20260101001,passport,赵小明,13912345678,,2026-12-20,邮寄,受理,2026-11-20 09:30,,\n"
        + "ZW20260101001,passport,赵小明,13912345678,,2026-12-20,邮寄,需补正,2026-11-21 10:00,"
        + "照片不合格,近期免冠证件照片\n"
        + "zw 2026-0101-002,social_security_card,钱多多,139-0000-1111,,2026-12-31,,accepted,2026-11-22 08:00,,\n",
        encoding="utf-8",
    )
    result = run_cli(["progress", "import", str(source)], timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "已导入 2 件办件，3 条进度记录。"


def test_progress_import_bad_file_names_line_and_field(fresh_data_dir, tmp_path):
    source = tmp_path / "bad.csv"
    source.write_text(
        HEADER
        + "ZW20260101001,passport,赵小明,13912345678,,2026-12-20,邮寄,受理,2026-11-20 09:30,,\n"
        + "ZW20260101002,passport,孙小红,1391234,,2026-12-20,邮寄,受理,2026-11-20 09:30,,\n"
        + "ZW20260101003,no_such_item,周小刚,13912340000,,2026-12-20,邮寄,受理,2026-11-20 09:30,,\n",
        encoding="utf-8",
    )
    result = run_cli(["progress", "import", str(source)], timeout=120)
    assert result.returncode == 2
    assert "line 3: phone: " in result.stderr and "line 4: item_id: " in result.stderr
    assert "1391234" not in result.stderr  # the bad value is not echoed
    assert "已导入" not in result.stdout
    # nothing was written: the good first row is not there either
    from assistant.services.progress.providers import load_view

    assert load_view(f"sqlite:///{fresh_data_dir / 'banshi.db'}", "ZW20260101001") is None
