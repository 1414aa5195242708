"""Reply texts rewritten for the ear: what the speech engine is given to say."""

import re

import pytest

from knowledge.answers import QUESTION_LABELS, answer
from voice.speech_text import EMAIL_SPOKEN, URL_SPOKEN, speech_text, split_sentences

# Nothing that espeak-ng would read as English, as digits-as-cardinals or as symbols.
UNSPEAKABLE = re.compile(r"[0-9]|[a-z]|[A-Z]{2}|[^\u3400-\u9fffA-Z，。！？；：、 ]")


@pytest.mark.parametrize(
    "text, spoken",
    [
        ("您的办件编号是ZW20250318007。", "您的办件编号是 Z W 二零二五零三一八零零七。"),
        ("办件编号：ZW-2025-001", "办件编号：Z W 二零二五，零零一。"),
        ("请输入手机尾号1001", "请输入手机尾号一零零一。"),
        ("可拨打12367咨询", "可拨打一二三六七咨询。"),
        ("请致电12345", "请致电一二三四五。"),
        ("服务电话：0571-87654321", "服务电话：零五七一，八七六五四三二一。"),
        ("热线 400-123-4567", "热线，四零零，一二三，四五六七。"),
    ],
)
def test_codes_and_phone_numbers_digit_by_digit(text, spoken):
    assert speech_text(text) == spoken


@pytest.mark.parametrize(
    "text, spoken",
    [
        ("预计2026年12月7日办结", "预计二零二六年十二月七日办结。"),
        ("2026-11-01 核对", "二零二六年十一月一日，核对。"),
        ("2026/3/8起", "二零二六年三月八日起。"),
        ("2019年4月起全国通办", "二零一九年四月起全国通办。"),
        ("3月15号前办理", "三月十五日前办理。"),
        ("2019-2020年", "二零一九到二零二零年。"),
    ],
)
def test_dates_in_words(text, spoken):
    assert speech_text(text) == spoken


@pytest.mark.parametrize(
    "text, spoken",
    [
        ("工本费¥20", "工本费二十元。"),
        ("工本费20元", "工本费二十元。"),
        ("每本120元/本", "每本一百二十元每本。"),
        ("快递费12.50元", "快递费十二点五元。"),
        ("加急费2元", "加急费两元。"),
        ("共12,000元", "共一万二千元。"),
        ("报销比例50%", "报销比例百分之五十。"),
    ],
)
def test_amounts_in_words(text, spoken):
    assert speech_text(text) == spoken


@pytest.mark.parametrize(
    "text, spoken",
    [
        ("工作时间9:00-17:00", "工作时间九点到十七点。"),
        ("午休12:00–13:30", "午休十二点到十三点半。"),
        ("上午8：45开门", "上午八点四十五分开门。"),
        ("09:00至12:00", "九点到十二点。"),
    ],
)
def test_times(text, spoken):
    assert speech_text(text) == spoken


@pytest.mark.parametrize(
    "text, spoken",
    [
        ("一般3-5个工作日", "一般三到五个工作日。"),
        ("最多2个月", "最多两个月。"),
        ("请到第2个窗口", "请到第二个窗口。"),
        ("未满16周岁", "未满十六周岁。"),
        ("满1000人", "满一千人。"),
        ("约10000人", "约一万人。"),
        ("标准号GB/T 26341-2010", "标准号 G B T 二六三四一，二零一零。"),
        ("GB/T 26341", "G B T 二六三四一。"),
        ("选项2", "选项二。"),
        ("邮编100010，共2份", "邮编一零零零一零，共两份。"),
    ],
)
def test_other_numbers(text, spoken):
    assert speech_text(text) == spoken


def test_numbered_list_becomes_ordinals_with_pauses():
    text = "需要准备：\n1. 身份证\n2. 照片（2张）\n3、申请表\n（4）户口簿\n⑤ 结婚证"
    assert speech_text(text) == (
        "需要准备。第一，身份证。第二，照片，两张。第三，申请表。第四，户口簿。第五，结婚证。"
    )


def test_inline_list_after_a_colon_and_decimals_untouched():
    assert speech_text("材料：1.身份证；2.照片") == "材料：第一，身份证；第二，照片。"
    assert speech_text("1.5个工作日") == "一点五个工作日。"


def test_bullets_are_dropped():
    assert speech_text("- 身份证\n• 照片") == "身份证。照片。"


def test_urls_and_emails_are_not_read_out():
    text = "详见 https://zwfw.gov.cn/item?id=1 ，或发邮件到 help@zwfw.gov.cn，也可访问www.gov.cn查询"
    spoken = speech_text(text)
    assert spoken == f"详见{URL_SPOKEN}，或发邮件到{EMAIL_SPOKEN}，也可访问{URL_SPOKEN}查询。"
    assert "gov" not in spoken and "@" not in spoken
    assert speech_text("登录 zwfw.gov.cn/banshi 办理") == f"登录{URL_SPOKEN}办理。"
    assert speech_text("网址：https://www.gov.cn/。") == f"网址：{URL_SPOKEN}。"


def test_brackets_quotes_and_app():
    text = "【普通护照签发】收费（原件1份）请填写《申请表》或用“移民局”App"
    assert speech_text(text) == "普通护照签发，收费，原件一份，请填写申请表或用移民局应用。"
    assert speech_text("材料（原件（复印件也可））") == "材料，原件，复印件也可。"


def test_emoji_symbols_and_whitespace_removed():
    assert speech_text("  太好了😊👍🏻\t\t谢谢！！  ") == "太好了，谢谢！"
    assert speech_text("✅ 已办结 ★") == "已办结。"
    assert speech_text("第一行\r\n\r\n第二行") == "第一行。第二行。"


def test_full_width_digits():
    assert speech_text("工本费２０元") == "工本费二十元。"


def test_empty_and_unspeakable_texts():
    assert speech_text("") == ""
    assert speech_text("😊👍") == ""


def test_every_line_ends_with_a_pause():
    assert speech_text("你好\n请问办什么") == "你好。请问办什么。"


def test_realistic_catalog_answer(catalog):
    text = answer(catalog, "passport", "materials")
    assert re.search(r"^\d\. ", text, re.M)  # the screen text is a numbered list
    spoken = speech_text(text)
    assert not UNSPEAKABLE.search(spoken), UNSPEAKABLE.findall(spoken)
    assert "http" not in spoken and not re.search(r"\d\.", spoken)
    assert "第一，居民身份证，原件一份" in spoken
    assert "可拨打一二三六七咨询" in spoken  # the hotline digit by digit
    assert "二零二六年十一月一日" in spoken  # the verified date in words
    # Items are separate sentences (a pause between them).
    assert "。第二，" in spoken and "。第三，" in spoken


def test_every_catalog_answer_is_speakable(catalog):
    for record in catalog.items():
        for question in ["overview", *QUESTION_LABELS]:
            spoken = speech_text(answer(catalog, record.id, question))
            assert spoken and not UNSPEAKABLE.search(spoken), (record.id, question, UNSPEAKABLE.findall(spoken))


def test_split_sentences():
    spoken = speech_text("需要准备：\n1. 身份证\n2. 照片\n好。")
    assert split_sentences(spoken) == ["需要准备。第一，身份证。", "第二，照片。好。"]
    long = "，".join(["这是一个比较长的分句"] * 20) + "。"
    pieces = split_sentences(long, max_chars=40)
    assert "".join(pieces) == long and all(len(p) <= 40 for p in pieces)
