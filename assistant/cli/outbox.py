"""``banshi outbox ...``: the kiosk outbox to the central server (status, flush)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from assistant.config.settings import Settings


def cmd_outbox(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.services import outbox

    if args.outbox_command == "status":
        report = outbox.status(settings.db_url, limit=args.limit)
        if args.json:
            print(json.dumps(report, ensure_ascii=False, indent=2))
            return 0
        counts = report["counts"]
        target = settings.central_url or "未设置 BANSHI_CENTRAL_URL"
        print(
            f"发件箱 outbox（{settings.kiosk_id} → {target}）：待发送 pending {counts['pending']}，"
            f"已送达 delivered {counts['delivered']}，已放弃 failed {counts['failed']}"
        )
        for m in report["messages"]:
            when = f"next={m['next_attempt_at']}" if m["state"] == "pending" else f"failed={m['failed_at']}"
            print(f"  {m['id']}  {m['kind']:<11} {m['state']:<8} attempts={m['attempts']}  {when}  {m['last_error'] or ''}")
        return 0
    if not settings.central_url:
        print("未设置 BANSHI_CENTRAL_URL，无法发送 / central_url is not set", file=sys.stderr)
        return 2
    outbox.make_due(settings.db_url, include_failed=args.retry_failed)

    async def flush() -> tuple:
        delivered = failed = 0
        async with outbox.central_client(settings) as client:
            while True:  # failed attempts are rescheduled, so every pass takes new messages
                d, f = await outbox.deliver_due(
                    settings.db_url, client, kiosk_id=settings.kiosk_id, settings=settings
                )
                delivered, failed = delivered + d, failed + f
                if d + f < outbox.BATCH:
                    return delivered, failed

    delivered, failed = asyncio.run(flush())
    counts = outbox.status(settings.db_url, limit=0)["counts"]
    print(
        f"已送达 {delivered} 条，本次失败 {failed} 条；"
        f"仍待发送 {counts['pending']} 条，已放弃 {counts['failed']} 条（详见 banshi outbox status）。"
    )
    return 0 if counts["pending"] == 0 and counts["failed"] == 0 else 1


def add_commands(sub: argparse._SubParsersAction) -> None:
    outbox = sub.add_parser("outbox", help="kiosk outbox to the central server")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True)
    outbox_status = outbox_sub.add_parser("status", help="pending, delivered and given-up messages")
    outbox_status.add_argument("--json", action="store_true", help="print JSON")
    outbox_status.add_argument("--limit", type=int, default=20, help="messages to list (default 20)")
    outbox_flush = outbox_sub.add_parser("flush", help="deliver the pending messages now")
    outbox_flush.add_argument("--retry-failed", action="store_true", help="also retry given-up messages")
    outbox.set_defaults(func=cmd_outbox)
