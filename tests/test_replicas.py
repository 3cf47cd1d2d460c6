"""Replicas restart from snapshots, refuse a shard map they were not configured for, follow
a reshard, and the gateway sheds load it cannot serve in time."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from arq.connections import ArqRedis

from gateway.app import create_app
from matcher.worker import serve
from shared.cluster import ShardMapMismatch, reshard
from shared.codes import ResultCode
from shared.settings import Settings
from tests.api import Api, User, burst, own_gateway
from tests.conftest import Shards
from tests.images import photo_of, target
from tests.test_cli import cloudreco

NAMES = {"garden": "pub.building.0", "home": "pub.home.0", "fruits": "pub.fruits.0",
         "board": "pub.board.0"}


async def _catalog(api: Api, identifiers: list[str]) -> User:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    for identifier in identifiers:
        added = await api.add(alice, "posters", identifier, target(NAMES[identifier]))
        assert added["returncode"] == ResultCode.SUCCESS
    return alice


async def _found(api: Api, alice: User, identifier: str) -> str | None:
    answer = await api.find(alice, photo_of(NAMES[identifier], seed=5)[0], "posters")
    assert answer["returncode"] == ResultCode.SUCCESS
    found: str | None = answer.get("identifier")
    return found


def _loaded_from(caplog: pytest.LogCaptureFixture) -> list[str]:
    """How each replica that started filled its indexes, by its start-up line."""
    return [r.getMessage().split(" channels from ")[1].rsplit(" in ", 1)[0]
            for r in caplog.records
            if r.name == "matcher.worker" and " channels from " in r.getMessage()]


@pytest.mark.parametrize("shard_count", [1])
async def test_a_restarted_replica_loads_its_snapshot_and_the_changes_after_it(
        api: Api, shards: Shards, caplog: pytest.LogCaptureFixture) -> None:
    alice = await _catalog(api, ["garden", "home"])
    await shards.stop(0)  # saves a snapshot on the way out
    fields = {**alice.credentials, "channel": "posters", "identifier": "home"}
    assert (await api.post("RemoveImage", fields))["returncode"] == ResultCode.SUCCESS
    with caplog.at_level(logging.INFO, logger="matcher.worker"):
        await shards.start(0)
    assert _loaded_from(caplog) == ["snapshot at change 2"]
    assert await _found(api, alice, "garden") == "garden"
    assert await _found(api, alice, "home") is None  # removed after the snapshot


@pytest.mark.parametrize("shard_count", [1])
async def test_a_damaged_snapshot_falls_back_to_a_full_rebuild(
        api: Api, shards: Shards, settings: Settings,
        caplog: pytest.LogCaptureFixture) -> None:
    alice = await _catalog(api, ["garden", "home"])
    await shards.stop(0)
    [graph] = settings.snapshots.glob("shard-0/*/c*.hnsw")
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    with caplog.at_level(logging.INFO, logger="matcher"):
        await shards.start(0)
    assert _loaded_from(caplog) == ["rebuild from Postgres"]
    assert any("damaged" in r.getMessage() for r in caplog.records)
    for identifier in ("garden", "home"):
        assert await _found(api, alice, identifier) == identifier


async def test_processes_configured_for_another_shard_count_refuse_to_start(
        api: Api, shards: Shards, settings: Settings, db: asyncpg.Pool,
        redis: ArqRedis) -> None:
    other = settings.model_copy(update={"shards": settings.shards + 1})
    with pytest.raises(ShardMapMismatch, match=f"CLOUDRECO_SHARDS={settings.shards}"):
        await serve(other, 0, asyncio.Event())
    gateway = TestServer(create_app(other, db=db, redis=redis))
    with pytest.raises(ShardMapMismatch):
        await gateway.start_server()
    await gateway.close()


async def test_reshard_moves_every_image_to_one_shard_of_the_new_count(
        api: Api, shards: Shards, settings: Settings, db: asyncpg.Pool, redis: ArqRedis,
        database_url: str) -> None:
    alice = await _catalog(api, list(NAMES))
    await shards.stop_all()
    running = cloudreco("reshard", "3", database_url=database_url)
    assert running.returncode == 0, running.stderr
    assert "on 3 shards" in running.stdout
    assert (await db.fetchval("SELECT shards FROM cluster")) == 3
    three = settings.model_copy(update={"shards": 3})
    replicas = Shards(three, redis)
    for shard in range(3):
        await replicas.start(shard)
    try:
        async with own_gateway(three, db, redis) as after:
            for identifier in NAMES:
                assert await _found(after, alice, identifier) == identifier
            listed = await after.post("GetImages", {**alice.credentials, "channel": "posters"})
        rows = await db.fetch("SELECT identifier, shard FROM images ORDER BY identifier")
        assert [r["identifier"] for r in rows] == sorted(NAMES)  # none lost, none doubled
        assert all(0 <= r["shard"] < 3 for r in rows)
        assert listed["totalcount"] == len(NAMES)
    finally:
        await replicas.stop_all()


async def test_reshard_refuses_zero_shards(database_url: str, db: asyncpg.Pool) -> None:
    refused = cloudreco("reshard", "0", database_url=database_url)
    assert refused.returncode != 0 and "at least one shard" in refused.stderr
    with pytest.raises(ValueError):
        await reshard(db, 0)


async def _busy_or_found(api: Api, alice: User, copies: int) -> list[int]:
    answers = await asyncio.gather(*(api.find(alice, photo_of(NAMES["garden"], seed=s)[0],
                                              "posters") for s in range(copies)))
    for a in answers:
        assert a["returncode"] != ResultCode.SUCCESS or a["identifier"] == "garden"
    return sorted(a["returncode"] for a in answers)


@pytest.mark.parametrize("shard_count", [1])
async def test_findimage_past_the_inflight_bound_answers_busy_at_once(
        settings: Settings, db: asyncpg.Pool, redis: ArqRedis, shards: Shards) -> None:
    tight = settings.model_copy(update={"max_inflight": 1})
    async with own_gateway(tight, db, redis) as api:
        alice = await _catalog(api, ["garden"])
        codes = await _busy_or_found(api, alice, 6)
    assert ResultCode.SUCCESS in codes and ResultCode.SYSTEM_BUSY in codes
    assert set(codes) == {ResultCode.SUCCESS, ResultCode.SYSTEM_BUSY}


@pytest.mark.parametrize("shard_count", [1])
async def test_a_user_past_the_findimage_rate_limit_is_told_to_slow_down(
        settings: Settings, db: asyncpg.Pool, redis: ArqRedis, shards: Shards) -> None:
    limited = settings.model_copy(update={"find_rate_limit": 2})
    async with own_gateway(limited, db, redis) as api:
        alice = await _catalog(api, ["garden"])
        codes = await burst([api.find(alice, photo_of(NAMES["garden"], seed=s)[0], "posters")
                             for s in range(8)], limit=2)
    assert 0 in codes and set(codes) <= {ResultCode.SUCCESS, ResultCode.RATE_LIMITED}


async def test_a_replica_waiting_for_postgres_stops_at_once_when_told(
        settings: Settings) -> None:
    unreachable = settings.model_copy(
        update={"database_url": "postgresql://nobody@127.0.0.1:1/nothing"})
    stop = asyncio.Event()
    replica = asyncio.create_task(serve(unreachable, 0, stop))
    await asyncio.sleep(0.5)
    assert not replica.done()  # retrying with backoff, not crashed
    stop.set()
    await asyncio.wait_for(replica, 2.0)


@pytest.mark.parametrize("shard_count", [1])
async def test_two_adds_of_one_identifier_at_once_on_two_replicas_store_one(
        api: Api, shards: Shards, db: asyncpg.Pool) -> None:
    await shards.start(0)  # a second replica: the two adds run at the same time
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    answers = await asyncio.gather(*(api.add(alice, "posters", "garden", target(name))
                                     for name in (NAMES["garden"], NAMES["home"])))
    assert sorted(a["returncode"] for a in answers) == [0, ResultCode.IDENTIFIER_TAKEN]
    assert await db.fetchval("SELECT count(*) FROM images") == 1
    assert await db.fetchval("SELECT image_count FROM channels") == 1
    winner = NAMES["garden"] if answers[0]["returncode"] == 0 else NAMES["home"]
    found = await api.find(alice, photo_of(winner, seed=5)[0], "posters")
    assert found["identifier"] == "garden"
