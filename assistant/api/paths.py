"""Where the pages live: the static files served under ``/static`` (web chat, desk, kiosk)."""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
