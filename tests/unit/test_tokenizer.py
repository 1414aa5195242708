"""JiebaTokenizer with the catalog's user dictionary: tokens and offsets."""

from pathlib import Path

import pytest
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.shared.nlu.training_data.message import Message

from knowledge import jieba_dict

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tokenizer():
    config = {**JiebaTokenizer.get_default_config(), "dictionary_path": str(ROOT / "knowledge" / "jieba")}
    JiebaTokenizer._load_custom_dictionary(config["dictionary_path"])
    return JiebaTokenizer(config, None, None)  # storage is only used when training


def tokens(tokenizer, text):
    return [(t.text, t.start, t.end) for t in tokenizer.tokenize(Message({"text": text}), "text")]


def test_offsets_match_the_text(tokenizer):
    for text in ["我想办社保卡要带什么", "ZW20250318007办好了吗", "用APP办护照😀可以吗", "尾号1234的手机"]:
        for token, start, end in tokens(tokenizer, text):
            assert text[start:end] == token


def test_catalog_terms_stay_whole(tokenizer):
    words = [t for t, _, _ in tokens(tokenizer, "我要办异地就医备案和公积金提取")]
    assert "异地就医备案" in words


def test_mixed_english_digits_emoji(tokenizer):
    result = tokens(tokenizer, "12333热线app😀")
    texts = [t for t, _, _ in result]
    assert "12333" in texts
    assert result[-1][2] == len("12333热线app😀") or texts[-1] == "😀"


def test_user_dictionary_is_up_to_date(catalog):
    assert jieba_dict.USER_DICT.read_text(encoding="utf-8") == jieba_dict.render(catalog), (
        "run `banshi kb dict` to regenerate knowledge/jieba/catalog_words.txt"
    )
