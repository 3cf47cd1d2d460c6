"""The matcher's SQL: storing a new target, and reading a shard's targets back at start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from shared.codes import ResultCode

LOAD_BATCH = 256  # rows per fetch while rebuilding: bounds memory at start-up


@dataclass(frozen=True)
class NewImage:
    channel_id: int
    identifier: str
    metadata: str | None
    level: int
    shard: int
    width: int
    height: int
    feature_version: int
    features: bytes


async def insert_image(pool: asyncpg.Pool, image: NewImage) -> tuple[ResultCode, int]:
    """Store ``image`` unless its identifier is taken (20016) or the channel is full (20012).

    The channel row is locked so that concurrent adds cannot overfill it.
    """
    async with pool.acquire() as conn, conn.transaction():
        max_images = await conn.fetchval(
            "SELECT max_images FROM channels WHERE id = $1 FOR UPDATE", image.channel_id)
        if max_images is None:
            return ResultCode.CHANNEL_NOT_FOUND, 0
        if await conn.fetchval(
            "SELECT 1 FROM images WHERE channel_id = $1 AND identifier = $2",
            image.channel_id, image.identifier,
        ):
            return ResultCode.IDENTIFIER_TAKEN, 0
        count = await conn.fetchval(
            "SELECT count(*) FROM images WHERE channel_id = $1", image.channel_id)
        if count >= max_images:
            return ResultCode.TOO_MANY_IMAGES, 0
        image_id: int = await conn.fetchval(
            "INSERT INTO images (channel_id, identifier, metadata, level, shard, width, height,"
            " feature_version, features) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            " RETURNING id",
            image.channel_id, image.identifier, image.metadata, image.level, image.shard,
            image.width, image.height, image.feature_version, image.features,
        )
        return ResultCode.SUCCESS, image_id


async def delete_image(pool: asyncpg.Pool, image_id: int) -> None:
    await pool.execute("DELETE FROM images WHERE id = $1", image_id)


@dataclass(frozen=True)
class StoredImage:
    image_id: int
    channel_id: int
    feature_version: int
    features: bytes


async def shard_images(pool: asyncpg.Pool, shard: int, shards: int
                       ) -> AsyncIterator[list[StoredImage]]:
    """Every stored image this shard owns (``shard`` column modulo ``shards``), in batches."""
    last = 0
    while True:
        rows = await pool.fetch(
            "SELECT id, channel_id, feature_version, features FROM images"
            " WHERE id > $1 AND shard % $2 = $3 ORDER BY id LIMIT $4",
            last, shards, shard, LOAD_BATCH,
        )
        if not rows:
            return
        yield [StoredImage(r["id"], r["channel_id"], r["feature_version"], r["features"])
               for r in rows]
        last = rows[-1]["id"]
