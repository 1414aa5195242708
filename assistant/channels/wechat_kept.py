"""The WeChat channel's state changes, kept through the storage spool
(``assistant.storage.spool``) while the database is unreachable, so that no reply
is lost and none is sent twice.

Every change that decides who delivers a reply stays a compare-and-set of
``wechat_store`` (``pending`` → ``passive`` or ``pending`` → ``async`` → ``queued``),
and a spooled change is that same compare-and-set, replayed later in the order it
was made (one order key per WeChat user). So whichever of the turn, the handler, a
retry or a replay comes first, only one of them answers passively or queues the
reply:

* the turn's reply (:func:`store_reply`) waits in the spool and is stored later; if
  the handler gave up waiting meanwhile, the replay queues it for the
  customer-service API;
* the handler, when the turn is done but the database is not there, answers
  passively from memory and keeps its claim (``pending`` → ``passive``), which the
  replay makes; when the turn is late, it answers "success" and keeps
  ``pending`` → ``async`` (the reply is queued when both are in);
* after a send, ``sent``/``retry``/``failed`` and a window given back are kept; the
  delivery worker sends nothing while any of them waits (:func:`drained`), so a
  message whose "sent" mark waits is not claimed and sent again.

What is not kept: the first record of an inbound message (``wechat_store.begin``):
without the database nothing is processed and the user is asked to send again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Optional, Sequence, Tuple

from assistant.channels import wechat_store as store
from assistant.storage import spool
from assistant.storage.tables import WX_ASYNC, WeChatUser

KIND_INBOUND = "wechat.inbound"  # the user wrote: their window starts again
KIND_REPLY = "wechat.reply"  # the turn's reply is stored
KIND_PASSIVE = "wechat.passive"  # the handler answered passively
KIND_ASYNC = "wechat.async"  # the handler stopped waiting: the reply goes by the API
KIND_QUEUE = "wechat.queue"  # messages for the customer-service API (operator replies)
KIND_OPTIONS = "wechat.options"  # the numbered options of the last reply
KIND_MARK = "wechat.mark"  # what became of a sent message
KIND_WINDOW = "wechat.window"  # a counted message given back to the window
KINDS = [KIND_INBOUND, KIND_REPLY, KIND_PASSIVE, KIND_ASYNC, KIND_QUEUE, KIND_OPTIONS, KIND_MARK, KIND_WINDOW]
MARK_SENT, MARK_RETRY, MARK_FAILED = "sent", "retry", "failed"


def order_of(sender_id: str) -> str:
    return f"wechat:{sender_id}"


# ------------------------------------------------------------------ replays
def _inbound(session, payload: Dict[str, Any], replaying: bool) -> None:
    at = spool.at_of(payload)
    row = session.get(WeChatUser, payload["sender"])
    if row is None:
        session.add(WeChatUser(sender_id=payload["sender"], last_inbound_at=at, sends_since_inbound=0))
        session.flush()
    elif row.last_inbound_at < at:  # a later message of theirs may have been noted already
        row.last_inbound_at, row.sends_since_inbound = at, 0


def _reply(session, payload: Dict[str, Any], replaying: bool) -> bool:
    return store.store_reply_in(session, payload["key"], payload["sender"], payload["parts"], payload["failed"])


def _passive(session, payload: Dict[str, Any], replaying: bool) -> Optional[List[str]]:
    return store.claim_passive_in(session, payload["key"], payload["sender"])


def _async(session, payload: Dict[str, Any], replaying: bool) -> Tuple[str, List[str]]:
    return store.stop_waiting_in(session, payload["key"], payload["sender"])


def _queue(session, payload: Dict[str, Any], replaying: bool) -> None:
    store.queue_in(session, payload["sender"], payload["parts"], payload["source"])


def _options(session, payload: Dict[str, Any], replaying: bool) -> None:
    options = [tuple(o) for o in payload["options"]] if payload["options"] else None
    store.set_options_in(session, payload["sender"], options)


def _mark(session, payload: Dict[str, Any], replaying: bool) -> None:
    at, error = spool.at_of(payload), payload.get("error")
    error = error[: store.MAX_ERROR_CHARS] if error else None
    if payload["outcome"] == MARK_SENT:
        values: Dict[str, Any] = {"sent_at": at, "last_error": None}
    elif payload["outcome"] == MARK_RETRY:
        values = {"next_attempt_at": at + dt.timedelta(seconds=payload["delay_s"]), "last_error": error}
    else:
        values = {"failed_at": at, "last_error": error}
    store.mark_in(session, payload["id"], **values)


def _window(session, payload: Dict[str, Any], replaying: bool) -> None:
    store.give_back_window_in(session, payload["sender"])


# Compare-and-set and "set to" changes are idempotent; queueing and uncounting are not.
for _kind, _apply, _keyed in (
    (KIND_INBOUND, _inbound, False), (KIND_REPLY, _reply, False), (KIND_PASSIVE, _passive, False),
    (KIND_ASYNC, _async, False), (KIND_QUEUE, _queue, True), (KIND_OPTIONS, _options, False),
    (KIND_MARK, _mark, False), (KIND_WINDOW, _window, True),
):
    spool.register(_kind, _apply, keyed=_keyed)


# ------------------------------------------------------------------ the channel's writes
def note_inbound(db_url: str, sender_id: str) -> None:
    spool.keep(db_url, KIND_INBOUND, {"sender": sender_id, "at": spool.now_iso()}, order_of(sender_id),
               direct=lambda: store.note_inbound(db_url, sender_id))


def store_reply(db_url: str, key: str, sender_id: str, parts: List[str], failed: bool = False) -> bool:
    """:func:`wechat_store.store_reply`, kept: True when it was queued just now."""
    payload = {"key": key, "sender": sender_id, "parts": parts, "failed": failed}
    return bool(spool.keep(db_url, KIND_REPLY, payload, order_of(sender_id)).result)


def claim_passive(db_url: str, key: str, sender_id: str, ready: Optional[List[str]]) -> Optional[List[str]]:
    """The reply to answer in the HTTP response, or None. ``ready``: the turn's reply
    when it finished in this process; then, while the database is unreachable, the
    claim is kept and ``ready`` is answered (the claim is made when it is back)."""
    if ready is None:  # nothing to answer from memory: claim now or not at all
        try:
            return store.claim_passive(db_url, key, sender_id)
        except Exception as exc:
            if spool.is_outage(exc):
                return None
            raise
    kept = spool.keep(db_url, KIND_PASSIVE, {"key": key, "sender": sender_id}, order_of(sender_id))
    return ready if kept.spooled else kept.result


def give_up_waiting(db_url: str, key: str, sender_id: str) -> Tuple[str, List[str]]:
    """:func:`wechat_store.give_up_waiting`, kept: ("async", []) while the database is
    unreachable (the reply is queued once both it and this change are in)."""
    try:
        return store.give_up_waiting(db_url, key, sender_id)
    except Exception as exc:
        if not spool.is_outage(exc):
            raise
    kept = spool.keep(db_url, KIND_ASYNC, {"key": key, "sender": sender_id}, order_of(sender_id))
    return (WX_ASYNC, []) if kept.spooled else kept.result


def queue_messages(db_url: str, sender_id: str, parts: Sequence[str], source: str) -> None:
    payload = {"sender": sender_id, "parts": list(parts), "source": source}
    spool.keep(db_url, KIND_QUEUE, payload, order_of(sender_id))


def set_options(db_url: str, sender_id: str, options: Optional[List[Tuple[str, str]]]) -> None:
    payload = {"sender": sender_id, "options": [list(o) for o in options] if options else None}
    spool.keep(db_url, KIND_OPTIONS, payload, order_of(sender_id))


def mark(db_url: str, message: store.Outgoing, outcome: str, error: Optional[str] = None,
         delay_s: float = 0.0) -> None:
    """A sent message is ``sent``; a refused one ``failed`` or tried again after ``delay_s``."""
    payload = {"id": message.id, "outcome": outcome, "error": error, "delay_s": delay_s, "at": spool.now_iso()}
    spool.keep(db_url, KIND_MARK, payload, order_of(message.sender_id))


def give_back_window(db_url: str, sender_id: str) -> None:
    spool.keep(db_url, KIND_WINDOW, {"sender": sender_id}, order_of(sender_id))


def drained(db_url: str) -> bool:
    """True when none of the channel's changes waits in the spool for ``db_url`` (after
    delivering what can be delivered now): only then may messages be claimed for sending."""
    if not spool.waiting_for(db_url, KINDS):
        return True
    spool.replay(db_url)
    return not spool.waiting_for(db_url, KINDS)
