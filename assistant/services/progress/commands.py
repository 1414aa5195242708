"""What a citizen says to manage progress notices and reminders (服务找人), in any
channel, answered by the gateway before the dialogue (``services.conversation``):
these words need no understanding, only this conversation's subscriptions and
reminders on this channel (``subscriptions``, ``reminders``).

* "我的提醒" lists both (one numbered list: status notices first, then dated
  reminders, soonest first); "退订提醒" / "取消提醒" cancels both; "取消第2个提醒"
  cancels the second of that list; "取消身份证提醒" cancels the reminders of a kind.
* "身份证明年3月到期，提醒我", "护照2027年5月到期提醒我换", "养老金认证提醒我" set a
  reminder for this conversation's channel. What is missing (the month, the date) is
  asked in plain words and the question is remembered in the dialogue's
  ``pending_offer`` slot (:func:`ask_value`, :func:`pending_kind`) for a few minutes;
  the answer ("2027年3月", "12月20号", "不知道") is then taken by the gateway.
  Reminders about an application (补正截止, 领取) need the number this conversation
  verified (the dialogue's slots). Only what the kind needs is stored: an expiry
  month, a date, a number.

The words are read by ``reminder_words.py``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple
from zoneinfo import ZoneInfo

from assistant.services.progress import reminder_words as words
from assistant.services.progress import notices, reminders, subscriptions
from assistant.services.progress.notices import masked_number
from assistant.services.progress.reminder_words import Said, answer_of, parse  # noqa: F401 (this module's API)
from assistant.storage.tables import STATUS_COMPLETED, STATUS_REJECTED, STATUS_SUPPLEMENT

logger = logging.getLogger(__name__)

COMMAND_CANCEL = words.CANCEL
COMMAND_LIST = words.LIST
COMMAND_CANCEL_ONE = words.CANCEL_ONE
COMMAND_CANCEL_KIND = words.CANCEL_KIND
COMMAND_REMIND = words.REMIND
COMMAND_ANSWER = words.ANSWER
MAX_COMMAND_CHARS = words.MAX_COMMAND_CHARS

# The dialogue's slot that holds what was offered or asked (one at a time), and the
# value of a question about a reminder: "ask:<kind>@<unix seconds>".
SLOT_PENDING = "pending_offer"
SLOT_NUMBER = "application_number"
SLOT_OUTCOME = "progress_outcome"
SLOT_STATUS = "progress_status"
OUTCOME_VERIFIED = "verified"
ASK_PREFIX = "ask:"
# A question is answered within this time, or forgotten (a date said much later is
# not taken for its answer).
ASK_TTL_S = 15 * 60
KEEP = "keep"  # Reply.pending: leave the slot as it is

CANCELLED_TEXT = "好的，已经为您取消 {count} 个提醒，以后不会再提醒您。"
CANCELLED_ONE_TEXT = "好的，已经取消第 {index} 个提醒：{what}。"
CANCELLED_KIND_TEXT = "好的，已经取消{title}。"
NO_SUCH_TEXT = "没有第 {index} 个提醒。您现在有 {count} 个提醒，回复“我的提醒”可以查看。"
NO_KIND_TEXT = "您没有设置{title}。回复“我的提醒”可以查看已设置的提醒。"
NOTHING_TEXT = ("您目前没有设置提醒。查询办件进度后，可以选择“提醒我”；"
                "身份证、护照快到期了，可以说“身份证2027年3月到期，提醒我”。")
# Where nothing can be pushed (the kiosk): nothing to set here.
NOTHING_HERE_TEXT = "您在这里没有设置提醒。自助机上不能设置提醒，可以在微信公众号或网页上设置。"
LIST_TEXT = ("您设置了这些提醒：\n{lines}\n取消其中一个，回复“取消第1个提醒”；"
             "全部取消，回复“退订提醒”。")
LINE_SUBSCRIPTION = "{index}. 办件 {number}：状态有变化时提醒"
LINE_REMINDER = "{index}. {title}{number}：{due}，{when}提醒"

ASK_TEXT = {
    words.ID_CARD: "好的。请告诉我身份证到期的年份和月份，例如“2027年3月”。身份证背面写着有效期限。我只记下到期的年月。",
    words.PASSPORT: "好的。请告诉我护照到期的年份和月份，例如“2028年5月”。护照个人资料页上写着有效期至。我只记下到期的年月。",
    words.PENSION: "好的。今年的养老金资格认证要在哪天前完成？请告诉我日期，例如“2027年3月31日”或“3月底”。",
    words.SUPPLEMENT: "好的。补正通知上写的补交截止日期是哪天？请告诉我，例如“12月20日”。",
    words.PICKUP: "好的。哪天提醒您去领取？请告诉我日期，例如“明天”或“12月20日”。",
}
ASK_BUTTONS = {words.PICKUP: [{"title": "明天", "payload": "明天"}, {"title": "后天", "payload": "后天"}]}
UNKNOWN_TEXT = {
    words.ID_CARD: "没关系。身份证背面的“有效期限”写着到期日。看到后告诉我，例如“身份证2027年3月到期，提醒我”。",
    words.PASSPORT: "没关系。护照个人资料页的“有效期至”写着到期日。看到后告诉我，例如“护照2028年5月到期，提醒我”。",
    words.PENSION: "没关系。认证截止日期可以问社区服务中心或社保经办机构，也可以拨打12333。知道后告诉我，例如“养老金认证3月底截止，提醒我”。",
    words.SUPPLEMENT: "没关系。截止日期写在补正通知上，也可以问受理窗口。知道后告诉我，例如“补交材料12月20日截止，提醒我”。",
    words.PICKUP: "好的，先不设置。想好哪天去领取，告诉我“12月20日提醒我领取”就行。",
}
NEED_YEAR_TEXT = "请告诉我是哪一年哪一月，例如“2027年3月”。"
NEED_LOOKUP_TEXT = ("这个提醒要先查到您的办件。请告诉我办件编号，验证手机号后四位后，"
                    "再说“{keyword}”。")
NOT_SUPPLEMENT_TEXT = "编号 {number} 的办件现在不需要补交材料，不用设置这个提醒。"
REJECTED_TEXT = "编号 {number} 的办件没有通过，没有要领取的证件。"
DONE_TEXT = {
    words.ID_CARD: "好的，已经记下：您的身份证{year}年{month}月到期。我会{when}提醒您办理换领。",
    words.PASSPORT: "好的，已经记下：您的护照{year}年{month}月到期。我会{when}提醒您办理换发。",
    words.PENSION: "好的，今年的养老金资格认证要在{date}前完成，我会{when}提醒您。以后每年都会提醒。",
    words.SUPPLEMENT: "好的，编号 {number} 的补交材料截止日期是{date}，我会{when}提醒您。",
    words.PICKUP: "好的，编号 {number} 的办件，我会{when}提醒您去领取。",
}
# Not finished yet: the reminder waits until it is (reminders.py checks every day).
PICKUP_LATER_TEXT = "好的，编号 {number} 的办件办好后，我会提醒您去领取。"
DONE_TAIL = "不需要了，回复“退订提醒”。"
ALREADY_TEXT = "这个提醒已经设置过了，我会{when}提醒您。"
# Refusals after which the question stays open (another date or month may be said).
ASK_AGAIN_KINDS = frozenset({reminders.NEED_MONTH, reminders.NEED_DATE})
ASK_AGAIN_PREFIXES = (reminders.BAD_DATE.split("{")[0], reminders.BAD_MONTH.split("{")[0])
KEYWORDS = {words.SUPPLEMENT: "补交材料截止前提醒我", words.PICKUP: "领取的时候提醒我"}


def command_of(text: str) -> Optional[str]:
    """The reminder command ``text`` says (``list``, ``cancel``, ``cancel_one``,
    ``cancel_kind``, ``remind``), or None (then the dialogue answers it)."""
    said = parse(text)
    return said.command if said is not None else None


# ------------------------------------------------------------------ the pending question
def ask_value(kind: str, now: Optional[float] = None) -> str:
    """The ``pending_offer`` value of a question about a reminder of ``kind``."""
    return f"{ASK_PREFIX}{kind}@{int(now if now is not None else time.time())}"


def pending_kind(value: Any, now: Optional[float] = None) -> Optional[str]:
    """The kind a pending question is about, if it was asked less than ``ASK_TTL_S`` ago."""
    if not isinstance(value, str) or not value.startswith(ASK_PREFIX):
        return None
    kind, _, stamp = value[len(ASK_PREFIX):].partition("@")
    try:
        asked = int(stamp)
    except ValueError:
        return None
    current = now if now is not None else time.time()
    if kind not in ASK_TEXT or not 0 <= current - asked <= ASK_TTL_S:
        return None
    return kind


@dataclass(frozen=True)
class Context:
    """What the dialogue knows of this conversation (its slots)."""

    pending: Optional[str] = None  # the kind of a question pending
    number: Optional[str] = None  # the application verified in this conversation
    status: Optional[str] = None  # its status at the lookup

    @classmethod
    def of(cls, slots: Dict[str, Any], now: Optional[float] = None) -> "Context":
        verified = slots.get(SLOT_OUTCOME) == OUTCOME_VERIFIED
        return cls(
            pending=pending_kind(slots.get(SLOT_PENDING), now),
            number=slots.get(SLOT_NUMBER) if verified else None,
            status=slots.get(SLOT_STATUS) if verified else None,
        )


@dataclass(frozen=True)
class Reply:
    text: str
    buttons: List[Dict[str, str]] = field(default_factory=list)
    # The pending_offer slot afterwards: KEEP, None (clear it) or a new question.
    pending: Optional[str] = KEEP


# ------------------------------------------------------------------ listing
@dataclass(frozen=True)
class _Entry:
    subscription: Optional[str]  # the number of a progress subscription
    reminder: Optional[reminders.ReminderView]


def _entries(db_url: str, secret: bytes, channel: str, recipient: str) -> List[_Entry]:
    """One numbered list: status subscriptions (oldest first), then reminders (soonest first)."""
    entries = [_Entry(number, None) for number in subscriptions.numbers_of(db_url, secret, channel, recipient)]
    if channel in reminders.CHANNELS:
        entries += [_Entry(None, view) for view in reminders.list_reminders(db_url, secret, channel, recipient)]
    return entries


def _local(moment: dt.datetime, timezone: str) -> dt.datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(ZoneInfo(timezone))


def _day_text(day: dt.date, today: Optional[dt.date] = None) -> str:
    if today is not None and day.year == today.year:
        return f"{day.month}月{day.day}日"
    return f"{day.year}年{day.month}月{day.day}日"


def _when_text(send_at: dt.datetime, timezone: str, now: dt.datetime, at: str = "在") -> str:
    """When a reminder goes out, in words: "在12月1日上午9点", "马上"."""
    local, today = _local(send_at, timezone), _local(now, timezone)
    if local <= today + dt.timedelta(minutes=2):
        if not notices.in_quiet_hours(today, timezone):
            return "马上"
        local = _local(notices.quiet_hours_end(today, timezone), timezone)  # not at night
    prefix = "今天" if local.date() == today.date() else ("明天" if local.date() == today.date() + dt.timedelta(days=1)
                                                      else _day_text(local.date(), today.date()))
    noon = "上午" if local.hour < 12 else "下午"
    hour = local.hour if local.hour <= 12 else local.hour - 12
    minute = f"{local.minute}分" if local.minute else ""
    return f"{at}{prefix}{noon}{hour}点{minute}"


def _due_text(view: reminders.ReminderView) -> str:
    if len(view.due_on) == 7:  # a month: YYYY-MM
        year, month = view.due_on.split("-")
        return f"{int(year)}年{int(month)}月到期"
    day = dt.date.fromisoformat(view.due_on)
    return f"{day.year}年{day.month}月{day.day}日"


def _line(index: int, entry: _Entry, timezone: str, now: dt.datetime) -> str:
    if entry.subscription is not None:
        return LINE_SUBSCRIPTION.format(index=index, number=masked_number(entry.subscription))
    view = entry.reminder
    assert view is not None
    send_at = dt.datetime.fromisoformat(view.send_at)
    return LINE_REMINDER.format(index=index, title=view.title, number=f"（编号 {view.number}）" if view.number else "",
                                due=_due_text(view), when=_when_text(send_at, timezone, now, at=""))


def _what(entry: _Entry) -> str:
    if entry.subscription is not None:
        return f"办件 {masked_number(entry.subscription)} 的状态提醒"
    assert entry.reminder is not None
    return entry.reminder.title + (f"（编号 {entry.reminder.number}）" if entry.reminder.number else "")


def _cancel_entry(db_url: str, secret: bytes, channel: str, recipient: str, entry: _Entry) -> int:
    if entry.subscription is not None:
        return subscriptions.cancel(db_url, secret, channel, recipient, entry.subscription)
    assert entry.reminder is not None
    return reminders.cancel_reminder(db_url, secret, channel, recipient, entry.reminder.id)


# ------------------------------------------------------------------ setting a reminder
def _remind(db_url: str, secret: bytes, said: Said, kind: str, channel: str, recipient: str, timezone: str,
            context: Context, now: dt.datetime) -> Reply:
    if channel not in reminders.CHANNELS:
        return Reply(reminders.UNKNOWN_CHANNEL, pending=None)
    cfg = reminders.config().kinds[kind]
    number = None
    if "number" in cfg.needs:
        number = context.number
        if not number:
            return Reply(NEED_LOOKUP_TEXT.format(keyword=KEYWORDS.get(kind, "提醒我")), pending=None)
        if kind == words.SUPPLEMENT and context.status not in (None, STATUS_SUPPLEMENT):
            return Reply(NOT_SUPPLEMENT_TEXT.format(number=masked_number(number)), pending=None)
        if kind == words.PICKUP and context.status == STATUS_REJECTED:
            return Reply(REJECTED_TEXT.format(number=masked_number(number)), pending=None)
    when = said.when
    expiry_month: Optional[dt.date] = None
    due_on: Optional[dt.date] = None
    if "month" in cfg.needs:
        if when is None or when.month is None:
            text = NEED_YEAR_TEXT if when is not None and when.year_only else ASK_TEXT[kind]
            return Reply(text, pending=ask_value(kind, now.timestamp()))
        expiry_month = when.month
    elif when is not None and (when.day or when.month):
        due_on = when.day or when.end_of_month()  # a month for a deadline: by its end
    elif when is not None and when.year_only:
        return Reply(NEED_YEAR_TEXT, pending=ask_value(kind, now.timestamp()))
    elif "date" in cfg.needs or (kind == words.PICKUP and context.status == STATUS_COMPLETED):
        # A deadline is needed; a finished application's pickup: which day (today's
        # reminder would come while we talk).
        return Reply(ASK_TEXT[kind], buttons=ASK_BUTTONS.get(kind, []), pending=ask_value(kind, now.timestamp()))
    try:
        made = reminders.remind(db_url, secret, kind=kind, channel=channel, recipient=recipient, timezone=timezone,
                                number=number, due_on=due_on, expiry_month=expiry_month, now=now)
    except reminders.ReminderError as exc:
        again = str(exc) in ASK_AGAIN_KINDS or str(exc).startswith(ASK_AGAIN_PREFIXES)
        return Reply(str(exc), pending=ask_value(kind, now.timestamp()) if again else None)
    when_text = _when_text(made.send_at, timezone, now)
    if not made.created:
        return Reply(ALREADY_TEXT.format(when=when_text), pending=None)
    due = expiry_month or due_on
    template = DONE_TEXT[kind]
    if kind == words.PICKUP and due_on is None and context.status != STATUS_COMPLETED:
        template = PICKUP_LATER_TEXT
    text = template.format(
        year=due.year if due else "", month=due.month if due else "",
        date=_day_text(due, _local(now, timezone).date()) if due else "",
        number=masked_number(number) if number else "", when=when_text,
    )
    return Reply(text + DONE_TAIL, pending=None)


# ------------------------------------------------------------------ carrying out
def _nothing(channel: str) -> str:
    return NOTHING_TEXT if channel in reminders.CHANNELS else NOTHING_HERE_TEXT


def run(db_url: str, secret: bytes, said: Said, channel: str, recipient: str, timezone: str = "Asia/Shanghai",
        context: Optional[Context] = None, now: Optional[dt.datetime] = None) -> Reply:
    """Carry out what was said for this conversation (``recipient`` on ``channel``)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    context = context or Context()
    if said.command == words.CANCEL:
        count = subscriptions.cancel(db_url, secret, channel, recipient)
        if channel in reminders.CHANNELS:
            count += reminders.cancel_reminder(db_url, secret, channel, recipient)
        return Reply(CANCELLED_TEXT.format(count=count) if count else _nothing(channel), pending=None)
    if said.command == words.LIST:
        entries = _entries(db_url, secret, channel, recipient)
        if not entries:
            return Reply(_nothing(channel))
        lines = "\n".join(_line(i, entry, timezone, now) for i, entry in enumerate(entries, 1))
        return Reply(LIST_TEXT.format(lines=lines))
    if said.command == words.CANCEL_ONE:
        entries = _entries(db_url, secret, channel, recipient)
        index = said.index or 0
        if not entries:
            return Reply(_nothing(channel))
        if not 1 <= index <= len(entries):
            return Reply(NO_SUCH_TEXT.format(index=index, count=len(entries)))
        entry = entries[index - 1]
        if not _cancel_entry(db_url, secret, channel, recipient, entry):  # ended a moment ago
            return Reply(NO_SUCH_TEXT.format(index=index, count=len(entries) - 1))
        return Reply(CANCELLED_ONE_TEXT.format(index=index, what=_what(entry)))
    if said.command == words.CANCEL_KIND:
        title = reminders.config().kinds[said.kind].title if said.kind else "提醒"
        views = [v for v in (reminders.list_reminders(db_url, secret, channel, recipient)
                             if channel in reminders.CHANNELS else []) if v.kind == said.kind]
        ended = sum(reminders.cancel_reminder(db_url, secret, channel, recipient, v.id) for v in views)
        return Reply(CANCELLED_KIND_TEXT.format(title=title) if ended else NO_KIND_TEXT.format(title=title),
                     pending=None if context.pending == said.kind else KEEP)
    kind = said.kind or context.pending
    if kind is None:  # an answer with no question pending: the caller does not send these
        return Reply(NOTHING_TEXT)
    if said.command == words.ANSWER and said.unknown:
        return Reply(UNKNOWN_TEXT[kind], pending=None)
    return _remind(db_url, secret, said, kind, channel, recipient, timezone, context, now)


def needs_context(said: Said) -> bool:
    """Whether carrying ``said`` out reads or changes the dialogue's slots."""
    return said.command in (words.REMIND, words.ANSWER, words.CANCEL, words.CANCEL_KIND)


def today_in(timezone: str, now: Optional[dt.datetime] = None) -> dt.date:
    return (now or dt.datetime.now(dt.timezone.utc)).astimezone(ZoneInfo(timezone)).date()


def described(said: Said) -> Tuple[str, Optional[str]]:
    """(command, kind) for logs: no dates, no numbers."""
    return said.command, said.kind
