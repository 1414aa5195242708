"""Headless Chromium (Debian's chromium, driven by Playwright) for the page tests."""

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(__file__).resolve().parents[2] / "results" / "screenshots"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def launch_browser(extra_args: Sequence[str] = ()) -> Iterator:
    if not CHROMIUM:
        pytest.skip("chromium is not installed (scripts/bootstrap.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*BROWSER_ARGS, *extra_args])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser():
    with launch_browser() as launched:
        yield launched


@pytest.fixture(scope="module")
def microphone_browser(fake_microphone_wav: Path):
    """Chromium whose microphone plays ``fake_microphone_wav`` (a fixture of the test
    module: a WAV file), with the permission prompt answered yes."""
    with launch_browser(
        [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={fake_microphone_wav}",
        ]
    ) as launched:
        yield launched
