"""Status notices and reminders to WeChat users (a
:class:`~assistant.services.progress.dispatch.Sender`).

Inside the customer-service window (48 hours and 5 messages after each of the
user's messages, counted in ``wechat_users`` with the channel's other sends) the
notice goes as a text message; outside it — or when WeChat answers 45015, "out of
time limit" — as a template message with the configured template id
(``BANSHI_WECHAT_NOTICE_TEMPLATE_ID``; field names in ``wechat_notices.yml``).
Without a template id a notice outside the window fails like any other send and
is retried, then given up.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional
from zoneinfo import ZoneInfo

import yaml

from assistant.channels import wechat_store as store
from assistant.channels.wechat_api import OUT_OF_WINDOW, UNSUBSCRIBED, WeChatApi, WeChatApiError
from assistant.security.pii import hash_id
from assistant.services.progress.dispatch import NoticeDetail, NoticeError

logger = logging.getLogger(__name__)

WECHAT_PREFIX = "wx-"
CONFIG_PATH = Path(__file__).with_name("wechat_notices.yml")
# Longest value WeChat accepts per field type (the part of the name before the digits).
FIELD_LIMITS = {"thing": 20, "character_string": 32, "phrase": 5, "number": 32, "letter": 32, "name": 10,
                "time": 40, "date": 40, "amount": 32, "phone_number": 17, "car_number": 8, "const": 20}
DEFAULT_LIMIT = 20
NO_NUMBER = "—"


@dataclass(frozen=True)
class TemplateConfig:
    fields: Dict[str, str]  # ours (title, number, status, time) → the template's field names
    url: str
    timezone: str

    @classmethod
    def load(cls, path: Path = CONFIG_PATH) -> "TemplateConfig":
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        fields = {str(k): str(v) for k, v in (data.get("template_fields") or {}).items()}
        unknown = set(fields) - {"title", "number", "status", "time"}
        if unknown:
            raise ValueError(f"{path.name}: unknown template_fields {sorted(unknown)}")
        return cls(fields=fields, url=str(data.get("template_url") or ""),
                   timezone=str(data.get("timezone") or "Asia/Shanghai"))


def _limit(field_name: str) -> int:
    kind = field_name.rstrip("0123456789")
    return FIELD_LIMITS.get(kind, DEFAULT_LIMIT)


def template_data(config: TemplateConfig, text: str, detail: Optional[NoticeDetail]) -> Dict[str, str]:
    """The template's fields for a notice, each cut to its type's limit."""
    if detail is None:  # a notice without parts: its text as the title
        values = {"title": text, "number": NO_NUMBER, "status": "有新消息", "time": dt.datetime.now(dt.timezone.utc)}
    else:
        values = {"title": detail.title, "number": detail.number or NO_NUMBER, "status": detail.status,
                  "time": detail.at}
    at = values["time"]
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.timezone.utc)
    local = at.astimezone(ZoneInfo(config.timezone))
    values["time"] = f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
    return {name: str(values[ours])[:_limit(name)] for ours, name in config.fields.items()}


class WeChatNoticeSender:
    """``db_url`` given: the customer-service window is checked and counted first (the
    gateway's case); without it the text message is tried and WeChat's 45015 decides."""

    def __init__(self, api: WeChatApi, db_url: Optional[str] = None, template_id: Optional[str] = None,
                 config: Optional[TemplateConfig] = None) -> None:
        self.api = api
        self.db_url = db_url
        self.template_id = template_id
        self.config = config or TemplateConfig.load()

    async def send(self, recipient: str, text: str, detail: Optional[NoticeDetail] = None) -> None:
        openid = recipient[len(WECHAT_PREFIX):] if recipient.startswith(WECHAT_PREFIX) else recipient
        sender_id = WECHAT_PREFIX + openid
        refusal = None
        if self.db_url is not None:
            refusal = await asyncio.to_thread(store.use_window, self.db_url, sender_id)
        if refusal is None:
            try:
                await self.api.send_text(openid, text)
                return
            except WeChatApiError as exc:
                if self.db_url is not None:
                    await asyncio.to_thread(store.give_back_window, self.db_url, sender_id)
                if exc.errcode != OUT_OF_WINDOW:
                    raise NoticeError(f"errcode {exc.errcode}", final=exc.errcode == UNSUBSCRIBED) from None
                refusal = "window_expired"
        if not self.template_id:
            raise NoticeError(f"outside the customer-service window ({refusal}), no template configured")
        try:
            await self.api.send_template(openid, self.template_id, template_data(self.config, text, detail),
                                         self.config.url)
        except WeChatApiError as exc:
            raise NoticeError(f"template errcode {exc.errcode}", final=exc.errcode == UNSUBSCRIBED) from None
        logger.info("wechat.notice.template user=%s reason=%s", hash_id(sender_id), refusal)
