"""Running a matcher shard: arq workers for the shard's queue and the shared extract queue."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

import cv2
from arq.connections import RedisSettings
from arq.worker import Worker, func

from matcher.jobs import Matcher
from shared.db import create_pool
from shared.jobs import (
    EXTRACT_QUEUE,
    HEALTH_INTERVAL,
    JobName,
    deserialize,
    health_key,
    serialize,
    shard_queue,
)
from shared.settings import Settings

log = logging.getLogger(__name__)


def build_workers(settings: Settings, matcher: Matcher) -> list[Worker]:
    """The shard's own worker and one for the shared extract queue, both serving ``matcher``."""
    assert settings.redis_url is not None
    common = {
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        "poll_delay": settings.poll_delay,
        "max_jobs": settings.matcher_jobs,
        # The gateway reads a result and deletes it; this only bounds what it abandons.
        "keep_result": max(10.0, settings.job_timeout * 2),
        "max_tries": 1,
        "handle_signals": False,
        "health_check_interval": HEALTH_INTERVAL,
    }
    shard = Worker(
        functions=[
            func(matcher.add_image, name=JobName.ADD_IMAGE),
            func(matcher.remove_image, name=JobName.REMOVE_IMAGE),
            func(matcher.search, name=JobName.SEARCH),
        ],
        queue_name=shard_queue(matcher.shard),
        **common,  # type: ignore[arg-type]
    )
    extract = Worker(
        functions=[func(matcher.extract_query, name=JobName.EXTRACT_QUERY)],
        queue_name=EXTRACT_QUEUE,
        health_check_key=health_key(EXTRACT_QUEUE, matcher.shard),
        **common,  # type: ignore[arg-type]
    )
    return [shard, extract]


async def serve(settings: Settings, shard: int, stop: asyncio.Event) -> None:
    """Load shard ``shard`` from Postgres, then serve jobs until ``stop`` is set."""
    assert settings.database_url is not None
    cv2.setNumThreads(1)  # parallelism comes from the pool, not from inside OpenCV
    pool = await create_pool(settings.database_url, max_size=4)
    executor = ThreadPoolExecutor(settings.matcher_threads, thread_name_prefix=f"shard{shard}")
    try:
        matcher = Matcher(settings, shard, pool, executor)
        await matcher.load()
        workers = build_workers(settings, matcher)
        tasks = [asyncio.create_task(w.async_run()) for w in workers]
        log.info("shard %d of %d serving", shard, settings.shards)
        await stop.wait()
        for w in workers:
            await w.close()
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
