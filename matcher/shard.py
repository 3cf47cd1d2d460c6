"""A replica's copy of its shard: the channel indexes, kept in step with the shard's change
log in Postgres, loaded from a snapshot or rebuilt, and saved as snapshots.

Every replica of a shard applies the same log in the same order, so all hold the same
indexes; ``applied`` is the last change an index reflects. Searches wait (bounded) until
``applied`` reaches the position the gateway read when the request came in, so a FindImage
sees every AddImage and RemoveImage answered before it, whichever replica takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ParamSpec, TypeVar

import asyncpg

from matcher import features, snapshot
from matcher.catalog import StoredImage, images_by_id, shard_images
from matcher.features import Features
from matcher.memory import release_freed_memory
from matcher.recognition import ChannelIndex
from shared import changes
from shared.changes import Change, Op

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
APPLY_BATCH = 256  # changes read per query while catching up
REBUILD_BATCH = 2048  # images inserted into the indexes per hnswlib call while rebuilding
POLL = 1.0  # seconds between looks at the log when no notification arrives
MAX_BACKOFF = 10.0  # seconds, between reconnections to Postgres


# What Postgres or Redis going away raises (asyncpg's InternalClientError: a connection cut
# in the middle of an operation).
GONE = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)


# The changes whose image's features are read from Postgres and indexed.
_READS = (Op.ADDED, Op.FEATURES_REPLACED)


class LogGap(RuntimeError):
    """Changes this replica has not applied were pruned from the log: it must rebuild."""


class Expired(Exception):
    """A job's caller has given up: the work was not done."""


def backoff(attempt: int, cap: float = MAX_BACKOFF) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): exponential with full jitter."""
    return random.uniform(0.5, 1.0) * min(cap, 0.2 * 2.0**attempt)


class Shard:
    """The indexes of one shard in this replica, and what keeps them current."""

    def __init__(self, shard: int, pool: asyncpg.Pool, executor: ThreadPoolExecutor,
                 threads: int) -> None:
        self.shard = shard
        self.pool = pool
        self.executor = executor
        self.threads = threads
        self.indexes: dict[int, ChannelIndex] = {}
        self.applied = 0
        self.saved: int | None = None  # the change of the newest snapshot saved or loaded
        self.saved_at: float | None = None  # when that snapshot was written (epoch seconds)
        self._applying = asyncio.Lock()
        self._advanced = asyncio.Condition()
        self._wake = asyncio.Event()

    async def cpu(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run CPU work on the thread pool (in this task's context: its request id)."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        return await loop.run_in_executor(self.executor,
                                          lambda: context.run(fn, *args, **kwargs))

    async def cpu_until(self, deadline: float, fn: Callable[P, T], *args: P.args,
                        **kwargs: P.kwargs) -> T:
        """``cpu``, unless the wall-clock ``deadline`` has passed when a thread is free."""
        def run() -> T:
            if time.time() > deadline:
                raise Expired
            return fn(*args, **kwargs)

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, contextvars.copy_context().run, run)

    def index(self, channel_id: int, dim: int) -> ChannelIndex:
        found = self.indexes.get(channel_id)
        if found is None:
            found = self.indexes[channel_id] = ChannelIndex(dim)
        return found

    def _current(self, stored: list[StoredImage]) -> list[StoredImage]:
        current = []
        for s in stored:
            if s.feature_version == features.FEATURE_VERSION:
                current.append(s)
            else:
                log.warning("image %d has features of version %d, this matcher indexes %d: "
                            "`cloudreco reindex` rebuilds them from its original",
                            s.image_id, s.feature_version, features.FEATURE_VERSION)
        return current

    # --- start-up

    async def load(self, root: Path | None, ident: snapshot.Identity) -> str:
        """Fill the indexes from the newest usable snapshot and the log after it, or else by
        a rebuild from Postgres; says which."""
        head = (await changes.heads(self.pool, self.shard + 1))[self.shard]
        first_kept = await changes.first_kept(self.pool, self.shard)
        found = None
        if root is not None:
            found = await self.cpu(snapshot.load, root, ident, head, first_kept)
        if found is not None:
            self.indexes, self.applied = found.indexes, found.seq
            self.saved, self.saved_at = found.seq, found.written
            how = f"snapshot at change {found.seq}"
        else:
            await self._rebuild()
            self.applied = head
            how = "rebuild from Postgres"
        await self.catch_up()
        await self.cpu(release_freed_memory)
        return how

    async def _rebuild(self) -> None:
        """Index every stored image of the shard, a batch per channel at a time on every
        thread. Changes logged meanwhile are replayed afterwards by ``catch_up``."""
        pending: dict[int, list[tuple[int, Features]]] = {}
        waiting = 0
        async for batch in shard_images(self.pool, self.shard):
            current = self._current(batch)
            decoded = await self.cpu(lambda b: [features.decode(s.features) for s in b],
                                     current)
            for s, f in zip(current, decoded, strict=True):
                pending.setdefault(s.channel_id, []).append((s.image_id, f))
            waiting += len(current)
            if waiting >= REBUILD_BATCH:
                await self._insert(pending)
                pending, waiting = {}, 0
        await self._insert(pending)

    async def _insert(self, pending: dict[int, list[tuple[int, Features]]]) -> None:
        for channel_id, items in pending.items():
            index = self.index(channel_id, items[0][1].desc.shape[1])
            await self.cpu(index.add_many, items, self.threads)

    # --- following the log

    async def catch_up(self, known: dict[int, Features] | None = None) -> int:
        """Apply every logged change after ``applied``; the new position. ``known`` holds
        features already in memory (an image this replica has just stored)."""
        async with self._applying:
            while True:
                batch = await changes.since(self.pool, self.shard, self.applied, APPLY_BATCH)
                if not batch:
                    return self.applied
                if batch[0].seq != self.applied + 1:
                    raise LogGap(f"shard {self.shard} at change {self.applied}, but the log "
                                 f"goes on from {batch[0].seq}")
                await self._apply(batch, known or {})
                async with self._advanced:
                    self.applied = batch[-1].seq
                    self._advanced.notify_all()

    async def _apply(self, batch: list[Change], known: dict[int, Features]) -> None:
        """Apply ``batch``. An added or replaced image is indexed with the features Postgres
        holds now (a later change of the batch may be reflected early; applying it again
        changes nothing); a replacement swaps its entries in one hold of the index, so no
        search sees the image missing."""
        wanted = [c.image_id for c in batch if c.op in _READS and c.image_id not in known]
        stored = self._current(await images_by_id(self.pool, wanted)) if wanted else []
        decoded = await self.cpu(lambda b: [features.decode(s.features) for s in b], stored)
        found = {**known, **{s.image_id: f for s, f in zip(stored, decoded, strict=True)}}
        for c in batch:
            index = self.indexes.get(c.channel_id)
            if c.op in _READS:
                # absent: removed since (a later change says so), or of another version
                # (then a replaced image keeps the entries it had)
                f = found.get(c.image_id)
                fresh = index is None or c.image_id not in index
                if f is not None and (fresh or c.op == Op.FEATURES_REPLACED):
                    await self.cpu(self.index(c.channel_id, f.desc.shape[1]).add,
                                   c.image_id, f)
            elif c.op == Op.REMOVED:
                if index is not None and c.image_id in index:
                    await self.cpu(index.remove, c.image_id)
            else:
                self.indexes.pop(c.channel_id, None)

    async def reached(self, seq: int, deadline: float) -> bool:
        """Wait until the indexes reflect change ``seq``, at most until the wall-clock
        ``deadline``; whether they do."""
        if self.applied >= seq:
            return True
        self._wake.set()
        async with self._advanced:
            try:
                async with asyncio.timeout(max(0.0, deadline - time.time())):
                    await self._advanced.wait_for(lambda: self.applied >= seq)
            except TimeoutError:
                return False
        return True

    async def follow(self, dsn: str, stop: asyncio.Event) -> None:
        """Apply changes as they are logged until ``stop``: woken by Postgres notifications,
        by ``reached``, and every ``POLL`` seconds. Survives Postgres going away."""
        attempt = 0
        while not stop.is_set():
            listener: asyncpg.Connection | None = None
            try:
                listener = await asyncpg.connect(dsn, timeout=5)
                await listener.add_listener(changes.NOTIFY_CHANNEL, self._notified)
                while not stop.is_set():
                    await self.catch_up()
                    attempt = 0
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), POLL)
                    if listener.is_closed():
                        raise ConnectionError("notification connection closed")
            except (*GONE, TimeoutError) as e:
                delay = backoff(attempt)
                attempt += 1
                log.warning("shard %d: change log unreachable (%r); retrying in %.1f s",
                            self.shard, e, delay)
                await sleep_unless(stop, delay)
            finally:
                if listener is not None:
                    listener.terminate()

    def _notified(self, conn: object, pid: int, channel: str, payload: str) -> None:
        if payload == str(self.shard):
            self._wake.set()

    # --- snapshots

    async def save(self, root: Path, ident: snapshot.Identity) -> Path:
        """Snapshot the indexes; changes wait until it is written."""
        async with self._applying:
            where = await self.cpu(snapshot.save, root, ident, self.applied, dict(self.indexes))
            self.saved, self.saved_at = self.applied, time.time()
            return where


async def sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
