"""The catalog audit of issue 11: each finding, quoted in the answer a citizen gets."""

import re

import pytest

from knowledge.answers import answer
from knowledge.schema import BundleRecord

CHECKED = re.compile(r"，\d{4}-\d{2}-\d{2} 核对$")


def required_names(catalog, item_id):
    return [m.name for m in catalog.materials_for(item_id) if m.required]


def line_of(text, start):
    return next(ln for ln in text.splitlines() if ln.startswith(start))


def material_text(catalog, item_id, name):
    text = answer(catalog, item_id, "materials")
    return next(ln for ln in text.splitlines() if re.match(rf"\d+\. {re.escape(name)}（", ln))


# --- the 8 serious findings -------------------------------------------------------


def test_1_lost_id_card_costs_40_yuan(catalog):
    text = answer(catalog, "id_card_reissue", "fee")
    assert "收费：丢失补领工本费40元；临时居民身份证工本费10元" in text
    assert "补领工本费20元" not in text
    last = text.splitlines()[-1]
    assert last.startswith("来源：《国家发展改革委 财政部关于居民身份证收费标准及有关问题的通知》（发改价格〔2003〕2322号）")
    assert CHECKED.search(last)


def test_2_damaged_id_card_renewal_costs_40_yuan(catalog):
    text = answer(catalog, "id_card_renewal", "fee")
    assert "有效期满换领工本费20元；证件损坏换领工本费40元" in text
    assert "发改价格〔2003〕2322号" in text.splitlines()[-1]


def test_3_newborn_registration_across_provinces(catalog):
    text = answer(catalog, "newborn_hukou", "location")
    assert "4. 异地办理：可以跨省通办。符合条件的可以在实际居住地跨省申报入户" in text
    assert "婚内出生、未满6周岁" in text and "另带结婚证和居住证" in text
    assert "暂不支持跨省通办" not in text
    assert "2024年1月19日起施行" in text.splitlines()[-1]
    assert "跨省在实际居住地申报入户时" in material_text(catalog, "newborn_hukou", "居住证")
    bundle = answer(catalog, "bundle_newborn", "location")
    assert "新生儿入户本身可以跨省办理：孩子婚内出生、未满6周岁" in bundle
    assert "跨省出生或异地落户，一般需要分别办理" not in bundle


def test_4_marriage_bundle_needs_no_household_register_and_issues_the_certificate(catalog):
    assert "居民户口簿" not in required_names(catalog, "bundle_marriage_birth")
    assert "结婚证" not in [m.name for m in catalog.materials_for("bundle_marriage_birth")]
    text = answer(catalog, "bundle_marriage_birth", "materials")
    assert "1. 居民身份证（原件1份）：男女双方各自的有效身份证。2025年5月10日起办理结婚登记不再需要户口簿。" in text
    assert "2. 申请结婚登记声明书（现场或网上填写）" in text
    assert "居民户口簿（原件1份，同时办理婚后户口迁移时）" in text
    assert "办好后您会拿到：结婚证、生育登记凭证，不用事先准备。" in text
    assert "国务院令第804号，2025年5月10日起施行" in text.splitlines()[-1]
    overview = answer(catalog, "bundle_marriage_birth", "overview")
    assert line_of(overview, "主要材料：") == "主要材料：居民身份证、申请结婚登记声明书、近期免冠证件照片、申请表"


def test_5_newborn_bundle_marriage_certificate_is_conditional(catalog):
    assert "结婚证" not in required_names(catalog, "bundle_newborn")
    assert material_text(catalog, "bundle_newborn", "结婚证").startswith(
        "5. 结婚证（原件1份，可用电子证照，父母已登记结婚的，按当地要求提供；非婚生育的无需提供）"
    )


def test_6_restaurant_bundle_has_an_individual_business_route(catalog):
    required = required_names(catalog, "bundle_restaurant")
    assert not {"营业执照", "公司章程", "董事、经理任职文件", "招牌设计效果图"} & set(required)
    text = answer(catalog, "bundle_restaurant", "materials")
    assert "公司章程（原件1份，选择设立公司时；选择个体户的无需提供）" in text
    assert "招牌设计效果图（设置户外招牌，且当地需要审批或备案时）" in text
    assert "办好后您会拿到：营业执照、食品经营许可证，不用事先准备。" in text
    assert not re.search(r"\d+\. 营业执照", text)


def test_7_business_startup_does_not_ask_for_its_own_licence(catalog):
    text = answer(catalog, "bundle_business_startup", "materials")
    assert not re.search(r"\d+\. 营业执照", text)
    assert "办好后您会拿到：营业执照、印章、发票" in text


def test_8_after_death_bundle_lists_heirs_documents_not_purchase_documents(catalog):
    names = [m.name for m in catalog.materials_for("bundle_after_death")]
    assert not {"借款合同", "房屋租赁合同", "不动产权证书"} & set(names)
    assert sum("居民身份证" in n and ("死者" in n or "逝者" in n) for n in names) == 1
    text = answer(catalog, "bundle_after_death", "materials")
    assert "继承权或受遗赠权证明（提取逝者的住房公积金时）" in text


# --- the smaller findings ---------------------------------------------------------


def test_retirement_bundle_has_no_death_purchase_or_rent_documents(catalog):
    names = {m.name for m in catalog.materials_for("bundle_retirement")}
    assert not {"居民死亡医学证明（推断）书", "借款合同", "房屋租赁合同", "不动产权证书"} & names


def test_school_entry_lists_the_rental_contract_once(catalog):
    text = answer(catalog, "bundle_school_entry", "materials")
    assert text.count("租赁合同") == 1
    assert "房屋租赁合同（复印件1份，租房居住、以居住地报名时）" in text


def test_funeral_subsidy_title_and_national_guide_materials(catalog):
    conditions = answer(catalog, "funeral_subsidy", "conditions")
    assert "《企业职工基本养老保险遗属待遇暂行办法》（人社部发〔2021〕18号）" in conditions
    assert "关于企业职工基本养老保险遗属待遇有关问题的通知" not in conditions
    materials = answer(catalog, "funeral_subsidy", "materials")
    assert "1. 居民身份证或社会保障卡（原件1份，可用电子证照）" in materials
    assert "告知承诺书（现场或网上填写，死者的死亡信息不能通过部门数据共享核实时）" in materials
    assert "原件和复印件" not in materials
    assert "全国统一办事指南的办结时限为15个工作日" in answer(catalog, "funeral_subsidy", "time_limit")


def test_public_rental_housing_names_four_issuers(catalog):
    assert "《住房和城乡建设部 国家发展改革委 财政部 自然资源部关于进一步规范发展公租房的意见》（建保〔2019〕55号）" in answer(
        catalog, "public_rental_housing", "conditions"
    )


@pytest.mark.parametrize("item_id", ["social_security_card", "social_security_card_reissue"])
def test_social_security_card_cites_the_card_rules(catalog, item_id):
    text = answer(catalog, item_id, "conditions")
    assert "第五十八条" not in text
    assert "依据：《“中华人民共和国社会保障卡”管理办法》（人社部发〔2011〕47号）" in text


def test_birth_registration_marriage_certificate_is_conditional(catalog):
    assert "结婚证" not in required_names(catalog, "birth_registration")
    assert "结婚证（原件1份，可用电子证照，当地要求提供时）" in answer(catalog, "birth_registration", "materials")


def test_small_companies_need_no_supervisor(catalog):
    assert not any("监事" in n for n in required_names(catalog, "company_registration"))
    text = answer(catalog, "company_registration", "materials")
    assert "董事、经理任职文件（设立公司时）：可在股东会决议或公司章程中载明。设有监事的，一并提供监事任职文件" in text
    assert "经全体股东一致同意可以不设监事（2024年7月1日起施行的《公司法》）" in text


@pytest.mark.parametrize("item_id", ["medical_reimbursement", "medical_remote_filing"])
def test_home_region_insurer_needs_the_area_code(catalog, item_id):
    text = answer(catalog, item_id, "location")
    assert "3. 电话咨询：参保地区号+12393" in text
    assert "直接拨打12393接通的是您所在地的医保部门" in answer(catalog, item_id, "fee")


def test_business_startup_cross_province_agrees_with_company_registration(catalog):
    assert catalog.records["bundle_business_startup"].cross_province.available is True
    assert "4. 异地办理：可以跨省通办。" in answer(catalog, "bundle_business_startup", "location")


def test_social_security_card_bundle_serves_people_still_to_enrol(catalog):
    assert "1. 已参加社会保险，或在申领时同步办理参保登记。" in answer(catalog, "bundle_ss_card", "conditions")


def test_every_bundle_cites_the_2025_mechanism(catalog):
    for record in catalog.items():
        if isinstance(record, BundleRecord):
            assert "（国办发〔2025〕24号）" in answer(catalog, record.id, "conditions"), record.id


def test_newborn_bundle_leaves_birth_registration_to_the_marriage_bundle(catalog):
    assert "birth_registration" not in catalog.records["bundle_newborn"].members
    assert "birth_registration" in catalog.records["bundle_marriage_birth"].members
    assert "生育登记" not in line_of(answer(catalog, "bundle_newborn", "overview"), "包括：")


def test_children_may_get_a_card_without_a_photo(catalog):
    assert "近期免冠证件照片" not in [m.name for m in catalog.materials_for("bundle_newborn")]
    assert "不少地方为年幼的儿童申领时可以不提供照片，以当地规定为准" in answer(catalog, "social_security_card", "materials")


# --- sources and local practice in every answer ----------------------------------


def test_fee_and_time_answers_end_with_their_source_and_date(catalog):
    for record in catalog.items():
        for question in ("fee", "time_limit", "materials", "location"):
            last = answer(catalog, record.id, question).splitlines()[-1]
            assert last.startswith("来源：") and CHECKED.search(last), (record.id, question, last)


def test_rules_with_an_effective_date_say_it(catalog):
    assert "（国务院令第804号，2025年5月10日起施行）" in answer(catalog, "marriage_registration", "fee")
    assert "（国务院令第804号，2025年5月10日起施行）" in answer(catalog, "divorce_registration", "location")


def test_local_practice_says_what_is_national_and_what_is_local(catalog):
    for record in catalog.items():
        if record.local_variation:
            note = line_of(answer(catalog, record.id, "fee"), "提示：")
            assert note == f"提示：全国统一的是{record.national.rstrip('。；')}；{record.local_variation}"
    note = line_of(answer(catalog, "id_card_reissue", "fee"), "提示：")
    assert note.startswith("提示：全国统一的是工本费（丢失补领40元，临时居民身份证10元）和法定60日内发证；挂失渠道")
    assert note.endswith("请通过本省政务服务App查询或拨打12345咨询。")
