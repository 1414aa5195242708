"""The `banshi` command line.

    banshi run                 action server + gateway, waits until ready, Ctrl-C stops both
    banshi train [--force]     train the Rasa model unless its inputs are unchanged
    banshi chat                chat in the terminal
    banshi parse TEXT          parse one message (JSON, same shape as /api/v1/parse)
    banshi parse --jsonl       one message per stdin line (text or {"text": ...}) → JSON lines
    banshi kb validate         check the catalog files and the facts under test (knowledge/facts.tsv)
    banshi kb import FILE      import a catalog from .csv or .xlsx into YAML files
    banshi kb dict             regenerate the jieba user dictionary and the situations' intent examples
    banshi kb propose-bundle ID  draft a bundle's materials list from its members (to review)
    banshi kb stale [--months 12]  records and sources not checked within that time
    banshi progress import CSV import applications and their progress steps (one row per step)
    banshi progress purge-uploads  delete material uploads past BANSHI_UPLOAD_RETENTION_DAYS
    banshi demo-data           load the demo applications to try the progress lookup
    banshi actions             run only the action server
    banshi desk add-user NAME  create a desk account (password from BANSHI_NEW_PASSWORD or prompted)
                               [--role operator|admin] [--display-name NAME]
    banshi desk list-users     list the desk accounts
    banshi desk set-password NAME  reset a password and re-enable the account
    banshi voice download-model  download the Chinese Vosk model [--large] [--dir DIR] [--force]
    banshi voice check         is the speech model found, does it load [--wav FILE: transcribe it]
    banshi outbox status       kiosk outbox: pending, delivered and given-up messages
    banshi outbox flush        deliver the pending messages now [--retry-failed]
    banshi notices status      status notices and reminders: queued, sent, given up [--json]
    banshi notices dispatch    send the due notices and reminders now
    banshi prefill purge       delete pre-applications' personal data past retention / once delivered
    banshi prefill show RECEIPT  the state of a kiosk receipt number (KS…)
    banshi analytics refresh   compute the analytics' days now [--days 30 | --start D --end D]
"""


from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from assistant.cli import analytics, desk, dialogue, kb, notices, outbox, prefill, progress, run, voice, wechat
from assistant.cli.common import setup_logging
from assistant.config.settings import PROJECT_ROOT, get_settings

# The order of ``banshi --help``.
GROUPS = (run, dialogue, kb, progress, desk, voice, outbox, notices, prefill, wechat, analytics)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="banshi", description="banshi 办事助手")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except Exception as exc:  # pydantic ValidationError: name the variable, then stop
        print(f"配置错误 / invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    os.chdir(PROJECT_ROOT)
    setup_logging(settings)
    return int(args.func(args, settings) or 0)


if __name__ == "__main__":
    sys.exit(main())
