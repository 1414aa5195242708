"""Status notices: no personal data, quiet hours in local time, a daily cap."""

import datetime as dt

from assistant.services.progress import notices

UTC = dt.timezone.utc
TZ = "Asia/Shanghai"


def test_the_notice_carries_only_the_masked_number_and_the_status():
    text = notices.notice_text("ZW20251102003", "supplement")
    assert text == "您的办件ZW2025****003有新进展：需补正材料。可在“办事助手”里输入办件编号查看详情。"
    assert "20251102003" not in text


def test_quiet_hours_are_local_and_defer_to_eight():
    evening = dt.datetime(2026, 12, 5, 13, 30, tzinfo=UTC)  # 21:30 in Beijing
    decision = notices.decide(evening, TZ, sent_today=0)
    assert decision.action == notices.DEFERRED
    assert decision.at == dt.datetime(2026, 12, 6, 0, 0, tzinfo=UTC)  # 08:00 the next morning
    early = dt.datetime(2026, 12, 5, 23, 0, tzinfo=UTC)  # 07:00 on the 6th in Beijing
    assert notices.decide(early, TZ, 0).at == dt.datetime(2026, 12, 6, 0, 0, tzinfo=UTC)
    day = dt.datetime(2026, 12, 5, 2, 0, tzinfo=UTC)  # 10:00
    assert notices.decide(day, TZ, 0) == notices.Decision(notices.SEND, day)
    assert notices.decide(evening, TZ, 0, urgent=True).action == notices.SEND


def test_at_most_three_a_day_unless_urgent():
    day = dt.datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    assert notices.decide(day, TZ, sent_today=notices.MAX_PER_DAY).action == notices.CAPPED
    assert notices.decide(day, TZ, sent_today=notices.MAX_PER_DAY, urgent=True).action == notices.SEND
