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
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import List, Optional

import httpx

from assistant.config.settings import PROJECT_ROOT, Settings, get_settings

logger = logging.getLogger("banshi")

READY_TIMEOUT_S = 180


def _quiet_libraries() -> None:
    # Rasa 3.6 and its dependencies warn about their own internals at every start.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"rasa\.")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("LOG_LEVEL_LIBRARIES", "ERROR")
    os.environ.setdefault("SQLALCHEMY_WARN_20", "0")
    for name in ("rasa", "tensorflow", "absl", "jieba", "sanic", "apscheduler", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    _quiet_libraries()
    from assistant.security.pii import install_log_masking

    install_log_masking()


# ---------------------------------------------------------------- processes
def start_action_server(settings: Settings) -> subprocess.Popen:
    env = {**os.environ, "SANIC_HOST": settings.host if settings.host != "0.0.0.0" else "127.0.0.1"}
    return subprocess.Popen(
        [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(settings.action_port)],
        cwd=PROJECT_ROOT,
        env=env,
    )


def wait_http(url: str, timeout: float, proc: Optional[subprocess.Popen] = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def _stop(proc: Optional[subprocess.Popen]) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def ensure_model(settings: Settings) -> None:
    from assistant.dialogue.training import data_fingerprint, model_path_for, train

    fingerprint = data_fingerprint(embedding=settings.embedding_model)
    if settings.model_path is None and not model_path_for(settings, fingerprint).exists():
        print("训练模型中（首次约需几分钟）… / training the model", flush=True)
        train(settings)


# ----------------------------------------------------------------- commands
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
        _stop(actions)
    return 0 if server.started else 1


def cmd_actions(args: argparse.Namespace, settings: Settings) -> int:
    proc = start_action_server(settings)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        _stop(proc)
        return 0


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.dialogue.training import train

    path = train(settings, force=args.force)
    print(path)
    return 0


def _load_runtime(settings: Settings, tracker_memory: bool = True):
    from assistant.dialogue.runtime import AssistantRuntime

    if tracker_memory:
        settings = settings.copy(update={"tracker_store": "memory"})
    runtime = AssistantRuntime(settings)
    runtime.load()
    return runtime


def cmd_parse(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.api.routers.conversation import parse_response

    if not args.jsonl and not args.text:
        print("请提供要解析的文字，或使用 --jsonl 从标准输入读取", file=sys.stderr)
        return 2
    ensure_model(settings)
    runtime = _load_runtime(settings)
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
        runtime = _load_runtime(settings)
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
        _stop(actions)
    return 0


def cmd_kb(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge import jieba_dict
    from knowledge.catalog import CatalogError, load_catalog

    if args.kb_command == "import":
        from knowledge.importer import ImportError_, import_file

        try:
            written = import_file(Path(args.file), Path(args.out) if args.out else settings.catalog_dir)
        except ImportError_ as exc:
            print(f"导入失败 / import failed:\n{exc}", file=sys.stderr)
            return 1
        print(f"imported {len(written)} records into {args.out or settings.catalog_dir}")
        catalog_dir = Path(args.out) if args.out else settings.catalog_dir
    else:
        catalog_dir = Path(args.catalog) if getattr(args, "catalog", None) else settings.catalog_dir
    try:
        catalog = load_catalog(catalog_dir, settings.region_override)
    except CatalogError as exc:
        print(f"catalog invalid: {len(exc.problems)} problem(s)", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    if args.kb_command == "propose-bundle":
        return _propose_bundle(catalog, args.id)
    if args.kb_command == "stale":
        return _stale(catalog, args.months)
    if args.kb_command == "validate":
        problems = _check_facts(catalog_dir, settings, Path(args.facts) if args.facts else None)
        if problems:
            print(f"facts do not hold: {len(problems)} problem(s)", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
    if args.kb_command == "dict":
        from knowledge import nlu_examples

        for path, changed in ((jieba_dict.USER_DICT, jieba_dict.write(catalog)),
                              (nlu_examples.GENERATED_FILE, nlu_examples.write(catalog))):
            print(f"{path} {'updated' if changed else 'unchanged'}")
        return 0
    if args.kb_command == "load" or args.kb_command == "import":
        from knowledge import db

        db.sync_catalog(settings.db_url, catalog, force=True)
    items = sum(1 for r in catalog.items() if r.kind == "item")
    bundles = len(catalog.records) - items
    print(f"catalog ok: {items} items, {bundles} bundles, fingerprint {catalog.fingerprint}")
    return 0


def _check_facts(catalog_dir: Path, settings: Settings, facts_path: Optional[Path]) -> List[str]:
    """The facts under test, checked against the catalog files (without the regional
    override: a region may change a fact on purpose)."""
    from knowledge.catalog import load_catalog
    from knowledge.facts import FACTS_FILE, check_facts, load_facts

    path = facts_path or FACTS_FILE
    if facts_path is None and catalog_dir.resolve() != settings.catalog_dir.resolve():
        return []  # a catalog elsewhere (a copy under test) has no facts file of its own
    try:
        facts = load_facts(path)
    except (OSError, ValueError) as exc:
        return [str(exc)]
    return check_facts(load_catalog(catalog_dir), facts, path)


def _propose_bundle(catalog, bundle_id: str) -> int:
    """Print a draft materials list for a bundle: its members' lists merged (to review)."""
    import yaml

    from knowledge.bundles import draft_materials, produced_by

    record = catalog.get(bundle_id)
    if record is None or record.kind != "bundle":
        print(f"{bundle_id}: not a bundle of the catalog", file=sys.stderr)
        return 1
    materials = draft_materials(catalog.records, record)
    produced = sorted(produced_by(catalog.records, record))
    print(f"# Draft materials for {bundle_id}, merged from its members: {', '.join(record.members) or 'none'}.")
    print("# Review every entry against the official guide: what not everyone needs becomes")
    print("# required: false with a condition (\"非婚生育的无需提供\"); then set reviewed: <date>.")
    print(f"# Left out as outputs (the bundle or a member produces them): {'、'.join(produced) or 'none'}")
    drafted = [json.loads(m.json(exclude_none=True)) for m in materials]
    print(yaml.safe_dump({"materials": drafted}, allow_unicode=True, sort_keys=False, width=1000), end="")
    return 0


def _stale(catalog, months: int) -> int:
    from knowledge.catalog import stale_records

    found = stale_records(catalog, months)
    for line in found:
        print(line)
    print(f"{len(found)} record date(s) or source(s) not checked within {months} months")
    return 1 if found else 0


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


def cmd_progress(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.services.progress.importer import ProgressImportError, import_csv

    try:
        report = import_csv(settings.db_url, Path(args.file), settings.secret())
    except ProgressImportError as exc:
        print(f"导入失败，没有写入任何数据 / import failed, nothing written:\n{exc}", file=sys.stderr)
        return 2
    print(f"已导入 {report.applications} 件办件，{report.events} 条进度记录。")
    return 0


def cmd_voice(args: argparse.Namespace, settings: Settings) -> int:
    if args.voice_command == "download-model":
        from voice.download import LARGE, SMALL, DownloadError, install_model

        spec = LARGE if args.large else SMALL
        target = Path(args.dir or settings.data_dir / "vosk") / spec.name
        if target.exists() and not args.force:
            print(f"语音模型已安装：{target}（重新下载请加 --force）")
        else:
            print(f"下载语音模型 {spec.name}（约 {spec.size / (1 << 20):.0f} MB）→ {target}")
            try:
                install_model(
                    args.url or spec.url, target, sha256=args.sha256, force=args.force,
                    progress=not args.quiet,
                )
            except DownloadError as exc:
                print(exc.message, file=sys.stderr)
                return exc.exit_code
            print(f"语音模型已安装：{target}")
        if target.resolve() == settings.vosk_model_dir.resolve():
            print("这是默认位置，无需设置 BANSHI_VOSK_MODEL_PATH。")
        else:
            print(f"使用它：export BANSHI_VOSK_MODEL_PATH={target}（或写入 .env）")
        return 0

    from voice.asr import Asr, AsrUnavailable

    asr = Asr(settings.vosk_model_dir)
    print(f"语音模型目录：{asr.model_dir}")
    if not asr.available:
        print(AsrUnavailable(asr.model_dir).message, file=sys.stderr)
        return 1
    started = time.perf_counter()
    try:
        asr.load()
    except AsrUnavailable as exc:
        print(exc.message, file=sys.stderr)
        return 1
    print(f"模型已加载（{time.perf_counter() - started:.1f} 秒）")
    if args.wav:
        from voice.audio import AudioError, duration_seconds, pcm16_from_wav

        try:
            pcm = pcm16_from_wav(
                Path(args.wav).read_bytes(),
                max_bytes=settings.max_audio_bytes, max_seconds=settings.max_audio_seconds,
            )
        except (OSError, AudioError) as exc:
            print(getattr(exc, "message", str(exc)), file=sys.stderr)
            return 1
        started = time.perf_counter()
        text = asr.transcribe_sync(pcm)
        elapsed, seconds = time.perf_counter() - started, duration_seconds(pcm)
        print(f"识别结果：{text}")
        print(f"音频 {seconds:.1f} 秒，识别用时 {elapsed:.2f} 秒（RTF {elapsed / max(seconds, 1e-6):.2f}）")
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


def cmd_wechat_sim(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.channels.wechat_sim import FakeWeChatApi, chat
    from assistant.api.serving import serve_in_thread

    if not settings.wechat_enabled:
        print(
            "未配置微信渠道 / the WeChat channel is off. Start the gateway and this simulator with, e.g.:\n"
            "  export BANSHI_WECHAT_TOKEN=devtoken BANSHI_WECHAT_APP_ID=wxdev BANSHI_WECHAT_APP_SECRET=devsecret \\\n"
            f"         BANSHI_WECHAT_MODE=plain BANSHI_WECHAT_API_BASE=http://127.0.0.1:{args.api_port}\n"
            "  make run            # in one terminal\n"
            "  banshi wechat-sim   # in another",
            file=sys.stderr,
        )
        return 2
    url = args.url or f"http://{settings.host}:{settings.port}/channels/wechat"
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would bury the chat
    api = FakeWeChatApi(settings.wechat_app_id or "", settings.wechat_app_secret or "")
    expected = f"http://127.0.0.1:{args.api_port}"
    if settings.wechat_api_base != expected:
        print(f"注意：网关的 BANSHI_WECHAT_API_BASE 应为 {expected}，客服消息才会回到模拟器。", file=sys.stderr)
    with serve_in_thread(api.app, port=args.api_port):
        print(f"微信模拟器：消息发往 {url}，模拟微信接口在 {expected}。")
        asyncio.run(chat(url, settings, api, args.openid, args.safe))
    return 0


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
                d, f = await outbox.deliver_due(settings.db_url, client, kiosk_id=settings.kiosk_id)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="banshi", description="banshi 办事助手")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start action server and gateway").set_defaults(func=cmd_run)
    sub.add_parser("actions", help="start only the action server").set_defaults(func=cmd_actions)
    train = sub.add_parser("train", help="train the model unless inputs are unchanged")
    train.add_argument("--force", action="store_true", help="train even if up to date")
    train.set_defaults(func=cmd_train)
    sub.add_parser("chat", help="chat in the terminal").set_defaults(func=cmd_chat)
    parse = sub.add_parser("parse", help="parse messages")
    parse.add_argument("text", nargs="*", help="the message")
    parse.add_argument("--jsonl", action="store_true", help="read one message per stdin line")
    parse.set_defaults(func=cmd_parse)
    kb = sub.add_parser("kb", help="service catalog tools")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    validate = kb_sub.add_parser("validate", help="validate the catalog files and the facts under test")
    validate.add_argument("--catalog", type=os.path.abspath, help="catalog directory (default: knowledge/catalog)")
    validate.add_argument("--facts", type=os.path.abspath, help="facts table (default: knowledge/facts.tsv)")
    propose = kb_sub.add_parser("propose-bundle", help="draft a bundle's materials from its members")
    propose.add_argument("id", help="the bundle id, e.g. bundle_newborn")
    propose.add_argument("--catalog", type=os.path.abspath, help="catalog directory (default: knowledge/catalog)")
    stale = kb_sub.add_parser("stale", help="records and sources not checked within N months")
    stale.add_argument("--months", type=int, default=12, help="how old a check may be (default 12)")
    stale.add_argument("--catalog", type=os.path.abspath, help="catalog directory (default: knowledge/catalog)")
    kb_sub.add_parser("dict", help="regenerate the jieba user dictionary and the intent examples of the situations")
    kb_sub.add_parser("load", help="load the catalog files into the database")
    imp = kb_sub.add_parser("import", help="import a catalog from .csv or .xlsx")
    imp.add_argument("file")
    imp.add_argument("--out", help="catalog directory to write (default: knowledge/catalog)")
    kb.set_defaults(func=cmd_kb)
    progress = sub.add_parser("progress", help="application progress data")
    progress_sub = progress.add_subparsers(dest="progress_command", required=True)
    progress_import = progress_sub.add_parser("import", help="import applications from a CSV file")
    # Resolved now: main() changes into the project directory before running the command.
    progress_import.add_argument("file", type=os.path.abspath, help="CSV, one row per status step")
    progress.set_defaults(func=cmd_progress)
    sub.add_parser("demo-data", help="load the demo applications").set_defaults(func=cmd_demo_data)
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
    voice = sub.add_parser("voice", help="offline speech recognition (Vosk)")
    voice_sub = voice.add_subparsers(dest="voice_command", required=True)
    download = voice_sub.add_parser("download-model", help="download and install the Chinese Vosk model")
    download.add_argument("--large", action="store_true", help="the large model (1.3 GB) instead of the small one (42 MB)")
    # Resolved now: main() changes into the project directory before running the command.
    download.add_argument("--dir", type=os.path.abspath, help="parent directory (default: data/vosk)")
    download.add_argument("--url", help="download from a mirror (built-in checksums apply to the official file name)")
    download.add_argument("--sha256", help="expected SHA-256 of the zip (replaces the built-in value)")
    download.add_argument("--force", action="store_true", help="download again and replace an installed model")
    download.add_argument("--quiet", action="store_true", help="no progress bar")
    check = voice_sub.add_parser("check", help="is a model found, does it load (and transcribe --wav FILE)")
    check.add_argument("--wav", type=os.path.abspath, help="a WAV file to transcribe")
    voice.set_defaults(func=cmd_voice)
    outbox = sub.add_parser("outbox", help="kiosk outbox to the central server")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True)
    outbox_status = outbox_sub.add_parser("status", help="pending, delivered and given-up messages")
    outbox_status.add_argument("--json", action="store_true", help="print JSON")
    outbox_status.add_argument("--limit", type=int, default=20, help="messages to list (default 20)")
    outbox_flush = outbox_sub.add_parser("flush", help="deliver the pending messages now")
    outbox_flush.add_argument("--retry-failed", action="store_true", help="also retry given-up messages")
    outbox.set_defaults(func=cmd_outbox)
    sim = sub.add_parser(
        "wechat-sim",
        help="chat through the gateway's WeChat channel as WeChat does (signed, encrypted, 5 s timeout, retries)",
    )
    sim.add_argument("--url", help="the channel URL (default: http://HOST:PORT/channels/wechat of the settings)")
    sim.add_argument("--api-port", type=int, default=8790,
                     help="port of the fake WeChat API (the gateway needs BANSHI_WECHAT_API_BASE=http://127.0.0.1:PORT)")
    sim.add_argument("--openid", default="oSimUser0000000000000000001", help="the simulated user's OpenID")
    sim.add_argument("--safe", action="store_true", help="encrypt messages (safe mode, needs the AES key)")
    sim.set_defaults(func=cmd_wechat_sim)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except Exception as exc:  # pydantic ValidationError: name the variable, then stop
        print(f"配置错误 / invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    os.chdir(PROJECT_ROOT)
    _setup_logging(settings)
    return int(args.func(args, settings) or 0)


if __name__ == "__main__":
    sys.exit(main())
