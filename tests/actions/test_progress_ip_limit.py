"""The progress form under the per-client-IP limit, and final outcomes decided when
the form starts with the number said at once (they used to be lost)."""

import pytest
from limits import parse as parse_limit
from sqlalchemy import select

from actions.progress import IP_THROTTLED_TEXT, ActionProgressAnswer, ValidateProgressForm
from assistant.security.audit import citizen_actor
from assistant.security.client import client_key
from assistant.security.client_limits import progress_limiter, remember_client
from assistant.services.progress.guard import record_failure
from assistant.services.progress.importer import load_demo_data
from assistant.storage import database
from assistant.storage.tables import AuditRecord

from .conftest import make_tracker

DOMAIN = {
    "forms": {"progress_form": {"required_slots": ["application_number", "phone_tail"]}},
    "slots": {
        "application_number": {"type": "text", "mappings": [{"type": "custom"}]},
        "phone_tail": {"type": "text", "mappings": [{"type": "custom"}]},
        "progress_outcome": {"type": "text", "mappings": [{"type": "custom"}]},
    },
}


@pytest.fixture(scope="module", autouse=True)
def demo_data(settings):
    load_demo_data(settings.db_url, settings.secret())


def slot_events(events):
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def results(settings, sender_id):
    with database.session_factory(settings.db_url)() as session:
        rows = session.execute(
            select(AuditRecord.action, AuditRecord.result).where(AuditRecord.actor == citizen_actor(sender_id))
        ).all()
    return [tuple(r) for r in rows]


def exhaust(settings, address):
    limiter = progress_limiter(settings)
    client = client_key(settings.secret(), address)
    while limiter.hit(client) is None:
        pass
    return client


async def test_form_start_over_the_ip_limit_looks_nothing_up(settings, dispatcher):
    sender, address = "ipl-action-1", "192.0.2.10"
    remember_client(settings, sender, address)
    exhaust(settings, address)
    start = make_tracker("帮我查一下ZW20251102003的进度", "check_progress", slots={"requested_slot": None},
                         sender_id=sender)
    events = await ValidateProgressForm().run(dispatcher, start, DOMAIN)
    slots = slot_events(events)
    assert slots["progress_outcome"] == "ip_throttled" and slots["application_number"] is None
    assert slots.get("requested_slot") is None  # the form ends
    assert results(settings, sender) == [("progress.lookup", "ip_throttled")]
    # The answer: the notice with the minutes left, and a person.
    answer = make_tracker("", slots={"progress_outcome": "ip_throttled"}, sender_id=sender)
    events = await ActionProgressAnswer().run(dispatcher, answer, DOMAIN)
    text = dispatcher.messages[-2]["text"]
    assert text.startswith(IP_THROTTLED_TEXT.split("{")[0]) and "分钟后再试" in text
    minutes = int(text.split("请 ")[1].split(" 分钟")[0])
    window = parse_limit(settings.progress_ip_rate_limit).get_expiry() // 60
    assert 1 <= minutes <= window
    assert slot_events(events)["progress_outcome"] is None


async def test_verification_over_the_ip_limit_is_not_checked(settings, dispatcher):
    sender, address = "ipl-action-2", "192.0.2.11"
    remember_client(settings, sender, address)
    exhaust(settings, address)
    tracker = make_tracker("3003", "inform", slots={"requested_slot": "phone_tail",
                                                    "application_number": "ZW20251102003"}, sender_id=sender)
    result = await ValidateProgressForm().validate_phone_tail("3003", dispatcher, tracker, DOMAIN)
    assert result == {"phone_tail": None, "progress_outcome": "ip_throttled"}
    assert results(settings, sender) == [("progress.verify", "ip_throttled")]


async def test_unknown_client_is_only_limited_per_conversation(settings, dispatcher):
    """A conversation the gateway never saw (e.g. WeChat's) is not counted per IP."""
    tracker = make_tracker("3003", "inform", slots={"requested_slot": "phone_tail",
                                                    "application_number": "ZW20251102003"}, sender_id="wx-ipl")
    result = await ValidateProgressForm().validate_phone_tail("3003", dispatcher, tracker, DOMAIN)
    assert result["progress_outcome"] == "verified"


async def test_a_lock_found_when_the_form_starts_is_kept(settings, dispatcher):
    number = "ZW20990101777"
    for _ in range(3):
        record_failure(settings.db_url, number)
    start = make_tracker(f"帮我查一下{number}的进度", "check_progress", slots={"requested_slot": None},
                         sender_id="ipl-action-lock")
    slots = slot_events(await ValidateProgressForm().run(dispatcher, start, DOMAIN))
    assert slots["progress_outcome"] == "locked"
