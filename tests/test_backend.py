"""The gateway's side of the job contract, against a real Redis and no matcher."""

from __future__ import annotations

import asyncio
import time

import pytest
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix

from gateway.backend import Backend
from gateway.replies import ApiError
from shared.codes import ResultCode
from shared.jobs import AddImage, add_queue, owner_key, replicas_key
from shared.settings import Settings


async def test_a_job_whose_replica_died_leaves_its_queue(redis: ArqRedis,
                                                         settings: Settings) -> None:
    """A replica killed mid-job never finishes it; arq would keep it queued (and counted in
    flight) for its 310 s in-progress lease."""
    await redis.zadd(replicas_key(0), {"live": time.time() * 1000 + 60_000})
    call = asyncio.create_task(Backend(redis, settings).add(
        AddImage(1, "poster", None, 0, b"jpeg", 0.0)))
    for _ in range(500):
        if queued := await redis.zrange(add_queue(0), 0, -1):
            break
        await asyncio.sleep(0.01)
    job_id = queued[0].decode()
    # what a replica does as it takes the job; then it dies without a word
    await redis.set(in_progress_key_prefix + job_id, b"1")
    await redis.set(owner_key(job_id), "0/killed")
    with pytest.raises(ApiError) as failed:
        await call
    assert failed.value.code == ResultCode.SYSTEM_BUSY
    assert await redis.zcard(add_queue(0)) == 0
    assert not await redis.exists(in_progress_key_prefix + job_id)
