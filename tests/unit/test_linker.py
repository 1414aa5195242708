"""The item linker on its own (trained from the catalog, no Rasa)."""

import pytest

from knowledge.linker import ItemLinker


@pytest.fixture(scope="module")
def linker(catalog):
    none_texts = ["今天天气怎么样", "帮我写首诗", "你好", "谢谢", "讲个笑话", "股票怎么买"]
    return ItemLinker.train(catalog, none_texts)


def top(linker, text):
    ranked = linker.link(text)
    return ranked[0][0] if ranked else None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("身份证丢了怎么补办", "id_card_reissue"),
        ("我想办社保卡要带什么", "social_security_card"),
        ("射保卡丢了咋整", "social_security_card_reissue"),
        ("身份證補辦要帶什麼", "id_card_reissue"),
        ("公鸡金怎么提取", "housing_fund_withdrawal"),
        ("娃要上一年级了要带啥", "school_enrollment"),
        ("异地就一备案怎么弄", "medical_remote_filing"),
        ("护照", "passport"),
    ],
)
def test_links_colloquial_typo_traditional_and_homophones(linker, text, expected):
    assert top(linker, text) == expected


@pytest.mark.parametrize("text", ["我叫郑雨婷 电话一八九 一零七二 四四五三", "手机号 幺八九 一二一 三四五六"])
def test_a_spoken_number_is_not_read_as_a_service_name(linker, text):
    # By pinyin 一八九一 is one syllable off 异地就医 (yi-ba-jiu-yi / yi-di-jiu-yi).
    assert "medical_remote_filing" not in linker.rule_scores(text)
    assert "medical_remote_filing" in linker.rule_scores("异地就一备案 电话一八九 一零七二")


@pytest.mark.parametrize("text", ["今天天气怎么样", "帮我写一首关于春天的诗", "哈哈哈", ""])
def test_out_of_scope_is_not_forced_onto_an_item(linker, text):
    assert linker.link(text) == []


def test_scores_are_ranked_and_bounded(linker):
    ranked = linker.link("社保卡丢了要补办")
    scores = [s for _, s in ranked]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < s <= 1 for s in scores)
    assert len(ranked) <= 5


def test_save_and_load_round_trip(linker, tmp_path):
    linker.save(tmp_path)
    loaded = ItemLinker.load(tmp_path)
    for text in ["身份证丢了怎么补办", "公积金提取", "今天天气怎么样"]:
        assert loaded.link(text) == linker.link(text)
