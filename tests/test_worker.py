"""Matcher workers pick up jobs whoever enqueued them, and drop jobs nobody waits for."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any, cast

from arq.connections import ArqRedis
from arq.utils import args_to_string

from matcher import features
from matcher.imaging import Limits
from matcher.worker import finish
from shared.jobs import (
    AddImage,
    JobName,
    Reply,
    Search,
    deserialize,
    reply_key,
    serialize,
    shard_queue,
    unpack,
)
from tests.conftest import Shards
from tests.images import photo_of


async def _search(redis: ArqRedis, deadline: float) -> str:
    job_id = uuid.uuid4().hex
    f = features.photo_features(photo_of("pub.home.0")[0], Limits(10**7, 10**7))
    await redis.enqueue_job(JobName.SEARCH, Search([1], features.encode(f), 0,
                                                   deadline).to_wire(),
                            _job_id=job_id, _queue_name=shard_queue(0))
    return job_id


async def test_a_job_enqueued_without_ringing_the_doorbell_still_runs(
        redis: ArqRedis, shards: Shards) -> None:
    job_id = await _search(redis, time.time() + 10)
    popped = await cast(Any, redis.blpop([reply_key(job_id)], timeout=2))
    assert popped is not None
    reply = Reply.from_wire(unpack(popped[1]))
    assert reply.ok and reply.result["matches"] == []  # ran: the channel has no images


async def test_a_job_past_its_deadline_is_dropped_unrun(redis: ArqRedis, shards: Shards) -> None:
    job_id = await _search(redis, time.time() - 1)
    # a job that ran pushes its reply within milliseconds; this one never does
    assert await cast(Any, redis.blpop([reply_key(job_id)], timeout=1.5)) is None


async def test_a_task_that_goes_on_after_its_cancel_is_cancelled_again() -> None:
    """As a Redis call that loses its cancellation does: the replica's stop still ends it."""
    cancels = 0

    async def beat() -> None:
        nonlocal cancels
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancels += 1
                if cancels == 1:
                    continue  # the first cancellation is lost
                raise

    task = asyncio.create_task(beat())
    await asyncio.sleep(0)
    assert await finish([task], "the beat", grace=3)
    assert task.cancelled() and cancels == 2


async def test_a_task_that_never_ends_is_given_up_after_the_grace() -> None:
    released = asyncio.Event()

    async def stubborn() -> None:
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.1)

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    started = time.monotonic()
    assert not await finish([task], "the stubborn task", grace=1)
    assert time.monotonic() - started < 3
    released.set()
    await task


def test_a_job_arguments_text_names_its_fields_not_its_image() -> None:
    # arq formats every job's arguments when it starts the job, logged or not
    job = AddImage(7, "poster", "{}", 0, b"\xff\xd8" * 2**20, time.time() + 5, "r1")
    message = {"t": 1, "f": JobName.ADD_IMAGE, "a": [job.to_wire()], "k": {}, "et": 0}
    args = deserialize(serialize(message))["a"]
    assert AddImage.from_wire(args[0]) == job
    assert args_to_string(args, {}) == f"<{', '.join(job.to_wire())}>"
