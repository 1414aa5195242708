"""``banshi prefill ...``: kiosk pre-applications (purge, look up a receipt number)."""

from __future__ import annotations

import argparse
import json
import sys

from assistant.config.settings import Settings


def cmd_prefill(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.services.prefill import central

    if args.prefill_command == "purge":
        report = central.purge(settings)
        print(
            f"已删除个人信息：预申请 {report.fields} 份，材料照片 {report.photos} 张，无主文件 {report.orphans} 个"
            f"（中心保存期限 {settings.prefill_retention_days} 天；自助机送达后即删除）。"
        )
        return 0
    view = central.find_receipt(settings.db_url, args.receipt.strip().upper())
    if view is None:
        print(f"没有找到回执号为 {args.receipt} 的预申请 / not found", file=sys.stderr)
        return 1
    print(json.dumps(
        {
            "receipt": view.receipt,
            "item_id": view.item_id,
            "state": view.state,
            "created_at": view.created_at.isoformat(),
            "received_at": view.received_at.isoformat() if view.received_at else None,
            "materials": view.materials,
            "materials_received": view.materials_received,
            "purged": view.purged,
        },
        ensure_ascii=False,
        indent=2,
    ))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    prefill = sub.add_parser("prefill", help="kiosk pre-applications (预填)")
    prefill_sub = prefill.add_subparsers(dest="prefill_command", required=True)
    prefill_sub.add_parser("purge", help="delete personal data past retention (central) or delivered (kiosk)")
    show = prefill_sub.add_parser("show", help="the state of a receipt number (no personal data)")
    show.add_argument("receipt", help="e.g. KSHALL3-20261205-0001")
    prefill.set_defaults(func=cmd_prefill)
