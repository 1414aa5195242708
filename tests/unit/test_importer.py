"""`banshi kb import`: CSV and XLSX in the documented column layout."""

import csv

import pytest
from openpyxl import Workbook

from knowledge.importer import COLUMNS, ImportError_, import_file
from knowledge.schema import BundleRecord, ItemRecord
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
    "sources": "guide|普通护照办事指南|国家移民管理局||||2026-11-01\n"
    "fee2019|国家发展改革委 财政部关于降低部分行政事业性收费标准的通知|国家发展改革委、财政部|发改价格〔2019〕914号||2019-07-01|2026-12-04",
    "fees_source": "fee2019",
    "time_limit_source": "guide",
    "cross_province_source": "guide",
    "legal_basis_source": "guide",
    "materials_source": "guide",
    "produces": "护照",
}
BUNDLE_ROW = {
    **ROW,
    "id": "bundle_ss_card",
    "kind": "bundle",
    "name": "社会保障卡居民服务一件事",
    "department": "人社",
    "aliases": "社保卡一件事;社保卡一卡通;一卡通",
    "materials": "居民身份证|original|1|yes\n社会保障卡|original|1|no|交回原卡|no|换卡时\n近期免冠证件照片|other|1|no||||photo",
    "sources": ROW["sources"] + "\nphoto|各地社会保障卡申领指南|各地人力资源社会保障部门||||2026-12-04",
    "members": "social_security_card",
    "produces": "社会保障卡",
    "reviewed": "2026-12-04",
    "differs_from_members": "cross_province|电子社保卡全国通用",
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


def test_sources_and_bundle_fields_are_imported(tmp_path):
    source = tmp_path / "catalog.csv"
    write_csv(source, [ROW, BUNDLE_ROW])
    item_path, bundle_path = import_file(source, tmp_path / "out")
    item = ItemRecord.parse_obj(yaml.safe_load(item_path.read_text(encoding="utf-8")))
    assert [s.id for s in item.sources] == ["guide", "fee2019"]
    assert item.sources[1].number == "发改价格〔2019〕914号" and item.sources[1].effective.isoformat() == "2019-07-01"
    assert item.fees_source == ["fee2019"] and item.produces == ["护照"]
    bundle = BundleRecord.parse_obj(yaml.safe_load(bundle_path.read_text(encoding="utf-8")))
    assert bundle.produced == ["社会保障卡"] and bundle.reviewed.isoformat() == "2026-12-04"
    assert bundle.materials[1].required is False and bundle.materials[2].source == "photo"
    assert bundle.differs_from_members.cross_province == "电子社保卡全国通用"
    # Sources come last in the written file, after the facts that refer to them.
    assert list(yaml.safe_load(bundle_path.read_text(encoding="utf-8")))[-1] == "sources"


def test_fee_without_source_is_refused(tmp_path):
    source = tmp_path / "catalog.csv"
    write_csv(source, [{**ROW, "fees_source": ""}])
    with pytest.raises(ImportError_) as err:
        import_file(source, tmp_path / "out")
    assert "row 2 (passport): fees_source: missing" in str(err.value)


def test_xlsx_import(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(COLUMNS)
    sheet.append([ROW.get(c, "") for c in COLUMNS])
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
