"""The matcher's job handlers: what each arq job does with a shard's indexes.

CPU work (decoding, extraction, search, verification) runs on the thread pool, never on the
event loop; OpenCV and hnswlib release the GIL while they work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import asyncpg

from matcher import features
from matcher.catalog import NewImage, delete_image, insert_image, shard_images
from matcher.features import Features
from matcher.imaging import Gray, ImageRejected, decode_gray
from matcher.memory import release_freed_memory
from matcher.recognition import ChannelIndex
from shared.codes import ResultCode
from shared.jobs import (
    AddImage,
    AddResult,
    ExtractQuery,
    ExtractResult,
    Found,
    RemoveImage,
    Search,
    SearchResult,
)
from shared.settings import Settings

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
Ctx = dict[str, Any]


class Matcher:
    """One shard: its channel indexes, and the jobs that read and change them."""

    def __init__(self, settings: Settings, shard: int, pool: asyncpg.Pool,
                 executor: ThreadPoolExecutor) -> None:
        self.settings = settings
        self.shard = shard
        self.pool = pool
        self.executor = executor
        self.indexes: dict[int, ChannelIndex] = {}

    async def _cpu(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: fn(*args, **kwargs))

    def _index(self, channel_id: int, dim: int) -> ChannelIndex:
        index = self.indexes.get(channel_id)
        if index is None:
            index = self.indexes[channel_id] = ChannelIndex(dim)
        return index

    async def load(self) -> int:
        """Rebuild this shard's indexes from Postgres; returns the number of images."""
        loaded = 0
        async for batch in shard_images(self.pool, self.shard, self.settings.shards):
            current = []
            for stored in batch:
                if stored.feature_version == features.FEATURE_VERSION:
                    current.append(stored)
                else:
                    log.warning("image %d has features of version %d; re-add it to index it",
                                stored.image_id, stored.feature_version)
            decoded = await self._cpu(lambda b: [features.decode(s.features) for s in b], current)
            for stored, f in zip(current, decoded, strict=True):
                await self._cpu(self._index(stored.channel_id, f.desc.shape[1]).add,
                                stored.image_id, f)
            loaded += len(current)
        await self._cpu(release_freed_memory)
        log.info("shard %d: %d images in %d channels", self.shard, loaded, len(self.indexes))
        return loaded

    def _extract(self, image: bytes, extract: Callable[[Gray], Features]
                 ) -> Features:
        return extract(decode_gray(image, max_pixels=self.settings.max_image_pixels))

    async def extract_query(self, ctx: Ctx, payload: dict[str, Any]) -> dict[str, Any]:
        """Features and level of a query photo, and its matches in this shard's channels."""
        job = ExtractQuery.from_wire(payload)
        try:
            return await self._cpu(self._extract_query, job)
        except ImageRejected as e:
            return ExtractResult(e.code).to_wire()

    def _extract_query(self, job: ExtractQuery) -> dict[str, Any]:
        f = self._extract(job.image, features.extract_query)
        level = features.rate_query(f)
        if level == 0:
            return ExtractResult(ResultCode.FEATURES_INSUFFICIENT).to_wire()
        found = self._find(f, job.channel_ids)
        return ExtractResult(ResultCode.SUCCESS, level,
                             features.encode(f) if job.want_features else b"", self.shard,
                             [m.to_wire() for m in found]).to_wire()

    async def add_image(self, ctx: Ctx, payload: dict[str, Any]) -> dict[str, Any]:
        """Extract, rate, store and index a target; findable as soon as this returns 0."""
        job = AddImage.from_wire(payload)
        try:
            f = await self._cpu(self._extract, job.image, features.extract_target)
        except ImageRejected as e:
            return AddResult(e.code).to_wire()
        level = features.rate_level(f)
        if level == 0:
            return AddResult(ResultCode.FEATURES_INSUFFICIENT).to_wire()
        code, image_id = await insert_image(self.pool, NewImage(
            job.channel_id, job.identifier, job.metadata, level, job.shard, f.width, f.height,
            features.FEATURE_VERSION, features.encode(f)))
        if code != ResultCode.SUCCESS:
            return AddResult(code).to_wire()
        try:
            await self._cpu(self._index(job.channel_id, f.desc.shape[1]).add, image_id, f)
        except BaseException:
            await delete_image(self.pool, image_id)  # all or nothing: no unindexed row
            raise
        await self._cpu(release_freed_memory)
        return AddResult(ResultCode.SUCCESS, level, image_id).to_wire()

    async def remove_image(self, ctx: Ctx, payload: dict[str, Any]) -> bool:
        """Drop an image from its channel's index (Postgres has already forgotten it)."""
        job = RemoveImage.from_wire(payload)
        index = self.indexes.get(job.channel_id)
        if index is None or job.image_id not in index:
            return False
        await self._cpu(index.remove, job.image_id)
        return True

    async def search(self, ctx: Ctx, payload: dict[str, Any]) -> dict[str, Any]:
        """Verified matches of a query's features in the named channels on this shard."""
        job = Search.from_wire(payload)
        found = await self._cpu(self._find, features.decode(job.features), job.channel_ids)
        return SearchResult([m.to_wire() for m in found]).to_wire()

    def _find(self, q: Features, channel_ids: list[int]) -> list[Found]:
        found = []
        for channel_id in channel_ids:
            index = self.indexes.get(channel_id)
            if index is None or index.dim != q.desc.shape[1]:
                continue
            for m in index.search(q, threads=self.settings.query_threads):
                found.append(Found(m.image_id, channel_id, m.score, m.corners.tolist()))
        return found
