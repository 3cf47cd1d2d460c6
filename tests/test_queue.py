"""The gateway's Redis client (``shared.queue.connect``)."""

from __future__ import annotations

import asyncio

from arq.connections import ArqRedis
from redis.asyncio.connection import AbstractConnection


async def test_the_pool_checks_connections_without_holding_its_lock(redis: ArqRedis) -> None:
    """A connection's check waits a turn of the event loop; under the pool's lock, every
    command of a busy gateway would queue behind all the others (FindImage's admission check
    among them, which must refuse at once)."""
    pool = redis.connection_pool
    check = pool.ensure_connection
    locked: list[bool] = []

    async def spy(connection: AbstractConnection) -> None:
        locked.append(pool._lock.locked())
        await check(connection)

    pool.ensure_connection = spy  # type: ignore[method-assign]
    await asyncio.gather(*(redis.ping() for _ in range(16)))
    assert locked == [False] * 16
