"""The digit recogniser's number (assistant/services/callmode/digits.py): only a
mobile number said right after a cue, never digits made of other speech; and the
draft marks a heard number so that it is read back before the ticket is saved."""

from __future__ import annotations

import json

import pytest

from assistant.services.callmode.config import TUNABLES
from assistant.services.callmode.digits import PhoneListener, grammar, number_after_cue
from assistant.services.callmode.draft import build_draft
from assistant.services.callmode.session import CallSession, Phrase


@pytest.mark.parametrize(
    "segments, number",
    [
        (["我手机号一三九零七二六五四八三"], "13907265483"),
        # Cut where the caller paused between groups: the window's segments read together.
        (["我电话幺三五", "八八幺二", "零四九六"], "13588120496"),
        # Ten digits (one lost): no number.
        (["号码是一八六", "两两零", "四九六五"], None),
        (["手机幺五零二二三三四四五五"], "15022334455"),
        # No cue: digits the grammar made of other speech.
        (["一三九零七二六五四八三"], None),
        # 12 digits after the cue: something else was said too; no number.
        (["电话一三九零七二六五四八三六"], None),
        # Not a mainland mobile number.
        (["电话一二九零七二六五四八三"], None),
        # The last cue counts: the caller started over.
        (["电话一三九零", "不是 手机一五八零二六三九七一四"], "15802639714"),
        # 号码是 between the cue and the number.
        (["我电话号码是", "一三九零七二六五四八三"], "13907265483"),
        # Another word among the digits: other speech heard as digits (a Sichuanese
        # recording with no number in it, bench/callmode_phone.py).
        (["八手机一四三", "四七一三", "零三是六九"], None),
        (["我电话是一三九", "是零七二六", "五四八三"], None),
    ],
)
def test_a_number_after_a_cue(segments, number):
    assert number_after_cue(segments) == number


def test_the_grammar_is_the_digit_and_cue_words_only():
    words = json.loads(grammar())
    assert set(words) == set(TUNABLES.phone.digit_words) | set(TUNABLES.phone.cue_words)
    assert "[unk]" not in words and len(words) == len(set(words))


class FakeStream:
    """Segments arriving as the digit recogniser's stream ends them (no model here;
    the real one is in tests/integration/test_call_mode.py)."""

    def __init__(self):
        self.segments, self.seconds = [], 0.0

    def feed_sync(self, pcm16):
        self.seconds += len(pcm16) / 32000

    def finish_sync(self):
        return ""


SECOND = b"\0\0" * 16000


def test_the_listener_reports_a_settled_number_once_and_forgets_old_segments():
    stream = FakeStream()
    listener = PhoneListener(stream)
    stream.segments.append("我电话幺三五")
    assert listener.feed_sync(SECOND) is None
    stream.segments.append("八八幺二零四九六")
    assert listener.feed_sync(SECOND) is None  # heard, not settled yet
    assert listener.feed_sync(SECOND) is None
    assert listener.feed_sync(SECOND) == "13588120496"  # 2 s with nothing more
    assert listener.feed_sync(SECOND * 3) is None  # nothing new
    stream.segments.append("电话幺三五八八幺二零四九六")  # the same number again
    listener.feed_sync(SECOND * 3)
    assert listener.feed_sync(SECOND) is None and listener.last == "13588120496"
    # A cue whose digits come after the window (15 s) is not read with them.
    stream.segments.append("手机一五八")
    assert listener.feed_sync(SECOND) is None
    listener.feed_sync(SECOND * 20)
    stream.segments.append("零二六三九七一四")
    assert [listener.feed_sync(SECOND) for _ in range(4)] == [None] * 4


def test_a_12th_digit_after_a_pause_withdraws_the_number():
    """An ID number read in groups is no phone number, though its first 11 digits look like one."""
    stream = FakeStream()
    listener = PhoneListener(stream)
    for group in ["号码是一三零", "一零二一", "九九零零"]:
        stream.segments.append(group)
        assert listener.feed_sync(SECOND) is None
    stream.segments.append("三零七一")
    assert [listener.feed_sync(SECOND) for _ in range(4)] == [None] * 4
    assert listener.finish_sync() is None and listener.last is None


def test_a_number_heard_as_the_call_ends_is_reported():
    stream = FakeStream()
    listener = PhoneListener(stream)
    stream.segments.append("手机一五八零二六三九七一四")
    assert listener.feed_sync(SECOND) is None
    assert listener.finish_sync() == "15802639714"


def test_a_heard_number_is_saved_only_once_read_back():
    from knowledge.catalog import load_catalog

    session = CallSession(load_catalog())
    session.hear_phone("13907265483")
    session.hear_phone("15802639714")
    for form in ("13907265483", "139 0726 5483", "139-0726-5483", "+86 13907265483", "8613907265483", "15802639714"):
        assert session.needs_read_back(form, checked=False), form
        assert not session.needs_read_back(form, checked=True), form
    # Another number the operator typed, or none: nothing to read back.
    assert not session.needs_read_back("13800001111", checked=False)
    assert not session.needs_read_back(None, checked=False)
    # A heard number also read plainly in the transcript needs no read-back.
    session.phrases.append(Phrase(0, "caller", "手机 幺五八 零二六三 九七幺四", 0.0))
    assert not session.needs_read_back("15802639714", checked=False)
    assert session.needs_read_back("13907265483", checked=False)


def test_a_heard_number_is_marked_and_a_number_in_the_transcript_wins():
    heard = build_draft(["我电话是 点选"], [], None, None, None, [], None, heard_phone="13907265483")
    assert heard.phone == "13907265483" and heard.phone_heard is True
    assert heard.shown()["phone_heard"] is True
    read = build_draft(["手机 幺五零 二二三三 四四五五"], [], None, None, None, [], None, heard_phone="13907265483")
    assert read.phone == "15022334455" and read.phone_heard is False
    none = build_draft(["你好"], [], None, None, None, [], None)
    assert none.phone is None and none.phone_heard is False
