"""The reader-writer lock that lets one channel's searches run together."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from matcher.rwlock import RWLock


def _elsewhere(fn: Callable[[], bool]) -> bool:
    """``fn``'s answer, run on another thread (the lock does not care which thread holds it,
    but a real caller is another thread)."""
    answer: list[bool] = []
    thread = threading.Thread(target=lambda: answer.append(fn()))
    thread.start()
    thread.join()
    return answer[0]


def test_readers_hold_it_together() -> None:
    lock = RWLock()
    with lock.read():
        assert _elsewhere(lambda: lock.acquire_read(timeout=0))
        lock.release_read()
        assert not _elsewhere(lambda: lock.acquire_write(timeout=0))
    assert lock.acquire_write(timeout=0)


def test_a_writer_excludes_readers_and_writers() -> None:
    lock = RWLock()
    with lock.write():
        assert not _elsewhere(lambda: lock.acquire_read(timeout=0))
        assert not _elsewhere(lambda: lock.acquire_write(timeout=0))
    with lock.read():
        pass
    with lock.write():
        pass


def test_a_waiting_writer_holds_back_new_readers() -> None:
    lock = RWLock()
    order: list[str] = []

    def hold(acquire: Callable[[], bool], release: Callable[[], None], name: str) -> None:
        acquire()
        order.append(name)
        release()

    lock.acquire_read()
    writer = threading.Thread(target=hold, args=(lock.acquire_write, lock.release_write, "w"))
    writer.start()
    while lock.acquire_read(timeout=0):  # until the writer waits, a reader still gets in
        lock.release_read()
        time.sleep(0.001)
    reader = threading.Thread(target=hold, args=(lock.acquire_read, lock.release_read, "r"))
    reader.start()
    assert order == []
    lock.release_read()
    writer.join()
    reader.join()
    assert order == ["w", "r"]


def test_a_writer_that_gives_up_lets_readers_in() -> None:
    lock = RWLock()
    with lock.read():
        assert not _elsewhere(lambda: lock.acquire_write(timeout=0))
        assert _elsewhere(lambda: lock.acquire_read(timeout=0))
        lock.release_read()
