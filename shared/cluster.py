"""The shard map: how many shards the catalog is spread over, kept once in Postgres.

Every process compares its ``CLOUDRECO_SHARDS`` with the stored count and refuses to start
on a mismatch; ``reshard`` moves the catalog to another count.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import asyncpg

RESHARD_BATCH = 1000  # images re-assigned per statement


class ShardMapMismatch(RuntimeError):
    """This process was configured for another shard count than the catalog's."""


@dataclass(frozen=True)
class ShardMap:
    shards: int
    cluster_id: str  # names the database: snapshots of another one are foreign
    # Changes with every reshard: snapshots of another generation describe another map.
    generation: int


def shard_of(channel_id: int, identifier: str, shards: int) -> int:
    """The shard an image lives on: a stable hash, so images spread evenly."""
    return zlib.crc32(f"{channel_id}/{identifier}".encode()) % shards


async def stored_map(pool: asyncpg.Pool) -> ShardMap | None:
    row = await pool.fetchrow("SELECT shards, id, generation FROM cluster")
    return None if row is None else ShardMap(row["shards"], str(row["id"]), row["generation"])


async def shard_map(pool: asyncpg.Pool, shards: int) -> ShardMap:
    """The stored map, checked against ``shards``; the first process to ask records it.

    Raises ShardMapMismatch, saying what to do, when the counts differ.
    """
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT shards, id, generation FROM cluster")
        if row is None:
            await conn.execute("LOCK TABLE cluster IN EXCLUSIVE MODE")
            row = await conn.fetchrow("SELECT shards, id, generation FROM cluster")
        if row is None:
            # A catalog from before the map kept `shard` modulo the running count.
            await conn.execute("UPDATE images SET shard = shard % $1 WHERE shard >= $1", shards)
            row = await conn.fetchrow(
                "INSERT INTO cluster (shards) VALUES ($1) RETURNING shards, id, generation", shards)
    found = ShardMap(row["shards"], str(row["id"]), row["generation"])
    if found.shards != shards:
        raise ShardMapMismatch(
            f"CLOUDRECO_SHARDS is {shards} but the catalog is spread over {found.shards} "
            f"shards: set CLOUDRECO_SHARDS={found.shards}, or stop the stack and run "
            f"`cloudreco reshard {shards}`")
    return found


async def reshard(pool: asyncpg.Pool, shards: int) -> tuple[int, int]:
    """Move every image to its shard under ``shards`` in one transaction; (images moved,
    images in all). The change logs restart and the generation changes, so every matcher
    rebuilds from Postgres when it next starts. Run it with the matchers stopped."""
    if shards < 1:
        raise ValueError("a catalog needs at least one shard")
    moved = total = 0
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("LOCK TABLE cluster, images, shard_heads, shard_changes"
                           " IN EXCLUSIVE MODE")
        last = 0
        while True:
            rows = await conn.fetch(
                "SELECT id, channel_id, identifier, shard FROM images WHERE id > $1"
                " ORDER BY id LIMIT $2", last, RESHARD_BATCH)
            if not rows:
                break
            total += len(rows)
            updates = [(r["id"], shard_of(r["channel_id"], r["identifier"], shards))
                       for r in rows]
            updates = [(i, s) for (i, s), r in zip(updates, rows, strict=True) if s != r["shard"]]
            if updates:
                await conn.executemany("UPDATE images SET shard = $2 WHERE id = $1", updates)
            moved += len(updates)
            last = rows[-1]["id"]
        await conn.execute("DELETE FROM shard_changes")
        await conn.execute("DELETE FROM shard_heads")
        await conn.execute(
            "INSERT INTO cluster (shards) VALUES ($1) ON CONFLICT (one)"
            " DO UPDATE SET shards = $1, generation = cluster.generation + 1", shards)
    return moved, total
