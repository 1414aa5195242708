"""Throw-away PostgreSQL, Redis and nginx instances on this machine, from Debian's
packages (``postgresql``, ``redis-server``, ``nginx``): for the test suite, the
scale bench and ``banshi run --replicas`` without configured servers.

Each instance lives in its own folder (data, sockets, logs), listens on 127.0.0.1
on a free port, runs in the foreground as a child process (so it can be killed and
restarted by fault tests) and is removed by :meth:`stop`. PostgreSQL refuses to run
as root: as root, the cluster belongs to the ``postgres`` system user.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
PG_USER = "banshi"
PG_DATABASE = "banshi"
PG_SYSTEM_USER = "postgres"
# Throw-away clusters need not survive a power cut (no fsync: faster tests), but they
# must survive a killed server: commits are still written before they return.
PG_FAST = ("fsync=off", "full_page_writes=off")


class InstanceError(RuntimeError):
    """A server could not be started (missing package, failed start)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_block(size: int, low: int = 20000, high: int = 60000) -> int:
    """A first port ``p`` such that ``p … p+size-1`` are free now."""
    import random

    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(low, high - size)
        ports = []
        try:
            for port in range(base, base + size):
                sock = socket.socket()
                ports.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in ports:
                sock.close()
    raise InstanceError(f"no block of {size} free ports")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_port(port: int, proc: subprocess.Popen, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InstanceError(f"exited with {proc.returncode} before listening on {port}")
        if port_open(port):
            return
        time.sleep(0.1)
    raise InstanceError(f"not listening on {port} after {timeout:.0f} s")


def stop_child(proc: Optional[subprocess.Popen], sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def postgres_bindir() -> Path:
    """The newest installed PostgreSQL's programs (Debian: /usr/lib/postgresql/<v>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise InstanceError("PostgreSQL is not installed (apt-get install postgresql)")


def available(program: str) -> bool:
    if program == "postgres":
        try:
            postgres_bindir()
            return True
        except InstanceError:
            return False
    return shutil.which(program) is not None or Path(f"/usr/sbin/{program}").exists()


class PostgresInstance:
    """A PostgreSQL cluster in ``base`` (``url`` once started)."""

    def __init__(self, base: Path, port: Optional[int] = None, max_connections: int = 300):
        self.base = Path(base)
        self.port = port or free_port()
        self.max_connections = max_connections
        self.proc: Optional[subprocess.Popen] = None
        self._bin = postgres_bindir()
        self._user = self._system_user()

    @staticmethod
    def _system_user() -> Optional[str]:
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError as exc:
            raise InstanceError("running as root needs the 'postgres' system user") from exc
        return PG_SYSTEM_USER

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{PG_DATABASE}"

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    def _run(self, args: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), user=self._user, check=True, capture_output=True, text=True, **kwargs)

    def _own(self) -> None:
        if self._user is None:
            return
        # The postgres user must reach its folder: open the temporary folders above
        # it for traversal (x only; nothing outside the system's temporary folder).
        tmp = Path(tempfile.gettempdir()).resolve()
        for parent in self.base.resolve().parents:
            if parent == tmp or tmp not in parent.parents:
                break
            os.chmod(parent, parent.stat().st_mode | 0o011)
        record = pwd.getpwnam(self._user)
        for path in [self.base, *self.base.rglob("*")]:
            os.chown(path, record.pw_uid, record.pw_gid)

    def start(self) -> str:
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "socket").mkdir(exist_ok=True)
        self._own()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run([
                str(self._bin / "initdb"), "-D", str(self.data_dir), "-U", PG_USER,
                "--auth=trust", "-E", "UTF8", "--no-locale",
            ])
            fresh = True
        else:
            fresh = False
        self._launch()
        if fresh:
            self._run([
                str(self._bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, PG_DATABASE,
            ])
        logger.info("instances.postgres.started port=%d", self.port)
        return self.url

    def _launch(self, attempts: int = 60) -> None:
        """Start the postmaster; after a crash its old children may hold the port or
        the shared memory for a moment: try again."""
        for attempt in range(attempts):
            try:
                self._launch_once()
                return
            except InstanceError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.5)

    def _launch_once(self) -> None:
        args: List[str] = [
            str(self._bin / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
            "-k", str(self.base / "socket"), "-c", "listen_addresses=127.0.0.1",
            "-c", f"max_connections={self.max_connections}",
        ]
        for option in PG_FAST:
            args += ["-c", option]
        log = open(self.base / "postgres.log", "ab")
        self.proc = subprocess.Popen(args, user=self._user, stdout=log, stderr=log, start_new_session=True)
        log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                tail = (self.base / "postgres.log").read_text(errors="replace").strip().splitlines()[-3:]
                raise InstanceError(f"postgres exited with {self.proc.returncode}: {' | '.join(tail)}")
            ready = subprocess.run(
                [str(self._bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)], check=False
            )
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        raise InstanceError(f"postgres not ready after {START_TIMEOUT_S:.0f} s")

    def create_database(self, name: str) -> str:
        """A new empty database on this server; its URL."""
        self._run([str(self._bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, name])
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{name}"

    def kill(self) -> None:
        """Stop the server at once (SIGQUIT: immediate shutdown, like a crash)."""
        stop_child(self.proc, signal.SIGQUIT)
        self.proc = None

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop the server (fast shutdown: connections are cut) and start it again."""
        stop_child(self.proc, signal.SIGINT)
        self.proc = None
        time.sleep(down_seconds)
        self._launch()

    def stop(self, remove: bool = True) -> None:
        stop_child(self.proc, signal.SIGINT)
        self.proc = None
        if remove:
            shutil.rmtree(self.base, ignore_errors=True)


class RedisInstance:
    """A Redis server without persistence (``url`` once started)."""

    def __init__(self, base: Path, port: Optional[int] = None):
        self.base = Path(base)
        self.port = port or free_port()
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        program = shutil.which("redis-server")
        if program is None:
            raise InstanceError("Redis is not installed (apt-get install redis-server)")
        self.base.mkdir(parents=True, exist_ok=True)
        log = open(self.base / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [program, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.base), "--daemonize", "no"],
            stdout=log, stderr=log, start_new_session=True,
        )
        log.close()
        wait_port(self.port, self.proc)
        logger.info("instances.redis.started port=%d", self.port)
        return self.url

    def stop(self, remove: bool = True) -> None:
        stop_child(self.proc)
        self.proc = None
        if remove:
            shutil.rmtree(self.base, ignore_errors=True)


def nginx_program() -> str:
    program = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if program is None:
        raise InstanceError("nginx is not installed (apt-get install nginx)")
    return program


class NginxInstance:
    """nginx with a configuration text (``{prefix}`` is replaced by its folder)."""

    def __init__(self, base: Path, config: str):
        self.base = Path(base)
        self.config = config
        self.proc: Optional[subprocess.Popen] = None

    def start(self, port: int) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        for sub in ("logs", "temp"):
            (self.base / sub).mkdir(exist_ok=True)
        conf = self.base / "nginx.conf"
        conf.write_text(self.config.replace("{prefix}", str(self.base)), encoding="utf-8")
        program = nginx_program()
        check = subprocess.run(
            [program, "-t", "-p", str(self.base), "-c", str(conf), "-e", str(self.base / "logs" / "error.log")],
            capture_output=True, text=True,
        )
        if check.returncode != 0:
            raise InstanceError(f"nginx configuration rejected: {check.stderr.strip()}")
        log = open(self.base / "logs" / "nginx.out", "ab")
        self.proc = subprocess.Popen(
            [program, "-p", str(self.base), "-c", str(conf), "-e", str(self.base / "logs" / "error.log"),
             "-g", "daemon off;"],
            stdout=log, stderr=log, start_new_session=True,
        )
        log.close()
        wait_port(port, self.proc)
        logger.info("instances.nginx.started port=%d", port)

    def stop(self, remove: bool = True) -> None:
        stop_child(self.proc, signal.SIGQUIT)
        self.proc = None
        if remove:
            shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def throwaway_postgres_redis(prefix: str) -> Iterator[Tuple[Path, "PostgresInstance", "RedisInstance"]]:
    """A temporary directory with a PostgreSQL and a Redis server running in it (benches)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(work, 0o711)  # the postgres user must reach its data directory
    postgres, redis = PostgresInstance(work / "postgres"), RedisInstance(work / "redis")
    postgres.start()
    try:
        redis.start()
        try:
            yield work, postgres, redis
        finally:
            redis.stop()
    finally:
        postgres.stop()
