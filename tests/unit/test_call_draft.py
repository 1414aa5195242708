"""The call mode's ticket draft, filled by rules from what was said (examples written
for these tests, apart from the bench's calls)."""

from __future__ import annotations

import pytest

from assistant.services.callmode.draft import (
    build_draft,
    digits_of,
    find_address,
    find_category,
    find_name,
    find_phone,
    mask_name,
)
from assistant.services.callmode.session import Ranking


@pytest.mark.parametrize(
    "said, phone",
    [
        (["我的手机是幺五二 八八零六 三四幺九"], "15288063419"),
        (["电话号码一三六", "零零二五", "七七一八"], "13600257718"),  # said over three phrases
        (["拐拐零 不对", "联系电话 18210457763"], "18210457763"),
        (["号码是一八八 零一二三 四五六七 一个小时内都能接"], "18801234567"),  # 一个 stays a word
        (["先记一下 幺三三 幺二三四 五六七八", "哦不对 说错了 是幺三三 幺二三四 五六七九"], "13312345679"),  # the last wins
        (["座机 零二八 八五五一 二三四五"], "02885512345"),
        (["座机 八六 零二八 八五五一 二三四五"], "02885512345"),  # a landline with the country code
        (["我家电话是 八七六五 四三二一"], "87654321"),
        (["手机 八六 幺三九 幺二三四 五六七八"], "13912345678"),  # with the country code
        (["电话 +86 139-1234-5678"], "13912345678"),
        (["身份证 幺三九幺二三四五六七八九零"], None),  # 12 digits: no mobile number
        (["等了两三天了 一次都没打通"], None),
        (["我想问一下 两个孩子能一起办吗"], None),
    ],
)
def test_phone_numbers_said_in_many_ways(said, phone):
    assert find_phone(said) == phone


@pytest.mark.parametrize(
    "said, phone",
    [
        (["电话 幺三八 零零幺二 三四五六", "不对不对 是三四五七"], "13800123457"),  # the group it corrects
        (["电话 13912345678", "不对 中间是 一二三五"], "13912355678"),
        (["电话 13912345678", "尾号是 幺二"], "13912345612"),  # 尾号: the end, however short
        (["手机 一八六 二二三三 四四五五", "说错了 应该是 二二三八 后面是 四四五五"], "18622384455"),
        (["电话 13912345678", "不是 我说的是 三号楼"], "13912345678"),  # no digits: no correction
        (["电话 13912345678", "不对 是 9999"], "13912345678"),  # matches nothing in the number
        (["电话 13912345678", "最后 我还想问 要等15天吗"], "13912345678"),
        (["电话 13912345678", "不对 是交了300块钱"], "13912345678"),  # too short to place
        (["电话 13920195678", "不是2018年那次 应该是2019年办的"], "13920195678"),  # years, not digits
        (["电话 13912345678", "不对 要等1234天"], "13912345678"),
    ],
)
def test_a_caller_correcting_some_digits(said, phone):
    assert find_phone(said) == phone


def test_the_draft_and_the_log_masking_share_one_mobile_pattern():
    from assistant.security.pii import MOBILE_RE, mask_pii, mobile_number

    said = "我电话 幺三九 幺二三四 五六七八"
    found = find_phone([said])
    assert [mobile_number(m) for m in MOBILE_RE.finditer(digits_of(said))] == [found] == ["13912345678"]
    # The number the draft finds is the one the logs mask.
    assert mask_pii(digits_of(said)) == "我电话 139****5678"


def test_spoken_digits_keep_words_that_merely_contain_a_digit():
    assert digits_of("一下 一三九") == "一下 139"
    assert digits_of("两个 幺八六 零零") == "两个 18600"


@pytest.mark.parametrize(
    "said, name",
    [
        (["您好 我叫钱学敏 想问个事"], "钱学敏"),
        (["我是欧阳娜娜啊"], "欧阳娜娜"),
        (["免贵姓邓", "邓小梅 耳东邓"], "邓小梅"),
        (["我姓马 马建军 马路的马"], "马建军"),
        (["我姓徐"], "徐"),
        (["我是想问一下社保的事"], None),
        (["我是高新区的居民"], None),
        (["姓名 唐一鸣 电话一三九"], "唐一鸣"),
    ],
)
def test_names_after_their_cues(said, name):
    assert find_name(said) == name


@pytest.mark.parametrize(
    "said, address",
    [
        (["我住在雁塔区长安南路88号"], "雁塔区长安南路88号"),
        (["家在城关镇东街村"], "城关镇东街村"),
        (["地址是金水区花园路绿城小区5号楼"], "金水区花园路绿城小区5号楼"),
        (["喂 是市民热线吗"], None),
        (["我要去办事大厅"], None),
    ],
)
def test_addresses_end_in_place_words(said, address):
    assert find_address(said) == address


@pytest.mark.parametrize(
    "said, category",
    [
        (["你们窗口的人态度太差了", "我要投诉"], "投诉"),
        (["我提个建议 网上办理能不能再简单点"], "建议"),
        (["我实在没办法了 求助一下"], "求助"),
        (["护照要带什么材料"], "咨询"),
    ],
)
def test_question_category_by_keywords(said, category):
    assert find_category(said) == category


def test_the_draft_and_its_masked_view():
    draft = build_draft(
        ["你好 我叫钱学敏", "我想问营业执照怎么办", "电话 幺三九 幺二三四 五六七八", "住在雁塔区长安南路88号"],
        ["您好 营业执照可以在网上办理"],
        "company_registration",
        "企业设立登记（营业执照）",
        "process",
        ["我想问营业执照怎么办"],
        "可以在政务服务网办理。",
    )
    assert draft.phone == "13912345678" and draft.caller_name == "钱学敏"
    assert draft.address == "雁塔区长安南路88号" and draft.category == "咨询"
    assert draft.answer == "您好 营业执照可以在网上办理"  # the operator's words, not the suggestion's
    assert "营业执照" in draft.summary and "钱**" in draft.summary and "钱学敏" not in draft.summary
    shown = draft.shown()
    assert shown["caller_name"] == "钱**" == mask_name("钱学敏")
    assert shown["phone"] == "13912345678"  # the operator calls back: shown in full


def test_ranking_keeps_the_first_item_until_another_is_clearly_ahead():
    known = ["passport", "hk_macau_permit", "id_card_renewal"]

    def parse(item_scores, intent="ask_service"):
        return {
            "intent": {"name": intent, "confidence": 0.9},
            "intent_ranking": [{"name": intent, "confidence": 0.9}],
            "service_items": [{"id": i, "name": i, "score": s} for i, s in item_scores],
        }

    ranking = Ranking()
    ranking.observe(parse([("passport", 0.9)]), "我要办护照", known, 0)
    assert ranking.leader == "passport"
    # A phrase that leans a little to another item does not move the first place...
    ranking.observe(parse([("hk_macau_permit", 0.6), ("passport", 0.5)]), "港澳的也要", known, 1)
    assert ranking.leader == "passport"
    ranking.observe(parse([("passport", 0.45), ("hk_macau_permit", 0.55)]), "那个通行证", known, 2)
    assert ranking.leader == "passport"
    # ...a clear lead does.
    ranking.observe(parse([("hk_macau_permit", 0.95)]), "就是港澳通行证", known, 3)
    ranking.observe(parse([("hk_macau_permit", 0.95)]), "港澳通行证续签", known, 4)
    assert ranking.leader == "hk_macau_permit" and ranking.question_type == "overview"
    ranking.observe(parse([], "ask_fee"), "要多少钱", known, 5)
    assert ranking.question_type == "fee"
    first = ranking.ranked(3)
    assert [c.item_id for c in first][:2] == ["hk_macau_permit", "passport"]
