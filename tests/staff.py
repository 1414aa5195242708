"""Staff (operators and admins) in tests: an account and a logged-in desk client."""

from __future__ import annotations

import contextlib
import itertools
from typing import Dict, Iterator, Tuple

import httpx
from fastapi.testclient import TestClient

from assistant.security import accounts

LOGIN_PATH = "/api/v1/desk/login"
_names = itertools.count(1)


def login(app, username: str, password: str) -> Tuple[TestClient, Dict[str, str]]:
    """A client of ``app`` logged in as ``username``, and the CSRF header for unsafe calls."""
    client = TestClient(app)
    response = client.post(LOGIN_PATH, json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return client, {"X-CSRF-Token": response.json()["csrf_token"]}


def new_staff(app, role: str, password: str, prefix: str = "st") -> Tuple[TestClient, Dict[str, str]]:
    """A new account with ``role`` on ``app``'s database, logged in."""
    name = f"{prefix}{role[:3]}{next(_names):03d}"
    accounts.create_operator(app.state.settings.db_url, name, password, role=role)
    return login(app, name, password)


def staff_client(app, role: str, password: str, prefix: str = "st") -> Tuple[TestClient, str]:
    """A new account with ``role`` and a client of ``app`` logged in as it that sends
    the CSRF header with every request; (client, username)."""
    name = f"{prefix}{role[:3]}{next(_names):03d}"
    accounts.create_operator(app.state.settings.db_url, name, password, role=role)
    client, headers = login(app, name, password)
    client.headers.update(headers)
    return client, name


@contextlib.contextmanager
def live_staff(base_url: str, db_url: str, role: str, password: str, prefix: str = "st") -> Iterator[httpx.Client]:
    """The same against a served gateway (``live_server``): an httpx client, closed after."""
    name = f"{prefix}{role[:3]}{next(_names):03d}"
    accounts.create_operator(db_url, name, password, role=role)
    with httpx.Client(base_url=base_url, timeout=60) as client:
        reply = client.post(LOGIN_PATH, json={"username": name, "password": password})
        assert reply.status_code == 200, reply.text
        client.headers["X-CSRF-Token"] = reply.json()["csrf_token"]
        yield client
