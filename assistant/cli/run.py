"""``banshi run`` (action server and gateway; ``--replicas``: several behind nginx),
``banshi gateway`` (one gateway process) and ``banshi actions`` (the action server alone)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from assistant.cli.common import (
    READY_TIMEOUT_S,
    action_server_argv,
    action_server_env,
    ensure_model,
    start_action_server,
    stop_process,
    wait_http,
)
from assistant.cli.replicas import ACTIONS, cmd_run_replicas
from assistant.cli.supervisor import POLL_S, Child, Supervisor
from assistant.config.processes import STATUS_FILE
from assistant.config.settings import PROJECT_ROOT, Settings


def gateway_server(settings: Settings, host: str, port: int):
    import uvicorn

    from assistant.api.app import create_app

    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        ws="wsproto",
        log_level="warning",
        access_log=False,
        lifespan="on",
        # Live streams (web chat, desk) would otherwise hold a Ctrl-C forever.
        timeout_graceful_shutdown=5,
        # The app reads X-Forwarded-For itself, from BANSHI_TRUSTED_PROXIES only.
        proxy_headers=False,
    )
    return uvicorn.Server(config)


async def supervise(supervisor: Supervisor) -> None:
    while True:
        await asyncio.to_thread(supervisor.poll)
        await asyncio.sleep(POLL_S)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    if args.replicas > 1 or args.actions > 1 or args.local_servers or args.balancer:
        return cmd_run_replicas(args, settings)
    ensure_model(settings)
    started = time.monotonic()
    # The action server is restarted with back-off when it exits (see /healthz).
    supervisor = Supervisor(
        [Child(name=f"{ACTIONS}-1", role=ACTIONS, port=settings.action_port, cwd=PROJECT_ROOT,
               argv=action_server_argv(settings.action_port), env=action_server_env(settings))],
        settings.data_dir / STATUS_FILE,
    )
    supervisor.start_all()
    server = gateway_server(settings, settings.host, settings.port)

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        watcher = asyncio.create_task(supervise(supervisor))
        while not server.started and not task.done():
            await asyncio.sleep(0.1)
        health = f"http://127.0.0.1:{settings.action_port}/health"
        ok = await asyncio.to_thread(wait_http, health, READY_TIMEOUT_S)
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
        watcher.cancel()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.stop_all()
    return 0 if server.started else 1


def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    """One gateway process (no action server): a replica behind the balancer."""
    host = args.host or settings.host
    port = args.port or settings.port
    settings = settings.copy(update={"host": host, "port": port})
    server = gateway_server(settings, host, port)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    return 0 if server.started else 1


def cmd_actions(args: argparse.Namespace, settings: Settings) -> int:
    proc = start_action_server(settings)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        stop_process(proc)
        return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="start action server and gateway (several with --replicas)")
    run.add_argument("--replicas", type=int, default=1, choices=range(1, 17), metavar="N",
                     help="gateway processes behind nginx (needs PostgreSQL and Redis)")
    run.add_argument("--actions", type=int, default=1, choices=range(1, 17), metavar="M",
                     help="action servers behind nginx")
    run.add_argument("--local-servers", action="store_true",
                     help="start PostgreSQL and Redis (Debian packages) in the data directory")
    run.add_argument("--balancer", action="store_true", help="behind nginx even with one replica")
    run.add_argument("--local-postgres-port", type=int, default=None, help=argparse.SUPPRESS)
    run.set_defaults(func=cmd_run)
    gateway = sub.add_parser("gateway", help="start one gateway process (a replica; no action server)")
    gateway.add_argument("--host", default=None)
    gateway.add_argument("--port", type=int, default=None)
    gateway.set_defaults(func=cmd_gateway)
    sub.add_parser("actions", help="start only the action server").set_defaults(func=cmd_actions)
