"""``cloudreco run``: the whole stack on one machine, supervised.

Starts the embedded Postgres and Redis (unless URLs are configured), applies migrations and
checks the shard map, then runs ``gateways`` gateway processes on one port and ``replicas``
matcher processes per shard. Whatever dies (a child, the embedded Redis, the embedded
Postgres) is started again, with backoff, until SIGINT or SIGTERM stops them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cloudreco.embedded import EmbeddedPostgres, EmbeddedRedis
from shared.cluster import ShardMapMismatch, shard_map
from shared.db import create_pool, migrate
from shared.settings import Settings

log = logging.getLogger("cloudreco.stack")
STOP_GRACE = 20.0  # seconds a child gets to finish in-flight work (and snapshot) after SIGTERM
MAX_BACKOFF = 30.0  # seconds, the longest pause between restarts of something that keeps dying
STABLE = 30.0  # seconds of running after which a restart counts as the first again
TICK = 0.2  # seconds between looks at the supervised processes


# Matchers take every core they are given; on one machine the gateway (cheap, but what every
# answer, a refusal included, waits on) and the databases go first.
MATCHER_NICE = 5


def _die_with_parent() -> None:
    # Linux: the child gets SIGTERM if the supervisor itself dies, so no orphans are left.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _matcher_child() -> None:
    _die_with_parent()
    os.nice(MATCHER_NICE)


@dataclass
class Restarts:
    """When something that died may be started again: exponential backoff with jitter,
    from the start once it has run ``STABLE`` seconds."""

    attempt: int = 0
    started: float = 0.0
    due: float | None = None

    def started_now(self) -> None:
        self.started, self.due = time.monotonic(), None

    def died(self) -> float:
        """Schedule the next start; seconds until then."""
        if time.monotonic() - self.started > STABLE:
            self.attempt = 0
        delay = random.uniform(0.5, 1.0) * min(MAX_BACKOFF, 2.0**self.attempt)
        self.attempt += 1
        self.due = time.monotonic() + delay
        return delay

    def ready(self) -> bool:
        return self.due is not None and time.monotonic() >= self.due


@dataclass
class Child:
    name: str
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: Restarts = field(default_factory=Restarts)

    def start(self, env: dict[str, str]) -> None:
        setup = _matcher_child if "matcher" in self.args else _die_with_parent
        self.proc = subprocess.Popen(self.args, env=env, preexec_fn=setup)
        self.restarts.started_now()

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


@dataclass
class Service:
    """An embedded server the stack supervises: how to tell it runs and start it again."""

    name: str
    alive: Callable[[], bool]
    start: Callable[[], None]
    restarts: Restarts = field(default_factory=Restarts)


def _check_map(database_url: str, shards: int) -> None:
    async def check() -> None:
        pool = await create_pool(database_url, max_size=1)
        try:
            await shard_map(pool, shards)
        finally:
            await pool.close()

    asyncio.run(check())


def run(settings: Settings) -> None:
    """Run the stack in the foreground until SIGINT or SIGTERM."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    services: list[Service] = []
    with contextlib.ExitStack() as cleanup:
        database_url = settings.database_url
        if database_url is None:
            postgres = EmbeddedPostgres(settings.postgres_dir)
            cleanup.callback(postgres.stop)
            database_url = postgres.uri
            services.append(Service("postgres", postgres.alive, postgres.start))
        redis_url = settings.redis_url
        if redis_url is None:
            redis = EmbeddedRedis(settings.data_dir / "redis")
            redis.start()
            cleanup.callback(redis.stop)
            redis_url = redis.url
            services.append(Service("redis", redis.alive, redis.start))
        applied = asyncio.run(migrate(database_url))
        log.info("database ready (%d migrations applied now)", len(applied))
        try:
            _check_map(database_url, settings.shards)
        except ShardMapMismatch as e:
            sys.exit(f"cloudreco: {e}")
        # The gateways' request counters, summed by whichever of them a scrape reaches.
        metrics_dir = settings.data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        env = {**os.environ, "CLOUDRECO_DATABASE_URL": database_url,
               "CLOUDRECO_REDIS_URL": redis_url, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        me = [sys.executable, "-m", "cloudreco"]
        children = [Child(f"gateway-{g}", [*me, "gateway"])
                    for g in range(1, settings.gateways + 1)] + [
            Child(f"matcher-{s}.{r}", [*me, "matcher", "--shard", str(s)])
            for s in range(settings.shards) for r in range(settings.replicas)
        ]
        for child in children:
            child.start(env)
        print(f"cloudreco: serving http://{settings.host}:{settings.port} with "
              f"{settings.gateways} gateways and {settings.shards} shards x "
              f"{settings.replicas} replicas; data in "
              f"{settings.data_dir} (Ctrl-C stops)", flush=True)
        try:
            _supervise(children, services, env, lambda: stopping)
        finally:
            for child in children:
                child.stop()
            deadline = time.monotonic() + STOP_GRACE
            for child in children:
                child.wait(deadline - time.monotonic())
    print("cloudreco: stopped", flush=True)


def _supervise(children: list[Child], services: list[Service], env: dict[str, str],
               stopping: Callable[[], bool]) -> None:
    while not stopping():
        for service in services:
            if service.restarts.ready():
                try:
                    service.start()
                    service.restarts.started_now()
                    log.warning("%s started again", service.name)
                except Exception as e:  # keep supervising; retried with backoff
                    log.warning("%s did not start (%r); retrying in %.1f s", service.name, e,
                                service.restarts.died())
            elif service.restarts.due is None and not service.alive():
                log.warning("%s stopped; starting it again in %.1f s", service.name,
                            service.restarts.died())
        for child in children:
            assert child.proc is not None
            code = child.proc.poll()
            if code is None:
                continue
            if child.restarts.due is None:
                log.warning("%s exited with %s; restarting in %.1f s", child.name, code,
                            child.restarts.died())
            elif child.restarts.ready():
                child.start(env)
        time.sleep(TICK)
