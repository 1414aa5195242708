"""`banshi kb import`: CSV and XLSX in the documented column layout."""

import csv

import pytest
from openpyxl import Workbook

from knowledge.importer import COLUMNS, ImportError_, import_file
from knowledge.schema import ItemRecord
import yaml

ROW = {
    "id": "passport",
    "kind": "item",
    "name": "普通护照签发",
    "department": "出入境",
    "summary": "申请普通护照。",
    "aliases": "护照;办护照\n护找",
    "examples": "我想办护照;护照怎么办;出国要办啥证",
    "applicants": "中国公民。",
    "conditions": "具有中国国籍",
    "materials": "居民身份证|original|1|yes|\n近期免冠证件照片|other|1|no|现场采集\n监护人居民身份证|original|1|yes||no|未成年人申请时",
    "steps": "预约;现场采集;领取",
    "time_limit": "7个工作日",
    "fees": "每本120元",
    "where_window": "出入境接待大厅",
    "where_online": "国家移民管理局政务服务平台",
    "where_phone": "12367",
    "cross_province": "是",
    "cross_province_note": "全国通办。",
    "legal_basis": "《中华人民共和国护照法》",
    "local_variation": "",
    "verified": "2026-11-01",
    "source": "国家移民管理局",
    "members": "",
}


def write_csv(path, rows):
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def test_csv_import_writes_valid_yaml(tmp_path):
    source = tmp_path / "catalog.csv"
    write_csv(source, [ROW])
    written = import_file(source, tmp_path / "out")
    assert [p.name for p in written] == ["passport.yml"]
    record = ItemRecord.parse_obj(yaml.safe_load(written[0].read_text(encoding="utf-8")))
    assert record.aliases == ["护照", "办护照", "护找"]
    assert record.materials[2].required is False and record.materials[2].condition == "未成年人申请时"
    assert record.cross_province.available is True


def test_xlsx_import(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(COLUMNS)
    sheet.append([ROW[c] for c in COLUMNS])
    source = tmp_path / "catalog.xlsx"
    book.save(source)
    assert len(import_file(source, tmp_path / "out")) == 1


def test_bad_row_names_row_and_field_and_writes_nothing(tmp_path):
    source = tmp_path / "catalog.csv"
    write_csv(source, [ROW, {**ROW, "id": "hk_macau_permit", "fees": ""}])
    with pytest.raises(ImportError_) as err:
        import_file(source, tmp_path / "out")
    assert "row 3 (hk_macau_permit): fees" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_missing_columns_and_wrong_type(tmp_path):
    source = tmp_path / "catalog.csv"
    source.write_text("id,kind\npassport,item\n", encoding="utf-8")
    with pytest.raises(ImportError_, match="missing columns"):
        import_file(source, tmp_path / "out")
    with pytest.raises(ImportError_, match="only .csv and .xlsx"):
        import_file(tmp_path / "catalog.json", tmp_path / "out") if (tmp_path / "catalog.json").write_text("{}") else None
