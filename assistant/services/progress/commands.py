"""What a citizen says to manage their progress reminders, in any channel: "退订提醒"
(cancel all), "我的提醒" (list them). Answered by the gateway before the dialogue
(``services.conversation``): these words need no understanding, only the
subscriptions of this conversation on this channel (``subscriptions``)."""

from __future__ import annotations

import re
import unicodedata
from typing import List, Optional

from assistant.services.progress import subscriptions
from assistant.services.progress.notices import masked_number

COMMAND_CANCEL = "cancel"
COMMAND_LIST = "list"
MAX_COMMAND_CHARS = 20

_TRAILING = r"[了吧啊呀呢吗]?[。.!！?？~～]*"
_CANCEL = re.compile(
    r"^(请|帮我|麻烦|我想|我要)?(退订|取消|关闭|关掉|停止|不要再?|别再?|不用再?)(所有|全部)?(的)?"
    r"(办件|进度|状态|办件进度)?(的)?(提醒|通知|订阅|推送)(我)?" + _TRAILING + "$"
    r"|^(退订|TD)$",
    re.IGNORECASE,
)
_LIST = re.compile(
    r"^(我的|查看|看看|看一下|查一下|查看我的|看看我的)(办件|进度)?(的)?(提醒|订阅)"
    r"(列表|有哪些|有什么|都有哪些)?" + _TRAILING + "$"
)

CANCELLED_TEXT = "好的，已经为您取消 {count} 个办件提醒，以后不会再提醒您。"
NOTHING_TEXT = "您目前没有设置办件提醒。查询办件进度后，可以选择“提醒我”。"
LIST_TEXT = "您设置了这些办件提醒：\n{lines}\n状态有变化时我会告诉您。不需要了可以回复“退订提醒”。"


def command_of(text: str) -> Optional[str]:
    """The reminder command ``text`` says, or None (then the dialogue answers it)."""
    said = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text or ""))
    if not said or len(said) > MAX_COMMAND_CHARS:
        return None
    if _CANCEL.match(said):
        return COMMAND_CANCEL
    if _LIST.match(said):
        return COMMAND_LIST
    return None


def run_command(db_url: str, secret: bytes, command: str, channel: str, recipient: str) -> str:
    """Carry out a reminder command for this conversation; the reply text."""
    if command == COMMAND_CANCEL:
        count = subscriptions.cancel(db_url, secret, channel, recipient)
        return CANCELLED_TEXT.format(count=count) if count else NOTHING_TEXT
    numbers: List[str] = subscriptions.numbers_of(db_url, secret, channel, recipient)
    if not numbers:
        return NOTHING_TEXT
    return LIST_TEXT.format(lines="\n".join(f"{i}. 编号 {masked_number(n)}" for i, n in enumerate(numbers, 1)))
