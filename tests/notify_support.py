"""Shared by the notification tests: a local SMS gateway, a time zone where it is
day now (quiet hours would hold a notice back at night), signed status events, and
a reader of the web chat's event stream."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import Dict, List, Optional

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from assistant.services.progress import events

CMS_SECRET = "cms-shared-secret-0123456789"


class FakeSms:
    """``POST /sms`` ``{"phone", "text"}``: recorded (thread-safe); ``down`` answers 503."""

    def __init__(self) -> None:
        self.received: List[Dict] = []
        self.down = False
        self._cond = threading.Condition()
        self.app = Starlette(routes=[Route("/sms", self._sms, methods=["POST"])])
        self.url = ""

    async def _sms(self, request: Request) -> JSONResponse:
        if self.down:
            return JSONResponse({"error": "busy"}, status_code=503)
        body = await request.json()
        with self._cond:
            self.received.append(body)
            self._cond.notify_all()
        return JSONResponse({"ok": True})

    def phones(self) -> List[str]:
        with self._cond:
            return [body["phone"] for body in self.received]

    def wait_for(self, count: int, timeout_s: float = 10.0) -> List[Dict]:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self.received) < count and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            return list(self.received)


def daytime_zone(now: Optional[dt.datetime] = None) -> str:
    """A fixed-offset time zone in which it is about 14:00 now (never quiet hours)."""
    hour = (now or dt.datetime.now(dt.timezone.utc)).hour
    offset = 14 - hour  # -9 … +14, all of which exist as Etc/GMT zones
    return f"Etc/GMT{-offset:+d}"


def signed_event(number: str, event_id: str, status: str, secret: str = CMS_SECRET, **extra):
    """Headers and body of a status event as the case-management system sends it."""
    payload = {"event_id": event_id, "status": status, "at": dt.datetime.now(dt.timezone.utc).isoformat(), **extra}
    body = json.dumps(payload, ensure_ascii=False).encode()
    stamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Banshi-Timestamp": stamp,
               "X-Banshi-Signature": events.sign(secret, stamp, body)}
    return f"/api/v1/applications/{number}/events", headers, body


def read_notices(base_url: str, sender_id: str, token: str, wait_s: float, want: int = 1) -> List[Dict]:
    """Open the chat's event stream and collect ``notice`` events for up to ``wait_s``
    seconds (or until ``want`` arrived)."""
    got: List[Dict] = []
    deadline = time.monotonic() + wait_s
    params = {"sender_id": sender_id, "token": token}
    try:
        with httpx.stream("GET", f"{base_url}/api/v1/chat/events", params=params,
                          timeout=httpx.Timeout(wait_s, connect=5.0)) as response:
            assert response.status_code == 200, response.status_code
            event = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line[len("event: "):]
                elif line.startswith("data: ") and event == "notice":
                    got.append(json.loads(line[len("data: "):]))
                    if len(got) >= want:
                        return got
                if time.monotonic() > deadline:
                    return got
    except httpx.ReadTimeout:
        pass
    return got


def add_applications(db_url: str, count: int, prefix: str = "ZW2099", status: str = "reviewing") -> List[str]:
    """``count`` applications (numbers ``ZW2099xxxxxxx``) in ``status``, straight into the table."""
    from assistant.storage.database import session_factory
    from assistant.storage.tables import Application

    numbers = [f"{prefix}{i:07d}" for i in range(1, count + 1)]
    with session_factory(db_url)() as session:
        for number in numbers:
            session.add(Application(number=number, item_id="passport", applicant_masked="张*", salt="s" * 8,
                                    phone_hash="0" * 64, phone_last4="0000", status=status))
        session.commit()
    return numbers
