"""CORS: pages of the origins in CLOUDRECO_CORS_ORIGINS may call the API from the browser;
pages of any other origin may not, and by default none may."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

import asyncpg
import pytest
from aiohttp import ClientResponse
from arq.connections import ArqRedis
from pydantic import ValidationError

from shared.codes import ResultCode
from shared.settings import Settings
from tests.api import Api, own_gateway

ALLOWED, OTHER = "https://ar.example.com", "https://elsewhere.example.org"
ALLOW_ORIGIN = "Access-Control-Allow-Origin"


def _gateway(settings: Settings, db: asyncpg.Pool, redis: ArqRedis, origins: str
             ) -> AbstractAsyncContextManager[Api]:
    return own_gateway(settings.model_copy(update={"cors_origins": origins}), db, redis)


@pytest.fixture
async def api(settings: Settings, db: asyncpg.Pool, redis: ArqRedis) -> AsyncIterator[Api]:
    """A gateway allowing ALLOWED and a local development origin (no matchers: GetImages
    and preflights need none)."""
    async with _gateway(settings, db, redis, f"{ALLOWED}, http://localhost:3000") as api:
        yield api


async def _preflight(api: Api, origin: str, path: str = "/GetImages", method: str = "POST"
                     ) -> ClientResponse:
    return await api.client.options(path, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "x-request-id"})


async def _list(api: Api, origin: str, secret: str = "alice-secret-0123456789"
                ) -> ClientResponse:
    """GetImages of alice's channel "posters", sent by a page of ``origin``."""
    fields = {"username": "alice", "secretkey": secret, "channel": "posters"}
    return await api.client.post("/GetImages", data=fields, headers={"Origin": origin})


async def test_a_page_of_an_allowed_origin_may_call_the_api(api: Api) -> None:
    await api.channel(await api.user("alice"), "posters")

    preflight = await _preflight(api, ALLOWED)
    assert preflight.status == 200
    assert preflight.headers[ALLOW_ORIGIN] == ALLOWED
    assert preflight.headers["Access-Control-Allow-Methods"] == "POST"
    assert preflight.headers["Access-Control-Allow-Headers"].lower() == "x-request-id"

    listed = await _list(api, ALLOWED)
    assert (await listed.json())["returncode"] == 0
    assert listed.headers[ALLOW_ORIGIN] == ALLOWED
    assert listed.headers["Access-Control-Expose-Headers"] == "X-Request-Id"
    # a refusal too, so that the page can show its code
    refused = await _list(api, ALLOWED, secret="wrong")
    assert (await refused.json())["returncode"] == ResultCode.BAD_SECRET
    assert refused.headers[ALLOW_ORIGIN] == ALLOWED
    assert (await _list(api, "http://localhost:3000")).headers[ALLOW_ORIGIN] == (
        "http://localhost:3000")


async def test_a_page_of_another_origin_gets_no_cors_headers(api: Api) -> None:
    await api.channel(await api.user("alice"), "posters")
    preflight = await _preflight(api, OTHER)
    assert preflight.status == 403 and ALLOW_ORIGIN not in preflight.headers
    listed = await _list(api, OTHER)
    assert listed.status == 200 and ALLOW_ORIGIN not in listed.headers
    # nor for a method the route does not have, nor on what is not the API
    assert (await _preflight(api, ALLOWED, method="DELETE")).status == 403
    assert ALLOW_ORIGIN not in (await _preflight(api, ALLOWED, path="/metrics")).headers


async def test_without_origins_configured_no_page_of_another_origin_may(
        settings: Settings, db: asyncpg.Pool, redis: ArqRedis) -> None:
    async with _gateway(settings, db, redis, "") as api:
        await api.channel(await api.user("alice"), "posters")
        preflight = await _preflight(api, ALLOWED)
        assert preflight.status == 405 and ALLOW_ORIGIN not in preflight.headers
        assert ALLOW_ORIGIN not in (await _list(api, ALLOWED)).headers


async def test_a_star_lets_every_origin(settings: Settings, db: asyncpg.Pool,
                                        redis: ArqRedis) -> None:
    async with _gateway(settings, db, redis, "*") as api:
        await api.channel(await api.user("alice"), "posters")
        assert (await _preflight(api, OTHER)).headers[ALLOW_ORIGIN] == OTHER
        assert (await _list(api, OTHER)).headers[ALLOW_ORIGIN] == OTHER


@pytest.mark.parametrize("origins", ["https://ar.example.com/", "ar.example.com",
                                     "https://a.example.com https://b.example.com"])
def test_what_is_not_an_origin_is_refused_at_start(origins: str) -> None:
    with pytest.raises(ValidationError, match="is not an origin"):
        Settings(cors_origins=origins)
