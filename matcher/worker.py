"""Running one replica of a matcher shard: load the shard, follow its change log, serve its
queues with arq workers, and come back by itself when Redis or Postgres goes away.

Any number of replicas may run per shard; each holds the whole shard. They share the shard's
search and add queues (whichever is free takes a job) and the extract queue of every shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import asyncpg
import cv2
import psutil
from arq.connections import ArqRedis
from arq.typing import WorkerCoroutine
from arq.worker import Worker, func
from redis.asyncio import Redis
from threadpoolctl import threadpool_limits

from matcher import features, snapshot
from matcher.extractor import TargetExtractor
from matcher.jobs import Lagging, Matcher
from matcher.memory import use_one_heap
from matcher.shard import GONE, Expired, LogGap, Shard, backoff, sleep_unless
from shared import changes
from shared.cluster import ShardMap, ShardMapMismatch, shard_map, stored_map
from shared.db import create_pool
from shared.jobs import (
    EXTRACT_QUEUE,
    HEARTBEAT,
    LIVENESS,
    JobName,
    Reply,
    add_queue,
    deserialize,
    doorbell_key,
    owner_key,
    pack,
    replicas_key,
    reply_key,
    serialize,
    shard_queue,
)
from shared.logs import REQUEST_ID
from shared.queue import redis_settings
from shared.replica_stats import STATS_TTL, ReplicaStats, stats_key
from shared.settings import Settings

log = logging.getLogger(__name__)
STOP_GRACE = 5.0  # seconds running jobs get to finish when the matcher stops
MAP_CHECK = 5.0  # seconds between checks that the shard map has not changed under us
STABLE = 30.0  # seconds a reconnection must last before backoff starts again from short
CANCEL_AGAIN = 0.5  # seconds before a task that went on after its cancel is cancelled again

Job = Callable[[dict[str, Any], dict[str, Any]], Awaitable[Any]]
# arq's own pause between queue looks, once the doorbell has rung or timed out.
LOOP_PAUSE = 0.001


class MapChanged(RuntimeError):
    """The catalog was resharded while this replica ran: it must start again."""


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




def replying(name: JobName, job: Job, reply_ttl: float, owner: str) -> WorkerCoroutine:
    """Wrap a job so that it names its replica, logs under its request's id, then pushes its
    reply (or its failure) to the job's reply list. A job whose caller has given up is
    dropped without a reply."""

    async def run(ctx: dict[str, Any], payload: dict[str, Any]) -> None:
        redis, job_id = ctx["redis"], ctx["job_id"]
        request_id = payload.get("request_id")
        # arq runs each job in a task of its own: the id is this job's alone
        REQUEST_ID.set(request_id if isinstance(request_id, str) and request_id else "-")
        ttl_ms = int(reply_ttl * 1000)
        started = time.monotonic()
        await redis.set(owner_key(job_id), owner, px=ttl_ms)
        try:
            reply = Reply(True, await job(ctx, payload))
        except Expired:
            log.info("%s job %s: its caller gave up before it ran; dropped", name, job_id)
            return
        except Lagging as e:
            log.warning("%s job %s: %s", name, job_id, e)
            reply = Reply(False, error=str(e))
        except GONE as e:  # Postgres or Redis went away; the process reconnects
            log.warning("%s job %s failed: %r", name, job_id, e)
            reply = Reply(False, error=repr(e))
        except Exception as e:  # the gateway answers 20015; the cause is logged here
            log.exception("%s job %s failed", name, job_id)
            reply = Reply(False, error=repr(e))
        if reply.ok:
            log.info("%s job %s: answered in %.1f ms", name, job_id,
                     (time.monotonic() - started) * 1000)
        key = reply_key(job_id)
        async with redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, pack(reply.to_wire()))
            pipe.pexpire(key, ttl_ms)
            await pipe.execute()

    return cast(WorkerCoroutine, run)


def build_workers(settings: Settings, matcher: Matcher, replica: str) -> list[PromptWorker]:
    """The replica's workers: its shard's searches, its shard's adds and the shared extract
    queue. The add worker holds one job more than the ``add_jobs`` it extracts at once, so
    that a job's Postgres write and index add run while the next job's extraction does."""
    assert settings.redis_url is not None
    shard = matcher.shard.shard
    common = {
        "redis_settings": redis_settings(settings.redis_url),
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        "idle_wait": settings.poll_delay,
        "keep_result": 0,  # results travel on reply lists
        "max_tries": 1,
        "handle_signals": False,
        # arq's own health key is not used (liveness is the replicas set); keep it rare
        "health_check_interval": 60,
    }
    # A reply the gateway gave up on expires; it only has to outlive the gateway's wait.
    ttl = settings.job_timeout * 2 + 10
    owner = f"{shard}/{replica}"

    def worker(queue: str, name: JobName, job: Job, max_jobs: int) -> PromptWorker:
        return PromptWorker(functions=[func(replying(name, job, ttl, owner), name=name)],
                            queue_name=queue, max_jobs=max_jobs,
                            health_check_key=f"{queue}:health-check:{replica}",
                            **common)  # type: ignore[arg-type]

    return [
        worker(shard_queue(shard), JobName.SEARCH, matcher.search, settings.matcher_jobs),
        worker(EXTRACT_QUEUE, JobName.EXTRACT_QUERY, matcher.extract_query,
               settings.matcher_jobs),
        worker(add_queue(shard), JobName.ADD_IMAGE, matcher.add_image,
               settings.add_jobs + 1),
    ]


async def drain(worker: Worker, grace: float = STOP_GRACE) -> None:
    """Finish the queued and running jobs (up to ``grace`` seconds), then close: arq's close
    cancels what still runs and waits for it, up to ``grace`` seconds more, after which the
    worker's connections are closed under any job that still has not ended.

    Burst mode makes arq's poll loop end by itself once the queue is empty; cancelling that
    loop instead (as arq's ``close`` does) can cut a Redis pipeline in half and cancels
    running jobs.
    """
    worker.burst = True
    if worker.main_task is not None:
        done, _ = await asyncio.wait([worker.main_task], timeout=grace)
        if not done:
            worker.main_task.cancel()
    await _close(worker, grace)


async def _close(worker: Worker, grace: float = STOP_GRACE) -> None:
    """Close ``worker`` (arq's close cancels its running jobs and waits for them) for up to
    ``grace`` seconds, then close its connections under any job that has not ended. A worker
    whose Redis connection failed is closed the same way."""
    try:
        await asyncio.wait_for(worker.close(), grace)
    except TimeoutError:
        log.warning("%s: jobs still running %.0f s after they were cancelled; closing under "
                    "them", worker.queue_name, grace)
    except Exception:  # its connection failed: its sockets are closed below
        pass
    pool: ArqRedis | None = worker._pool  # None once closed, or if it never connected
    worker._pool = None
    if pool is not None:
        await pool.connection_pool.disconnect()
        await pool.aclose()


def _stats(state: Shard, process: psutil.Process) -> ReplicaStats:
    indexes = list(state.indexes.values())  # one copy: the pool's threads add channels
    return ReplicaStats(sum(len(i) for i in indexes), len(indexes),
                        process.memory_info().rss, state.saved_at or 0.0)


async def _heartbeat(redis: Redis, state: Shard, replica: str, until: asyncio.Event) -> None:
    """Keep this replica in its shard's live set, and its stats (``shared/replica_stats.py``)
    beside it, until ``until`` is set; raises when Redis fails."""
    key = replicas_key(state.shard)
    stats = stats_key(state.shard, replica)
    process = psutil.Process()
    while not until.is_set():
        now = time.time() * 1000
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {replica: now + LIVENESS * 1000})
            pipe.zremrangebyscore(key, 0, now - 60_000)  # long-dead replicas' entries
            pipe.hset(stats, mapping=_stats(state, process).to_redis())
            pipe.pexpire(stats, int(STATS_TTL * 1000))
            await pipe.execute()
        await sleep_unless(until, HEARTBEAT)


async def finish(tasks: Sequence[asyncio.Task[Any]], what: str, grace: float = STOP_GRACE
                 ) -> bool:
    """Cancel ``tasks`` and wait up to ``grace`` seconds for them to end, cancelling again
    any that goes on: redis-py can lose a cancellation that arrives while a command sets up
    its timeout (redis/redis-py#2551), and the task then runs on. Whether all ended; if not,
    says so at WARNING, naming them ``what``."""
    deadline = time.monotonic() + grace
    pending = {t for t in tasks if not t.done()}
    while pending and (left := deadline - time.monotonic()) > 0:
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=min(CANCEL_AGAIN, left))
    for t in tasks:
        if t.done() and not t.cancelled():
            t.exception()  # retrieved: the caller reads the ones it needs
    if pending:
        log.warning("%s did not end %.0f s after its cancel", what, grace)
    return not pending


async def _serve_queues(settings: Settings, matcher: Matcher, replica: str,
                        stop: asyncio.Event) -> None:
    """Run the workers until ``stop``; when their connection to Redis fails, start them
    again after a backoff, keeping the indexes. The replica is live only while they run."""
    assert settings.redis_url is not None
    shard = matcher.shard.shard
    attempt = 0
    while not stop.is_set():
        workers = build_workers(settings, matcher, replica)
        redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
        tasks = [asyncio.create_task(w.async_run()) for w in workers]
        beating = asyncio.Event()
        beat = asyncio.create_task(_heartbeat(redis, matcher.shard, replica, beating))
        stopping = asyncio.create_task(stop.wait())
        started = time.monotonic()
        done, _ = await asyncio.wait([*tasks, beat, stopping],
                                     return_when=asyncio.FIRST_COMPLETED)
        beating.set()
        # the heartbeat ends before the replica leaves the live set, so it cannot add it back
        await finish([beat], f"shard {shard}'s heartbeat")
        if stop.is_set():
            with contextlib.suppress(*GONE):
                await redis.zrem(replicas_key(shard), replica)
                await redis.delete(stats_key(shard, replica))
            await asyncio.gather(*(drain(w) for w in workers), return_exceptions=True)
            await finish(tasks, f"a queue worker of shard {shard}")
            await redis.aclose()
            return
        stopping.cancel()
        failures = [t.exception() for t in done if not t.cancelled()]
        await finish(tasks, f"a queue worker of shard {shard}")
        for w in workers:
            await _close(w)
        await redis.connection_pool.disconnect()
        await redis.aclose()
        if time.monotonic() - started > STABLE:
            attempt = 0
        delay = backoff(attempt)
        attempt += 1
        log.warning("shard %d: queue connection lost (%r); reconnecting in %.1f s",
                    shard, failures[0] if failures else None, delay)
        await sleep_unless(stop, delay)


async def _until(work: asyncio.Task[Any], stop: asyncio.Event) -> bool:
    """Wait for ``work`` unless ``stop`` comes first (then cancel it); whether it finished."""
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([work, stopping], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not work.done():
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        return False
    work.result()
    return True


async def _connect(dsn: str, stop: asyncio.Event) -> asyncpg.Pool | None:
    """A pool, once Postgres answers (retrying with backoff); None if ``stop`` came first."""
    attempt = 0
    while not stop.is_set():
        try:
            return await create_pool(dsn, max_size=4)
        except (*GONE, TimeoutError) as e:
            delay = backoff(attempt)
            attempt += 1
            log.warning("Postgres unreachable (%r); retrying in %.1f s", e, delay)
            await sleep_unless(stop, delay)
    return None


async def _watch(pool: asyncpg.Pool, state: Shard, known: ShardMap, settings: Settings,
                 ident: snapshot.Identity, stop: asyncio.Event) -> None:
    """Until ``stop``: raise MapChanged if the catalog is resharded; save a snapshot every
    ``snapshot_interval`` when the indexes changed since the last."""
    last_save = time.monotonic()
    while not stop.is_set():
        await sleep_unless(stop, MAP_CHECK)
        try:
            now = await stored_map(pool)
        except (*GONE, TimeoutError):
            continue  # the follower reports the outage
        if now != known:
            raise MapChanged(f"the shard map changed from {known} to {now}")
        due = time.monotonic() - last_save >= settings.snapshot_interval
        if due and state.saved != state.applied:
            await _save(state, settings, ident)
            last_save = time.monotonic()


async def _save(state: Shard, settings: Settings, ident: snapshot.Identity) -> None:
    """Save a snapshot, then drop the log's changes it covers that are older than
    ``change_retention`` (other replicas' snapshots may still need younger ones)."""
    started = time.monotonic()
    try:
        where = await state.save(settings.snapshots, ident)
    except OSError as e:
        log.warning("shard %d: snapshot not saved: %r", state.shard, e)
        return
    log.info("shard %d: snapshot at change %d saved in %.1f s (%s)", state.shard,
             state.applied, time.monotonic() - started, where)
    with contextlib.suppress(*GONE, TimeoutError):
        await changes.prune(state.pool, state.shard, state.applied,
                            settings.change_retention)


async def serve(settings: Settings, shard: int, stop: asyncio.Event,
                loaded: Callable[[], None] | None = None) -> None:
    """Run a replica of shard ``shard`` until ``stop`` is set (honoured at any moment,
    loading included). Raises ShardMapMismatch or MapChanged when the shard map disagrees."""
    assert settings.database_url is not None
    # numpy's OpenBLAS threads spin after each product: with a thread pool and two matcher
    # processes on two cores they took half the CPU (FindImage p50 160 -> 93 ms without them).
    threadpool_limits(1)
    use_one_heap()
    # arq logs each job's start and end at INFO with its arguments (identifiers, metadata,
    # image bytes); ``replying`` logs each job instead, with its request id and no values.
    logging.getLogger("arq.worker").setLevel(logging.WARNING)
    cv2.setNumThreads(settings.query_threads)
    pool = await _connect(settings.database_url, stop)
    if pool is None:
        return
    executor = ThreadPoolExecutor(settings.matcher_threads, thread_name_prefix=f"shard{shard}")
    extractor = TargetExtractor(settings.add_nice, settings.query_threads, settings.add_jobs)
    replica = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        known = await shard_map(pool, settings.shards)
        ident = snapshot.Identity(known.cluster_id, known.generation, shard,
                                  features.FEATURE_VERSION)
        state = Shard(shard, pool, executor, settings.matcher_threads)
        started = time.monotonic()
        # the extraction process starts (imports, forks) while the indexes load
        extracting = asyncio.create_task(extractor.start())
        loading = asyncio.create_task(state.load(settings.snapshots, ident))
        try:
            if not await _until(loading, stop) or not await _until(extracting, stop):
                return
        finally:
            extracting.cancel()  # done by now unless stopped or failed
        log.info("shard %d replica %s: %d images in %d channels from %s in %.1f s; serving",
                 shard, replica, sum(len(i) for i in state.indexes.values()),
                 len(state.indexes), loading.result(), time.monotonic() - started)
        follower = asyncio.create_task(state.follow(settings.database_url, stop))
        watcher = asyncio.create_task(_watch(pool, state, known, settings, ident, stop))
        if loaded is not None:
            loaded()
        matcher = Matcher(settings, state, extractor)
        queues = asyncio.create_task(_serve_queues(settings, matcher, replica, stop))
        await asyncio.wait([queues, watcher, follower], return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        await finish([watcher], f"shard {shard}'s map watcher")
        await asyncio.gather(queues, follower, watcher, return_exceptions=True)
        for task in (watcher, follower):
            if not task.cancelled() and task.exception() is not None:
                raise cast(BaseException, task.exception())  # a map change, a log gap
        if state.saved != state.applied:
            await _save(state, settings, ident)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        await extractor.close()
        try:  # close waits for every connection to be released; none is held by now
            await asyncio.wait_for(pool.close(), STOP_GRACE)
        except TimeoutError:
            log.warning("shard %d: Postgres connections still held %.0f s after the stop; "
                        "closed under their holders", shard, STOP_GRACE)
            pool.terminate()


def main(settings: Settings, shard: int) -> None:
    """Process entry point: serve until SIGINT or SIGTERM. Exits 2 when the shard map does
    not match the settings and 3 when it changes while running, so a supervisor can tell."""

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, shard, stop)

    try:
        asyncio.run(run())
    except ShardMapMismatch as e:
        log.error("%s", e)
        sys.exit(2)
    except (MapChanged, LogGap) as e:
        log.error("%s; exiting so that the supervisor starts this replica again", e)
        sys.exit(3)
