"""``banshi wechat-sim``: chat through the gateway's WeChat channel as WeChat does."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from assistant.config.settings import Settings


def cmd_wechat_sim(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.api.serving import serve_in_thread
    from assistant.channels.wechat_sim import FakeWeChatApi, chat

    if not settings.wechat_enabled:
        print(
            "未配置微信渠道 / the WeChat channel is off. Start the gateway and this simulator with, e.g.:\n"
            "  export BANSHI_WECHAT_TOKEN=devtoken BANSHI_WECHAT_APP_ID=wxdev BANSHI_WECHAT_APP_SECRET=devsecret \\\n"
            f"         BANSHI_WECHAT_MODE=plain BANSHI_WECHAT_API_BASE=http://127.0.0.1:{args.api_port}\n"
            "  make run            # in one terminal\n"
            "  banshi wechat-sim   # in another",
            file=sys.stderr,
        )
        return 2
    url = args.url or f"http://{settings.host}:{settings.port}/channels/wechat"
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would bury the chat
    api = FakeWeChatApi(settings.wechat_app_id or "", settings.wechat_app_secret or "")
    expected = f"http://127.0.0.1:{args.api_port}"
    if settings.wechat_api_base != expected:
        print(f"注意：网关的 BANSHI_WECHAT_API_BASE 应为 {expected}，客服消息才会回到模拟器。", file=sys.stderr)
    with serve_in_thread(api.app, port=args.api_port):
        print(f"微信模拟器：消息发往 {url}，模拟微信接口在 {expected}。")
        asyncio.run(chat(url, settings, api, args.openid, args.safe))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    sim = sub.add_parser(
        "wechat-sim",
        help="chat through the gateway's WeChat channel as WeChat does (signed, encrypted, 5 s timeout, retries)",
    )
    sim.add_argument("--url", help="the channel URL (default: http://HOST:PORT/channels/wechat of the settings)")
    sim.add_argument("--api-port", type=int, default=8790,
                     help="port of the fake WeChat API (the gateway needs BANSHI_WECHAT_API_BASE=http://127.0.0.1:PORT)")
    sim.add_argument("--openid", default="oSimUser0000000000000000001", help="the simulated user's OpenID")
    sim.add_argument("--safe", action="store_true", help="encrypt messages (safe mode, needs the AES key)")
    sim.set_defaults(func=cmd_wechat_sim)
