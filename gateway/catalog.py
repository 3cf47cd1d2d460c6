"""The gateway's SQL: credentials, channels, the catalog and match statistics."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared import changes

PAGE_SIZE = 100  # GetImages page, as the seed's clients expect
# Statistics records per answer: a year of daily counts for 27 channels or identifiers, and a
# bound on what one request reads and sends (the next records are asked for by position).
STATISTICS_PAGE = 10_000


@dataclass(frozen=True)
class Channel:
    id: int
    user_id: int
    name: str
    max_images: int
    image_count: int


async def channel_named(pool: asyncpg.Pool, name: str) -> Channel | None:
    row = await pool.fetchrow(
        "SELECT id, user_id, name, max_images, image_count FROM channels WHERE name = $1",
        name)
    return None if row is None else Channel(**row)


async def user_channels(pool: asyncpg.Pool, user_id: int) -> list[Channel]:
    rows = await pool.fetch(
        "SELECT id, user_id, name, max_images, image_count FROM channels WHERE user_id = $1"
        " ORDER BY name",
        user_id)
    return [Channel(**r) for r in rows]


async def image(pool: asyncpg.Pool, channel_id: int, identifier: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await pool.fetchrow(
        "SELECT id, identifier, metadata, level, shard FROM images"
        " WHERE channel_id = $1 AND identifier = $2", channel_id, identifier)
    return row


@dataclass(frozen=True)
class Original:
    """An image's original upload; ``data`` None when none was kept (images added before
    originals were)."""

    sha256: bytes | None
    media_type: str | None
    data: bytes | None


async def original(pool: asyncpg.Pool, channel_id: int, identifier: str) -> Original | None:
    """The original of the channel's image ``identifier``, or None when there is no image."""
    row = await pool.fetchrow(
        "SELECT o.sha256, o.media_type, o.bytes AS data FROM images i"
        " LEFT JOIN originals o ON o.sha256 = i.original"
        " WHERE i.channel_id = $1 AND i.identifier = $2", channel_id, identifier)
    return None if row is None else Original(**row)


async def delete_image(pool: asyncpg.Pool, channel_id: int, identifier: str) -> bool:
    """Forget an image and log its removal to its shard; whether there was one. Its original
    goes too when no other image has the same bytes (a trigger, migration 008)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "DELETE FROM images WHERE channel_id = $1 AND identifier = $2 RETURNING id, shard",
            channel_id, identifier)
        if row is None:
            return False
        await changes.append(conn, row["shard"], changes.Op.REMOVED, row["id"], channel_id)
    return True


async def set_metadata(pool: asyncpg.Pool, channel_id: int, identifier: str,
                       metadata: str | None) -> bool:
    """Replace an image's metadata; whether there is such an image."""
    status: str = await pool.execute(
        "UPDATE images SET metadata = $3 WHERE channel_id = $1 AND identifier = $2",
        channel_id, identifier, metadata)
    return status != "UPDATE 0"


async def images_page(pool: asyncpg.Pool, channel_id: int, position: int
                      ) -> tuple[int, list[dict[str, Any]]]:
    """(total count, one page of images ordered by identifier with their match ratio and the
    SHA-256 of their original, None where none was kept).

    matchratio is the image's share of all FindImage matches ever counted in the channel
    (its identifier's matches over the channel's), 0 while the channel has none. Both come
    from counters kept with every match, so a page costs the same whatever the history.
    """
    total: int = await pool.fetchval(
        "SELECT image_count FROM channels WHERE id = $1", channel_id)
    rows = await pool.fetch(
        """
        WITH page AS (  -- the seed's position is an offset: skip in the index alone
            SELECT identifier FROM images WHERE channel_id = $1
            ORDER BY identifier OFFSET $2 LIMIT $3
        )
        SELECT i.identifier, i.metadata, i.level,
               CASE WHEN c.match_count = 0 THEN 0.0
                    ELSE coalesce(t.count, 0)::float8 / c.match_count END AS matchratio,
               encode(i.original, 'hex') AS sha256
        FROM page p
        JOIN images i ON i.channel_id = $1 AND i.identifier = p.identifier
        JOIN channels c ON c.id = i.channel_id
        LEFT JOIN match_totals t ON t.channel_id = i.channel_id AND t.identifier = i.identifier
        ORDER BY i.identifier
        """, channel_id, position, PAGE_SIZE)
    return total, [dict(r) for r in rows]


async def images_by_id(pool: asyncpg.Pool, image_ids: list[int]) -> dict[int, asyncpg.Record]:
    """The images among ``image_ids`` that still exist, by id, with their channel's name."""
    rows = await pool.fetch(
        "SELECT i.id, i.identifier, i.metadata, i.channel_id, c.name AS channel FROM images i"
        " JOIN channels c ON c.id = i.channel_id WHERE i.id = ANY($1::bigint[])", image_ids)
    return {r["id"]: r for r in rows}


async def count_match(pool: asyncpg.Pool, channel_id: int, identifier: str, day: dt.date
                      ) -> None:
    """Count a FindImage match: the day's count, the identifier's and the channel's totals."""
    await pool.execute(
        """
        WITH daily AS (
            INSERT INTO match_counts (channel_id, identifier, day, count) VALUES ($1, $2, $3, 1)
            ON CONFLICT (channel_id, identifier, day)
            DO UPDATE SET count = match_counts.count + 1
        ), channel_daily AS (
            INSERT INTO channel_days (channel_id, day, count) VALUES ($1, $3, 1)
            ON CONFLICT (channel_id, day) DO UPDATE SET count = channel_days.count + 1
        ), total AS (
            INSERT INTO match_totals (channel_id, identifier, count) VALUES ($1, $2, 1)
            ON CONFLICT (channel_id, identifier) DO UPDATE SET count = match_totals.count + 1
        )
        UPDATE channels SET match_count = match_count + 1 WHERE id = $1
        """, channel_id, identifier, day)


async def identifier_known(pool: asyncpg.Pool, channel_id: int, identifier: str) -> bool:
    """Whether the identifier is in the channel now or has match history there."""
    known: bool = await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM images WHERE channel_id = $1 AND identifier = $2)"
        " OR EXISTS (SELECT 1 FROM match_counts WHERE channel_id = $1 AND identifier = $2)",
        channel_id, identifier)
    return known


@dataclass(frozen=True)
class RecordsPage:
    """One page of Statistics records as JSON text, written by Postgres (building thousands
    of small dicts in the gateway cost most of a large answer), and whether more follow."""

    json: str
    truncated: bool


def _records_sql(rows: str, name: str) -> str:
    """A query aggregating up to a page + 1 of ``rows`` (day, ``name``, count, ordered) into
    a page of ``{"date", name, "count"}`` objects and whether a row follows the page."""
    return (f"WITH r AS ({rows}),"
            f" n AS (SELECT r.*, row_number() OVER (ORDER BY day, {name}) AS i FROM r)"
            " SELECT coalesce(json_agg(json_build_object("
            f"'date', to_char(day, 'YYYYMMDD'), '{name}', {name}, 'count', count)"
            f" ORDER BY i) FILTER (WHERE i <= {STATISTICS_PAGE}), '[]')::text AS json,"
            f" count(*) > {STATISTICS_PAGE} AS truncated FROM n")


async def _records_page(pool: asyncpg.Pool, query: str, *args: object) -> RecordsPage:
    row = await pool.fetchrow(query, *args, STATISTICS_PAGE + 1)
    return RecordsPage(row["json"], row["truncated"])


async def daily_by_channel(pool: asyncpg.Pool, user_id: int, start: dt.date, end: dt.date,
                           position: int) -> RecordsPage:
    """A page of (date, channel, count) records of the user's channels from ``position``,
    by day then channel. Reads the per-channel day counts, never the identifiers' rows."""
    return await _records_page(pool, _records_sql(
        "SELECT d.day, c.name AS channel, d.count FROM channel_days d"
        " JOIN channels c ON c.id = d.channel_id"
        " WHERE c.user_id = $1 AND d.day BETWEEN $2 AND $3"
        " ORDER BY d.day, c.name OFFSET $4 LIMIT $5", "channel"),
        user_id, start, end, position)


async def daily_by_identifier(pool: asyncpg.Pool, channel_id: int, start: dt.date,
                              end: dt.date, identifier: str | None, position: int
                              ) -> RecordsPage:
    """A page of (date, identifier, count) records of the channel (or of one identifier in
    it) from ``position``, by day then identifier, read in that order from an index: the
    cost is the page's, whatever the history."""
    if identifier is None:
        return await _records_page(pool, _records_sql(
            "SELECT day, identifier, count FROM match_counts"
            " WHERE channel_id = $1 AND day BETWEEN $2 AND $3"
            " ORDER BY day, identifier OFFSET $4 LIMIT $5", "identifier"),
            channel_id, start, end, position)
    return await _records_page(pool, _records_sql(
        "SELECT day, identifier, count FROM match_counts"
        " WHERE channel_id = $1 AND identifier = $2 AND day BETWEEN $3 AND $4"
        " ORDER BY day OFFSET $5 LIMIT $6", "identifier"),
        channel_id, identifier, start, end, position)
