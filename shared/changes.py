"""Each shard's change log in Postgres: what every replica of the shard applies, in order.

A change is appended in the same transaction as the catalog write it describes, so the log
and the catalog never disagree. Appending bumps the shard's head row, which holds that row's
lock until commit: a shard's changes commit in ``seq`` order, with no gaps, and a reader that
sees seq N has seen every change before it. Commit also sends a notification on
``NOTIFY_CHANNEL`` (payload: the shard), which replicas listen for instead of polling.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import asyncpg

NOTIFY_CHANNEL = "cloudreco_changes"


class Op(IntEnum):
    ADDED = 1
    REMOVED = 2
    CHANNEL_DROPPED = 3  # every image of the channel is gone (``image_id`` is 0)
    FEATURES_REPLACED = 4  # the image's stored features were rebuilt (``cloudreco reindex``)


@dataclass(frozen=True)
class Change:
    seq: int
    op: Op
    image_id: int
    channel_id: int


async def append(conn: asyncpg.Connection, shard: int, op: Op, image_id: int,
                 channel_id: int) -> int:
    """Log a change of ``shard`` inside the caller's transaction; its seq."""
    seq: int = await conn.fetchval(
        "INSERT INTO shard_heads (shard, seq) VALUES ($1, 1)"
        " ON CONFLICT (shard) DO UPDATE SET seq = shard_heads.seq + 1 RETURNING seq", shard)
    await conn.execute(
        "INSERT INTO shard_changes (shard, seq, op, image_id, channel_id)"
        " VALUES ($1, $2, $3, $4, $5)", shard, seq, int(op), image_id, channel_id)
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, str(shard))
    return seq


async def heads(conn: asyncpg.Pool | asyncpg.Connection, shards: int) -> list[int]:
    """The last seq of every shard (0 where nothing was logged yet)."""
    rows = await conn.fetch("SELECT shard, seq FROM shard_heads WHERE shard < $1", shards)
    found = [0] * shards
    for r in rows:
        found[r["shard"]] = r["seq"]
    return found


async def since(pool: asyncpg.Pool, shard: int, seq: int, limit: int) -> list[Change]:
    """Up to ``limit`` changes of ``shard`` after ``seq``, in order."""
    rows = await pool.fetch(
        "SELECT seq, op, image_id, channel_id FROM shard_changes"
        " WHERE shard = $1 AND seq > $2 ORDER BY seq LIMIT $3", shard, seq, limit)
    return [Change(r["seq"], Op(r["op"]), r["image_id"], r["channel_id"]) for r in rows]


async def first_kept(pool: asyncpg.Pool, shard: int) -> int:
    """The oldest seq of ``shard`` still in the log (the head + 1 when none is): an index at
    seq S can be brought up to date from the log only if S + 1 >= this."""
    row = await pool.fetchrow(
        "SELECT (SELECT min(seq) FROM shard_changes WHERE shard = $1) AS oldest,"
        " (SELECT seq FROM shard_heads WHERE shard = $1) AS head", shard)
    if row["oldest"] is not None:
        oldest: int = row["oldest"]
        return oldest
    return (row["head"] or 0) + 1


async def prune(pool: asyncpg.Pool, shard: int, before: int, keep_seconds: float) -> int:
    """Drop ``shard``'s changes at or below seq ``before`` older than ``keep_seconds``; how
    many. Replicas whose snapshots are older than what is left rebuild from Postgres."""
    done: str = await pool.execute(
        "DELETE FROM shard_changes WHERE shard = $1 AND seq <= $2"
        " AND at < now() - make_interval(secs => $3)", shard, before, keep_seconds)
    return int(done.split()[-1])
