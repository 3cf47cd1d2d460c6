"""A thin client for the API under test (raw fields, for what no well-behaved client sends),
the project's own client pointed at it, and factories for users, channels and images."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from arq.connections import ArqRedis

from cloudreco import admin
from cloudreco.client import AsyncClient
from gateway.app import create_app
from shared.settings import Settings


@dataclass(frozen=True)
class User:
    name: str
    secret: str

    @property
    def credentials(self) -> dict[str, str]:
        return {"username": self.name, "secretkey": self.secret}


class Api:
    def __init__(self, client: TestClient, db: asyncpg.Pool) -> None:
        self.client = client
        self.db = db

    async def user(self, name: str = "alice", secret: str | None = None) -> User:
        secret = secret or f"{name}-secret-0123456789"
        await admin.create_user(self.db, name, secret)
        return User(name, secret)

    async def channel(self, user: User, name: str, max_images: int = 100) -> str:
        await admin.create_channel(self.db, user.name, name, max_images)
        return name

    async def stored(self, channel: str, identifiers: list[str]) -> None:
        """Catalog rows written directly, for tests of reads only (adding many images
        through the matchers would only slow them down)."""
        channel_id = await self.db.fetchval("SELECT id FROM channels WHERE name = $1", channel)
        await self.db.executemany(
            "INSERT INTO images (channel_id, identifier, metadata, level, shard, width, height,"
            " feature_version, features) VALUES ($1, $2, $3, 3, 0, 10, 10, 0, '')",
            [(channel_id, i, f'{{"n": "{i}"}}') for i in identifiers])

    @property
    def url(self) -> str:
        """The gateway's base URL (a real socket)."""
        return str(self.client.make_url("/"))

    def connect(self, user: User | None = None, **options: Any) -> AsyncClient:
        """``cloudreco.client.AsyncClient`` on this gateway with ``user``'s credentials."""
        return AsyncClient(self.url, user.name if user else None,
                           user.secret if user else None, **options)

    async def post(self, endpoint: str, fields: dict[str, str] | None = None, *,
                   image: bytes | None = None, urlencoded: bool = False,
                   expect_status: int = 200, headers: dict[str, str] | None = None
                   ) -> dict[str, Any]:
        """POST to ``/endpoint`` as a browser would (multipart unless ``urlencoded``)."""
        fields = fields or {}
        data: Any
        if urlencoded:
            data = fields
        else:
            data = aiohttp.FormData(default_to_multipart=True)
            for name, value in fields.items():
                data.add_field(name, value)
            if image is not None:
                # A stream, as a browser sends a file (aiohttp warns on large raw bytes).
                data.add_field("image", io.BytesIO(image), filename="photo.jpg",
                               content_type="application/octet-stream")
        resp = await self.client.post(f"/{endpoint}", data=data, headers=headers)
        assert resp.status == expect_status, await resp.text()
        body: dict[str, Any] = await resp.json()
        assert "returncode" in body and "message" in body
        return body

    async def add(self, user: User, channel: str, identifier: str, image: bytes,
                  metadata: str | None = None) -> dict[str, Any]:
        fields = {**user.credentials, "channel": channel, "identifier": identifier}
        if metadata is not None:
            fields["metadata"] = metadata
        return await self.post("AddImage", fields, image=image)

    async def find(self, user: User, image: bytes, channel: str | None = None
                   ) -> dict[str, Any]:
        fields = dict(user.credentials)
        if channel is not None:
            fields["channel"] = channel
        return await self.post("FindImage", fields, image=image)


@contextlib.asynccontextmanager
async def own_gateway(settings: Settings, db: asyncpg.Pool, redis: ArqRedis
                      ) -> AsyncIterator[Api]:
    """A gateway of its own on ``settings``, beside the test's replicas."""
    client = TestClient(TestServer(create_app(settings, db=db, redis=redis)))
    await client.start_server()
    try:
        yield Api(client, db)
    finally:
        await client.close()


async def burst(calls: list[Awaitable[dict[str, Any]]], limit: float) -> list[int]:
    """Send ``calls`` at once; their codes, after checking that no more than ``limit`` a
    second were answered 0 in the clock seconds the burst spanned (the gateway's windows)."""
    started = time.time()
    answers = await asyncio.gather(*calls)
    spanned = int(time.time()) - int(started) + 1
    codes = [a["returncode"] for a in answers]
    assert codes.count(0) <= limit * spanned, (codes, spanned)
    return codes
