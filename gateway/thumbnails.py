"""Thumbnails of kept originals (GetOriginal with ``maxside``), made on threads of the
gateway's own, never on its event loop."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from gateway.replies import ApiError
from shared.codes import ResultCode
from shared.settings import Settings

# Thumbnails made at once per gateway process: the only CPU work a gateway does, so that a
# console page asking for a grid of them shares the machine with the matchers instead of
# taking it. A JPEG is decoded reduced (a few ms); a large PNG is inflated whole (up to the
# PNG limit, some 100 ms): more requests wait their turn.
THREADS = 2


class Thumbnails:
    """Makes thumbnails under the upload limits of ``settings``; ``close`` when done."""

    def __init__(self, settings: Settings) -> None:
        self.max_pixels = settings.max_image_pixels
        self.max_png_inflated_bytes = settings.max_png_inflated_bytes
        self._threads = ThreadPoolExecutor(THREADS, thread_name_prefix="thumbnail")

    async def make(self, data: bytes, max_side: int) -> bytes:
        """A JPEG of ``data``, its long side at most ``max_side``; an original the limits
        now refuse answers their code (20006, 20007)."""
        loop = asyncio.get_running_loop()
        made = await loop.run_in_executor(self._threads, self._make, data, max_side)
        if isinstance(made, ResultCode):
            raise ApiError(made)
        return made

    def _make(self, data: bytes, max_side: int) -> bytes | ResultCode:
        # OpenCV and numpy take a gateway process from 56 to 100 MiB: loaded with the first
        # thumbnail, not by every gateway
        from matcher.imaging import ImageRejected, Limits, thumbnail

        try:
            return thumbnail(data, Limits(self.max_pixels, self.max_png_inflated_bytes),
                             max_side)
        except ImageRejected as e:
            return e.code

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
