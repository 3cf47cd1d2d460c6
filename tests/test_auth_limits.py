"""Failed authentications are limited per username and per client address, so that a secret
cannot be guessed at the rate the gateway answers, nor channel and image names listed
through GetImage's anonymous lookups."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from arq.connections import ArqRedis

from shared.codes import ResultCode
from shared.settings import Settings
from tests.api import Api, User, own_gateway
from tests.conftest import Shards
from tests.images import target

LIMIT = 3


@pytest.fixture
async def limited(settings: Settings, db: asyncpg.Pool, redis: ArqRedis
                  ) -> AsyncIterator[Api]:
    """A gateway allowing LIMIT failures a minute, behind a proxy on 127.0.0.1 that names
    each test client by X-Forwarded-For."""
    tight = settings.model_copy(update={"auth_failure_limit": LIMIT,
                                        "trusted_proxies": "127.0.0.1,::1"})
    async with own_gateway(tight, db, redis) as api:
        yield api


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def _images(api: Api, user: User, address: str) -> int:
    answer = await api.post("GetImages", {**user.credentials, "channel": "posters"},
                            headers=_from(address))
    code: int = answer["returncode"]
    return code


async def test_a_username_past_the_limit_is_refused_even_with_its_secret(limited: Api) -> None:
    alice, bob = await limited.user("alice"), await limited.user("bob")
    await limited.channel(alice, "posters")
    await limited.channel(bob, "bobs")
    wrong = User("alice", "guess")
    for n in range(LIMIT):  # each guess from another address
        assert await _images(limited, wrong, f"10.0.0.{n}") == ResultCode.BAD_SECRET
    assert await _images(limited, alice, "10.0.1.1") == ResultCode.AUTH_LIMITED
    bobs = await limited.post("GetImages", {**bob.credentials, "channel": "bobs"},
                              headers=_from("10.0.1.1"))
    assert bobs["returncode"] == 0  # the address is not limited, nor are other users


async def test_an_address_past_the_limit_is_refused_for_every_username(limited: Api) -> None:
    alice = await limited.user("alice")
    await limited.channel(alice, "posters")
    for n in range(LIMIT):
        assert await _images(limited, User(f"nobody{n}", "guess"), "10.0.2.1") \
            == ResultCode.BAD_SECRET
    assert await _images(limited, alice, "10.0.2.1") == ResultCode.AUTH_LIMITED
    assert await _images(limited, alice, "10.0.2.2") == 0


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(
        settings: Settings, db: asyncpg.Pool, redis: ArqRedis) -> None:
    tight = settings.model_copy(update={"auth_failure_limit": LIMIT})
    async with own_gateway(tight, db, redis) as api:
        alice = await api.user("alice")
        await api.channel(alice, "posters")
        for n in range(LIMIT):
            assert await _images(api, User(f"nobody{n}", "guess"), f"10.0.3.{n}") \
                == ResultCode.BAD_SECRET
        assert await _images(api, alice, "10.0.3.9") == ResultCode.AUTH_LIMITED


async def test_anonymous_lookups_of_missing_names_are_limited_per_address(
        shards: Shards, limited: Api) -> None:
    alice = await limited.user("alice")
    await limited.channel(alice, "posters")
    assert (await limited.add(alice, "posters", "garden", target("pub.building.0"))
            )["returncode"] == 0
    for n in range(LIMIT):
        missing = await limited.post("GetImage", {"channel": "posters", "identifier": f"x{n}"},
                                     headers=_from("10.0.4.1"))
        assert missing["returncode"] == ResultCode.IDENTIFIER_NOT_FOUND
    known = {"channel": "posters", "identifier": "garden"}
    assert (await limited.post("GetImage", known, headers=_from("10.0.4.1"))
            )["returncode"] == ResultCode.AUTH_LIMITED
    assert (await limited.post("GetImage", known, headers=_from("10.0.4.2"))
            )["returncode"] == 0
    # Found lookups are not failures: an app reading metadata is never limited by them.
    for _ in range(LIMIT + 1):
        assert (await limited.post("GetImage", known, headers=_from("10.0.4.3"))
                )["returncode"] == 0


async def test_a_wrong_secret_is_never_logged(limited: Api, caplog: pytest.LogCaptureFixture
                                              ) -> None:
    await limited.user("alice")
    caplog.set_level("DEBUG")
    await _images(limited, User("alice", "my-guessed-secret-xyz"), "10.0.5.1")
    assert "my-guessed-secret-xyz" not in caplog.text
