"""App keys: what an app or a web page carries. They find images in their channels and read
a found image's metadata, and nothing else; revoking one takes effect at once."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from arq.connections import ArqRedis

from cloudreco import admin
from shared.codes import ResultCode
from shared.settings import Settings
from tests.api import Api, User, burst, own_gateway
from tests.conftest import Shards
from tests.images import photo_of, target
from tests.test_cli import cloudreco

GARDEN, HOME = "pub.building.0", "pub.home.0"
KEY_SECRET = "app-key-secret-0123456789abcdef"


async def _two_channels(api: Api) -> User:
    """alice's garden in "posters" and home in "covers"."""
    alice = await api.user("alice")
    for channel, identifier, name in (("posters", "garden", GARDEN), ("covers", "home", HOME)):
        await api.channel(alice, channel)
        added = await api.add(alice, channel, identifier, target(name))
        assert added["returncode"] == ResultCode.SUCCESS
    return alice


async def _key(api: Api, channels: list[str], rate_limit: float | None = None) -> User:
    name = await admin.create_key(api.db, "alice", KEY_SECRET, channels, rate_limit)
    return User(name, KEY_SECRET)


async def test_an_app_key_finds_only_in_its_channels(api: Api) -> None:
    await _two_channels(api)
    app = await _key(api, ["posters"])
    garden, home = photo_of(GARDEN, seed=2)[0], photo_of(HOME, seed=2)[0]

    found = await api.find(app, garden, "posters")
    assert (found["returncode"], found["identifier"]) == (0, "garden")
    assert (await api.find(app, home, "covers"))["returncode"] == ResultCode.NOT_YOUR_CHANNEL
    found = await api.find(app, garden)  # no channel: the key's channels
    assert (found["returncode"], found["identifier"]) == (0, "garden")
    missed = await api.find(app, home)  # covers is alice's, not the key's
    assert missed["returncode"] == 0 and "identifier" not in missed


async def test_an_app_key_for_all_channels_finds_in_each(api: Api) -> None:
    await _two_channels(api)
    app = await _key(api, [])
    found = await api.find(app, photo_of(HOME, seed=2)[0])
    assert (found["returncode"], found["identifier"]) == (0, "home")


async def test_an_app_key_reads_a_found_image_of_its_channels(api: Api) -> None:
    await _two_channels(api)
    app = await _key(api, ["posters"])
    read = await api.post("GetImage", {**app.credentials, "channel": "posters",
                                       "identifier": "garden"})
    assert (read["returncode"], read["identifier"]) == (0, "garden")
    other = await api.post("GetImage", {**app.credentials, "channel": "covers",
                                        "identifier": "home"})
    assert other["returncode"] == ResultCode.NOT_YOUR_CHANNEL


@pytest.mark.parametrize("endpoint, fields, takes_image", [
    ("AddImage", {"channel": "posters", "identifier": "new"}, True),
    ("RemoveImage", {"channel": "posters", "identifier": "garden"}, False),
    ("GetImages", {"channel": "posters"}, False),
    ("Statistics", {"startdate": "2026", "enddate": "2026"}, False),
    ("Statistics", {"channel": "posters", "startdate": "2026", "enddate": "2026"}, False),
    ("GetChannels", {}, False),
    ("SetMetadata", {"channel": "posters", "identifier": "garden", "metadata": "{}"}, False),
])
async def test_an_app_key_cannot_change_list_or_count(
        api: Api, db: asyncpg.Pool, endpoint: str, fields: dict[str, str],
        takes_image: bool) -> None:
    await _two_channels(api)
    app = await _key(api, ["posters"])
    answer = await api.post(endpoint, {**app.credentials, **fields},
                            image=target(HOME) if takes_image else None)
    assert answer["returncode"] == ResultCode.BAD_SECRET
    assert set(answer) == {"returncode", "message"}
    rows = await db.fetch("SELECT identifier FROM images ORDER BY identifier")
    assert [r["identifier"] for r in rows] == ["garden", "home"]


async def test_a_revoked_key_is_refused_from_the_next_request(api: Api) -> None:
    await _two_channels(api)
    app = await _key(api, ["posters"])
    photo = photo_of(GARDEN, seed=4)[0]
    assert (await api.find(app, photo, "posters"))["identifier"] == "garden"
    await admin.revoke_key(api.db, app.name)
    assert (await api.find(app, photo, "posters"))["returncode"] == ResultCode.BAD_SECRET


async def test_the_owners_secret_still_does_everything(api: Api) -> None:
    alice = await _two_channels(api)
    await _key(api, ["posters"])
    removed = await api.post("RemoveImage", {**alice.credentials, "channel": "posters",
                                             "identifier": "garden"})
    assert removed["returncode"] == 0


@pytest.mark.parametrize("shard_count", [1])
async def test_an_app_key_with_a_rate_limit_is_slowed_and_its_owner_is_not(
        settings: Settings, db: asyncpg.Pool, redis: ArqRedis, shards: Shards) -> None:
    async with own_gateway(settings, db, redis) as api:
        alice = await _two_channels(api)
        app = await _key(api, ["posters"], rate_limit=1)
        photos = [photo_of(GARDEN, seed=s)[0] for s in range(8)]
        keyed = await burst([api.find(app, p, "posters") for p in photos], limit=1)
        owned = await asyncio.gather(*(api.find(alice, p, "posters") for p in photos[:4]))
    assert 0 in keyed and set(keyed) <= {0, ResultCode.RATE_LIMITED}
    assert {a["returncode"] for a in owned} == {0}


async def test_key_commands_create_list_and_revoke(db: asyncpg.Pool, database_url: str
                                                   ) -> None:
    cloudreco("user", "create", "alice", database_url=database_url)
    cloudreco("channel", "create", "alice", "posters", database_url=database_url)
    cloudreco("user", "create", "bob", database_url=database_url)
    cloudreco("channel", "create", "bob", "bobs", database_url=database_url)

    made = cloudreco("key", "create", "alice", "--find-only", "--channel", "posters",
                     "--rate-limit", "5", database_url=database_url)
    assert made.returncode == 0, made.stderr
    name, secret = made.stdout.strip().splitlines()[-2:]
    assert name.startswith("ak_") and len(secret) >= 40
    stored = await db.fetchrow("SELECT secret_hash, rate_limit FROM app_keys")
    assert secret.encode() not in stored["secret_hash"] and stored["rate_limit"] == 5
    listed = cloudreco("key", "list", database_url=database_url)
    assert listed.stdout.splitlines() == [f"{name}\talice\tposters\t5/s"]

    foreign = cloudreco("key", "create", "alice", "--find-only", "--channel", "bobs",
                        database_url=database_url)
    assert foreign.returncode != 0 and "not alice's" in foreign.stderr
    unkinded = cloudreco("key", "create", "alice", database_url=database_url)
    assert unkinded.returncode != 0 and "--find-only" in unkinded.stderr
    squatter = cloudreco("user", "create", "ak_0123", database_url=database_url)
    assert squatter.returncode != 0 and "ak_" in squatter.stderr

    revoked = cloudreco("key", "revoke", name, database_url=database_url)
    assert revoked.returncode == 0, revoked.stderr
    assert await db.fetchval("SELECT count(*) FROM app_keys") == 0
    again = cloudreco("key", "revoke", name, database_url=database_url)
    assert again.returncode != 0 and "no app key" in again.stderr
