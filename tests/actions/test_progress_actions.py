"""The progress form's extraction and validation, and the progress answer, on the demo data."""

import pytest
from sqlalchemy import select

from actions.followup import OFFER_TEXT
from actions.progress import (
    WHERE_NUMBER_TEXT,
    ActionProgressAnswer,
    ValidateProgressForm,
)
from assistant.security.audit import citizen_actor
from assistant.services.progress.guard import record_success
from assistant.services.progress.importer import load_demo_data
from assistant.storage import database
from assistant.storage.tables import AuditRecord

from .conftest import DOMAIN, make_tracker

# Demo applications (assistant/services/progress/demo_applications.csv): number → phone last 4.
ACCEPTED, REVIEWING, SUPPLEMENT, COMPLETED, REJECTED = (f"ZW2025110200{i}" for i in range(1, 6))
TAILS = {ACCEPTED: "1001", REVIEWING: "2002", SUPPLEMENT: "3003", COMPLETED: "4004", REJECTED: "5005"}


@pytest.fixture(scope="module", autouse=True)
def demo_data(settings):
    load_demo_data(settings.db_url, settings.secret())


def form_tracker(text, intent="inform", requested=None, slots=None, sender_id="prog-test"):
    values = {"requested_slot": requested, **(slots or {})}
    return make_tracker(text, intent, slots=values, sender_id=sender_id)


def audit_rows(settings, sender_id):
    with database.session_factory(settings.db_url)() as session:
        return session.execute(
            select(AuditRecord).where(AuditRecord.actor == citizen_actor(sender_id)).order_by(AuditRecord.id)
        ).scalars().all()


async def test_number_extraction(dispatcher):
    form = ValidateProgressForm()
    # The form starts: an earlier lookup is forgotten, a number said at once is kept.
    start = form_tracker("查一下zw2025-1102-003的进度", "check_progress", slots={"progress_outcome": "verified"})
    assert await form.extract_application_number(dispatcher, start, DOMAIN) == {
        "application_number": SUPPLEMENT,
        "phone_tail": None,
        "progress_outcome": None,
    }
    asked = form_tracker("编号是 ＺＷ２０２５１１０２００１", requested="application_number")
    assert await form.extract_application_number(dispatcher, asked, DOMAIN) == {"application_number": ACCEPTED}
    forgot = form_tracker("我忘了编号", "check_progress", requested="application_number")
    assert await form.extract_application_number(dispatcher, forgot, DOMAIN) == {"application_number": None}
    assert dispatcher.messages[-1]["text"] == WHERE_NUMBER_TEXT
    # A request for a human leaves the form to the rules (nothing extracted).
    human = form_tracker("转人工", "request_human", requested="application_number")
    assert await form.extract_application_number(dispatcher, human, DOMAIN) == {}


async def test_phone_tail_extraction(dispatcher):
    form = ValidateProgressForm()
    for text, tail in [("1234", "1234"), ("尾号是 5678", "5678"), ("13800003003", "3003"), ("１２３４", "1234"),
                       ("+86 138-0000-3003", "3003")]:
        t = form_tracker(text, requested="phone_tail")
        assert await form.extract_phone_tail(dispatcher, t, DOMAIN) == {"phone_tail": tail}, text
    t = form_tracker("123", requested="phone_tail")
    assert await form.extract_phone_tail(dispatcher, t, DOMAIN) == {"phone_tail": None}
    assert "最后四位" in dispatcher.messages[-1]["text"]
    t = form_tracker("不查了", "deny", requested="phone_tail")
    assert await form.extract_phone_tail(dispatcher, t, DOMAIN) == {}


async def test_unknown_number_is_told_and_audited(dispatcher, settings):
    t = form_tracker("ZW20991231999", requested="application_number", sender_id="prog-unknown")
    result = await ValidateProgressForm().validate_application_number("ZW20991231999", dispatcher, t, DOMAIN)
    assert result == {"application_number": None}
    assert dispatcher.messages[-1]["text"] == "没有找到编号为 ZW20991231999 的办件。请核对后再输入一次。"
    [row] = audit_rows(settings, "prog-unknown")
    assert (row.action, row.subject, row.result, row.channel) == ("progress.lookup", "ZW20991231999", "not_found", "web")


async def test_too_many_unknown_numbers_throttle(dispatcher, settings):
    form = ValidateProgressForm()
    t = form_tracker("x", requested="application_number", sender_id="prog-guess")
    for n in range(5):
        assert (await form.validate_application_number(f"ZW2099123100{n}", dispatcher, t, DOMAIN))[
            "application_number"
        ] is None
    result = await form.validate_application_number(ACCEPTED, dispatcher, t, DOMAIN)
    assert result == {"application_number": None, "progress_outcome": "throttled"}
    assert [r.result for r in audit_rows(settings, "prog-guess")][-1] == "throttled"


async def test_three_wrong_tails_lock_the_number(dispatcher, settings):
    form = ValidateProgressForm()
    sender = "prog-lock"
    slots = {"application_number": REVIEWING}
    t = form_tracker("0000", requested="phone_tail", slots=slots, sender_id=sender)
    assert await form.validate_phone_tail("0000", dispatcher, t, DOMAIN) == {"phone_tail": None}
    assert dispatcher.messages[-1]["text"] == "手机尾号不对。您还可以再试 2 次。"
    assert await form.validate_phone_tail("1111", dispatcher, t, DOMAIN) == {"phone_tail": None}
    locked = await form.validate_phone_tail("2222", dispatcher, t, DOMAIN)
    assert locked == {"phone_tail": None, "progress_outcome": "locked"}
    # Locked: even the right tail is refused, and a new lookup of the number too.
    assert (await form.validate_phone_tail(TAILS[REVIEWING], dispatcher, t, DOMAIN))["progress_outcome"] == "locked"
    other = form_tracker("x", requested="application_number", sender_id="prog-lock-2")
    assert (await form.validate_application_number(REVIEWING, dispatcher, other, DOMAIN))["progress_outcome"] == "locked"
    # The form ends early and the answer says why.
    done = form_tracker("2222", slots={**slots, "progress_outcome": "locked"}, sender_id=sender)
    assert await form.required_slots(["application_number", "phone_tail"], dispatcher, done, DOMAIN) == []
    dispatcher.messages.clear()
    await ActionProgressAnswer().run(dispatcher, done, DOMAIN)
    assert "已锁定" in dispatcher.messages[0]["text"] and "15 分钟" in dispatcher.messages[0]["text"]
    results = [(r.action, r.result) for r in audit_rows(settings, sender)]
    assert results == [
        ("progress.verify", "wrong_code"),
        ("progress.verify", "wrong_code"),
        ("progress.verify", "locked"),
        ("progress.verify", "locked"),
    ]
    record_success(settings.db_url, REVIEWING)  # unlock for the other tests


async def test_audit_rows_hold_no_personal_data(settings):
    with database.session_factory(settings.db_url)() as session:
        rows = session.execute(select(AuditRecord)).scalars().all()
    assert rows
    text = " ".join(f"{r.actor} {r.subject} {r.channel} {r.result}" for r in rows)
    for phone in ("13800001001", "13800002002", "13800003003"):
        assert phone not in text
    assert "110105198805120034" not in text


@pytest.mark.parametrize(
    "number, expected",
    [
        (ACCEPTED, ["居住证", "目前已受理", "审核通过后会短信通知您", "预计办结日期：2026年12月7日"]),
        (REVIEWING, ["目前审核中", "信息核验中", "预计办结日期：2026年12月10日"]),
        (SUPPLEMENT, ["目前需补正材料", "请补交这些材料：\n1. ", "下一步：带齐材料到"]),
        (COMPLETED, ["目前已办结", "领取方式：邮寄", "EMS"]),
        (REJECTED, ["目前不予受理", "户籍所在地", "转人工"]),
    ],
)
async def test_verified_answer_for_each_state(number, expected, dispatcher, settings):
    form = ValidateProgressForm()
    sender = f"prog-ok-{number}"
    t = form_tracker(TAILS[number], requested="phone_tail", slots={"application_number": number}, sender_id=sender)
    assert await form.validate_phone_tail(TAILS[number], dispatcher, t, DOMAIN) == {
        "phone_tail": TAILS[number],
        "progress_outcome": "verified",
    }
    done = form_tracker(
        TAILS[number],
        slots={"application_number": number, "phone_tail": TAILS[number], "progress_outcome": "verified"},
        sender_id=sender,
    )
    events = await ActionProgressAnswer().run(dispatcher, done, DOMAIN)
    *_, answer, offer = [m for m in dispatcher.messages if m.get("text")]
    assert offer["text"] == OFFER_TEXT  # the web chat can be told of the next change
    # A 需补正 application: a dated reminder ("补交截止前提醒您") is offered after this offer.
    offered = "progress_subscription+supplement_deadline" if number == SUPPLEMENT else "progress_subscription"
    assert {"event": "slot", "name": "pending_offer", "value": offered, "timestamp": None} in events
    text = answer["text"]
    for part in expected:
        assert part in text, (part, text)
    assert {"event": "slot", "name": "phone_tail", "value": None, "timestamp": None} in events
    if number == SUPPLEMENT:
        titles = [b["title"] for b in answer["buttons"]]
        assert titles == ["办理要带的全部材料", "转人工"]
        assert "1. 近期免冠证件照片：" in text  # matched to the catalog material, with its note
    assert [r.result for r in audit_rows(settings, sender)] == ["ok"]
    assert dispatcher.messages[-1]["custom"]["reply"]["answer"] == "progress"


async def test_a_number_given_outside_the_form_starts_the_lookup(dispatcher):
    from rasa_sdk.events import FollowupAction

    from actions.progress import ActionInform
    from tests.actions.conftest import make_tracker

    t = make_tracker("编号ZW20251102001", "inform", entities=[{"entity": "application_number", "value": "ZW20251102001"}])
    assert await ActionInform().run(dispatcher, t, DOMAIN) == [FollowupAction("progress_form")]
    assert "进度" in dispatcher.messages[0]["text"]
    dispatcher.messages.clear()
    assert await ActionInform().run(dispatcher, make_tracker("1234", "inform"), DOMAIN) == []
    assert dispatcher.messages[0]["response"] == "utter_inform_ack"


def test_a_status_change_without_a_note_is_still_shown_with_its_time(catalog):
    """At a kiosk nothing is pushed: the lookup itself says when the status last changed."""
    import datetime as dt

    from actions.progress import progress_answer
    from assistant.services.progress.records import ApplicationView, ProgressStep

    view = ApplicationView(
        number=COMPLETED, item_id="passport", applicant_masked="刘*", phone_last4="4004", status="completed",
        steps=[ProgressStep("reviewing", dt.datetime(2026, 11, 4, 9, 0), "审批中。"),
               ProgressStep("completed", dt.datetime(2026, 12, 5, 10, 30))],
    )
    text = progress_answer(catalog, view)
    assert "状态已更新：12月5日 10:30 变为“已办结”。" in text and "最新进展" not in text
    view.steps[-1].note = "护照已寄出。"
    noted = progress_answer(catalog, view)
    assert "最新进展（12月5日 10:30）：护照已寄出。" in noted and "状态已更新" not in noted
