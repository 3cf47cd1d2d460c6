"""The matcher's SQL: storing a new target with its original, reading a shard's targets back,
and replacing their features with ones rebuilt from the originals."""

from __future__ import annotations

import datetime as dt
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


# --- rebuilding features from originals (``cloudreco reindex``, matcher/reindex.py)


async def features_older_than(pool: asyncpg.Pool, before: dt.datetime, channel_id: int | None
                              ) -> tuple[list[int], list[tuple[str, str]]]:
    """The images (of one channel, or all) whose features were extracted before ``before``:
    the ids of those with an original, by id (one array: a million is some 40 MB), and
    (channel, identifier) of those without."""
    ids: list[int] | None = await pool.fetchval(
        "SELECT array_agg(id ORDER BY id) FROM images WHERE original IS NOT NULL"
        " AND features_at < $1 AND ($2::bigint IS NULL OR channel_id = $2)", before, channel_id)
    without = await pool.fetch(
        "SELECT c.name, i.identifier FROM images i JOIN channels c ON c.id = i.channel_id"
        " WHERE i.original IS NULL AND i.features_at < $1"
        " AND ($2::bigint IS NULL OR i.channel_id = $2) ORDER BY c.name, i.identifier",
        before, channel_id)
    return ids or [], [(r["name"], r["identifier"]) for r in without]


async def original_of(pool: asyncpg.Pool, image_id: int) -> bytes | None:
    """The original of image ``image_id``; None once the image is gone (or has none)."""
    data: bytes | None = await pool.fetchval(
        "SELECT o.bytes FROM images i JOIN originals o ON o.sha256 = i.original"
        " WHERE i.id = $1", image_id)
    return data


@dataclass(frozen=True)
class Rebuilt:
    level: int
    width: int
    height: int
    feature_version: int
    features: bytes


async def replace_features(pool: asyncpg.Pool, image_id: int, rebuilt: Rebuilt) -> int | None:
    """Store an image's rebuilt features and log their replacement to its shard, in one
    transaction; the level it had, or None when the image is gone."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "WITH was AS (SELECT id, level FROM images WHERE id = $1 FOR UPDATE)"
            " UPDATE images i SET level = $2, width = $3, height = $4, feature_version = $5,"
            " features = $6, features_at = now() FROM was WHERE i.id = was.id"
            " RETURNING i.shard, i.channel_id, was.level AS was",
            image_id, rebuilt.level, rebuilt.width, rebuilt.height, rebuilt.feature_version,
            rebuilt.features)
        if row is None:
            return None
        await changes.append(conn, row["shard"], changes.Op.FEATURES_REPLACED, image_id,
                             row["channel_id"])
        was: int = row["was"]
        return was


async def image_names(pool: asyncpg.Pool, image_ids: list[int]) -> dict[int, str]:
    """``channel/identifier`` of each image among ``image_ids`` that still exists."""
    rows = await pool.fetch(
        "SELECT i.id, c.name || '/' || i.identifier AS name FROM images i"
        " JOIN channels c ON c.id = i.channel_id WHERE i.id = ANY($1::bigint[])", image_ids)
    return {r["id"]: r["name"] for r in rows}
