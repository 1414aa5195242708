"""The rolling SQL tracker store: sessions roll over with slots kept, nothing is lost."""

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet, UserUttered

from assistant.dialogue.tracker_store import RollingSQLTrackerStore, session_events

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet]
slots:
  service_item: {type: text, influence_conversation: false, mappings: [{type: custom}]}
"""
)


@pytest.fixture
def store(tmp_path):
    return RollingSQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "t.db"), roll_after_events=10)


async def add_turn(store, sender, i):
    tracker = await store.get_or_create_tracker(sender)
    tracker.update(UserUttered(f"hi {i}", {"name": "greet", "confidence": 1.0}))
    tracker.update(ActionExecuted("utter_greet"))
    tracker.update(SlotSet("service_item", f"item{i}"))
    tracker.update(ActionExecuted("action_listen"))
    await store.save(tracker)


async def test_sessions_roll_and_keep_slots(store):
    for i in range(12):
        await add_turn(store, "s1", i)
    tracker = await store.retrieve("s1")
    assert session_events(tracker) < 10 + 4
    assert tracker.get_slot("service_item") == "item11"
    full = await store.retrieve_full_tracker("s1")
    assert sum(isinstance(e, UserUttered) for e in full.events) == 12
    assert any(isinstance(e, SessionStarted) for e in full.events)


async def test_saving_twice_stores_each_event_once(store):
    await add_turn(store, "s2", 0)
    tracker = await store.retrieve("s2")
    await store.save(tracker)
    await store.save(tracker)
    again = await store.retrieve_full_tracker("s2")
    assert sum(isinstance(e, UserUttered) for e in again.events) == 1


async def test_a_tracker_from_elsewhere_falls_back_to_counting(store):
    await add_turn(store, "s3", 0)
    other = await store.retrieve("s3")
    fresh = await store.retrieve("s3")  # a second object for the same conversation
    fresh.update(UserUttered("more", {"name": "greet", "confidence": 1.0}))
    await store.save(fresh)
    await store.save(other)  # nothing new in it: nothing written
    full = await store.retrieve_full_tracker("s3")
    assert sum(isinstance(e, UserUttered) for e in full.events) == 2
