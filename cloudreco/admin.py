"""Operator commands' SQL: users and channels are created here, not through the public API."""

from __future__ import annotations

import unicodedata

import asyncpg

from shared import changes
from shared.credentials import APP_KEY_PREFIX, generate_app_key_name, hash_secret

DEFAULT_MAX_IMAGES = 100_000
# Characters in a user or channel name: room for any naming scheme, and far below what
# Postgres can index (a unique index refuses keys over about 2.7 KB).
MAX_NAME = 255


class AdminError(Exception):
    """A refused operator command; its text says why."""


def check_name(kind: str, name: str) -> None:
    """Refuse a user or channel name that clients could not send or operators could not read:
    empty, longer than ``MAX_NAME``, or holding control characters (NUL, line breaks, tabs).
    Anything else is kept exactly, so look-alikes (a Latin and a Cyrillic "a") make two names."""
    if not name or len(name) > MAX_NAME:
        raise AdminError(f"a {kind} name has 1 to {MAX_NAME} characters")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise AdminError(f"a {kind} name has no control characters")


async def create_user(pool: asyncpg.Pool, name: str, secret: str) -> int:
    check_name("user", name)
    if name.startswith(APP_KEY_PREFIX):
        raise AdminError(f"user names may not start with {APP_KEY_PREFIX!r} (app keys do)")
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
    check_name("channel", channel)
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


async def create_key(pool: asyncpg.Pool, user: str, secret: str, channels: list[str],
                     rate_limit: float | None) -> str:
    """A find-only app key of ``user`` for ``channels`` (all of the user's, present and
    future, when empty); its name, which apps send as ``username``."""
    if rate_limit is not None and rate_limit <= 0:
        raise AdminError("--rate-limit must be above 0")
    name = generate_app_key_name()
    salt, digest = hash_secret(secret)
    async with pool.acquire() as conn, conn.transaction():
        user_id = await conn.fetchval("SELECT id FROM users WHERE name = $1", user)
        if user_id is None:
            raise AdminError(f"no user {user!r}")
        rows = await conn.fetch("SELECT id, name, user_id FROM channels WHERE name = ANY($1)",
                                channels)
        found = {r["name"]: r for r in rows}
        for channel in channels:
            if channel not in found:
                raise AdminError(f"no channel {channel!r}")
            if found[channel]["user_id"] != user_id:
                raise AdminError(f"channel {channel!r} is not {user}'s")
        key_id = await conn.fetchval(
            "INSERT INTO app_keys (user_id, name, secret_salt, secret_hash, all_channels,"
            " rate_limit) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            user_id, name, salt, digest, not channels, rate_limit)
        await conn.executemany(
            "INSERT INTO app_key_channels (key_id, channel_id) VALUES ($1, $2)",
            [(key_id, r["id"]) for r in rows])
    return name


async def list_keys(pool: asyncpg.Pool, user: str | None) -> list[asyncpg.Record]:
    """Every app key (of ``user``): name, owner, channels (None: all), rate limit."""
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT k.name, u.name AS user, k.rate_limit, k.created_at,"
        " CASE WHEN k.all_channels THEN NULL ELSE array("
        "   SELECT c.name FROM app_key_channels kc JOIN channels c ON c.id = kc.channel_id"
        "   WHERE kc.key_id = k.id ORDER BY c.name) END AS channels"
        " FROM app_keys k JOIN users u ON u.id = k.user_id"
        " WHERE $1::text IS NULL OR u.name = $1 ORDER BY u.name, k.created_at", user)
    return rows


async def revoke_key(pool: asyncpg.Pool, name: str) -> None:
    """Delete an app key: the next request that sends it gets 20001."""
    if await pool.fetchval("DELETE FROM app_keys WHERE name = $1 RETURNING id", name) is None:
        raise AdminError(f"no app key {name!r}")
