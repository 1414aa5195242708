"""``banshi progress import``, ``banshi progress purge-uploads`` and ``banshi demo-data``:
application progress data, and the retention of materials handed in by photo."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from assistant.config.settings import Settings


def cmd_progress(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.services.progress.importer import ProgressImportError, import_csv

    try:
        report = import_csv(settings.db_url, Path(args.file), settings.secret())
    except ProgressImportError as exc:
        print(f"导入失败，没有写入任何数据 / import failed, nothing written:\n{exc}", file=sys.stderr)
        return 2
    print(f"已导入 {report.applications} 件办件，{report.events} 条进度记录。")
    return 0


def _pad_wide(text: str, width: int) -> str:
    """Pad to ``width`` terminal columns (a Chinese character takes two)."""
    import unicodedata

    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(1, width - used)


def cmd_demo_data(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.services.progress.importer import load_demo_data
    from assistant.services.progress.providers import load_view
    from knowledge.catalog import load_spec

    report = load_demo_data(settings.db_url, settings.secret())
    names = {entry.id: entry.name for entry in load_spec().values()}
    print(f"已载入 {report.applications} 件演示办件。查询进度时，请提供办件号和手机尾号：")
    print(_pad_wide("办件号", 16) + _pad_wide("状态", 12) + _pad_wide("手机尾号", 10) + "事项")
    for number in report.numbers:
        view = load_view(settings.db_url, number)
        if view is None:
            continue
        print(
            _pad_wide(view.number, 16)
            + _pad_wide(view.label, 12)
            + _pad_wide(view.phone_last4, 10)
            + names.get(view.item_id, view.item_id)
        )
    return 0


def cmd_purge_uploads(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.services.materials import uploads

    count = uploads.purge(settings)
    print(f"已删除 {count} 份超过保存期限（{settings.upload_retention_days} 天）的补交材料文件。")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    progress = sub.add_parser("progress", help="application progress data")
    progress_sub = progress.add_subparsers(dest="progress_command", required=True)
    progress_import = progress_sub.add_parser("import", help="import applications from a CSV file")
    # Resolved now: main() changes into the project directory before running the command.
    progress_import.add_argument("file", type=os.path.abspath, help="CSV, one row per status step")
    progress.set_defaults(func=cmd_progress)
    # Also done hourly by the gateway; for a cron job or right after changing the retention.
    progress_sub.add_parser(
        "purge-uploads", help="delete material uploads older than BANSHI_UPLOAD_RETENTION_DAYS"
    ).set_defaults(func=cmd_purge_uploads)
    sub.add_parser("demo-data", help="load the demo applications").set_defaults(func=cmd_demo_data)
