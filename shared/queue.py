"""Connecting to Redis, where jobs and replies travel: one retry policy for every process, and
the client the gateway sends its jobs with."""

from __future__ import annotations

from typing import Any

import redis.asyncio
from arq.connections import ArqRedis, RedisSettings
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError

from shared.jobs import deserialize, serialize

# A command that meets a dropped connection is retried on a new one, briefly: long outages
# are the callers' to handle (the gateway answers 20015, workers reconnect with backoff).
RETRIES = 2
CONNECT_TIMEOUT = 1.0  # seconds, as arq's RedisSettings


def _retry() -> Retry:
    return Retry(EqualJitterBackoff(cap=0.5, base=0.05), RETRIES)


def redis_settings(url: str) -> RedisSettings:
    settings = RedisSettings.from_dsn(url)
    settings.conn_retries = 1
    settings.retry_on_error = [ConnectionError, TimeoutError]
    settings.retry = _retry()
    return settings


class ConnectionPool(redis.asyncio.ConnectionPool):
    """redis-py's pool, checking the connection it hands out after letting go of its lock.

    redis-py 5 holds the pool's lock while it checks a connection, and the check waits one
    turn of the event loop even for a healthy one, so under concurrency every command of the
    process queued behind all the others: with 64 load-test users a gateway's one-round-trip
    admission check took 30-80 ms (median) instead of about one. redis-py 7.2 makes the same
    change (redis/redis-py#3885); arq 0.28 needs redis-py below 6.
    """

    async def get_connection(self, command_name: str | None = None, *keys: Any,
                             **options: Any) -> AbstractConnection:
        async with self._lock:
            connection: AbstractConnection = self.get_available_connection()  # type: ignore[no-untyped-call]
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection


async def connect(url: str) -> ArqRedis:
    """An arq client on ``url`` (jobs in ``shared.jobs``' format) over ``ConnectionPool``,
    with the retry policy of ``redis_settings``; it has answered a PING."""
    pool = ConnectionPool.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT, retry=_retry(),
                                   retry_on_error=[ConnectionError, TimeoutError])
    client = ArqRedis(pool, job_serializer=serialize, job_deserializer=deserialize)
    client.auto_close_connection_pool = True  # its pool closes with it (as Redis.from_pool)
    try:
        await client.ping()
    except BaseException:
        await client.aclose()
        raise
    return client
