"""``banshi train``, ``banshi chat`` (in the terminal) and ``banshi parse``: the dialogue model."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from assistant.cli.common import ensure_model, load_runtime, start_action_server, stop_process, wait_http
from assistant.config.settings import Settings


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.dialogue.training import train

    path = train(settings, force=args.force)
    print(path)
    return 0


def cmd_parse(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.api.routers.conversation import parse_response

    if not args.jsonl and not args.text:
        print("请提供要解析的文字，或使用 --jsonl 从标准输入读取", file=sys.stderr)
        return 2
    ensure_model(settings)
    runtime = load_runtime(settings)
    limit = settings.max_text_chars

    async def one(text: str) -> str:
        text = text.strip()
        if not text:
            return json.dumps({"error": "消息不能为空"}, ensure_ascii=False)
        if len(text) > limit:
            return json.dumps({"error": f"消息太长，请不超过{limit}字"}, ensure_ascii=False)
        result = parse_response(await runtime.parse(text))
        return result.json(ensure_ascii=False)

    async def main() -> None:
        if not args.jsonl:
            print(await one(" ".join(args.text)), flush=True)
            return
        for line in sys.stdin:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            text = line
            if line.lstrip().startswith("{"):
                try:
                    obj = json.loads(line)
                    text = obj.get("text", "") if isinstance(obj, dict) else ""
                except json.JSONDecodeError:
                    print(json.dumps({"error": "不是有效的 JSON"}, ensure_ascii=False), flush=True)
                    continue
                if not isinstance(text, str):
                    print(json.dumps({"error": "text 必须是字符串"}, ensure_ascii=False), flush=True)
                    continue
            print(await one(text), flush=True)

    asyncio.run(main())
    return 0


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    ensure_model(settings)
    actions = start_action_server(settings)
    try:
        if not wait_http(f"http://127.0.0.1:{settings.action_port}/health", 60, actions):
            print("action server did not start", file=sys.stderr)
            return 1
        runtime = load_runtime(settings)
        sender = f"cli-{os.getpid()}"
        print("办事助手（输入 /quit 退出）", flush=True)

        async def loop() -> None:
            while True:
                try:
                    text = (await asyncio.to_thread(input, "您: ")).strip()
                except EOFError:
                    return
                if text in {"/quit", "/exit"}:
                    return
                if not text:
                    continue
                result = await runtime.chat(sender, text[: settings.max_text_chars], "cli")
                for message in result.messages:
                    if message.get("text"):
                        print(f"助手: {message['text']}")
                    for i, button in enumerate(message.get("buttons") or [], start=1):
                        print(f"  [{i}] {button['title']}")
            await runtime.close()

        asyncio.run(loop())
    except KeyboardInterrupt:
        pass
    finally:
        stop_process(actions)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train the model unless inputs are unchanged")
    train.add_argument("--force", action="store_true", help="train even if up to date")
    train.set_defaults(func=cmd_train)
    sub.add_parser("chat", help="chat in the terminal").set_defaults(func=cmd_chat)
    parse = sub.add_parser("parse", help="parse messages")
    parse.add_argument("text", nargs="*", help="the message")
    parse.add_argument("--jsonl", action="store_true", help="read one message per stdin line")
    parse.set_defaults(func=cmd_parse)
