"""Serve an ASGI app with uvicorn in a background thread (the WeChat simulator's
fake API, benches and tests)."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator, Optional


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_in_thread(app, port: Optional[int] = None, start_timeout: float = 60,
                    host: str = "127.0.0.1") -> Iterator[str]:
    """An ASGI app served by real uvicorn in a thread (lifespan included); yields its URL."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=host, port=port, ws="wsproto", log_level="warning", timeout_graceful_shutdown=3,
            # The app reads X-Forwarded-For itself, from BANSHI_TRUSTED_PROXIES only.
            proxy_headers=False,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"server on port {port} did not start")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
