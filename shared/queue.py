"""Connecting to Redis, where jobs and replies travel: one retry policy for every process."""

from __future__ import annotations

from arq.connections import RedisSettings
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError

# A command that meets a dropped connection is retried on a new one, briefly: long outages
# are the callers' to handle (the gateway answers 20015, workers reconnect with backoff).
RETRIES = 2


def redis_settings(url: str) -> RedisSettings:
    settings = RedisSettings.from_dsn(url)
    settings.conn_retries = 1
    settings.retry_on_error = [ConnectionError, TimeoutError]
    settings.retry = Retry(EqualJitterBackoff(cap=0.5, base=0.05), RETRIES)
    return settings
