"""WeChat's side of a conversation: the channel's texts and tunables (``wechat.yml``),
replies rendered as WeChat text (numbered options for buttons, split to WeChat's
size limit), and conversation ids (``wx-<OpenID>``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from assistant.security import chat_session

SENDER_PREFIX = chat_session.WECHAT_PREFIX
CONFIG_PATH = Path(__file__).with_name("wechat.yml")

_OPTION_RE = re.compile(r"^\s*([0-9０-９]{1,2})\s*[.。、]?\s*$")
# Delivery worker: poll at least this often (another replica may have queued work).

@dataclass(frozen=True)
class WeChatTexts:
    welcome: str
    unsupported: str
    voice_failed: str
    image_failed: str
    image_unread: str
    too_long: str
    apology: str
    db_down: str
    options_intro: str
    option_line: str
    menu: Dict[str, str]
    text_limit_bytes: int
    max_voice_bytes: int
    orphan_seconds: int

    @classmethod
    def load(cls, path: Path = CONFIG_PATH) -> "WeChatTexts":
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        texts = cls(**data)
        if not 200 <= texts.text_limit_bytes <= 2048:
            raise ValueError(f"{path}: text_limit_bytes must be within 200..2048")
        return texts


# ------------------------------------------------------------------ formatting
def split_text(text: str, limit_bytes: int) -> List[str]:
    """Parts of at most ``limit_bytes`` UTF-8 bytes, cut at line ends where possible."""
    parts: List[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate.encode("utf-8")) <= limit_bytes:
            current = candidate
            continue
        if current:
            parts.append(current)
        while len(line.encode("utf-8")) > limit_bytes:  # one very long line: cut by characters
            cut = len(line)
            while len(line[:cut].encode("utf-8")) > limit_bytes:
                cut = max(1, cut * limit_bytes // len(line[:cut].encode("utf-8")) - 1)
            parts.append(line[:cut])
            line = line[cut:]
        current = line
    if current.strip():
        parts.append(current)
    return [p.strip("\n") for p in parts if p.strip()]


def render(messages: List[Dict[str, Any]], texts: WeChatTexts) -> Tuple[str, List[Tuple[str, str]]]:
    """The dialogue's messages as one text, buttons as numbered options."""
    blocks: List[str] = []
    options: List[Tuple[str, str]] = []
    for message in messages:
        if message.get("text"):
            blocks.append(str(message["text"]).strip())
        for button in message.get("buttons") or []:
            title = str(button.get("title") or "").strip()
            payload = str(button.get("payload") or title).strip()
            if title:
                options.append((title, payload))
    if options:
        lines = [texts.options_intro] + [
            texts.option_line.format(n=n, title=title) for n, (title, _) in enumerate(options, 1)
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(b for b in blocks if b), options


def selected_option(text: str, options: List[Tuple[str, str]]) -> Optional[str]:
    match = _OPTION_RE.match(text)
    if not match or not options:
        return None
    number = int(match.group(1).translate(str.maketrans("０１２３４５６７８９", "0123456789")))
    return options[number - 1][1] if 1 <= number <= len(options) else None


def sender_of(openid: str) -> str:
    return SENDER_PREFIX + openid


def openid_of(sender_id: str) -> str:
    return sender_id[len(SENDER_PREFIX):] if sender_id.startswith(SENDER_PREFIX) else sender_id
