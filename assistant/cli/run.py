"""``banshi run`` (action server and gateway) and ``banshi actions`` (the action server alone)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from assistant.cli.common import READY_TIMEOUT_S, ensure_model, start_action_server, stop_process, wait_http
from assistant.config.settings import Settings


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from assistant.api.app import create_app

    ensure_model(settings)
    started = time.monotonic()
    actions = start_action_server(settings)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ws="wsproto",
        log_level="warning",
        access_log=False,
        lifespan="on",
        # Live streams (web chat, desk) would otherwise hold a Ctrl-C forever.
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.1)
        health = f"http://127.0.0.1:{settings.action_port}/health"
        ok = await asyncio.to_thread(wait_http, health, READY_TIMEOUT_S, actions)
        if server.started and ok:
            base = f"http://{settings.host}:{settings.port}"
            print(
                f"banshi 已就绪 / ready in {time.monotonic() - started:.1f} s\n"
                f"  网页聊天 web chat:  {base}/\n"
                f"  API 文档 docs:      {base}/docs\n"
                f"  健康检查 health:    {base}/healthz\n"
                + (f"  微信公众号 WeChat:   {base}/channels/wechat\n" if settings.wechat_enabled else "")
                + "按 Ctrl-C 退出 / press Ctrl-C to stop",
                flush=True,
            )
        elif not ok:
            print("action server did not start; stopping", file=sys.stderr)
            server.should_exit = True
        await task

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    finally:
        stop_process(actions)
    return 0 if server.started else 1


def cmd_actions(args: argparse.Namespace, settings: Settings) -> int:
    proc = start_action_server(settings)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        stop_process(proc)
        return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("run", help="start action server and gateway").set_defaults(func=cmd_run)
    sub.add_parser("actions", help="start only the action server").set_defaults(func=cmd_actions)
