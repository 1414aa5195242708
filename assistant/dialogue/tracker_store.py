"""A SQL tracker store whose sessions roll over, keeping every turn equally cheap.

Rasa loads, replays and featurizes all events of the current session on every turn,
and sends them all to the action server, so a turn's cost grows with the length of
the conversation. Our dialogue needs only the slots and the last few turns; once a
session holds ``roll_after_events`` events (and no form or fallback loop is active),
a new session is started exactly as Rasa's ``action_session_start`` does — with the
slots carried over. Every event stays in the database (full history for operators).

Rasa's SQL store does its blocking database work inside ``async`` methods, on the
event loop: one slow or hanging connection (a PostgreSQL restart) stalled every
conversation of the gateway for a minute under load. Here that work runs in a worker
thread, and the PostgreSQL engine fails fast (connect timeout, pool timeout,
pre-ping) like the rest of banshi's database access.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections import OrderedDict
from typing import Any, Coroutine, Iterator, List, Optional, Text, Tuple, TypeVar

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.events import ActionExecuted, Event, SessionStarted, SlotSet
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import event as sa_event
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool

from assistant.storage.database import PG_CONNECT_TIMEOUT_S, PG_POOL_TIMEOUT_S, sqlite_pragmas

logger = logging.getLogger(__name__)

SESSION_METADATA_SLOT = "session_started_metadata"
MAX_REMEMBERED = 10_000
PG_POOL_SIZE = 10
PG_MAX_OVERFLOW = 20
T = TypeVar("T")


def drive(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (Rasa's SQL store methods: synchronous work
    behind ``async def``) to its end, in whatever thread calls this."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the tracker store awaited something: it cannot run in a worker thread")


def session_events(tracker: DialogueStateTracker) -> int:
    """Number of events since the latest session start."""
    count = 0
    for event in reversed(tracker.events):
        if isinstance(event, SessionStarted):
            break
        count += 1
    return count


def roll_events(tracker: DialogueStateTracker) -> List[Event]:
    """What ``action_session_start`` appends, with every filled slot carried over."""
    carried = [
        SlotSet(name, slot.value)
        for name, slot in tracker.slots.items()
        if slot.value is not None and name != SESSION_METADATA_SLOT
    ]
    return [
        ActionExecuted(ACTION_SESSION_START_NAME),
        SessionStarted(),
        *carried,
        ActionExecuted(ACTION_LISTEN_NAME),
    ]


class RollingSQLTrackerStore(SQLTrackerStore):
    def __init__(self, *args: Any, roll_after_events: int = 40, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.roll_after_events = roll_after_events
        if self.engine.dialect.name == "sqlite":
            # SQLAlchemy 1.4 opens a new SQLite connection per session (NullPool);
            # keep a few open instead, in WAL mode.
            url = self.engine.url
            self.engine.dispose()
            self.engine = sa.create_engine(
                url, poolclass=QueuePool, pool_size=4, connect_args={"check_same_thread": False}
            )
            sa_event.listen(self.engine, "connect", sqlite_pragmas)
            self.sessionmaker = sessionmaker(bind=self.engine)
        elif self.engine.dialect.name == "postgresql":
            url = self.engine.url
            self.engine.dispose()
            self.engine = sa.create_engine(
                url,
                pool_size=PG_POOL_SIZE,
                max_overflow=PG_MAX_OVERFLOW,
                pool_timeout=PG_POOL_TIMEOUT_S,
                pool_pre_ping=True,
                connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S},
            )
            self.sessionmaker = sessionmaker(bind=self.engine)
        # sender id → (id of the tracker object, events stored); a bounded LRU,
        # read and written from worker threads.
        self._stored_counts: "OrderedDict[Text, Tuple[int, int]]" = OrderedDict()
        self._counts_lock = threading.Lock()

    def should_roll(self, tracker: DialogueStateTracker) -> bool:
        return (
            self.roll_after_events > 0
            and not tracker.active_loop_name
            and tracker.latest_action_name == ACTION_LISTEN_NAME
            and session_events(tracker) >= self.roll_after_events
        )

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        tracker = await asyncio.to_thread(drive, super().retrieve(sender_id))
        if tracker is not None:
            self._remember(tracker)
            if self.should_roll(tracker):
                for event in roll_events(tracker):
                    tracker.update(event)
                await self.save(tracker)
                logger.debug("tracker_store.session.rolled events=%d", len(tracker.events))
        return tracker

    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Iterator:
        """New events of a tracker this store loaded; Rasa's lock store guarantees that
        nobody else wrote to the conversation in between, so no COUNT query is needed."""
        with self._counts_lock:
            known = self._stored_counts.pop(tracker.sender_id, None)
        if known is None or known[0] != id(tracker) or known[1] > len(tracker.events):
            return super()._additional_events(session, tracker)
        return itertools.islice(tracker.events, known[1], len(tracker.events))

    async def retrieve_full_tracker(self, conversation_id: Text) -> Optional[DialogueStateTracker]:
        return await asyncio.to_thread(drive, super().retrieve_full_tracker(conversation_id))

    async def save(self, tracker: DialogueStateTracker) -> None:
        await asyncio.to_thread(drive, super().save(tracker))
        self._remember(tracker)

    def _remember(self, tracker: DialogueStateTracker) -> None:
        with self._counts_lock:
            self._stored_counts[tracker.sender_id] = (id(tracker), len(tracker.events))
            self._stored_counts.move_to_end(tracker.sender_id)
            while len(self._stored_counts) > MAX_REMEMBERED:
                self._stored_counts.popitem(last=False)
