"""Catalog images' features, extracted in child processes at a low CPU priority.

A replica's searches and adds share its cores, and a target's extraction costs several
queries'. The child runs at ``Settings.add_nice`` (10 by default), so while a FindImage runs
the kernel gives it most of the cores and the add takes what the search leaves; with no
search running the add has every core. OpenCV's threads inherit the child's priority.
The children also keep the decode's and the synthetic views' heap churn out of the replica's
memory. A child that dies (killed for memory, say) fails the jobs the children held at the
time (the pool ends them all): the next job starts new ones.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import cv2
from threadpoolctl import threadpool_limits

from matcher import features
from matcher.features import Features
from matcher.imaging import ImageRejected, Limits
from matcher.lifeline import die_with_parent
from matcher.memory import release_freed_memory, use_one_heap
from matcher.shard import Expired
from shared.codes import ResultCode

log = logging.getLogger(__name__)
STOP_GRACE = 5.0  # seconds the child gets to finish its job when the replica stops


class ExtractorDied(RuntimeError):
    """The child process ended while it extracted; the job is answered 20015."""


def lower_priority(nice: int) -> None:
    """Run this thread, and the threads it starts, at ``nice``, or at its own if that is
    lower already (only root could raise it)."""
    os.setpriority(os.PRIO_PROCESS, 0, max(nice, os.getpriority(os.PRIO_PROCESS, 0)))


def _start_child(nice: int, threads: int) -> None:
    die_with_parent()  # the forkserver, which dies with the replica
    lower_priority(nice)
    threadpool_limits(1)
    use_one_heap()
    cv2.setNumThreads(threads)


def _extract(image: bytes, limits: Limits, deadline: float) -> Features | ResultCode | None:
    """In the child: the target's features, the code it is refused with, or None when its
    caller gave up before it started."""
    if time.time() > deadline:
        return None
    try:
        return features.target_features(image, limits)
    except ImageRejected as e:
        return e.code
    finally:
        release_freed_memory()


class TargetExtractor:
    """Child processes extracting catalog images' features, ``jobs`` at a time."""

    def __init__(self, nice: int, threads: int, jobs: int = 1) -> None:
        self.nice = nice
        self.threads = threads
        self.jobs = jobs
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # Not a fork of the replica (its threads and event loop would be copied mid-flight):
        # a fork of the forkserver, which imported the extraction code once per replica, so a
        # new child starts in milliseconds. Both die with the replica (matcher/lifeline.py).
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["matcher.forkserver_preload"])
        return ProcessPoolExecutor(self.jobs, mp_context=context, initializer=_start_child,
                                   initargs=(self.nice, self.threads))

    async def start(self) -> int:
        """Start a child now, so that the first AddImage does not wait for its imports; its
        process id."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, os.getpid)

    async def extract(self, image: bytes, limits: Limits, deadline: float) -> Features:
        """A target's features; raises ImageRejected, Expired or ExtractorDied."""
        loop = asyncio.get_running_loop()
        try:
            running = loop.run_in_executor(self._pool, _extract, image, limits, deadline)
        except BrokenProcessPool:  # the child ended between jobs: this one lost nothing
            self._restart()
            running = loop.run_in_executor(self._pool, _extract, image, limits, deadline)
        pool = self._pool
        try:
            result = await running
        except BrokenProcessPool as e:
            if pool is self._pool:
                self._restart()
            raise ExtractorDied("a target extraction process ended during the job") from e
        if result is None:
            raise Expired
        if isinstance(result, ResultCode):
            raise ImageRejected(result)
        return result

    def _restart(self) -> None:
        log.warning("a target extraction process ended; starting others")
        self._pool.shutdown(wait=False)
        self._pool = self._new_pool()

    async def close(self, grace: float = STOP_GRACE) -> None:
        """Stop the children: a job one still holds gets ``grace`` seconds, then it is killed.
        The event loop is not held meanwhile."""
        processes = list(self._pool._processes.values())  # the executor has no public handle
        self._pool.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(_end, processes, grace)


def _end(processes: Sequence[multiprocessing.process.BaseProcess], grace: float) -> None:
    deadline = time.monotonic() + grace
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            log.warning("the target extraction process did not stop in %.0f s; killed", grace)
            p.kill()
            p.join()
