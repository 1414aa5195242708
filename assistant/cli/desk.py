"""``banshi desk ...``: operator desk accounts."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

from assistant.config.settings import Settings


def _new_password() -> Optional[str]:
    """BANSHI_NEW_PASSWORD, or asked twice without echo. None if the two differ."""
    import getpass

    password = os.environ.get("BANSHI_NEW_PASSWORD")
    if password is not None:
        return password
    first = getpass.getpass("新密码 / new password: ")
    second = getpass.getpass("再次输入 / repeat: ")
    return first if first == second else None


def cmd_desk(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.security import accounts

    if args.desk_command == "list-users":
        for info in accounts.list_operators(settings.db_url):
            state = "启用" if info.active else "停用"
            print(f"{info.username}\t{info.role}\t{state}\t{info.display_name}")
        return 0
    creating = args.desk_command == "add-user"
    try:
        if creating:
            accounts.check_username(args.username)
        elif accounts.get_operator(settings.db_url, args.username) is None:
            raise ValueError(f"no such account: {args.username}")
        password = _new_password()
    except ValueError as exc:
        print(f"无法设置账号 / cannot set account: {exc}", file=sys.stderr)
        return 2
    except (EOFError, KeyboardInterrupt):
        print("\n已取消 / cancelled", file=sys.stderr)
        return 2
    if password is None:
        print("两次输入的密码不一致 / passwords do not match", file=sys.stderr)
        return 2
    try:
        if creating:
            info = accounts.create_operator(
                settings.db_url, args.username, password, role=args.role, display_name=args.display_name
            )
        else:  # set-password: also re-enables the account and ends its sessions
            accounts.set_password(settings.db_url, args.username, password)
            info = accounts.set_active(settings.db_url, args.username, True)
    except ValueError as exc:
        print(f"无法设置账号 / cannot set account: {exc}", file=sys.stderr)
        return 2
    print(f"{'已创建账号' if creating else '已重设密码'} {info.username}（{info.role}）")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    desk = sub.add_parser("desk", help="operator desk accounts")
    desk_sub = desk.add_subparsers(dest="desk_command", required=True)
    add_user = desk_sub.add_parser("add-user", help="create a desk account")
    add_user.add_argument("username")
    add_user.add_argument("--role", choices=["operator", "admin"], default="operator")
    add_user.add_argument("--display-name", help="name shown to colleagues (default: the username)")
    desk_sub.add_parser("list-users", help="list the desk accounts")
    set_password = desk_sub.add_parser("set-password", help="reset a password (and re-enable the account)")
    set_password.add_argument("username")
    desk.set_defaults(func=cmd_desk)
