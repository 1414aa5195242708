"""Multi-turn guidance through the API: context, ellipsis, bundles, choices, records."""

import re

import pytest
from sqlalchemy import select

from assistant.storage import database
from knowledge import db

pytestmark = pytest.mark.model


def chat(client, sender, text):
    reply = client.post("/api/v1/chat", json={"sender_id": sender, "text": text, "channel": "web"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    body["text"] = "\n".join(m.get("text") or "" for m in body["messages"])
    body["buttons"] = [b for m in body["messages"] for b in (m.get("buttons") or [])]
    return body


def test_item_is_kept_across_turns(client):
    first = chat(client, "ctx-1", "我想办社保卡")
    assert "社会保障卡申领" in first["text"]
    second = chat(client, "ctx-1", "要带啥")
    assert "社会保障卡申领" in second["text"] and "1. 居民身份证" in second["text"]
    third = chat(client, "ctx-1", "多久能拿到")
    assert "办理时限" in third["text"] and "社会保障卡申领" in third["text"]


def test_ellipsis_switches_item_and_keeps_question(client):
    chat(client, "ctx-2", "办社保卡要带什么材料")
    body = chat(client, "ctx-2", "那护照呢")
    assert "普通护照签发" in body["text"]
    assert "需要准备" in body["text"]


def test_question_before_item_is_remembered(client):
    body = chat(client, "ctx-3", "要带什么材料")
    assert "哪项业务" in body["text"]
    body = chat(client, "ctx-3", "港澳通行证")
    assert "往来港澳通行证及签注" in body["text"] and "需要准备" in body["text"]


def test_bundle_answers_with_merged_list_and_departments(client):
    body = chat(client, "ctx-4", "新生儿出生一件事要带什么材料")
    assert "新生儿出生一件事" in body["text"]
    assert "涉及部门" in body["text"] and "卫生健康" in body["text"]
    numbered = [ln for ln in body["text"].splitlines() if ln[:1].isdigit()]
    names = [re.split("[（：]", ln.split(". ", 1)[1])[0] for ln in numbered]
    assert names.count("居民身份证") == 1 and len(names) == len(set(names))


def test_buttons_carry_the_item(client):
    body = chat(client, "ctx-5", "异地就医备案怎么办")
    payloads = [b["payload"] for b in body["buttons"]]
    assert any("medical_remote_filing" in p for p in payloads)
    follow = chat(client, "ctx-5", payloads[0])
    assert "异地就医备案" in follow["text"]


def test_close_items_are_asked_with_buttons(client):
    body = chat(client, "ctx-6", "公积金")
    if body["buttons"] and "哪一项" in body["text"]:
        ids = {b["payload"] for b in body["buttons"]}
        assert any("housing_fund_withdrawal" in p for p in ids)
        assert any("housing_fund_loan" in p for p in ids)
    else:  # a clear winner is also acceptable, as long as it is a housing-fund item
        assert "住房公积金" in body["text"]


def test_every_answer_names_source_and_date(client):
    for text in ["护照要多少钱", "营业执照在哪里办", "低保申请条件"]:
        body = chat(client, "ctx-src", text)
        assert "来源：" in body["text"] and "核对" in body["text"], text


def test_feedback_and_complaint_are_recorded(client, settings):
    chat(client, "fb-1", "我想办护照")
    body = chat(client, "fb-1", "回答得很清楚，好评")
    assert "好评" in body["text"] or "感谢" in body["text"]
    body = chat(client, "fb-1", "窗口工作人员态度太差了，我要投诉，我电话13812345678")
    assert "投诉已记录" in body["text"] and "工作人员会跟进处理" in body["text"]
    assert body["handoff"]["status"] == "waiting" and body["handoff"]["follow_up"] is True
    # A person follows the complaint up; meanwhile the assistant keeps answering.
    body = chat(client, "fb-1", "护照要带什么材料")
    assert "普通护照签发" in body["text"] and body["messages"]
    with database.session_factory(settings.db_url)() as session:
        rows = session.execute(
            select(db.Feedback).where(db.Feedback.conversation_id == "fb-1")
        ).scalars().all()
    kinds = {r.kind: r for r in rows}
    assert kinds["feedback"].rating == "good" and kinds["feedback"].item_id == "passport"
    assert kinds["complaint"].rating == "bad"
    assert "13812345678" not in kinds["complaint"].text and "138****5678" in kinds["complaint"].text
    assert kinds["complaint"].channel == "web"


def test_request_human_directly(client, settings):
    from assistant.storage.tables import HandoffTicket

    body = chat(client, "ho-2", "转人工")
    assert "转接人工服务" in body["text"] and body["handoff"]["status"] == "waiting"
    with database.session_factory(settings.db_url)() as session:
        rows = session.execute(
            select(HandoffTicket).where(HandoffTicket.conversation_id == "ho-2")
        ).scalars().all()
    assert [(r.reason, r.channel, r.status) for r in rows] == [("request_human", "web", "waiting")]
    # The ticket now holds the conversation: the bot stays quiet.
    quiet = chat(client, "ho-2", "护照要带什么材料")
    assert quiet["messages"] == [] and quiet["handoff"]["ticket_id"] == body["handoff"]["ticket_id"]


def test_small_talk_and_out_of_scope(client):
    assert "您好" in chat(client, "st-1", "你好")["text"]
    assert "不客气" in chat(client, "st-1", "谢谢")["text"]
    assert "回答不了" in chat(client, "st-1", "帮我写首诗")["text"]
    assert "再见" in chat(client, "st-1", "再见")["text"]


def test_two_failed_turns_open_a_ticket(client):
    first = chat(client, "fb-loop", "/nlu_fallback")["text"]
    assert "您是想问" in first or "换个说法" in first
    second = chat(client, "fb-loop", "/nlu_fallback")
    assert second["text"].startswith("抱歉，我没能理解您的问题。已请工作人员看一看")
    assert second["handoff"]["status"] == "waiting" and second["handoff"]["follow_up"] is True
    assert {"title": "转人工", "payload": "/request_human"} in second["buttons"]


def test_rephrase_after_a_denied_guess(client):
    chat(client, "fb-loop-2", "/nlu_fallback")
    body = chat(client, "fb-loop-2", "/out_of_scope")
    assert "换个说法" in body["text"]
    body = chat(client, "fb-loop-2", "护照要带什么材料")
    assert "普通护照签发" in body["text"]
