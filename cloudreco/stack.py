"""``cloudreco run``: the whole stack on one machine, supervised.

Starts the embedded Postgres and Redis (unless URLs are configured), applies migrations, then
runs the gateway and one process per matcher shard, restarting any that dies, until SIGINT or
SIGTERM stops them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from cloudreco.embedded import start_postgres, start_redis
from shared.db import migrate
from shared.settings import Settings

log = logging.getLogger("cloudreco.stack")
STOP_GRACE = 10.0  # seconds a child gets to finish in-flight work after SIGTERM
RESTART_BACKOFF = 1.0  # seconds between restarts of a child that keeps dying


def _die_with_parent() -> None:
    # Linux: the child gets SIGTERM if the supervisor itself dies, so no orphans are left.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    name: str
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started: float = field(default=0.0)

    def start(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(self.args, env=env, preexec_fn=_die_with_parent)
        self.started = time.monotonic()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def wait(self, timeout: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(max(0.0, timeout))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run(settings: Settings) -> None:
    """Run the stack in the foreground until SIGINT or SIGTERM."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with contextlib.ExitStack() as cleanup:
        database_url = settings.database_url
        if database_url is None:
            database_url, stop_pg = start_postgres(settings.postgres_dir)
            cleanup.callback(stop_pg)
        redis_url = settings.redis_url
        if redis_url is None:
            redis_url, stop_redis = start_redis(settings.data_dir / "redis")
            cleanup.callback(stop_redis)
        applied = asyncio.run(migrate(database_url))
        log.info("database ready (%d migrations applied now)", len(applied))
        env = {**os.environ, "CLOUDRECO_DATABASE_URL": database_url,
               "CLOUDRECO_REDIS_URL": redis_url}
        me = [sys.executable, "-m", "cloudreco"]
        children = [Child("gateway", [*me, "gateway"])] + [
            Child(f"matcher-{i}", [*me, "matcher", "--shard", str(i)])
            for i in range(settings.shards)
        ]
        for child in children:
            child.start(env)
        print(f"cloudreco: serving http://{settings.host}:{settings.port} with "
              f"{settings.shards} matcher shards; data in {settings.data_dir} "
              f"(Ctrl-C stops)", flush=True)
        try:
            _supervise(children, env, lambda: stopping)
        finally:
            for child in children:
                child.stop()
            deadline = time.monotonic() + STOP_GRACE
            for child in children:
                child.wait(deadline - time.monotonic())
    print("cloudreco: stopped", flush=True)


def _supervise(children: list[Child], env: dict[str, str], stopping: object) -> None:
    assert callable(stopping)
    while not stopping():
        for child in children:
            assert child.proc is not None
            code = child.proc.poll()
            if code is not None and time.monotonic() - child.started > RESTART_BACKOFF:
                log.warning("%s exited with %s; restarting", child.name, code)
                child.start(env)
        time.sleep(0.2)
