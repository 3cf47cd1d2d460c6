"""The gateway's side of the job contract: enqueue on the matchers' queues and wait, bounded.

Every wait has a deadline, and the deadline travels with the job so that a matcher drops a
job nobody waits for. A shard without a live replica, a saturated stack or a failing job
answers 20015, never a hang and never a partial answer. A job whose replica dies while it
runs is sent again to another replica of the shard while the deadline allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any, cast

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix

from gateway.replies import ApiError
from shared.codes import ResultCode
from shared.jobs import (
    DOORBELL_DEPTH,
    EXTRACT_QUEUE,
    AddImage,
    AddResult,
    ExtractQuery,
    ExtractResult,
    Found,
    JobName,
    Reply,
    Search,
    SearchResult,
    add_queue,
    answer_order,
    doorbell_key,
    owner_key,
    replicas_key,
    reply_key,
    shard_queue,
    unpack,
)
from shared.logs import REQUEST_ID
from shared.settings import Settings

log = logging.getLogger(__name__)
# How often a waiting request checks that the replica running its job is still alive.
OWNER_CHECK = 0.25
RESENDS = 1  # times a job is sent again after its replica died under it
# The FindImage requests in flight across every gateway: a sorted set of tickets, each
# scored by its request's deadline (ms), so that a ticket left by a dead gateway lapses.
INFLIGHT_KEY = "cloudreco:inflight"
# Takes a ticket (ARGV[4], lapsing at ARGV[3]) if fewer than ARGV[2] are live at ARGV[1]; one
# script, so that a burst of requests cannot all see room and all enter.
_ADMIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
return 1
"""


class ReplicaLost(Exception):
    """The replica that took a job stopped being live before answering."""


def busy(why: str, *args: object) -> ApiError:
    log.warning("20015: " + why, *args)
    return ApiError(ResultCode.SYSTEM_BUSY)


class Backend:
    """Calls into the matcher shards over arq."""

    def __init__(self, redis: ArqRedis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self._admit = redis.register_script(_ADMIT)

    async def live_replicas(self) -> list[int]:
        """How many live replicas each shard has now."""
        now = time.time() * 1000
        async with self.redis.pipeline(transaction=False) as pipe:
            for s in range(self.settings.shards):
                pipe.zcount(replicas_key(s), now, "+inf")
            counts: list[int] = await pipe.execute()
        return counts

    def _limit(self, live: list[int]) -> int:
        return self.settings.max_inflight * max(1, sum(live) // len(live))

    async def saturated(self) -> bool:
        """Whether FindImage would be refused for want of a place now: a read-only look, so
        that a request is turned away before its credentials and channels cost a query."""
        now = time.time() * 1000
        async with self.redis.pipeline(transaction=False) as pipe:
            for s in range(self.settings.shards):
                pipe.zcount(replicas_key(s), now, "+inf")
            pipe.zcount(INFLIGHT_KEY, now, "+inf")
            *live, inflight = await pipe.execute()
        return not all(live) or inflight >= self._limit(live)

    @contextlib.asynccontextmanager
    async def _ticket(self, live: list[int]) -> AsyncIterator[None]:
        """Hold one of the FindImage places, or raise 20015 at once when none is free.

        Every FindImage costs an extraction and one search per shard, so the stack serves
        about one request per replica-per-shard at a time at full speed: it admits
        ``max_inflight`` per replica of each shard (the mean over shards).
        """
        limit = self._limit(live)
        ticket = uuid.uuid4().hex
        now = time.time()
        lapses = (now + self.settings.job_timeout) * 1000
        if not await self._admit(keys=[INFLIGHT_KEY], args=[now * 1000, limit, lapses, ticket]):
            raise busy("%d FindImage requests in flight, the most for %s replicas", limit, live)
        try:
            yield
        finally:
            await self.redis.zrem(INFLIGHT_KEY, ticket)

    async def find(self, image: bytes, channel_ids: list[int], positions: list[int]
                   ) -> tuple[ExtractResult, list[Found]]:
        """A photo's level and its matches in ``channel_ids`` from every shard, best first.

        Whichever replica is free extracts the features and searches its own shard in the
        same job; only the other shards (none, with one shard) get a second job. Each shard's
        index must reflect ``positions``, the change-log heads read when the request came in.
        Any shard failing fails the whole search. Refused at once (20015) when a shard has no
        live replica or the stack already has its fill of FindImage jobs.
        """
        deadline = time.monotonic() + self.settings.job_timeout
        live = await self.live_replicas()
        if not all(live):
            raise busy("shards without a live replica: %s",
                       [s for s, n in enumerate(live) if not n])
        async with self._ticket(live):
            return await self._find(image, channel_ids, positions, deadline)

    async def _find(self, image: bytes, channel_ids: list[int], positions: list[int],
                    deadline: float) -> tuple[ExtractResult, list[Found]]:
        want_features = self.settings.shards > 1
        raw = await self._call(EXTRACT_QUEUE, JobName.EXTRACT_QUERY, deadline, lambda wall:
                               ExtractQuery(image, channel_ids, want_features, positions,
                                            wall, REQUEST_ID.get()).to_wire())
        extracted = ExtractResult.from_wire(raw)
        if extracted.code != ResultCode.SUCCESS or not channel_ids:
            return extracted, []
        answers = await asyncio.gather(*(
            self._call(shard_queue(s), JobName.SEARCH, deadline, lambda wall, s=s:
                       Search(channel_ids, extracted.features, positions[s], wall,
                              REQUEST_ID.get()).to_wire())
            for s in range(self.settings.shards) if s != extracted.shard
        ))
        found = extracted.found() + [m for a in answers for m in SearchResult.from_wire(a).found()]
        return extracted, sorted(found, key=answer_order)

    async def add(self, job: AddImage) -> AddResult:
        """Store and index a target on its shard (``job.deadline`` is filled in here)."""
        deadline = time.monotonic() + self.settings.job_timeout
        live = await self.live_replicas()
        if not live[job.shard]:
            raise busy("shard %d has no live replica", job.shard)
        raw = await self._call(add_queue(job.shard), JobName.ADD_IMAGE, deadline, lambda wall:
                               AddImage(job.channel_id, job.identifier, job.metadata, job.shard,
                                        job.image, wall, REQUEST_ID.get()).to_wire(),
                               resend=False)
        return AddResult.from_wire(raw)

    async def over_rate(self, subject: str, limit: float) -> bool:
        """Whether ``subject`` (a user or an app key) has used up this second's ``limit``
        FindImage requests; a limit of 0 is none."""
        if limit <= 0:
            return False
        key = f"cloudreco:rate:{subject}:{int(time.time())}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 2)
            count, _ = await pipe.execute()
        return bool(count > limit)

    async def _ring(self, queue: str) -> None:
        """Wake an idle worker of ``queue`` (see ``doorbell_key``)."""
        bell = doorbell_key(queue)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(bell, b"")
            pipe.ltrim(bell, -DOORBELL_DEPTH, -1)
            await pipe.execute()

    async def _call(self, queue: str, name: JobName, deadline: float, payload: Any,
                    *, resend: bool = True) -> Any:
        """Run a job on ``queue`` and return its result, or raise 20015. ``payload`` makes
        the job's payload from the wall-clock deadline. A job whose replica dies is sent
        again while time remains, if ``resend`` (a job that writes may have written)."""
        resends = RESENDS if resend else 0
        for attempt in range(resends + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    return await self._once(queue, name, payload(time.time() + remaining),
                                            remaining)
            except ReplicaLost as e:
                log.warning("%s: %s lost its replica (%s); %s", queue, name, e,
                            "sending it again" if attempt < resends else "giving up")
            except TimeoutError:
                break
        raise busy("%s: %s not answered in %.1f s", queue, name, self.settings.job_timeout)

    async def _once(self, queue: str, name: JobName, payload: dict[str, Any],
                    remaining: float) -> Any:
        job_id = uuid.uuid4().hex
        key = reply_key(job_id)
        job = await self.redis.enqueue_job(name, payload, _job_id=job_id, _queue_name=queue,
                                           _expires=remaining)
        if job is None:
            raise busy("%s: %s not enqueued", queue, name)
        await self._ring(queue)
        try:
            while True:
                # Redis 6+ takes a fractional timeout; redis-py's hints say int.
                popped = await cast(Awaitable[list[bytes] | None],
                                    self.redis.blpop([key], timeout=cast(int, OWNER_CHECK)))
                if popped is not None:
                    break
                await self._check_owner(job_id)
        except ReplicaLost:
            await self._drop(queue, job_id)
            raise
        finally:
            await self.redis.delete(key, owner_key(job_id))
        reply = Reply.from_wire(unpack(popped[1]))
        if not reply.ok:  # the worker logged why
            raise busy("%s: %s failed: %s", queue, name, reply.error)
        return reply.result

    async def _drop(self, queue: str, job_id: str) -> None:
        """Take a job whose replica died off its queue. arq keeps a job in the queue until
        it finishes, and no other worker takes it while its in-progress key lasts (arq's job
        timeout, 300 s, plus 10 s): meanwhile it would count as a FindImage in flight."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(queue, job_id)
            pipe.delete(job_key_prefix + job_id, in_progress_key_prefix + job_id)
            await pipe.execute()

    async def _check_owner(self, job_id: str) -> None:
        owner = await self.redis.get(owner_key(job_id))
        if owner is None:
            return  # not taken yet
        shard, _, replica = owner.decode().partition("/")
        lapses = await self.redis.zscore(replicas_key(int(shard)), replica)
        if lapses is None or lapses < time.time() * 1000:
            raise ReplicaLost(replica)
