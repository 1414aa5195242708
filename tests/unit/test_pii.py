import logging

from assistant.security.pii import PiiMaskingFilter, hash_id, mask_pii, strip_pii


def test_masks_id_phone_and_name():
    text = "我叫张三丰，身份证110101199003071234，电话13812345678"
    masked = mask_pii(text)
    assert "110101199003071234" not in masked and "110101********1234" in masked
    assert "13812345678" not in masked and "138****5678" in masked
    assert "张三丰" not in masked and "张**" in masked


def test_leaves_application_numbers_and_tails():
    text = "受理号ZW20250318007，手机尾号1234"
    assert mask_pii(text) == text


def test_hash_id_is_stable_and_short():
    assert hash_id("abc") == hash_id("abc") != hash_id("abd")
    assert len(hash_id("abc")) == 12


def test_logging_filter_masks(caplog):
    logger = logging.getLogger("pii-test")
    handler = logging.StreamHandler()
    handler.addFilter(PiiMaskingFilter())
    record = logger.makeRecord("pii-test", logging.INFO, __file__, 1, "phone %s", ("13812345678",), None)
    handler.filter(record)
    assert record.getMessage() == "phone 138****5678"


def test_strip_cuts_personal_data_raw_or_masked_with_its_cue():
    for said in ("我叫张三丰，身份证110101199003071234，电话13812345678，老人走了丧葬费去哪领",
                 "我叫张**，身份证110101********1234，电话138****5678，老人走了丧葬费去哪领",
                 "老人走了丧葬费去哪领。我的手机号是+86 138-1234-5678"):
        assert strip_pii(said).rstrip("。") == "老人走了丧葬费去哪领"
    assert strip_pii("受理号ZW20250318007查进度") == "受理号ZW20250318007查进度"
    assert strip_pii("孩子出生了上户口要去哪里") == "孩子出生了上户口要去哪里"
    assert strip_pii("我叫李四，电话13900001111") == ""


def test_strip_keeps_the_words_of_a_situation_and_cuts_other_numbers():
    # 我是 + a description is no name: published text keeps its words.
    assert strip_pii("我是退休职工医保怎么报销") == "我是退休职工医保怎么报销"
    assert strip_pii("我是来办身份证的") == "我是来办身份证的"
    assert strip_pii("我是张三，想问社保卡") == "想问社保卡"
    assert strip_pii("座机010-62345678能打通吗") == "能打通吗"
    assert strip_pii("银行卡号6222021234567890123丢了怎么办") == "丢了怎么办"
    assert strip_pii("我邮箱abc@qq.com收不到") == "我收不到"
    assert strip_pii("护照号E12345678过期了") == "过期了"
    assert strip_pii("回执KSHALL3-20261205-0001查一下") == "回执KSHALL3-20261205-0001查一下"
    assert strip_pii("要等15天吗") == "要等15天吗"  # a short number is no personal data
    assert strip_pii("办护照\x07要多久\x00") == "办护照 要多久"  # no control characters in data
