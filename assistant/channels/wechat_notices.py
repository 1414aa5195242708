"""Status notices to WeChat users (a :class:`~assistant.services.progress.dispatch.Sender`):
a customer-service text message, which WeChat accepts within 48 hours of the user's
last message. Outside that window (errcode 45015) the notice fails like any other and
is retried, then given up; a subscribe/template message for that case is not built yet."""

from __future__ import annotations

from assistant.channels.wechat_api import WeChatApi, WeChatApiError
from assistant.services.progress.dispatch import NoticeError

OUT_OF_WINDOW = 45015  # "response out of time limit": the 48-hour window has closed
WECHAT_PREFIX = "wx-"


class WeChatNoticeSender:
    def __init__(self, api: WeChatApi) -> None:
        self.api = api

    async def send(self, recipient: str, text: str) -> None:
        openid = recipient[len(WECHAT_PREFIX):] if recipient.startswith(WECHAT_PREFIX) else recipient
        try:
            await self.api.send_text(openid, text)
        except WeChatApiError as exc:
            reason = "outside the 48-hour window" if exc.errcode == OUT_OF_WINDOW else f"errcode {exc.errcode}"
            raise NoticeError(reason) from None
