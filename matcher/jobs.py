"""The matcher's job handlers: what each arq job does with this replica's shard.

CPU work (decoding, extraction, search, verification) runs on the thread pool, never on the
event loop, except a catalog image's extraction, which runs in the extractor's child process
at a lower priority (``matcher/extractor.py``); OpenCV and hnswlib release the GIL while
they work. Every job carries its
caller's deadline: work that would start after it is dropped (``Expired``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from matcher import features
from matcher.catalog import NewImage, insert_image, refusal
from matcher.extractor import TargetExtractor
from matcher.features import Features
from matcher.imaging import ImageRejected, Limits
from matcher.memory import TrimSchedule, release_freed_memory
from matcher.shard import Expired, Shard
from shared.codes import ResultCode
from shared.jobs import (
    AddImage,
    AddResult,
    ExtractQuery,
    ExtractResult,
    Found,
    Search,
    SearchResult,
)
from shared.settings import Settings

log = logging.getLogger(__name__)
Ctx = dict[str, Any]


class Lagging(Exception):
    """The replica's indexes have not reached the position a query needs in time."""


class Matcher:
    """The jobs of one replica of a shard."""

    def __init__(self, settings: Settings, shard: Shard, extractor: TargetExtractor) -> None:
        self.settings = settings
        self.shard = shard
        self.extractor = extractor
        self.limits = Limits(settings.max_image_pixels, settings.max_png_inflated_bytes)
        self.trim = TrimSchedule()

    async def _ready_for(self, position: int, deadline: float) -> None:
        if not await self.shard.reached(position, deadline):
            raise Lagging(f"shard {self.shard.shard} at change {self.shard.applied}, "
                          f"query needs {position}")

    async def extract_query(self, ctx: Ctx, payload: dict[str, Any]) -> dict[str, Any]:
        """Features and level of a query photo, and its matches in this shard's channels."""
        job = ExtractQuery.from_wire(payload)
        try:
            f = await self.shard.cpu_until(job.deadline, features.photo_features, job.image,
                                           self.limits)
        except ImageRejected as e:
            return ExtractResult(e.code).to_wire()
        level = features.rate_query(f)
        if level == 0:
            return ExtractResult(ResultCode.FEATURES_INSUFFICIENT).to_wire()
        found: list[Found] = []
        if job.channel_ids:
            await self._ready_for(job.positions[self.shard.shard], job.deadline)
            found = await self.shard.cpu_until(job.deadline, self._find, f, job.channel_ids)
        return ExtractResult(ResultCode.SUCCESS, level,
                             features.encode(f) if job.want_features else b"",
                             self.shard.shard, [m.to_wire() for m in found]).to_wire()

    async def add_image(self, ctx: Ctx, payload: dict[str, Any]) -> dict[str, Any]:
        """Extract, rate, store (with its original) and log a target; answered once this
        replica has indexed it. Other replicas index it as they follow the log; a query waits
        for them if needed."""
        job = AddImage.from_wire(payload)
        # adds queue behind each other: one that would be refused is answered before its turn
        # on the CPU
        refused = await refusal(self.shard.pool, job.channel_id, job.identifier)
        if refused is not None:
            return AddResult(refused).to_wire()
        try:  # in the extractor's child process, below searches' priority
            f = await self.extractor.extract(job.image, self.limits, job.deadline)
        except ImageRejected as e:
            return AddResult(e.code).to_wire()
        level = features.rate_level(f)
        if level == 0:
            return AddResult(ResultCode.FEATURES_INSUFFICIENT).to_wire()
        if time.time() > job.deadline:  # the gateway has answered 20015: store nothing
            raise Expired
        stored = features.encode(f)
        inserted = await insert_image(self.shard.pool, NewImage(
            job.channel_id, job.identifier, job.metadata, level, job.shard, f.width, f.height,
            features.FEATURE_VERSION, stored, job.image))
        if inserted.code != ResultCode.SUCCESS:
            return AddResult(inserted.code).to_wire()
        # indexed as every other replica indexes it: from the stored (float16) form
        await self.shard.catch_up(known={inserted.image_id: features.decode(stored)})
        if self.trim.due():
            await self.shard.cpu(release_freed_memory)
        return AddResult(ResultCode.SUCCESS, level, inserted.image_id).to_wire()

    async def search(self, ctx: Ctx, payload: dict[str, Any]) -> dict[str, Any]:
        """Verified matches of a query's features in the named channels on this shard."""
        job = Search.from_wire(payload)
        await self._ready_for(job.position, job.deadline)
        found = await self.shard.cpu_until(job.deadline, self._find,
                                           features.decode(job.features), job.channel_ids)
        return SearchResult([m.to_wire() for m in found]).to_wire()

    def _find(self, q: Features, channel_ids: list[int]) -> list[Found]:
        found = []
        for channel_id in channel_ids:
            index = self.shard.indexes.get(channel_id)
            if index is None or index.dim != q.desc.shape[1]:
                continue
            for m in index.search(q, threads=self.settings.query_threads):
                found.append(Found(m.image_id, channel_id, m.score, m.corners.tolist(), m.centred))
        return found

