"""A SQL tracker store whose sessions roll over, keeping every turn equally cheap.

Rasa loads, replays and featurizes all events of the current session on every turn,
and sends them all to the action server, so a turn's cost grows with the length of
the conversation. Our dialogue needs only the slots and the last few turns; once a
session holds ``roll_after_events`` events (and no form or fallback loop is active),
a new session is started exactly as Rasa's ``action_session_start`` does — with the
slots carried over. Every event stays in the database (full history for operators).
"""

from __future__ import annotations

import logging
from typing import Any, List, Optional, Text

from rasa.core.tracker_store import SQLTrackerStore
from sqlalchemy import event as sa_event
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.events import ActionExecuted, Event, SessionStarted, SlotSet
from rasa.shared.core.trackers import DialogueStateTracker

logger = logging.getLogger(__name__)

SESSION_METADATA_SLOT = "session_started_metadata"


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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL journal and normal sync: a commit no longer waits for two fsyncs."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class RollingSQLTrackerStore(SQLTrackerStore):
    def __init__(self, *args: Any, roll_after_events: int = 40, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.roll_after_events = roll_after_events
        if self.engine.dialect.name == "sqlite":
            sa_event.listen(self.engine, "connect", _sqlite_pragmas)
            self.engine.dispose()  # reconnect with the pragmas

    def should_roll(self, tracker: DialogueStateTracker) -> bool:
        return (
            self.roll_after_events > 0
            and not tracker.active_loop_name
            and tracker.latest_action_name == ACTION_LISTEN_NAME
            and session_events(tracker) >= self.roll_after_events
        )

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        tracker = await super().retrieve(sender_id)
        if tracker is not None and self.should_roll(tracker):
            for event in roll_events(tracker):
                tracker.update(event)
            await self.save(tracker)
            logger.debug("tracker_store.session.rolled events=%d", len(tracker.events))
        return tracker
