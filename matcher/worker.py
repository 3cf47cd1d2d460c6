"""Running a matcher shard: arq workers for the shard's queue and the shared extract queue."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import cv2
from arq.connections import RedisSettings
from arq.typing import WorkerCoroutine
from arq.worker import Worker, func
from threadpoolctl import threadpool_limits

from matcher.jobs import Matcher
from matcher.memory import use_one_heap
from shared.db import create_pool
from shared.jobs import (
    EXTRACT_QUEUE,
    HEALTH_INTERVAL,
    JobName,
    Reply,
    deserialize,
    doorbell_key,
    health_key,
    pack,
    reply_key,
    serialize,
    shard_queue,
)
from shared.settings import Settings

log = logging.getLogger(__name__)
STOP_GRACE = 5.0  # seconds running jobs get to finish when the matcher stops


Job = Callable[[dict[str, Any], dict[str, Any]], Awaitable[Any]]
# arq's own pause between queue looks, once the doorbell has rung or timed out.
LOOP_PAUSE = 0.001


class PromptWorker(Worker):
    """An arq worker that sleeps on its queue's doorbell between looks at the queue.

    arq finds jobs by polling a sorted set on a timer: a short timer costs CPU on every idle
    worker and a long one adds its length to every answer. This worker looks at the queue,
    then blocks on the queue's doorbell list (which the gateway pushes to after each enqueue)
    for at most ``idle_wait`` seconds. A ring that arrives while it looks stays in the list,
    so no job waits for the timeout; jobs enqueued without a ring are found within it.
    """

    def __init__(self, *args: Any, idle_wait: float, **kwargs: Any) -> None:
        super().__init__(*args, poll_delay=LOOP_PAUSE, **kwargs)
        self.idle_wait = idle_wait
        self.doorbell = doorbell_key(self.queue_name)

    async def _poll_iteration(self) -> None:
        await super()._poll_iteration()
        if not self.burst:  # draining: arq's loop ends once the queue is empty
            # Redis 6+ takes a fractional timeout; redis-py's hints say int.
            await cast(Awaitable[Any], self.pool.blpop([self.doorbell],
                                                       timeout=cast(int, self.idle_wait)))


def replying(job: Job, reply_ttl: float) -> WorkerCoroutine:
    """Wrap a job so that it pushes its reply (or its failure) to the job's reply list."""

    async def run(ctx: dict[str, Any], payload: dict[str, Any]) -> None:
        try:
            reply = Reply(True, await job(ctx, payload))
        except Exception as e:  # the gateway answers 20015; the cause is logged here
            log.exception("job %s failed", ctx.get("job_id"))
            reply = Reply(False, error=repr(e))
        key = reply_key(ctx["job_id"])
        async with ctx["redis"].pipeline(transaction=True) as pipe:
            pipe.rpush(key, pack(reply.to_wire()))
            pipe.pexpire(key, int(reply_ttl * 1000))
            await pipe.execute()

    return cast(WorkerCoroutine, run)


def build_workers(settings: Settings, matcher: Matcher) -> list[PromptWorker]:
    """The shard's own worker and one for the shared extract queue, both serving ``matcher``."""
    assert settings.redis_url is not None
    common = {
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        "idle_wait": settings.poll_delay,
        "max_jobs": settings.matcher_jobs,
        "keep_result": 0,  # results travel on reply lists
        "max_tries": 1,
        "handle_signals": False,
        "health_check_interval": HEALTH_INTERVAL,
    }
    # A reply the gateway gave up on expires; it only has to outlive the gateway's wait.
    ttl = settings.job_timeout * 2 + 10

    shard = PromptWorker(
        functions=[
            func(replying(matcher.add_image, ttl), name=JobName.ADD_IMAGE),
            func(replying(matcher.remove_image, ttl), name=JobName.REMOVE_IMAGE),
            func(replying(matcher.search, ttl), name=JobName.SEARCH),
        ],
        queue_name=shard_queue(matcher.shard),
        **common,  # type: ignore[arg-type]
    )
    extract = PromptWorker(
        functions=[func(replying(matcher.extract_query, ttl), name=JobName.EXTRACT_QUERY)],
        queue_name=EXTRACT_QUEUE,
        health_check_key=health_key(EXTRACT_QUEUE, matcher.shard),
        **common,  # type: ignore[arg-type]
    )
    return [shard, extract]


async def drain(worker: Worker, grace: float = STOP_GRACE) -> None:
    """Finish the queued and running jobs (up to ``grace`` seconds), then close.

    Burst mode makes arq's poll loop end by itself once the queue is empty; cancelling that
    loop instead (as arq's ``close`` does) can cut a Redis pipeline in half and cancels
    running jobs.
    """
    worker.burst = True
    if worker.main_task is not None:
        done, _ = await asyncio.wait([worker.main_task], timeout=grace)
        if not done:
            worker.main_task.cancel()
    await worker.close()


async def serve(settings: Settings, shard: int, stop: asyncio.Event) -> None:
    """Load shard ``shard`` from Postgres, then serve jobs until ``stop`` is set."""
    assert settings.database_url is not None
    # numpy's OpenBLAS threads spin after each product: with a thread pool and two matcher
    # processes on two cores they took half the CPU (FindImage p50 160 -> 93 ms without them).
    threadpool_limits(1)
    use_one_heap()
    cv2.setNumThreads(settings.query_threads)
    pool = await create_pool(settings.database_url, max_size=4)
    executor = ThreadPoolExecutor(settings.matcher_threads, thread_name_prefix=f"shard{shard}")
    try:
        matcher = Matcher(settings, shard, pool, executor)
        await matcher.load()
        workers = build_workers(settings, matcher)
        tasks = [asyncio.create_task(w.async_run()) for w in workers]
        log.info("shard %d of %d serving", shard, settings.shards)
        await stop.wait()
        await asyncio.gather(*(drain(w) for w in workers))
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        await pool.close()


def main(settings: Settings, shard: int) -> None:
    """Process entry point: serve until SIGINT or SIGTERM."""

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, shard, stop)

    asyncio.run(run())
