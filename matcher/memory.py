"""Giving freed heap back to the system, so that a matcher's resident memory tracks its indexes.

glibc keeps freed pages in its heaps; ``malloc_trim`` returns them. A target's extraction
(a decoded image and its synthetic views: megabytes, freed at once) runs in a child process
that trims after each one. The replica trims after loading its indexes and, while adding, at
most once per ``TRIM_INTERVAL``: a trim walks the whole heap, so its cost grows with the
indexes (sampled in a replica during a 20,000-image import: 0.3 ms a call at 2,500 images,
8 ms at 17,000, when it ran after every add).

glibc also gives each thread that contends for the heap an arena of its own, and memory freed
in one arena serves only that arena. With the matcher's thread pool, one arena instead of one
per thread took the RSS growth over 3,000 AddImage calls (from an empty matcher, start-up
included) from 47.1 to 34.7 KiB per image, at 11.4 instead of 12.6 AddImage/s in the same
noisy hour (a fixed 1 MiB mmap threshold gave 34.8 and 11.3).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import time
from collections.abc import Callable

M_ARENA_MAX = -8  # glibc's mallopt parameter
TRIM_INTERVAL = 10.0  # seconds between a replica's trims while it adds
_trim: Callable[[int], int] | None = None
_mallopt: Callable[[int, int], int] | None = None
_name = ctypes.util.find_library("c")
if _name is not None:
    _libc = ctypes.CDLL(_name)
    _trim = getattr(_libc, "malloc_trim", None)  # glibc only
    _mallopt = getattr(_libc, "mallopt", None)


def use_one_heap() -> None:
    """Make every thread allocate from the main heap (glibc); call before starting threads."""
    if _mallopt is not None:
        _mallopt(M_ARENA_MAX, 1)


def release_freed_memory() -> None:
    """Return free heap pages to the system (glibc); a no-op elsewhere."""
    if _trim is not None:
        _trim(0)


class TrimSchedule:
    """Whether a trim is due: the first time asked, then once per ``interval`` seconds."""

    def __init__(self, interval: float = TRIM_INTERVAL) -> None:
        self.interval = interval
        self._last = -math.inf

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last < self.interval:
            return False
        self._last = now
        return True
