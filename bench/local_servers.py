"""What the multi-process benches share: the model to run and local PostgreSQL and
Redis servers (Debian's, as the tests start them) in a fresh work folder."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, Tuple

from assistant.cli.instances import PostgresInstance, RedisInstance


def bench_model(path: Optional[Path]) -> Path:
    """``path``, or the newest trained model (``models/``)."""
    from assistant.config.settings import get_settings
    from assistant.dialogue.runtime import newest_model

    return path or newest_model(get_settings())


@contextmanager
def local_servers(prefix: str) -> Iterator[Tuple[Path, PostgresInstance, RedisInstance]]:
    """A work folder with PostgreSQL and Redis started in it; both stopped at the end."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(work, 0o711)  # the servers may run as another user (tests/conftest.py)
    postgres, redis = PostgresInstance(work / "postgres"), RedisInstance(work / "redis")
    postgres.start()
    redis.start()
    try:
        yield work, postgres, redis
    finally:
        redis.stop()
        postgres.stop()
