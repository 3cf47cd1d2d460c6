"""Matcher workers pick up jobs whoever enqueued them."""

from __future__ import annotations

import uuid
from typing import Any, cast

from arq.connections import ArqRedis

from shared.jobs import JobName, RemoveImage, Reply, reply_key, shard_queue, unpack
from tests.conftest import Shards


async def test_a_job_enqueued_without_ringing_the_doorbell_still_runs(
        redis: ArqRedis, shards: Shards) -> None:
    job_id = uuid.uuid4().hex
    await redis.enqueue_job(JobName.REMOVE_IMAGE, RemoveImage(1, 1).to_wire(),
                            _job_id=job_id, _queue_name=shard_queue(0))
    popped = await cast(Any, redis.blpop([reply_key(job_id)], timeout=2))
    assert popped is not None
    reply = Reply.from_wire(unpack(popped[1]))
    assert reply.ok and reply.result is False  # ran: there was no such image to remove
