"""``banshi analytics refresh``: compute the analytics' days now (a backfill after
deployment, or from cron at night), so that the dashboard never waits for them."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from assistant.config.settings import Settings


def cmd_analytics(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.services.analytics import rollup
    from assistant.services.analytics.report import BadFilters, Filters
    from assistant.storage.database import utcnow

    today = rollup.local_day(utcnow(), rollup.ZoneInfo(settings.timezone))
    try:
        end = dt.date.fromisoformat(args.end) if args.end else today
        start = dt.date.fromisoformat(args.start) if args.start else end - dt.timedelta(days=args.days - 1)
        Filters(start=start, end=end).check()
    except ValueError as exc:  # a malformed date, or BadFilters (a ValueError) with its Chinese message
        message = str(exc) if isinstance(exc, BadFilters) else "日期格式不正确，请使用 年-月-日，例如 2026-11-02"
        print(message, file=sys.stderr)
        return 2
    if settings.tracker_store != "sql":
        print("BANSHI_TRACKER_STORE=memory：没有保存的对话，无需统计。", file=sys.stderr)
        return 0
    done = rollup.refresh(settings, start, end)
    print(f"已统计 {len(done.days)} 天，{done.turns} 轮对话（{start.isoformat()} 至 {end.isoformat()}；已完成的日期不再重算）。")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    analytics = sub.add_parser("analytics", help="the analytics dashboard's data")
    analytics_sub = analytics.add_subparsers(dest="analytics_command", required=True)
    refresh = analytics_sub.add_parser("refresh", help="compute the days not yet complete (from the tracker store)")
    refresh.add_argument("--days", type=int, default=30, help="the last N local days, today included (default 30)")
    refresh.add_argument("--start", help="first day YYYY-MM-DD (instead of --days)")
    refresh.add_argument("--end", help="last day YYYY-MM-DD (default today)")
    analytics.set_defaults(func=cmd_analytics)
