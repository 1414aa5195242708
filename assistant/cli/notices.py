"""``banshi notices ...``: status notices and reminders (status, dispatch now)."""

from __future__ import annotations

import argparse
import asyncio
import json

from assistant.config.settings import Settings

STATE_NAMES = {"pending": "待发送", "sent": "已发送", "held": "不推送（查询时显示）", "capped": "超出每日上限",
               "failed": "已放弃", "cancelled": "已取消", "obsolete": "已不需要"}


def _line(counts: dict) -> str:
    return "，".join(f"{channel} {count}" for channel, count in sorted(counts.items()))


def cmd_notices(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.services.progress import dispatch, reminders
    from assistant.services.progress.loop import LEASE_NAME
    from assistant.storage import leases

    if args.notices_command == "status":
        report = {
            "notices": dispatch.status(settings.db_url),
            "reminders": reminders.status(settings.db_url),
            "scheduler": leases.holder_of(settings.db_url, LEASE_NAME),
        }
        if args.json:
            print(json.dumps(report, ensure_ascii=False, indent=2))
            return 0
        notices, reminded = report["notices"], report["reminders"]
        print(f"状态通知 notices：现在该发 due now {notices['due_now']}，下一条 next {notices['next_due'] or '—'}")
        for state, counts in sorted(notices["by_state"].items()):
            print(f"  {state:<9} {STATE_NAMES.get(state, state)}：{_line(counts)}")
        print(f"提醒 reminders：现在该发 due now {reminded['due_now']}，下一条 next {reminded['next_at'] or '—'}")
        for state, counts in sorted(reminded["by_status"].items()):
            print(f"  {state:<9} {STATE_NAMES.get(state, state)}：{_line(counts)}")
        print(f"定时发送 scheduler lease：{report['scheduler'] or '无（没有网关在运行，或刚刚交接）'}")
        return 0

    from assistant.channels.notify import build_senders

    async def run() -> tuple:
        built = build_senders(settings)
        try:
            sent = await dispatch.dispatch_all(settings.db_url, settings.secret(), built.senders)
            reminded = await reminders.send_due_reminders(settings.db_url, settings.secret(), built.senders,
                                                          settings.timezone)
        finally:
            await built.aclose()
        return sent, reminded, sorted(built.senders)

    sent, reminded, channels = asyncio.run(run())
    print(f"渠道 channels：{', '.join(channels)}")
    print(f"状态通知：发送 {sent['sent']}，稍后重试 {sent['retry']}，放弃 {sent['failed']}，不推送 {sent['held']}")
    print(f"提醒：发送 {reminded['sent']}，推迟 {reminded['deferred']}，稍后重试 {reminded['retry']}，"
          f"放弃 {reminded['failed']}，已不需要 {reminded['obsolete']}")
    return 0 if sent["failed"] == 0 and reminded["failed"] == 0 else 1


def add_commands(sub: argparse._SubParsersAction) -> None:
    notices = sub.add_parser("notices", help="status notices and reminders to citizens")
    notices_sub = notices.add_subparsers(dest="notices_command", required=True)
    status = notices_sub.add_parser("status", help="queued, sent and given-up notices and reminders")
    status.add_argument("--json", action="store_true", help="print JSON")
    notices_sub.add_parser("dispatch", help="send what is due now (besides the gateways' scheduler)")
    notices.set_defaults(func=cmd_notices)
