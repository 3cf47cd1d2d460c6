"""Who is calling: owners' secrets and app keys checked against Postgres, and the limit on
failed authentications per username and per client address, counted in Redis."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import secrets
import time
from dataclasses import dataclass

import asyncpg
from aiohttp import web
from arq.connections import ArqRedis
from redis.exceptions import RedisError

from gateway.catalog import Channel
from shared.credentials import APP_KEY_PREFIX, secret_matches

log = logging.getLogger(__name__)

WINDOW = 60  # seconds over which failed authentications are counted
Networks = list[ipaddress.IPv4Network | ipaddress.IPv6Network]


@dataclass(frozen=True)
class Caller:
    """An authenticated request's owner, and the app key it came with if any."""

    user_id: int
    key_id: int | None = None
    # The channels an app key may search; None: every channel of the owner.
    channel_ids: frozenset[int] | None = None
    # FindImage requests per second an app key may make; None: the owner's limit.
    rate_limit: float | None = None

    @property
    def is_app_key(self) -> bool:
        return self.key_id is not None

    def may_use(self, channel: Channel) -> bool:
        return channel.user_id == self.user_id and (
            self.channel_ids is None or channel.id in self.channel_ids)

    def find_limit(self, owner_limit: float) -> tuple[str, float]:
        """(what FindImage's rate is counted by, requests a second; 0 for no limit): the
        app key's own limit when it has one, else the owner's shared by all its keys."""
        if self.rate_limit is not None:
            return f"key:{self.key_id}", self.rate_limit
        return f"user:{self.user_id}", owner_limit


async def authenticate(db: asyncpg.Pool, username: str, secret: str) -> Caller | None:
    """The caller whose credentials these are, or None. Revoking a key deletes its row, so
    it is refused from the next request on."""
    if username.startswith(APP_KEY_PREFIX):
        key = await db.fetchrow(
            "SELECT k.id, k.user_id, k.secret_salt, k.secret_hash, k.rate_limit,"
            " k.all_channels, array(SELECT channel_id FROM app_key_channels"
            "                       WHERE key_id = k.id) AS channels"
            " FROM app_keys k WHERE k.name = $1", username)
        if key is None or not secret_matches(secret, key["secret_salt"], key["secret_hash"]):
            return None
        return Caller(key["user_id"], key["id"],
                      None if key["all_channels"] else frozenset(key["channels"]),
                      key["rate_limit"])
    user = await db.fetchrow(
        "SELECT id, secret_salt, secret_hash FROM users WHERE name = $1", username)
    if not secret_matches(secret, user and user["secret_salt"], user and user["secret_hash"]):
        return None
    assert user is not None
    return Caller(user["id"])


class FailureLimit:
    """At most ``limit`` failed authentications in any 60 s per username and per client
    address (sorted sets of failure times in Redis); past it every attempt from either is
    refused until the oldest failure is a minute old, right secret or not, so that guessing
    gains nothing. Redis being away lifts the limit
    rather than taking endpoints that need only Postgres down with it."""

    def __init__(self, redis: ArqRedis, limit: int, trusted_proxies: Networks) -> None:
        self.redis = redis
        self.limit = limit
        self.trusted_proxies = trusted_proxies

    def address(self, request: web.Request) -> str:
        return client_address(request, self.trusted_proxies)

    @staticmethod
    def _keys(address: str, username: str | None) -> list[str]:
        keys = [f"cloudreco:authfail:addr:{address}"]
        if username is not None:
            # Hashed: a username is whatever the client sent, of any length.
            name = hashlib.blake2b(username.encode(errors="replace"), digest_size=16)
            keys.append(f"cloudreco:authfail:user:{name.hexdigest()}")
        return keys

    async def exceeded(self, address: str, username: str | None) -> bool:
        """Whether the address or the username failed ``limit`` times in the last minute."""
        if self.limit <= 0:
            return False
        since = time.time() - WINDOW
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in self._keys(address, username):
                    pipe.zcount(key, since, "+inf")
                counts = await pipe.execute()
        except RedisError as e:
            log.warning("failed-authentication counts unreadable, not limiting: %r", e)
            return False
        return any(c >= self.limit for c in counts)

    async def failed(self, address: str, username: str | None) -> None:
        """Count a failure. Refused attempts are not counted, so a set holds at most
        ``limit`` entries however hard it is hammered."""
        if self.limit <= 0:
            return
        now = time.time()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in self._keys(address, username):
                    pipe.zadd(key, {secrets.token_hex(8): now})
                    pipe.zremrangebyscore(key, "-inf", now - WINDOW)
                    pipe.expire(key, WINDOW + 1)
                await pipe.execute()
        except RedisError as e:
            log.warning("failed authentication not counted: %r", e)


def client_address(request: web.Request, trusted: Networks) -> str:
    """The address a request came from: the peer's, or when the peer is a trusted proxy,
    the nearest address in ``X-Forwarded-For`` that is not one (proxies append the address
    they received from, so the rightmost untrusted entry is the one no client can forge)."""
    peer = request.remote or ""
    hops = [peer] + [h.strip() for h in reversed(
        ",".join(request.headers.getall("X-Forwarded-For", [])).split(","))]
    for hop in hops:
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a trusted proxy sent no usable address: count by the proxy
        if not any(address in net for net in trusted):
            return str(address)
    return peer
