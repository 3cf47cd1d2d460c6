"""Rebuilding stored features from the kept originals with this installation's pipeline
(``cloudreco reindex``), while the stack serves.

Each image is extracted again from its original, as AddImage extracts it, and its row is
updated together with a "features replaced" change in its shard's log (one transaction per
image). Every replica of the shard applies the change as it follows the log, swapping the
image's index entries at once, so FindImage keeps answering throughout and finds each image
by its old features until its new ones are in.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import asyncpg

from matcher import features
from matcher.catalog import Rebuilt, original_of, replace_features
from matcher.imaging import ImageRejected, Limits
from shared.codes import ResultCode
from shared.settings import Settings


@dataclass(frozen=True)
class Outcome:
    """One image's rebuild: ``code`` 0 (done) or why its features were left unchanged
    (20006, 20007: its original no longer passes the limits; 20013: it now rates too poor),
    ``gone`` when it was removed meanwhile, ``level_changed`` when its level moved."""

    code: ResultCode = ResultCode.SUCCESS
    gone: bool = False
    level_changed: bool = False


class Reindexer:
    """Rebuilds images on ``threads`` threads of its own (one core each: the caller limits
    OpenCV's and BLAS's own threads); ``close`` when done."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, threads: int) -> None:
        self.pool = pool
        self.limits = Limits(settings.max_image_pixels, settings.max_png_inflated_bytes)
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="reindex")

    async def rebuild(self, image_id: int) -> Outcome:
        """Extract image ``image_id`` again from its original and store the result."""
        data = await original_of(self.pool, image_id)
        if data is None:
            return Outcome(gone=True)
        loop = asyncio.get_running_loop()
        try:
            f = await loop.run_in_executor(self._threads, features.target_features, data,
                                           self.limits)
        except ImageRejected as e:
            return Outcome(e.code)
        level = features.rate_level(f)
        if level == 0:
            return Outcome(ResultCode.FEATURES_INSUFFICIENT)
        was = await replace_features(self.pool, image_id, Rebuilt(
            level, f.width, f.height, features.FEATURE_VERSION, features.encode(f)))
        if was is None:
            return Outcome(gone=True)
        return Outcome(level_changed=was != level)

    def close(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)
