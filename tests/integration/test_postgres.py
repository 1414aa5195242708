"""Our tables, the migrations and the tracker store on a real PostgreSQL server (the
suite's own in the PostgreSQL pass of `make test`, a throw-away one otherwise), and
recovery when that server restarts."""

import asyncio
import time
import uuid

import pytest
from rasa.shared.core.events import ActionExecuted, UserUttered
from sqlalchemy import inspect, select, text as sql_text
from sqlalchemy.engine import make_url

from assistant.config.hours import ServiceHours
from assistant.dialogue.tracker_store import RollingSQLTrackerStore
from assistant.services.handoff import tickets
from assistant.storage import database
from knowledge import db


@pytest.fixture
def pg_url(postgres_server):
    return postgres_server.url


def test_migrations_build_the_schema_once(pg_url):
    engine = database.get_engine(pg_url)
    tables = set(inspect(engine).get_table_names())
    assert {"alembic_version", "catalog_entries", "feedback", "handoff_tickets"} <= tables
    # Running them again (another process starting) changes nothing and takes the lock.
    database.migrate(engine)
    with engine.connect() as connection:
        versions = connection.execute(sql_text("SELECT version_num FROM alembic_version")).scalars().all()
    assert len(versions) == 1


def test_catalog_feedback_and_tickets(pg_url, catalog):
    db.sync_catalog(pg_url, catalog, force=True)
    stored = db.read_catalog(pg_url)
    assert set(stored.records) == set(catalog.records)
    conversation = f"pg-{uuid.uuid4().hex[:8]}"
    db.add_feedback(pg_url, conversation, "feedback", "好评", "good", "passport", "web")
    with database.session_factory(pg_url)() as session:
        rows = session.execute(select(db.Feedback).where(db.Feedback.conversation_id == conversation)).scalars().all()
    assert [r.rating for r in rows] == ["good"]
    opened = tickets.open_ticket(
        pg_url, conversation_id=conversation, channel="web", reason="request_human", item_id="passport",
        summary={}, hours=ServiceHours.parse("always"),
    )
    again = tickets.open_ticket(
        pg_url, conversation_id=conversation, channel="web", reason="request_human", item_id="passport",
        summary={}, hours=ServiceHours.parse("always"),
    )
    assert again.id == opened.id and not again.created  # one open ticket per conversation
    assert tickets.open_ticket_of(pg_url, conversation).id == opened.id


def _tracker_store(url: str) -> RollingSQLTrackerStore:
    parsed = make_url(url)
    return RollingSQLTrackerStore(
        dialect=parsed.drivername, host=parsed.host, port=parsed.port, db=parsed.database,
        username=parsed.username, password=parsed.password, roll_after_events=10,
    )


async def test_tracker_store_round_trip(pg_url):
    store = _tracker_store(pg_url)
    sender = f"pg-{uuid.uuid4().hex[:8]}"
    tracker = await store.get_or_create_tracker(sender)
    tracker.update(UserUttered("你好", {"name": "greet", "confidence": 1.0}))
    tracker.update(ActionExecuted("utter_greet"))
    await store.save(tracker)
    again = await store.retrieve(sender)
    assert [e.text for e in again.events if isinstance(e, UserUttered)] == ["你好"]


def test_a_restart_fails_fast_then_recovers(postgres_server, pg_url):
    """While the server is down a write fails within seconds (no hang); after it is
    back, the same engine writes again without restarting anything."""
    conversation = f"pg-{uuid.uuid4().hex[:8]}"
    db.add_feedback(pg_url, conversation, "feedback", "好评", "good", None, "web")
    postgres_server.kill()
    try:
        started = time.monotonic()
        with pytest.raises(Exception):
            db.add_feedback(pg_url, conversation, "feedback", "差评", "bad", None, "web")
        assert time.monotonic() - started < database.PG_CONNECT_TIMEOUT_S + database.PG_POOL_TIMEOUT_S + 2
    finally:
        postgres_server.restart()
    db.add_feedback(pg_url, conversation, "feedback", "差评", "bad", None, "web")
    with database.session_factory(pg_url)() as session:
        rows = session.execute(select(db.Feedback).where(db.Feedback.conversation_id == conversation)).scalars().all()
    assert sorted(r.rating for r in rows) == ["bad", "good"]


@pytest.mark.model
def test_a_turn_without_its_tracker_store_is_refused_not_answered_blind(postgres_server, settings, trained_model,
                                                                        action_server, tmp_path):
    """Rasa's FailSafeTrackerStore would answer with an empty tracker and keep the turn
    in memory only; the gateway refuses the turn instead (503), and nothing is lost."""
    from fastapi.testclient import TestClient

    from assistant.api.app import create_app

    trackers = postgres_server.create_database(f"trackers_{uuid.uuid4().hex[:8]}")
    app_settings = settings.copy(update={
        "data_dir": tmp_path, "database_url": None, "tracker_db_url": trackers, "redis_url": None,
    })
    sender = f"pg-{uuid.uuid4().hex[:8]}"
    with TestClient(create_app(app_settings)) as client:
        first = client.post("/api/v1/chat", json={"sender_id": sender, "text": "办护照要带什么材料"})
        assert first.status_code == 200 and first.json()["item"] == "passport"
        postgres_server.kill()
        try:
            down = client.post("/api/v1/chat", json={"sender_id": sender, "text": "那要交多少钱"})
            assert down.status_code == 503 and down.json()["detail"] == "系统正在恢复，请稍等几秒再试。", down.text
        finally:
            postgres_server.restart()
        again = client.post("/api/v1/chat", json={"sender_id": sender, "text": "那要交多少钱"})
        assert again.status_code == 200 and again.json()["item"] == "passport"  # the context survived
    store = _tracker_store(trackers)
    tracker = asyncio.run(store.retrieve_full_tracker(sender))
    said = [e.text for e in tracker.events if isinstance(e, UserUttered)]
    assert said == ["办护照要带什么材料", "那要交多少钱"]
