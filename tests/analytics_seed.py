"""A seeded week for the analytics tests: seven local days (Asia/Shanghai) of
conversations on the web chat, WeChat and the kiosk, written as the running service
writes them — Rasa events saved by banshi's own tracker store (``user`` messages with
their parse, the actions, the replies with the dialogue's custom message of what they
were about) — with the handoff tickets, ratings and complaints those turns opened,
and status notices and WeChat customer-service messages in every state. A few rows
fall just outside the week (the evening before, the night after) and one reply
crosses midnight. ``seed_week`` returns the plan, from which the tests compute the
expected numbers on their own."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple
from zoneinfo import ZoneInfo

from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from assistant.dialogue.runtime import build_tracker_store
from assistant.storage.database import session_factory
from assistant.storage.tables import HandoffTicket, ProgressNotice, ProgressSubscription, WeChatOutgoing
from knowledge.db import Feedback

ZONE = ZoneInfo("Asia/Shanghai")
FIRST_DAY = dt.date(2026, 11, 2)  # a Monday
DAYS = [FIRST_DAY + dt.timedelta(days=n) for n in range(7)]
LAST_DAY = DAYS[-1]
CHANNELS = ("web", "wechat", "kiosk")
PII_TEXT = "我叫张三，电话13812345678，想问游艇驾驶证怎么考"


@dataclass(frozen=True)
class Script:
    text: str
    intent: str
    answer: Optional[str]
    item: Optional[str] = None  # None: the conversation's item (the dialogue's slot) for ratings
    ticket: Optional[str] = None  # the reason of a handoff ticket the turn opens
    rating: Optional[str] = None  # feedback row: good | bad | neutral | complaint
    reply: str = "好的。"


SCRIPTS: Dict[str, Script] = {
    "greet": Script("你好", "greet", None, reply="您好！请问您想办理什么业务？"),
    "passport_materials": Script("护照要带什么材料", "ask_materials", "materials", "passport"),
    "passport_fee": Script("办护照多少钱", "ask_fee", "fee", "passport"),
    "id_reissue": Script("身份证丢了怎么补办", "ask_service", "overview", "id_card_reissue"),
    "ssc_fee": Script("社保卡补办要多少钱", "ask_fee", "fee", "social_security_card_reissue"),
    "residence_where": Script("居住证在哪里办", "ask_location", "location", "residence_permit"),
    "housing_conditions": Script("公租房申请有什么条件", "ask_conditions", "conditions", "public_rental_housing"),
    "yacht": Script("游艇驾驶证怎么考？", "ask_service", "not_covered"),
    "yacht_pii": Script(PII_TEXT, "ask_service", "not_covered"),
    "weather": Script("今天天气怎么样", "out_of_scope", "out_of_scope"),
    "mumble": Script("嗯那个就是说吧", "nlu_fallback", None, reply="抱歉，我没听明白。"),
    "human": Script("转人工", "request_human", "handoff", ticket="request_human"),
    "complain": Script("你们窗口态度太差了我要投诉", "complain", "feedback", ticket="complaint", rating="complaint"),
    "good": Script("很满意，谢谢", "feedback", "feedback", rating="good"),
    "bad": Script("回答没用", "feedback", "feedback", rating="bad"),
    "meh": Script("给个评价吧", "feedback", "feedback", rating="neutral"),
    "fallback_handoff": Script("嗯嗯嗯", "nlu_fallback", "handoff", ticket="fallback"),
}
TEMPLATES: Tuple[Tuple[str, ...], ...] = (
    ("greet", "passport_materials", "passport_fee", "good"),
    ("id_reissue", "human"),
    ("ssc_fee", "bad"),
    ("residence_where",),
    ("yacht", "weather"),
    ("housing_conditions", "complain"),
    ("mumble", "fallback_handoff"),
    ("yacht_pii", "passport_materials", "meh"),
)
ITEM_ANSWERS = {"materials", "fee", "overview", "location", "conditions"}


@dataclass
class SeedTurn:
    sender: str
    channel: str
    day: dt.date  # local day of the message
    at: dt.datetime  # UTC, aware
    script: Script
    item: Optional[str]  # what the reply was about
    delay_ms: int

    @property
    def understood(self) -> bool:
        return self.script.intent not in ("nlu_fallback", "out_of_scope") and self.script.answer not in (
            "not_covered", "out_of_scope")


@dataclass
class SeedWeek:
    turns: List[SeedTurn] = field(default_factory=list)  # inside and outside the week
    tickets: List[Tuple[dt.date, str, str, Optional[str]]] = field(default_factory=list)  # day, channel, reason, item
    ratings: List[Tuple[dt.date, str, str, Optional[str]]] = field(default_factory=list)  # day, channel, rating, item
    notices: List[Tuple[dt.date, str, str]] = field(default_factory=list)  # day, channel, state
    wechat: List[Tuple[dt.date, str]] = field(default_factory=list)  # day, state

    def week_turns(self) -> List[SeedTurn]:
        return [t for t in self.turns if FIRST_DAY <= t.day <= LAST_DAY]


def local(day: dt.date, hour: int, minute: int, second: float = 0.0) -> dt.datetime:
    moment = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=ZONE) + dt.timedelta(seconds=second)
    return moment.astimezone(dt.timezone.utc)


def naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _conversations() -> List[Tuple[str, str, dt.datetime, Tuple[str, ...], Optional[int]]]:
    """(sender, channel, first message at, scripts, first reply delay override)."""
    planned = []
    for i, day in enumerate(DAYS):
        for j in range(4 + i % 4):
            channel = CHANNELS[(i + j) % 3]
            prefix = {"web": "web-", "wechat": "wx-", "kiosk": "kiosk-"}[channel]
            start = local(day, 9, 0) + dt.timedelta(minutes=47 * j + 3 * i)
            planned.append((f"{prefix}seed{i}{j:02d}", channel, start, TEMPLATES[(i * 3 + j) % len(TEMPLATES)], None))
    # Edges: a question a second before midnight answered after it (still that day),
    # the evening before the week and the night after it (outside).
    planned.append(("web-seed-midnight", "web", local(LAST_DAY, 23, 59, 59.2), ("passport_materials",), 1500))
    planned.append(("web-seed-before", "web", local(FIRST_DAY - dt.timedelta(days=1), 23, 50), ("id_reissue", "human"), None))
    planned.append(("wx-seed-after", "wechat", local(LAST_DAY + dt.timedelta(days=1), 0, 5), ("human",), None))
    return planned


def _bot(text: Optional[str], at: float, custom: Optional[dict] = None) -> BotUttered:
    data = {"elements": None, "quick_replies": None, "buttons": None, "attachment": None, "image": None,
            "custom": custom}
    return BotUttered(text=text, data=data, metadata={"utter_action": "action_answer"}, timestamp=at)


def seed_week(settings) -> SeedWeek:
    """Write the week into the settings' tracker store and database; return the plan."""
    store = build_tracker_store(settings)
    week = SeedWeek()
    tickets: List[HandoffTicket] = []
    ratings: List[Feedback] = []
    for sender, channel, start, template, first_delay in _conversations():
        events: list = [ActionExecuted("action_session_start", timestamp=start.timestamp() - 1),
                        SessionStarted(timestamp=start.timestamp() - 1),
                        ActionExecuted("action_listen", timestamp=start.timestamp() - 1)]
        context: Optional[str] = None
        for k, key in enumerate(template):
            script = SCRIPTS[key]
            at = start + dt.timedelta(seconds=40 * k)
            day = at.astimezone(ZONE).date()
            delay_ms = first_delay if (first_delay and k == 0) else 200 + ((day.day * 7 + len(sender) * 13 + k * 29) % 17) * 50
            item = script.item if script.answer in ITEM_ANSWERS else (context if script.rating else None)
            if script.answer in ITEM_ANSWERS:
                context = script.item
            ts = at.timestamp()
            reply_at = ts + delay_ms / 1000
            parse = {
                "text": script.text,
                "intent": {"name": script.intent, "confidence": 0.91},
                "entities": [],
                "intent_ranking": [{"name": script.intent, "confidence": 0.91}],
                "service_items": [{"id": script.item, "name": script.item, "score": 0.9}] if script.item else [],
            }
            events.append(UserUttered(script.text, intent=parse["intent"], parse_data=parse, input_channel=channel,
                                      timestamp=ts, message_id=f"{sender}-{k}"))
            events.append(ActionExecuted("action_answer", timestamp=ts + 0.005))
            events.append(_bot(script.reply, reply_at))
            if script.ticket:
                custom = {"handoff": {"ticket_id": 1, "status": "waiting", "deferred": False, "position": 1,
                                      "follow_up": script.ticket == "complaint"},
                          "handoff_reason": script.ticket, "handoff_created": True}
                events.append(_bot(None, reply_at + 0.001, custom))
                tickets.append(HandoffTicket(conversation_id=sender, channel=channel, reason=script.ticket,
                                             status="closed", item_id=context, summary="{}",
                                             created_at=naive(at) + dt.timedelta(milliseconds=delay_ms)))
                week.tickets.append((day, channel, script.ticket, context))
            if script.answer and script.answer != "handoff":
                events.append(_bot(None, reply_at + 0.002, {"reply": {"item": item, "answer": script.answer}}))
            if script.rating:
                kind = "complaint" if script.rating == "complaint" else "feedback"
                rating = {"good": "good", "bad": "bad", "complaint": "bad"}.get(script.rating)
                ratings.append(Feedback(conversation_id=sender, kind=kind, rating=rating, text=script.text,
                                        item_id=context, channel=channel,
                                        created_at=naive(at) + dt.timedelta(milliseconds=delay_ms)))
                week.ratings.append((day, channel, script.rating, context))
            events.append(ActionExecuted("action_listen", timestamp=reply_at + 0.01))
            week.turns.append(SeedTurn(sender, channel, day, at, script, item, delay_ms))
        tracker = DialogueStateTracker.from_events(sender, events)
        asyncio.run(store.save(tracker))

    notices: List[ProgressNotice] = []
    outgoing: List[WeChatOutgoing] = []
    for i, day in enumerate(DAYS):
        plan = [("web", "sent"), ("web", "sent"), ("wechat", "sent")]
        if i % 3 == 0:
            plan.append(("wechat", "failed"))
        if i == 2:
            plan.append(("sms", "capped"))
        if i == 6:
            plan += [("wechat", "pending"), ("sms", "pending")]
        for n, (channel, state) in enumerate(plan):
            notices.append((day, channel, state, local(day, 10, 0) + dt.timedelta(minutes=n)))
        wechat = ["sent", "sent", "sent"] + (["failed"] if i == 4 else []) + (["pending", "pending"] if i == 6 else [])
        for n, state in enumerate(wechat):
            created = local(day, 11, 0) + dt.timedelta(minutes=n)
            outgoing.append(WeChatOutgoing(
                sender_id=f"wx-seed-out{i}{n}", content="您好", source="turn", created_at=naive(created),
                next_attempt_at=naive(created), sent_at=naive(created) if state == "sent" else None,
                failed_at=naive(created) if state == "failed" else None, attempts=1))
            week.wechat.append((day, state))
    before = FIRST_DAY - dt.timedelta(days=1)
    notices.append((before, "web", "sent", local(before, 20, 0)))  # outside the week

    with session_factory(settings.db_url)() as db:
        db.add_all(tickets + ratings + outgoing)
        subscription = ProgressSubscription(number="ZW20251102002", channel="web", recipient_sealed="sealed",
                                            recipient_hash="h" * 64, last_status="reviewing")
        db.add(subscription)
        db.flush()
        for day, channel, state, created in notices:
            db.add(ProgressNotice(subscription_id=subscription.id, number="ZW20251102002", channel=channel,
                                  status="reviewing", text="您的办件 ZW2025*****002 状态：审核中", due_at=naive(created),
                                  state=state, attempts=1, created_at=naive(created),
                                  sent_at=naive(created) if state == "sent" else None))
            week.notices.append((day, channel, state))
        db.commit()
    return week
