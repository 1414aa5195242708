"""Our tables and the tracker store on PostgreSQL (runs when BANSHI_TEST_POSTGRES_URL is set,
e.g. postgresql://banshi:banshi@127.0.0.1:5432/banshi; skipped otherwise)."""

import os
import uuid

import pytest
from rasa.shared.core.events import ActionExecuted, UserUttered
from sqlalchemy import select
from sqlalchemy.engine import make_url

from assistant.dialogue.tracker_store import RollingSQLTrackerStore
from assistant.storage import database
from knowledge import db

URL = os.environ.get("BANSHI_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not URL, reason="set BANSHI_TEST_POSTGRES_URL to run")


def test_catalog_and_feedback_tables(catalog):
    db.sync_catalog(URL, catalog, force=True)
    stored = db.read_catalog(URL)
    assert set(stored.records) == set(catalog.records)
    conversation = f"pg-{uuid.uuid4().hex[:8]}"
    db.add_feedback(URL, conversation, "feedback", "好评", "good", "passport", "web")
    db.add_handoff_request(URL, conversation, "request_human")
    with database.session_factory(URL)() as session:
        rows = session.execute(select(db.Feedback).where(db.Feedback.conversation_id == conversation)).scalars().all()
    assert [r.rating for r in rows] == ["good"]


async def test_tracker_store_round_trip():
    url = make_url(URL)
    store = RollingSQLTrackerStore(
        dialect=url.drivername, host=url.host, port=url.port, db=url.database,
        username=url.username, password=url.password, roll_after_events=10,
    )
    sender = f"pg-{uuid.uuid4().hex[:8]}"
    tracker = await store.get_or_create_tracker(sender)
    tracker.update(UserUttered("你好", {"name": "greet", "confidence": 1.0}))
    tracker.update(ActionExecuted("utter_greet"))
    await store.save(tracker)
    again = await store.retrieve(sender)
    assert [e.text for e in again.events if isinstance(e, UserUttered)] == ["你好"]
