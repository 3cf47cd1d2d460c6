"""A reader-writer lock: many readers at once, or one writer alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class RWLock:
    """Shared holds (``read``) overlap; an exclusive hold (``write``) waits for them to end and
    excludes everything else. Writer-preferring: once a writer waits, new readers wait behind
    it, so a steady stream of readers cannot starve it; the other way round, writers taking it
    back to back would hold readers off, so it suits rare, short writes. Not reentrant: a thread
    holding it must not take it again (a second ``read`` would wait behind a waiting writer
    forever)."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    def acquire_read(self, timeout: float | None = None) -> bool:
        """Take a shared hold; False if ``timeout`` seconds passed first (0: do not wait)."""
        with self._changed:
            got = self._changed.wait_for(
                lambda: not self._writing and not self._writers_waiting, timeout)
            if got:
                self._readers += 1
            return got

    def release_read(self) -> None:
        with self._changed:
            self._readers -= 1
            if self._readers == 0:
                self._changed.notify_all()

    def acquire_write(self, timeout: float | None = None) -> bool:
        """Take the exclusive hold; False if ``timeout`` seconds passed first (0: do not wait)."""
        with self._changed:
            self._writers_waiting += 1
            try:
                got = self._changed.wait_for(lambda: not self._writing and not self._readers,
                                             timeout)
            finally:
                self._writers_waiting -= 1
            if got:
                self._writing = True
            elif not self._writers_waiting:
                self._changed.notify_all()  # readers this writer alone held back may go now
            return got

    def release_write(self) -> None:
        with self._changed:
            self._writing = False
            self._changed.notify_all()

    @contextmanager
    def read(self) -> Iterator[None]:
        self.acquire_read()
        try:
            yield
        finally:
            self.release_read()

    @contextmanager
    def write(self) -> Iterator[None]:
        self.acquire_write()
        try:
            yield
        finally:
            self.release_write()
