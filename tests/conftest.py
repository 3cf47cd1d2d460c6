"""Real servers for the tests: Postgres and Redis started for the session (or the ones
``CLOUDRECO_DATABASE_URL`` / ``CLOUDRECO_REDIS_URL`` name), matcher shards as real arq workers,
and the gateway as the real aiohttp app on a real socket."""

from __future__ import annotations

import asyncio
import io
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from arq.connections import ArqRedis

from cloudreco.embedded import start_postgres, start_redis
from gateway.app import create_app
from matcher.worker import serve
from shared.db import create_pool, migrate
from shared.jobs import replicas_key
from shared.queue import connect
from shared.settings import Settings
from tests.api import Api

SHARDS = 2


def _server(variable: str, start: Callable[[], tuple[str, Callable[[], None]]]
            ) -> Iterator[str]:
    """The server ``variable`` names, or one ``start`` runs for the session."""
    configured = os.environ.get(variable)
    if configured:
        yield configured
        return
    url, stop = start()
    yield url
    stop()


@pytest.fixture(scope="session")
def server_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Postgres server: the configured one, or an embedded one for this session."""
    yield from _server("CLOUDRECO_DATABASE_URL",
                       lambda: start_postgres(tmp_path_factory.mktemp("pg") / "data"))


@pytest.fixture(scope="session")
def database_url(server_dsn: str) -> Iterator[str]:
    """A database of its own for this session, migrated; dropped at the end."""
    name = f"cloudreco_test_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(server_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = _with_database(server_dsn, name)
    asyncio.run(migrate(url))
    yield url
    asyncio.run(admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


def _with_database(dsn: str, name: str) -> str:
    head, sep, query = dsn.partition("?")
    base = head.rsplit("/", 1)[0] if head.count("/") > 2 else head
    return f"{base}/{name}{sep}{query}"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis server: the configured one, or an embedded one for this session."""
    yield from _server("CLOUDRECO_REDIS_URL",
                       lambda: start_redis(tmp_path_factory.mktemp("redis")))


@pytest.fixture
def shard_count() -> int:
    """Matcher shards of a test's stack; parametrize ``shard_count`` to change it."""
    return SHARDS


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path, shard_count: int) -> Settings:
    return Settings(database_url=database_url, redis_url=redis_url, data_dir=tmp_path,
                    shards=shard_count, job_timeout=6.0, matcher_threads=2,
                    # tests send requests at once; the overload guard has its own test
                    max_inflight=16, matcher_jobs=4,
                    # AddImage's extraction at the searches' priority: on a host busy with
                    # other work a lower one can hold adds past the 6 s deadline; the
                    # priority itself is tested in test_extractor.py
                    add_nice=0, max_image_bytes=2 * 1024 * 1024)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    assert settings.database_url is not None
    pool = await create_pool(settings.database_url)
    await pool.execute("TRUNCATE users, channels, images, originals, match_counts, cluster,"
                       " shard_heads, shard_changes RESTART IDENTITY CASCADE")
    yield pool
    await pool.close()


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[ArqRedis]:
    assert settings.redis_url is not None
    pool = await connect(settings.redis_url)
    await pool.flushdb()
    yield pool
    await pool.aclose()


STOP_WITHIN = 30.0


def _task_stacks() -> str:
    out = io.StringIO()
    for task in asyncio.all_tasks():
        task.print_stack(file=out)
    return out.getvalue()


class Shards:
    """The matcher replicas of a test, each a real ``serve`` task that can be stopped and
    started again (a restart loads the shard's snapshot, or rebuilds it from Postgres)."""

    def __init__(self, settings: Settings, redis: ArqRedis) -> None:
        self.settings = settings
        self.redis = redis
        self.running: dict[int, list[tuple[asyncio.Task[None], asyncio.Event]]] = {}

    async def live(self, shard: int) -> int:
        """Live replicas of ``shard``, by the set the gateway reads."""
        count: int = await self.redis.zcount(replicas_key(shard), time.time() * 1000, "+inf")
        return count

    async def start(self, shard: int, settings: Settings | None = None) -> None:
        """Start one more replica of ``shard`` and wait until it is live."""
        before = await self.live(shard)
        stop = asyncio.Event()
        task = asyncio.create_task(serve(settings or self.settings, shard, stop))
        self.running.setdefault(shard, []).append((task, stop))
        for _ in range(1000):
            if await self.live(shard) > before:
                return
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        raise AssertionError(f"a replica of shard {shard} did not start")

    async def stop(self, shard: int) -> None:
        """Stop every replica of ``shard``; a replica that does not end within STOP_WITHIN
        fails the test with the stacks of every task still running."""
        for task, stop in self.running.pop(shard, []):
            stop.set()
            done, _ = await asyncio.wait([task], timeout=STOP_WITHIN)
            if not done:
                raise AssertionError(f"a replica of shard {shard} did not stop in "
                                     f"{STOP_WITHIN:.0f} s:\n{_task_stacks()}")
            task.result()

    async def stop_all(self) -> None:
        for shard in list(self.running):
            await self.stop(shard)


@pytest.fixture
async def shards(settings: Settings, redis: ArqRedis, db: asyncpg.Pool) -> AsyncIterator[Shards]:
    running = Shards(settings, redis)
    for shard in range(settings.shards):
        await running.start(shard)
    yield running
    await running.stop_all()


@pytest.fixture
async def api(settings: Settings, db: asyncpg.Pool, redis: ArqRedis, shards: Shards
              ) -> AsyncIterator[Api]:
    """The gateway on a real socket, with every shard running."""
    client = TestClient(TestServer(create_app(settings, db=db, redis=redis)))
    await client.start_server()
    yield Api(client, db)
    await client.close()
