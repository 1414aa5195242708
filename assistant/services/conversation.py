"""One conversation turn, whatever the channel (web chat, kiosk voice, WeChat): relayed
to the person holding the conversation, or answered by the assistant; and the shape
of its replies. HTTP routes and channels call :func:`conversation_turn`; they check
the conversation token first."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional, Tuple

from fastapi import HTTPException
from pydantic import BaseModel
from starlette.requests import HTTPConnection

from assistant.config.settings import Settings
from assistant.dialogue.runtime import AssistantRuntime
from assistant.security.pii import hash_id
from assistant.services import degraded, metrics
from assistant.services.handoff import relay, tickets
from assistant.services.progress import commands
from assistant.services.reviews import collect as reviews
from assistant.storage import tables

logger = logging.getLogger(__name__)

TOP_ITEMS = 5
# Said when the dialogue produced no reply for another reason than an unreachable
# action server (that is answered by assistant.services.degraded).
NO_REPLY = "抱歉，系统暂时有点忙，请稍后再试，或拨打12345政务服务便民热线。"
HANDOFF_KEY = "handoff"
# Beside the ticket in the handoff action's message: why it was opened, and whether
# it is new (a citizen asking again joins the open ticket).
HANDOFF_REASON_KEY = "handoff_reason"
HANDOFF_CREATED_KEY = "handoff_created"
REPLY_KEY = "reply"
ANSWER_HANDOFF = "handoff"
ANSWER_FOLLOWUP = "followup"  # a reminder was set, listed or cancelled
NOT_READY = "助手正在启动，请稍后再试"


class Button(BaseModel):
    title: str
    payload: str


class BotMessage(BaseModel):
    text: Optional[str] = None
    buttons: Optional[List[Button]] = None


class ItemScore(BaseModel):
    id: str
    name: str
    score: float


def ready_runtime(app: Any) -> AssistantRuntime:
    """The app's dialogue runtime; 503 while the model is still loading."""
    runtime: AssistantRuntime = app.state.runtime
    if not runtime.ready:
        raise HTTPException(status_code=503, detail=NOT_READY)
    return runtime


def items_of(parse_data: Dict[str, Any]) -> List[ItemScore]:
    return [ItemScore(**item) for item in (parse_data.get("service_items") or [])[:TOP_ITEMS]]


def bot_messages(raw: List[Dict[str, Any]]) -> List[BotMessage]:
    messages = []
    for message in raw:
        buttons = message.get("buttons") or None
        if message.get("text") or buttons:
            messages.append(BotMessage(text=message.get("text"), buttons=buttons))
    return messages


def handoff_of(raw: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The ticket an action opened during this turn (sent as a custom message)."""
    for message in raw:
        custom = message.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get(HANDOFF_KEY), dict):
            return custom[HANDOFF_KEY]
    return None


def handoff_created(raw: List[Dict[str, Any]]) -> Optional[str]:
    """The reason of a ticket this turn newly opened (``None`` when it joined an open
    one): the handoff action sends it beside the ticket (``HANDOFF_REASON_KEY``)."""
    for message in raw:
        custom = message.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get(HANDOFF_KEY), dict):
            if custom.get(HANDOFF_CREATED_KEY) is False:
                return None
            reason = custom.get(HANDOFF_REASON_KEY)
            return reason if isinstance(reason, str) and reason else "unknown"
    return None


def reply_of(raw: List[Dict[str, Any]]) -> Dict[str, Any]:
    """What the turn's replies were about: ``{"item", "answer"}`` from the dialogue's
    custom messages (the last one wins); a ticket opened makes it a handoff."""
    found: Dict[str, Any] = {"item": None, "answer": None}
    for message in raw:
        custom = message.get("custom")
        if not isinstance(custom, dict):
            continue
        if isinstance(custom.get(REPLY_KEY), dict):
            found = {"item": custom[REPLY_KEY].get("item"), "answer": custom[REPLY_KEY].get("answer")}
        elif isinstance(custom.get(HANDOFF_KEY), dict):
            found = {"item": found["item"], "answer": ANSWER_HANDOFF}
    return found


async def relay_to_operator(
    conn: HTTPConnection, settings: Settings, sender_id: str, text: str, ticket: tickets.TicketInfo
) -> Optional[Dict[str, Any]]:
    """The conversation is with a person: store the message for them, the bot stays quiet."""
    db_url = settings.db_url
    if ticket.status == tables.TICKET_WAITING and relay.is_cancel_request(text):
        # The notice goes in this reply only (not also on the event stream).
        notice = await asyncio.to_thread(
            tickets.finish_ticket, db_url, ticket.id, status=tables.TICKET_CANCELLED, operator=None, notify=False
        )
        await conn.app.state.live.bump()
        logger.info("gateway.handoff.cancelled ticket=%s", ticket.id)
        return {"messages": [{"text": notice["text"]}], "intent": None, "items": [], "item": None, "answer": ANSWER_HANDOFF}
    try:
        await asyncio.to_thread(relay.add_citizen_message, db_url, ticket.id, text)
    except tickets.TicketClosed:  # closed a moment ago: the bot answers again
        return None
    await conn.app.state.live.bump()
    logger.info("gateway.handoff.relayed ticket=%s sender=%s", ticket.id, hash_id(sender_id))
    return {
        "messages": [], "intent": None, "items": [], "item": None, "answer": ANSWER_HANDOFF,
        HANDOFF_KEY: ticket.public(),
    }


async def reminder_command(
    conn: HTTPConnection, settings: Settings, sender_id: str, channel: str, said: commands.Said,
    slots: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """"我的提醒" / "退订提醒" / "身份证明年3月到期，提醒我" / the answer to a question
    about a reminder: answered from the conversation's subscriptions and reminders.
    What the dialogue knows (the verified number, a question pending) is read from its
    slots, and a question asked or answered here is kept there (``pending_offer``)."""
    runtime: Optional[AssistantRuntime] = getattr(conn.app.state, "runtime", None)
    usable = runtime is not None and runtime.ready
    if slots is None and usable and commands.needs_context(said):
        slots = await runtime.slots(sender_id)  # type: ignore[union-attr]
    context = commands.Context.of(slots or {})
    reply = await asyncio.to_thread(
        commands.run, settings.db_url, settings.secret(), said, channel, sender_id, settings.timezone, context
    )
    before = (slots or {}).get(commands.SLOT_PENDING)
    if usable and reply.pending != commands.KEEP and reply.pending != before and (reply.pending or before):
        await runtime.set_slots(sender_id, {commands.SLOT_PENDING: reply.pending})  # type: ignore[union-attr]
    command, kind = commands.described(said)
    logger.info("gateway.chat.reminder_command sender=%s channel=%s command=%s kind=%s",
                hash_id(sender_id), channel, command, kind)
    metrics.record_turn(None, channel, ANSWER_FOLLOWUP)
    message = BotMessage(text=reply.text, buttons=[Button(**b) for b in reply.buttons] or None)
    return {
        "messages": [message.dict(exclude_none=True)], "intent": None, "items": [], "item": None,
        "answer": ANSWER_FOLLOWUP,
    }


async def pending_answer(conn: HTTPConnection, settings: Settings, sender_id: str, text: str
                         ) -> Optional[Tuple[commands.Said, Dict[str, Any]]]:
    """A date or month said while a question about a reminder is pending ("2027年3月"),
    answered here; None for anything else (the dialogue answers it)."""
    said = commands.answer_of(text, commands.today_in(settings.timezone))
    if said is None:
        return None
    runtime = ready_runtime(conn.app)
    slots = await runtime.slots(sender_id)
    if commands.pending_kind(slots.get(commands.SLOT_PENDING)) is None:
        return None
    return said, slots


# Reviews being noted in the background (a reference keeps each task alive).
_noting: set = set()


def note_for_review(settings: Settings, text: str, channel: str, parse_data: Dict[str, Any],
                    response: Dict[str, Any]) -> None:
    """Put a turn that was not understood (or understood with low confidence) in the
    review queue, in the background: the reply never waits for it, nor fails with it."""

    async def note() -> None:
        try:
            # A kiosk has no one reviewing its own database: the central server's queue.
            store = reviews.forward_turn if settings.kiosk_mode and settings.central_url else reviews.note_turn
            await asyncio.to_thread(store, settings.db_url, text, channel, parse_data, response)
        except Exception as exc:  # the database is restarting: this one is not reviewed
            logger.warning("reviews.turn.failed channel=%s error=%s", channel, type(exc).__name__)

    task = asyncio.get_running_loop().create_task(note())
    _noting.add(task)
    task.add_done_callback(_noting.discard)


async def conversation_turn(
    conn: HTTPConnection, settings: Settings, sender_id: str, text: str, channel: str
) -> Dict[str, Any]:
    """One turn of any channel (chat, voice): relayed to the person holding the
    conversation, or answered by the assistant. The caller checked the token."""
    ticket = await asyncio.to_thread(tickets.relaying_ticket, settings.db_url, sender_id)
    if ticket is not None:
        relayed = await relay_to_operator(conn, settings, sender_id, text, ticket)
        if relayed is not None:
            return relayed
    said = commands.parse(text, commands.today_in(settings.timezone))
    if said is not None:
        return await reminder_command(conn, settings, sender_id, channel, said)
    answer = await pending_answer(conn, settings, sender_id, text)
    if answer is not None:
        return await reminder_command(conn, settings, sender_id, channel, *answer)
    # Relaying needs no model; answering does (503 while it loads).
    runtime = ready_runtime(conn.app)
    app = conn.app
    degraded.install(runtime.action_link, lambda: app.state.catalog)
    result = await runtime.chat(sender_id, text, channel)
    intent = (result.parse_data.get("intent") or {}).get("name")
    logger.info(
        "gateway.chat.turn sender=%s channel=%s intent=%s",
        hash_id(sender_id),
        channel,
        intent,
    )
    messages = bot_messages(result.messages)
    reply = reply_of(result.messages)
    if result.unavailable:  # the action server is unreachable and the gateway cannot stand in
        logger.warning(
            "gateway.fallback.unavailable sender=%s intent=%s actions=%s",
            hash_id(sender_id), intent, ",".join(result.unavailable),
        )
        messages.append(BotMessage(**degraded.unavailable_message(result.unavailable)))
        reply = {"item": None, "answer": degraded.ANSWER_UNAVAILABLE}
    if not messages:
        logger.warning("gateway.chat.no_reply sender=%s intent=%s", hash_id(sender_id), intent)
        messages = [BotMessage(text=NO_REPLY)]
    response: Dict[str, Any] = {
        "messages": [m.dict(exclude_none=True) for m in messages],
        "intent": intent,
        "items": [i.dict() for i in items_of(result.parse_data)],
        **reply,
    }
    metrics.record_turn(intent, channel, response.get("answer"))
    note_for_review(settings, text, channel, result.parse_data, response)
    opened = handoff_of(result.messages)
    if opened is not None:
        response[HANDOFF_KEY] = opened
        created = handoff_created(result.messages)
        if created is not None:
            metrics.record_handoff(created, channel)
        await conn.app.state.live.bump()
    return response
