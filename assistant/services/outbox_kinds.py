"""Outbox kinds with their own request (``register_kind``): how a message of the kind is
delivered (``Outbound``), and what to do once the central server confirmed it.

Pre-applications and the photos of their materials register here
(``assistant/services/prefill/kiosk.py``): their personal data stays sealed beside the
outbox and is opened only to be sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

from assistant.config.settings import Settings
from assistant.storage.tables import OUTBOX_KINDS


@dataclass(frozen=True)
class Outbound:
    """The request that delivers one message (relative to the central's base URL)."""

    path: str
    json: Optional[Dict[str, Any]] = None
    content: Optional[bytes] = None
    params: Optional[Dict[str, str]] = None
    headers: Optional[Dict[str, str]] = None
    timeout_s: Optional[float] = None  # default: the client's


class Unsendable(Exception):
    """The message's request cannot be built (its sealed data is gone or cannot be
    opened): it is given up, with this message as its error (no personal data)."""


class NotYet(Exception):
    """The message must wait for another one to be delivered first (a photo for its
    pre-application): tried again later, like after a network error."""


# kind → build(settings, message, kiosk_id) -> Outbound; kind → after(settings, message).
# ``message`` is an ``outbox.Pending``.
BUILDERS: Dict[str, Callable[[Settings, Any, str], Outbound]] = {}
AFTER_DELIVERY: Dict[str, Callable[[Settings, Any], None]] = {}


def register_kind(
    kind: str,
    build: Callable[[Settings, Any, str], Outbound],
    after_delivery: Optional[Callable[[Settings, Any], None]] = None,
) -> None:
    if kind not in OUTBOX_KINDS:
        raise ValueError(f"unknown outbox kind: {kind!r}")
    BUILDERS[kind] = build
    if after_delivery is not None:
        AFTER_DELIVERY[kind] = after_delivery


def load_kinds() -> None:
    """Import the modules whose kinds register themselves."""
    from assistant.services.prefill import kiosk  # noqa: F401
