"""Normalisation and pinyin helpers."""

from knowledge.text import compact, normalize, syllables, to_simplified


def test_traditional_to_simplified_keeps_length():
    text = "身份證補辦要帶什麼"
    simplified = to_simplified(text)
    assert simplified == "身份证补办要带什么"
    assert len(simplified) == len(text)


def test_normalize_folds_full_width_and_case():
    assert normalize("ＡＰＰ能办吗？１２３３３") == "app能办吗?12333"


def test_normalize_keeps_emoji_and_length():
    text = "社保卡😀怎么办"
    assert normalize(text) == text


def test_compact_drops_spaces_and_punctuation():
    assert compact("社保卡，  要带 什么？") == "社保卡要带什么"


def test_homophones_share_syllables():
    assert syllables("射保卡") == syllables("社保卡")
    assert syllables("公鸡金") == syllables("公积金")


def test_fuzzy_syllables_merge_retroflex_and_nasals():
    assert syllables("身份正") == syllables("身份证")  # zheng ~ zhen ~ zen
    assert syllables("zhi") == ["z", "h", "i"]  # non-Chinese characters stay as they are


def test_syllables_one_per_character_with_mixed_text():
    text = "办ID卡123"
    assert len(syllables(text)) == len(text)
