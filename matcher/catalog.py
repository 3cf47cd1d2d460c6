"""The matcher's SQL: storing a new target with its original, and reading a shard's targets
back."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from shared import changes
from shared.codes import ResultCode
from shared.imageformat import media_type

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
    original: bytes  # the upload, exactly as sent


async def refusal(pool: asyncpg.Pool, channel_id: int, identifier: str) -> ResultCode | None:
    """Why a new image would be refused now (channel gone, identifier taken, channel full),
    or None: checked before the costly extraction; ``insert_image`` checks again atomically."""
    row = await pool.fetchrow(
        "SELECT max_images, image_count,"
        " EXISTS (SELECT 1 FROM images WHERE channel_id = $1 AND identifier = $2) AS taken"
        " FROM channels WHERE id = $1", channel_id, identifier)
    if row is None:
        return ResultCode.CHANNEL_NOT_FOUND
    if row["taken"]:
        return ResultCode.IDENTIFIER_TAKEN
    if row["image_count"] >= row["max_images"]:
        return ResultCode.TOO_MANY_IMAGES
    return None


@dataclass(frozen=True)
class Inserted:
    code: ResultCode
    image_id: int = 0
    seq: int = 0  # the shard's change that adds it


async def insert_image(pool: asyncpg.Pool, image: NewImage) -> Inserted:
    """Store ``image`` with its original and log its addition to its shard, unless its
    identifier is taken (20016) or the channel is full (20012).

    The channel row is locked so that concurrent adds cannot overfill it; its image count is
    kept by a trigger, so the check costs the same in a full channel as in an empty one.
    """
    async with pool.acquire() as conn, conn.transaction():
        channel = await conn.fetchrow(
            "SELECT max_images, image_count FROM channels WHERE id = $1 FOR UPDATE",
            image.channel_id)
        if channel is None:
            return Inserted(ResultCode.CHANNEL_NOT_FOUND)
        if await conn.fetchval(
            "SELECT 1 FROM images WHERE channel_id = $1 AND identifier = $2",
            image.channel_id, image.identifier,
        ):
            return Inserted(ResultCode.IDENTIFIER_TAKEN)
        if channel["image_count"] >= channel["max_images"]:
            return Inserted(ResultCode.TOO_MANY_IMAGES)
        sha256 = await keep_original(conn, image.original)
        image_id: int = await conn.fetchval(
            "INSERT INTO images (channel_id, identifier, metadata, level, shard, width, height,"
            " feature_version, features, original)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            image.channel_id, image.identifier, image.metadata, image.level, image.shard,
            image.width, image.height, image.feature_version, image.features, sha256,
        )
        seq = await changes.append(conn, image.shard, changes.Op.ADDED, image_id,
                                   image.channel_id)
        return Inserted(ResultCode.SUCCESS, image_id, seq)


async def keep_original(conn: asyncpg.Connection, data: bytes) -> bytes:
    """Store ``data`` under its SHA-256 unless it is there already; the key. The row is
    locked until commit (DO UPDATE locks it where DO NOTHING would not), so the trigger that
    drops an original nothing refers to cannot drop it under this image (migration 008)."""
    sha256 = hashlib.sha256(data).digest()
    await conn.execute(
        "INSERT INTO originals (sha256, media_type, size, bytes) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (sha256) DO UPDATE SET media_type = EXCLUDED.media_type",
        sha256, media_type(data), len(data), data)
    return sha256


@dataclass(frozen=True)
class StoredImage:
    image_id: int
    channel_id: int
    feature_version: int
    features: bytes


def _stored(rows: list[asyncpg.Record]) -> list[StoredImage]:
    return [StoredImage(r["id"], r["channel_id"], r["feature_version"], r["features"])
            for r in rows]


async def shard_images(pool: asyncpg.Pool, shard: int) -> AsyncIterator[list[StoredImage]]:
    """Every stored image of ``shard``, in batches."""
    last = 0
    while True:
        rows = await pool.fetch(
            "SELECT id, channel_id, feature_version, features FROM images"
            " WHERE shard = $1 AND id > $2 ORDER BY id LIMIT $3", shard, last, LOAD_BATCH)
        if not rows:
            return
        yield _stored(rows)
        last = rows[-1]["id"]


async def images_by_id(pool: asyncpg.Pool, image_ids: list[int]) -> list[StoredImage]:
    """The stored images among ``image_ids`` (those removed since are absent)."""
    rows = await pool.fetch(
        "SELECT id, channel_id, feature_version, features FROM images"
        " WHERE id = ANY($1::bigint[])", image_ids)
    return _stored(rows)
