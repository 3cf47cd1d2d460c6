"""Redis and Postgres going away and coming back, with nothing restarted by hand: the
stack answers 20015 meanwhile, /readyz says why, and FindImage answers 0 again soon after."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from cloudreco.embedded import EmbeddedPostgres, EmbeddedRedis
from gateway.app import create_app
from shared.codes import ResultCode
from shared.db import create_pool, migrate
from shared.queue import connect
from shared.settings import Settings
from tests.api import Api, User
from tests.conftest import Shards
from tests.images import photo_of, target

GARDEN = "pub.building.0"
RECOVERY = 15.0  # seconds after the server is back within which FindImage must answer 0


async def _stack(settings: Settings, db: asyncpg.Pool) -> AsyncIterator[tuple[Api, User]]:
    """Gateway and one replica per shard on ``settings``' servers, with a target added."""
    assert settings.redis_url is not None
    redis = await connect(settings.redis_url)
    shards = Shards(settings, redis)
    for shard in range(settings.shards):
        await shards.start(shard)
    client = TestClient(TestServer(create_app(settings, db=db, redis=redis)))
    await client.start_server()
    api = Api(client, db)
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    assert (await api.add(alice, "posters", "garden", target(GARDEN)))["returncode"] == 0
    try:
        yield api, alice
    finally:
        await client.close()
        await shards.stop_all()
        await redis.aclose()


async def _found_again(api: Api, alice: User, within: float) -> float:
    """Seconds until FindImage answers 0 with the target; fails after ``within``. Every
    answer meanwhile must be 20015, never another code or a wrong identifier."""
    started = time.monotonic()
    while True:
        answer = await api.find(alice, photo_of(GARDEN)[0], "posters")
        if answer["returncode"] == ResultCode.SUCCESS:
            assert answer["identifier"] == "garden"
            return time.monotonic() - started
        assert answer["returncode"] == ResultCode.SYSTEM_BUSY, answer
        assert time.monotonic() - started < within, "FindImage did not recover"
        await asyncio.sleep(0.25)


async def _ready(api: Api) -> tuple[int, dict[str, Any]]:
    resp = await api.client.get("/readyz")
    return resp.status, await resp.json()


async def _outage(api: Api, alice: User, stop: Callable[[], None],
                  start: Callable[[], None], reason: str) -> float:
    await _found_again(api, alice, 0.1)
    stop()
    status, body = await _ready(api)
    assert status == 503 and any(reason in r for r in body["reasons"]), body
    answer = await api.find(alice, photo_of(GARDEN)[0], "posters")
    assert answer["returncode"] == ResultCode.SYSTEM_BUSY
    await asyncio.sleep(1.0)
    start()
    recovered = await _found_again(api, alice, RECOVERY)
    assert (await _ready(api))[0] == 200
    return recovered


async def test_redis_restart_heals_without_restarting_anything(
        settings: Settings, db: asyncpg.Pool, tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    try:
        mine = settings.model_copy(update={"redis_url": server.url})
        async for api, alice in _stack(mine, db):
            def kill() -> None:
                assert server.proc is not None
                server.proc.kill()
                server.proc.wait()

            await _outage(api, alice, kill, server.start, "redis unreachable")
    finally:
        server.stop()


async def test_postgres_restart_heals_without_restarting_anything(
        settings: Settings, tmp_path: Path) -> None:
    postgres = EmbeddedPostgres(tmp_path / "pg" / "data")
    try:
        await migrate(postgres.uri)
        mine = settings.model_copy(update={"database_url": postgres.uri})
        db = await create_pool(postgres.uri)
        try:
            async for api, alice in _stack(mine, db):
                def kill() -> None:
                    pid = int((postgres.pgdata / "postmaster.pid").read_text().split()[0])
                    os.kill(pid, signal.SIGKILL)
                    while postgres.alive():
                        time.sleep(0.05)

                await _outage(api, alice, kill, postgres.start, "postgres unreachable")
        finally:
            await db.close()
    finally:
        postgres.stop()


@pytest.mark.parametrize("shard_count", [1])
async def test_every_replica_finds_an_image_the_moment_it_is_added(
        api: Api, shards: Shards) -> None:
    await shards.start(0)  # a second replica of the one shard
    assert await shards.live(0) == 2
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    for identifier, name in (("garden", GARDEN), ("home", "pub.home.0"),
                             ("fruits", "pub.fruits.0")):
        assert (await api.add(alice, "posters", identifier, target(name)))["returncode"] == 0
        # jobs go to whichever replica is free: several at once reach both
        answers = await asyncio.gather(*(api.find(alice, photo_of(name, seed=s)[0], "posters")
                                         for s in range(4)))
        assert [a.get("identifier") for a in answers] == [identifier] * 4
