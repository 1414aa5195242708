"""WeChat message XML (parsing, validation, replies) and the channel's text
formatting: splitting long answers, numbered options and choosing one."""

from __future__ import annotations

import random

import pytest

from assistant.channels.wechat_format import WeChatTexts, render, selected_option, split_text
from assistant.channels.wechat_xml import (
    MAX_FIELD_CHARS,
    Inbound,
    WeChatXmlError,
    encrypted_envelope,
    parse_fields,
    text_reply,
)

LIMIT = 32 * 1024


@pytest.fixture(scope="module")
def texts() -> WeChatTexts:
    return WeChatTexts.load()


def fields_of(**values) -> dict:
    base = {"ToUserName": "gh_account", "FromUserName": "oUser_123-abc", "CreateTime": "1718000000",
            "MsgType": "text", "Content": "你好", "MsgId": "24600000000000001"}
    base.update(values)
    return {k: v for k, v in base.items() if v is not None}


# ------------------------------------------------------------------ parse_fields
def test_parse_cdata_and_plain_fields():
    body = (
        "<xml><ToUserName><![CDATA[gh_account]]></ToUserName>"
        "<FromUserName><![CDATA[oUser]]></FromUserName>"
        "<CreateTime>1718000000</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[我想办<护照> & 签证]]></Content>"
        "<MsgId>1234567890123456</MsgId></xml>"
    ).encode("utf-8")
    assert parse_fields(body, LIMIT) == {
        "ToUserName": "gh_account", "FromUserName": "oUser", "CreateTime": "1718000000",
        "MsgType": "text", "Content": "我想办<护照> & 签证", "MsgId": "1234567890123456",
    }


def test_parse_strips_whitespace_and_keeps_escaped_text():
    body = ("<?xml version='1.0' encoding='utf-8'?>\n<xml>\n  <MsgType>\n text \n</MsgType>\n"
            "  <Content>  a &amp; b &lt;c&gt;  </Content>\n  <Empty></Empty><Self/>\n</xml>\n").encode()
    assert parse_fields(body, LIMIT) == {"MsgType": "text", "Content": "a & b <c>", "Empty": "", "Self": ""}


def test_parse_skips_nested_elements():
    body = (b"<xml><MsgType>event</MsgType><Event>scancode_push</Event>"
            b"<ScanCodeInfo><ScanType>qrcode</ScanType><ScanResult>1</ScanResult></ScanCodeInfo>"
            b"<EventKey>k</EventKey></xml>")
    assert parse_fields(body, LIMIT) == {"MsgType": "event", "Event": "scancode_push", "EventKey": "k"}


def test_parse_size_limit():
    body = b"<xml><Content>" + b"a" * 1000 + b"</Content></xml>"
    assert parse_fields(body, len(body))["Content"] == "a" * 1000
    with pytest.raises(WeChatXmlError):
        parse_fields(body, len(body) - 1)


def test_parse_field_length_limit():
    ok = f"<xml><Content>{'a' * MAX_FIELD_CHARS}</Content></xml>".encode()
    assert len(parse_fields(ok, LIMIT)["Content"]) == MAX_FIELD_CHARS
    with pytest.raises(WeChatXmlError):
        parse_fields(f"<xml><Content>{'a' * (MAX_FIELD_CHARS + 1)}</Content></xml>".encode(), LIMIT)


@pytest.mark.parametrize("body", [
    # a DTD at all
    b"<!DOCTYPE xml><xml><Content>x</Content></xml>",
    # internal entities (billion laughs)
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
    b"<xml><Content>&b;</Content></xml>",
    # external entities (XXE)
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<xml><Content>&xxe;</Content></xml>",
    b'<?xml version="1.0"?><!DOCTYPE xml SYSTEM "http://127.0.0.1:1/evil.dtd"><xml><Content>x</Content></xml>',
    # parameter entities
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY % p SYSTEM "http://127.0.0.1:1/p.dtd"> %p;]><xml/>',
    # an undefined (HTML) entity without a DTD
    b"<xml><Content>&nbsp;</Content></xml>",
])
def test_parse_refuses_dtds_and_entities(body):
    with pytest.raises(WeChatXmlError):
        parse_fields(body, LIMIT)


@pytest.mark.parametrize("body", [
    b"",
    b"   \n ",
    b"success",
    b"<xml><Content>x</Content>",  # not well-formed
    b"<xml><a></b></xml>",
    b"<root><Content>x</Content></root>",  # not <xml>
    b"<XML><Content>x</Content></XML>",
    b'<w:xml xmlns:w="urn:x"><Content>x</Content></w:xml>',
    b"<xml><Content>x</Content></xml><xml/>",  # two roots
    b"<xml><Content>\x00</Content></xml>",  # not an XML character
])
def test_parse_refuses_other_documents(body):
    with pytest.raises(WeChatXmlError):
        parse_fields(body, LIMIT)


# ------------------------------------------------------------------ Inbound
def test_inbound_from_fields():
    inbound = Inbound.from_fields(fields_of(Content="  我想办社保卡 "))
    assert inbound.from_user == "oUser_123-abc" and inbound.to_user == "gh_account"
    assert inbound.create_time == 1718000000 and inbound.msg_type == "text"
    assert inbound.content == "  我想办社保卡 " and inbound.msg_id == "24600000000000001"
    voice = Inbound.from_fields(fields_of(MsgType="voice", Content=None, MediaId="m1", Format="AMR",
                                          Recognition="办社保卡"))
    assert (voice.media_id, voice.format, voice.recognition) == ("m1", "amr", "办社保卡")


@pytest.mark.parametrize("from_user", [None, "", "o user", "o<script>", "用户", "o" * 65, "o/../x", "o.u"])
def test_inbound_refuses_bad_from_user(from_user):
    with pytest.raises(WeChatXmlError):
        Inbound.from_fields(fields_of(FromUserName=from_user))


@pytest.mark.parametrize("msg_id", ["abc", "12a", "-5", "1.5", " 12", "1e9", "１２３", "²", "0x10", "123\n"])
def test_inbound_refuses_non_digit_msg_id(msg_id):
    with pytest.raises(WeChatXmlError):
        Inbound.from_fields(fields_of(MsgId=msg_id))


def test_inbound_refuses_an_overlong_msg_id():
    # the dedup key is stored in a 200-character column; WeChat's MsgId is a 64-bit number
    with pytest.raises(WeChatXmlError):
        Inbound.from_fields(fields_of(MsgId="1" * 300))


def test_inbound_needs_a_msg_type_and_a_numeric_create_time():
    with pytest.raises(WeChatXmlError):
        Inbound.from_fields(fields_of(MsgType=None))
    with pytest.raises(WeChatXmlError):
        Inbound.from_fields(fields_of(MsgType=""))
    with pytest.raises(WeChatXmlError):
        Inbound.from_fields(fields_of(CreateTime="yesterday"))
    assert Inbound.from_fields(fields_of(CreateTime=None)).create_time == 0


def test_dedup_key_of_messages_and_events():
    message = Inbound.from_fields(fields_of(MsgId="987654321"))
    assert message.dedup_key == "msg:987654321"
    # WeChat's retries carry the same MsgId, whatever else differs
    assert Inbound.from_fields(fields_of(MsgId="987654321", CreateTime="1718000099")).dedup_key == message.dedup_key
    assert Inbound.from_fields(fields_of(MsgId="987654322")).dedup_key != message.dedup_key

    event = Inbound.from_fields(fields_of(MsgType="event", MsgId=None, Content=None, Event="subscribe"))
    assert event.dedup_key == "evt:oUser_123-abc:1718000000:subscribe"
    other_time = Inbound.from_fields(fields_of(MsgType="event", MsgId=None, Event="subscribe", CreateTime="1718000001"))
    other_user = Inbound.from_fields(fields_of(MsgType="event", MsgId=None, Event="subscribe", FromUserName="oOther"))
    other_event = Inbound.from_fields(fields_of(MsgType="event", MsgId=None, Event="CLICK", EventKey="MENU_HELP"))
    keys = {event.dedup_key, other_time.dedup_key, other_user.dedup_key, other_event.dedup_key}
    assert len(keys) == 4 and all(k.startswith("evt:") for k in keys)
    no_id = Inbound.from_fields(fields_of(MsgId=None))
    assert no_id.dedup_key == "evt:oUser_123-abc:1718000000:text"
    long_event = Inbound.from_fields(fields_of(MsgType="event", MsgId=None, Event="E" * 500))
    assert len(long_event.dedup_key) <= 200


# ------------------------------------------------------------------ replies
@pytest.mark.parametrize("content", [
    "普通回复",
    "a]]>b",
    "]]>",
    "]]]]>>",
    "<![CDATA[x]]> & <tag> ]]",
    "多行\n第二行\n回复 1 社保卡",
])
def test_text_reply_round_trip(content):
    xml = text_reply("oUser_1", "gh_account", content, create_time=1718000000)
    fields = parse_fields(xml.encode("utf-8"), LIMIT)
    assert fields == {"ToUserName": "oUser_1", "FromUserName": "gh_account", "CreateTime": "1718000000",
                      "MsgType": "text", "Content": content}


def test_text_reply_default_time_and_to_user_with_cdata_end():
    fields = parse_fields(text_reply("a]]>b", "gh", "x").encode(), LIMIT)
    assert fields["ToUserName"] == "a]]>b" and int(fields["CreateTime"]) > 1_700_000_000


def test_encrypted_envelope_round_trip():
    xml = encrypted_envelope("ZW5j+/==", "f" * 40, "1718000000", "n]]>1")
    assert parse_fields(xml.encode(), LIMIT) == {"Encrypt": "ZW5j+/==", "MsgSignature": "f" * 40,
                                                 "TimeStamp": "1718000000", "Nonce": "n]]>1"}


# ------------------------------------------------------------------ split_text
def check_split(text: str, limit: int) -> list:
    parts = split_text(text, limit)
    assert parts, "a non-empty text gives at least one part"
    for part in parts:
        assert len(part.encode("utf-8")) <= limit, (len(part.encode("utf-8")), limit)
        assert part.strip(), "no empty parts"
        assert not part.startswith("\n") and not part.endswith("\n")
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")
    return parts


def test_split_short_text_is_one_part():
    assert split_text("你好", 200) == ["你好"]
    assert split_text("a\nb", 200) == ["a\nb"]
    assert split_text("", 200) == [] and split_text("\n\n", 200) == []


def test_split_keeps_line_boundaries():
    lines = [f"{i}. 材料{'很' * (i % 7)}多" for i in range(1, 60)]
    text = "\n".join(lines)
    parts = check_split(text, 200)
    assert len(parts) > 1
    for part in parts:
        for line in part.split("\n"):
            assert line in lines, "a line fitting the limit is never cut"
    assert [line for part in parts for line in part.split("\n")] == lines


def test_split_cuts_one_very_long_line():
    line = "办事指南" * 500  # 6000 bytes on one line
    parts = check_split(line, 200)
    assert len(parts) >= 30
    assert all(len(p.encode()) > 150 for p in parts[:-1]), "cuts are not needlessly small"


def test_split_long_line_between_short_ones():
    text = "开头\n" + "x" * 450 + "\n结尾"
    parts = check_split(text, 200)
    assert parts[0].startswith("开头") and parts[-1].endswith("结尾")


@pytest.mark.parametrize("seed", range(20))
def test_split_random_texts(seed):
    rng = random.Random(seed)
    alphabet = "ab 办事材料🙂é"
    lines = ["".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 5, 40, 150, 700])))
             for _ in range(rng.randint(1, 40))]
    lines = [line if line.strip() or not line else "" for line in lines]  # no whitespace-only lines
    text = "\n".join(lines)
    if not text.strip():
        text = "x"
    limit = rng.choice([200, 256, 700, 2000])
    parts = split_text(text, limit)
    for part in parts:
        assert 0 < len(part.encode("utf-8")) <= limit and part.strip()
    squash = lambda s: "".join(s.split())  # noqa: E731 (spaces at cut points may go with empty pieces)
    assert squash("".join(parts)) == squash(text)


def test_split_uses_the_configured_limit(texts):
    text = "\n".join(["第%d项：%s" % (i, "说明" * 30) for i in range(100)])
    parts = check_split(text, texts.text_limit_bytes)
    assert all(len(p.encode()) <= 2048 for p in parts)


# ------------------------------------------------------------------ options
def test_render_text_only(texts):
    body, options = render([{"text": " 第一段 "}, {"text": "第二段"}, {"image": "x.png"}], texts)
    assert body == "第一段\n\n第二段" and options == []


def test_render_buttons_become_numbered_options(texts):
    messages = [
        {"text": "您想了解哪一项？", "buttons": [
            {"title": "社保卡申领", "payload": "/ask_materials{\"item\": \"sbk\"}"},
            {"title": "  护照  "},
            {"title": "", "payload": "/ignored"},
        ]},
        {"buttons": [{"title": "转人工", "payload": "/request_human"}]},
    ]
    body, options = render(messages, texts)
    assert options == [("社保卡申领", "/ask_materials{\"item\": \"sbk\"}"), ("护照", "护照"),
                       ("转人工", "/request_human")]
    lines = body.split("\n")
    assert lines[0] == "您想了解哪一项？"
    assert texts.options_intro in lines
    assert "回复 1 社保卡申领" in lines and "回复 2 护照" in lines and "回复 3 转人工" in lines
    assert body.index("回复 1 ") < body.index("回复 2 ") < body.index("回复 3 ")
    assert "/ask_materials" not in body and "/ignored" not in body


def test_render_nothing(texts):
    assert render([], texts) == ("", [])


OPTIONS = [("社保卡申领", "/a"), ("护照", "/b"), ("转人工", "/c")]


@pytest.mark.parametrize("text,expected", [
    ("1", "/a"), ("１", "/a"), (" 2 ", "/b"), ("2.", "/b"), ("3。", "/c"), ("３、", "/c"),
    ("\t2\n", "/b"), ("02", "/b"),
    ("0", None), ("4", None), ("99", None), ("100", None), ("-1", None), ("1 2", None),
    ("1号", None), ("第1个", None), ("一", None), ("", None), ("护照", None), ("1.5", None),
])
def test_selected_option(text, expected):
    assert selected_option(text, OPTIONS) == expected


def test_no_options_selects_nothing():
    assert selected_option("1", []) is None
    assert selected_option("１", []) is None


def test_many_options():
    many = [(f"t{i}", f"/p{i}") for i in range(1, 13)]
    assert selected_option("12", many) == "/p12"
    assert selected_option("１２", many) == "/p12"
    assert selected_option("13", many) is None


def test_text_reply_drops_characters_xml_forbids():
    xml = text_reply("oUser", "gh_account", "办\x01理\x0b\x1f]]>完成\n")
    assert parse_fields(xml.encode("utf-8"), 10_000)["Content"] == "办理]]>完成"
