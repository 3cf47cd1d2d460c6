"""Operator commands' SQL: users and channels are created here, not through the public API."""

from __future__ import annotations

import asyncpg

from shared import changes
from shared.credentials import hash_secret

DEFAULT_MAX_IMAGES = 100_000


class AdminError(Exception):
    """A refused operator command; its text says why."""


async def create_user(pool: asyncpg.Pool, name: str, secret: str) -> int:
    salt, digest = hash_secret(secret)
    try:
        user_id: int = await pool.fetchval(
            "INSERT INTO users (name, secret_salt, secret_hash) VALUES ($1, $2, $3) RETURNING id",
            name, salt, digest)
    except asyncpg.UniqueViolationError as e:
        raise AdminError(f"user {name!r} exists") from e
    return user_id


async def list_users(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT u.name, count(c.id) AS channels FROM users u"
        " LEFT JOIN channels c ON c.user_id = u.id GROUP BY u.id ORDER BY u.name")
    return rows


async def create_channel(pool: asyncpg.Pool, user: str, channel: str, max_images: int) -> int:
    if max_images < 1:
        raise AdminError("--max-images must be at least 1")
    user_id = await pool.fetchval("SELECT id FROM users WHERE name = $1", user)
    if user_id is None:
        raise AdminError(f"no user {user!r}")
    try:
        channel_id: int = await pool.fetchval(
            "INSERT INTO channels (user_id, name, max_images) VALUES ($1, $2, $3) RETURNING id",
            user_id, channel, max_images)
    except asyncpg.UniqueViolationError as e:
        raise AdminError(f"channel {channel!r} exists") from e
    return channel_id


async def list_channels(pool: asyncpg.Pool, user: str | None) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT c.name, u.name AS user, c.max_images, c.image_count AS images FROM channels c"
        " JOIN users u ON u.id = c.user_id"
        " WHERE $1::text IS NULL OR u.name = $1 ORDER BY c.name", user)
    return rows


async def delete_channel(pool: asyncpg.Pool, channel: str) -> None:
    """Delete a channel with its images and statistics; every shard's replicas drop its
    index as they follow their change log."""
    async with pool.acquire() as conn, conn.transaction():
        deleted = await conn.fetchval(
            "DELETE FROM channels WHERE name = $1 RETURNING id", channel)
        if deleted is None:
            raise AdminError(f"no channel {channel!r}")
        shards = await conn.fetchval("SELECT shards FROM cluster") or 0
        for shard in range(shards):
            await changes.append(conn, shard, changes.Op.CHANNEL_DROPPED, 0, deleted)
