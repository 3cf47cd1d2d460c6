"""The gateway's side of the job contract: enqueue on the matchers' queues and wait, bounded.

Every wait has a deadline; a shard that is down, slow or failing answers 20015, never a hang
and never a partial answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import zlib
from collections.abc import Awaitable
from typing import Any, cast

from arq.connections import ArqRedis

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
    RemoveImage,
    Reply,
    Search,
    SearchResult,
    doorbell_key,
    health_key,
    reply_key,
    shard_queue,
    unpack,
)
from shared.settings import Settings

log = logging.getLogger(__name__)


class Backend:
    """Calls into the matcher shards over arq."""

    def __init__(self, redis: ArqRedis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings

    def shard_for(self, channel_id: int, identifier: str) -> int:
        """The shard a new image goes to: a stable hash, so load spreads evenly."""
        return zlib.crc32(f"{channel_id}/{identifier}".encode()) % self.settings.shards

    async def find(self, image: bytes, channel_ids: list[int]) -> tuple[ExtractResult,
                                                                        list[Found]]:
        """A photo's level and its matches in ``channel_ids`` from every shard, best first.

        Whichever matcher is free extracts the features and searches its own shard in the
        same job; only the other shards (none, with one shard) get a second job. Any shard
        failing fails the whole search.
        """
        deadline = time.monotonic() + self.settings.job_timeout
        raw = await self._call(EXTRACT_QUEUE, JobName.EXTRACT_QUERY,
                               ExtractQuery(image, channel_ids, self.settings.shards > 1).to_wire(),
                               deadline,
                               alive=[health_key(EXTRACT_QUEUE, s)
                                      for s in range(self.settings.shards)])
        extracted = ExtractResult.from_wire(raw)
        if extracted.code != ResultCode.SUCCESS or not channel_ids:
            return extracted, []
        payload = Search(channel_ids, extracted.features).to_wire()
        answers = await asyncio.gather(*(
            self._call(shard_queue(s), JobName.SEARCH, payload, deadline)
            for s in range(self.settings.shards) if s != extracted.shard
        ))
        found = extracted.found() + [m for a in answers for m in SearchResult.from_wire(a).found()]
        return extracted, sorted(found, key=lambda m: -m.score)

    async def add(self, job: AddImage) -> AddResult:
        deadline = time.monotonic() + self.settings.job_timeout
        raw = await self._call(shard_queue(job.shard % self.settings.shards), JobName.ADD_IMAGE,
                               job.to_wire(), deadline)
        return AddResult.from_wire(raw)

    async def remove(self, shard: int, job: RemoveImage) -> bool:
        """Ask the shard to drop the image from its index; False when it did not answer.

        Not expiring: a shard that is down rebuilds from Postgres when it starts anyway, and
        the gateway never answers with an image Postgres no longer has.
        """
        deadline = time.monotonic() + self.settings.job_timeout
        try:
            await self._call(shard_queue(shard % self.settings.shards), JobName.REMOVE_IMAGE,
                             job.to_wire(), deadline, expires=False)
        except ApiError:
            return False
        return True

    async def live_shards(self) -> list[bool]:
        """Whether each shard has a live worker now."""
        keys = [health_key(shard_queue(s)) for s in range(self.settings.shards)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.exists(key)
            found = await pipe.execute()
        return [bool(n) for n in found]

    async def _ring(self, queue: str) -> None:
        """Wake an idle worker of ``queue`` (see ``doorbell_key``)."""
        bell = doorbell_key(queue)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(bell, b"")
            pipe.ltrim(bell, -DOORBELL_DEPTH, -1)
            await pipe.execute()

    async def _call(self, queue: str, name: JobName, payload: dict[str, Any], deadline: float,
                    *, expires: bool = True, alive: list[str] | None = None) -> Any:
        """Run a job on ``queue`` and return its result, or raise 20015. Refused at once when
        none of the ``alive`` health keys (default: the queue's own) exists."""
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not await self.redis.exists(*(alive or [health_key(queue)])):
            log.warning("%s: no live worker", queue)
            raise ApiError(ResultCode.SYSTEM_BUSY)
        job_id = uuid.uuid4().hex
        key = reply_key(job_id)
        job = await self.redis.enqueue_job(name, payload, _job_id=job_id, _queue_name=queue,
                                           _expires=remaining if expires else None)
        if job is None:
            raise ApiError(ResultCode.SYSTEM_BUSY)
        await self._ring(queue)
        try:
            # Redis 6+ takes a fractional timeout; redis-py's hints say int.
            wait = cast(int, max(0.01, deadline - time.monotonic()))
            popped = await cast(Awaitable[list[bytes] | None],
                                self.redis.blpop([key], timeout=wait))
        finally:
            await self.redis.delete(key)
        if popped is None:
            log.warning("%s: %s not answered in %.1f s", queue, name, remaining)
            raise ApiError(ResultCode.SYSTEM_BUSY)
        reply = Reply.from_wire(unpack(popped[1]))
        if not reply.ok:  # the worker logged why
            log.error("%s: %s failed: %s", queue, name, reply.error)
            raise ApiError(ResultCode.SYSTEM_BUSY)
        return reply.result
