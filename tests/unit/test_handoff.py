"""Handoff tickets, the queue and service hours, on a real SQLite database."""

import datetime as dt

import pytest

from assistant.config.hours import ServiceHours, describe_when
from assistant.services.handoff import relay, tickets
from assistant.storage import tables

ALWAYS = ServiceHours.parse("always")
SHANGHAI_OFFSET = dt.timedelta(hours=8)


def utc(local: str) -> dt.datetime:
    """A Shanghai wall-clock time as naive UTC (how the database stores times)."""
    return dt.datetime.fromisoformat(local) - SHANGHAI_OFFSET


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'tickets.db'}"


def open_for(db_url, conversation_id, hours=ALWAYS, now=None, reason="request_human"):
    return tickets.open_ticket(
        db_url,
        conversation_id=conversation_id,
        channel="web",
        reason=reason,
        item_id="passport",
        summary={"question": "护照要带什么"},
        hours=hours,
        now=now,
    )


def test_service_hours_parse_and_describe():
    hours = ServiceHours.parse("mon-fri 09:00-17:00")
    assert hours.describe() == "工作日 09:00-17:00"
    assert ServiceHours.parse("sat 10:00-12:00").describe() == "星期六 10:00-12:00"
    assert ServiceHours.parse("mon-sat 08:30-18:00").describe() == "星期一至星期六 08:30-18:00"
    assert ServiceHours.parse("Always").always
    for bad in ["", "mon-fri", "mon-fri 17:00-09:00", "fri-mon 09:00-17:00", "someday 09:00-10:00", "mon 9-17"]:
        with pytest.raises(ValueError):
            ServiceHours.parse(bad)


def test_service_hours_open_and_next_open():
    hours = ServiceHours.parse("mon-fri 09:00-17:00")
    assert hours.is_open(utc("2026-11-24 09:00"))  # Tuesday
    assert not hours.is_open(utc("2026-11-24 17:00"))
    assert not hours.is_open(utc("2026-11-24 08:59"))
    friday_night = utc("2026-11-27 20:00")
    assert not hours.is_open(friday_night)
    monday = hours.next_open(friday_night)
    assert (monday.weekday(), monday.hour, monday.minute) == (0, 9, 0)
    assert describe_when(monday, friday_night) == "星期一 09:00"
    early = utc("2026-11-24 07:00")
    assert describe_when(hours.next_open(early), early) == "今天 09:00"
    late = utc("2026-11-24 18:00")
    assert describe_when(hours.next_open(late), late) == "明天 09:00"


def test_queue_positions_and_one_ticket_per_conversation(db_url):
    first = open_for(db_url, "c1")
    second = open_for(db_url, "c2")
    assert (first.position, second.position) == (1, 2)
    again = open_for(db_url, "c1")
    assert (again.id, again.created) == (first.id, False)
    queue = tickets.list_queue(db_url)
    assert [t["conversation_id"] for t in queue] == ["c2", "c1"]  # newest first
    assert queue[0]["summary"] == {"question": "护照要带什么"}
    tickets.finish_ticket(db_url, first.id, status=tables.TICKET_CANCELLED, operator=None)
    assert tickets.open_ticket_of(db_url, "c2").position == 1


def test_relay_reply_and_hand_back(db_url):
    ticket = open_for(db_url, "c-relay")
    assert tickets.relaying_ticket(db_url, "c-relay").id == ticket.id
    relay.add_citizen_message(db_url, ticket.id, "我的护照照片不合格怎么办")
    reply = relay.operator_reply(db_url, ticket.id, "op1", "您好，请到窗口重新拍照。")
    assert tickets.open_ticket_of(db_url, "c-relay").status == tables.TICKET_ACTIVE
    to_citizen = relay.messages_for_citizen(db_url, "c-relay")
    assert [m["role"] for m in to_citizen] == ["operator"]
    assert relay.messages_for_citizen(db_url, "c-relay", after_id=reply["id"]) == []
    notice = tickets.finish_ticket(db_url, ticket.id, status=tables.TICKET_HANDED_BACK, operator="op1")
    assert notice["text"] == tickets.HANDED_BACK_NOTICE
    assert tickets.relaying_ticket(db_url, "c-relay") is None
    full = tickets.get_ticket(db_url, ticket.id)
    assert [m["role"] for m in full["messages"]] == ["citizen", "operator", "system"]
    assert full["status"] == "handed_back" and full["operator"] == "op1"
    with pytest.raises(tickets.TicketClosed):
        relay.operator_reply(db_url, ticket.id, "op1", "还在吗")
    with pytest.raises(tickets.TicketClosed):
        tickets.finish_ticket(db_url, ticket.id, status=tables.TICKET_CLOSED, operator="op1")
    with pytest.raises(tickets.TicketNotFound):
        tickets.get_ticket(db_url, 999999)


def test_after_hours_ticket_waits_without_holding_the_conversation(db_url):
    hours = ServiceHours.parse("mon-fri 09:00-17:00")
    ticket = open_for(db_url, "c-night", hours=hours, now=utc("2026-11-24 22:00"))
    assert ticket.deferred
    assert tickets.relaying_ticket(db_url, "c-night") is None  # the bot keeps answering
    assert tickets.open_ticket_of(db_url, "c-night").id == ticket.id  # but the desk sees it
    relay.operator_reply(db_url, ticket.id, "op1", "早上好，我来帮您。")
    held = tickets.relaying_ticket(db_url, "c-night")
    assert held is not None and held.status == "active" and not held.deferred


def test_change_marker_moves_with_every_change(db_url):
    before = tickets.change_marker(db_url)
    ticket = open_for(db_url, "c-mark")
    opened = tickets.change_marker(db_url)
    assert opened != before
    relay.add_citizen_message(db_url, ticket.id, "在吗")
    assert tickets.change_marker(db_url) != opened


@pytest.mark.parametrize("text", ["取消人工", "不用人工了", "返回智能助手", " 取消转人工。"])
def test_cancel_requests(text):
    assert relay.is_cancel_request(text)


@pytest.mark.parametrize("text", ["我想取消人工服务的投诉", "人工", "取消预约"])
def test_not_cancel_requests(text):
    assert not relay.is_cancel_request(text)
