"""The senders of status notices and reminders, per channel, from the settings
(used by the gateway's scheduler and ``banshi notices dispatch``):

* ``web``: kept for the conversation, shown live in an open chat or on return
  (:class:`~assistant.services.progress.webchat.WebChatSender`);
* ``wechat``: customer-service message inside the 48-hour window, else a template
  message (:class:`~assistant.channels.wechat_notices.WeChatNoticeSender`) — when
  the WeChat channel is configured;
* ``sms``: an HTTP SMS gateway (``BANSHI_SMS_URL``), when configured;
* ``kiosk``: nothing is pushed (the dispatcher closes those notices as held).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Awaitable, Callable, Dict, List, Optional

from assistant.channels.wechat_api import WeChatApi
from assistant.channels.wechat_notices import WeChatNoticeSender
from assistant.config.settings import Settings
from assistant.services.progress.dispatch import HttpSmsSender, Sender
from assistant.services.progress.webchat import WebChatSender


@dataclass
class NoticeSenders:
    senders: Dict[str, Sender]
    _close: List[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def aclose(self) -> None:
        for close in self._close:
            await close()


def build_senders(settings: Settings, wechat_api: Optional[WeChatApi] = None,
                  wake: Optional[Callable[[str], Awaitable[None]]] = None) -> NoticeSenders:
    """``wechat_api``: the channel's client (its access token is shared); created here
    (and closed by ``aclose``) when None and the channel is configured. ``wake``: told
    the key of each conversation a web notice was kept for (the live feed)."""
    secret = settings.secret()
    senders: Dict[str, Sender] = {"web": WebChatSender(settings.db_url, secret, wake)}
    built = NoticeSenders(senders)
    if settings.wechat_enabled:
        if wechat_api is None:
            wechat_api = WeChatApi(settings.wechat_api_base, settings.wechat_app_id or "",
                                   settings.wechat_app_secret or "", settings.wechat_api_timeout_s)
            built._close.append(wechat_api.close)
        senders["wechat"] = WeChatNoticeSender(wechat_api, settings.db_url, settings.wechat_notice_template_id)
    if settings.sms_url:
        sms = HttpSmsSender(settings.sms_url, settings.sms_token)
        senders["sms"] = sms
        built._close.append(sms.client.aclose)
    return built
