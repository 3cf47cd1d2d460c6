"""Originals: AddImage keeps the upload byte for byte, GetOriginal answers it (or a thumbnail)
to its owner alone, and it goes when the last image made of it goes."""

from __future__ import annotations

import asyncio
import hashlib

import asyncpg
import cv2
import numpy as np
import pytest
from aiohttp import FormData
from arq.connections import ArqRedis

from cloudreco import admin
from cloudreco.client import NotFoundError
from matcher.catalog import NewImage, insert_image, keep_original
from shared.codes import ResultCode
from shared.settings import Settings
from tests.api import Api, User, own_gateway
from tests.images import encode, target

HOME, GARDEN = "pub.home.0", "pub.building.0"


async def _original(api: Api, user: User, channel: str, identifier: str,
                    maxside: str | None = None) -> tuple[str, bytes]:
    """GetOriginal as a browser sends it: (content type, body)."""
    form = FormData({**user.credentials, "channel": channel, "identifier": identifier,
                     **({} if maxside is None else {"maxside": maxside})})
    resp = await api.client.post("/GetOriginal", data=form)
    assert resp.status == 200
    return resp.content_type, await resp.read()


async def _code(api: Api, user: User, channel: str, identifier: str, **more: str) -> int:
    answer = await api.post("GetOriginal", {**user.credentials, "channel": channel,
                                            "identifier": identifier, **more})
    code: int = answer["returncode"]
    return code


def _png(name: str) -> bytes:
    return encode(cv2.imdecode(np.frombuffer(target(name), np.uint8), cv2.IMREAD_COLOR), ".png")


async def test_the_original_comes_back_byte_for_byte(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    jpeg, png = target(HOME), _png(GARDEN)
    assert (await api.add(alice, "posters", "home", jpeg))["returncode"] == 0
    assert (await api.add(alice, "posters", "garden", png))["returncode"] == 0
    assert await _original(api, alice, "posters", "home") == ("image/jpeg", jpeg)
    assert await _original(api, alice, "posters", "garden") == ("image/png", png)
    async with api.connect(alice) as client:
        assert await client.get_original("posters", "garden") == png
        listed = {i.identifier: i.sha256 async for i in client.iter_images("posters")}
    assert listed == {"garden": hashlib.sha256(png).hexdigest(),
                      "home": hashlib.sha256(jpeg).hexdigest()}


@pytest.mark.parametrize(("maxside", "long_side"), [("64", 64), ("4096", None)])
async def test_a_thumbnail_is_a_jpeg_within_maxside(api: Api, maxside: str,
                                                    long_side: int | None) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    png = _png(HOME)
    await api.add(alice, "posters", "home", png)
    kind, thumb = await _original(api, alice, "posters", "home", maxside)
    assert kind == "image/jpeg"
    pixels = cv2.imdecode(np.frombuffer(thumb, np.uint8), cv2.IMREAD_COLOR)
    full = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    if long_side is None:  # never enlarged
        assert pixels.shape == full.shape
    else:
        assert max(pixels.shape[:2]) == long_side
        ratio = full.shape[1] / full.shape[0]
        assert pixels.shape[1] / pixels.shape[0] == pytest.approx(ratio, rel=0.05)
    async with api.connect(alice) as client:
        assert (await client.get_original("posters", "home", max_side=int(maxside)))[:3] \
            == b"\xff\xd8\xff"


async def test_only_the_owner_gets_an_original(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    await api.channel(alice, "posters")
    await api.channel(bob, "bobs")
    await api.add(alice, "posters", "home", target(HOME))
    assert await _code(api, bob, "posters", "home") == ResultCode.NOT_YOUR_CHANNEL
    assert await _code(api, bob, "bobs", "home") == ResultCode.IDENTIFIER_NOT_FOUND
    assert await _code(api, bob, "nochannel", "home") == ResultCode.CHANNEL_NOT_FOUND
    wrong = User("alice", "not-her-secret")
    assert await _code(api, wrong, "posters", "home") == ResultCode.BAD_SECRET
    key = await admin.create_key(api.db, "alice", "app-key-secret-0123456789", [], None)
    assert await _code(api, User(key, "app-key-secret-0123456789"), "posters", "home") \
        == ResultCode.BAD_SECRET


async def test_a_thumbnail_the_limits_now_refuse_says_why(
        api: Api, settings: Settings, redis: ArqRedis) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    await api.add(alice, "posters", "home", target(HOME))
    lowered = settings.model_copy(update={"max_image_pixels": 10_000})
    async with own_gateway(lowered, api.db, redis) as strict:
        assert await _code(strict, alice, "posters", "home", maxside="64") \
            == ResultCode.FILE_TOO_LARGE
        assert await _original(strict, alice, "posters", "home") == ("image/jpeg", target(HOME))


@pytest.mark.parametrize("maxside", ["15", "4097", "abc", "-1", "64.0", "00064000"])
async def test_a_bad_maxside_is_refused(api: Api, maxside: str) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    await api.add(alice, "posters", "home", target(HOME))
    assert await _code(api, alice, "posters", "home", maxside=maxside) == ResultCode.BAD_FIELD


async def test_an_image_added_before_originals_were_kept_says_so(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    await api.stored("posters", ["old.one"])  # a row as migration 008 leaves older images
    assert await _code(api, alice, "posters", "old.one") == ResultCode.NO_ORIGINAL
    assert await _code(api, alice, "posters", "missing") == ResultCode.IDENTIFIER_NOT_FOUND
    async with api.connect(alice) as client:
        with pytest.raises(NotFoundError) as refused:
            await client.get_original("posters", "old.one")
        assert (await client.get_images("posters")).images[0].sha256 is None
    assert refused.value.code == ResultCode.NO_ORIGINAL


async def test_one_original_per_content_dropped_with_its_last_image(api: Api) -> None:
    alice = await api.user("alice")
    for channel in ("posters", "covers"):
        await api.channel(alice, channel)
        assert (await api.add(alice, channel, "home", target(HOME)))["returncode"] == 0
    kept = "SELECT count(*) FROM originals"
    assert await api.db.fetchval(kept) == 1
    removed = await api.post("RemoveImage", {**alice.credentials, "channel": "posters",
                                             "identifier": "home"})
    assert removed["returncode"] == 0
    assert await _original(api, alice, "covers", "home") == ("image/jpeg", target(HOME))
    await admin.delete_channel(api.db, "covers")
    assert await api.db.fetchval(kept) == 0
    # added again after it went: kept again
    assert (await api.add(alice, "posters", "home", target(HOME)))["returncode"] == 0
    assert await _original(api, alice, "posters", "home") == ("image/jpeg", target(HOME))


async def _image_row(db: asyncpg.Pool, channel_id: int, identifier: str, data: bytes) -> int:
    inserted = await insert_image(db, NewImage(channel_id, identifier, None, 3, 0, 10, 10, 0,
                                               b"", data))
    assert inserted.code == ResultCode.SUCCESS
    return inserted.image_id


async def test_an_original_shared_by_an_add_and_a_remove_at_once_is_kept(api: Api) -> None:
    """Whichever of an AddImage and a RemoveImage of the same bytes commits first, the added
    image keeps its original (both lock the original's row)."""
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    channel_id = await api.db.fetchval("SELECT id FROM channels WHERE name = 'posters'")
    data = target(HOME)
    first = await _image_row(api.db, channel_id, "first", data)
    async with api.db.acquire() as removing:  # the remove first: the add waits for it
        async with removing.transaction():
            await removing.execute("DELETE FROM images WHERE id = $1", first)
            adding = asyncio.create_task(_image_row(api.db, channel_id, "second", data))
            await asyncio.sleep(0.3)
            assert not adding.done()
        await adding
    assert await _original(api, alice, "posters", "second") == ("image/jpeg", data)
    async with api.db.acquire() as adding_conn:  # the add first: the remove waits for it
        async with adding_conn.transaction():
            sha256 = await keep_original(adding_conn, data)
            await adding_conn.execute(
                "INSERT INTO images (channel_id, identifier, level, shard, width, height,"
                " feature_version, features, original) VALUES ($1, 'third', 3, 0, 10, 10, 0,"
                " '', $2)", channel_id, sha256)
            removed = asyncio.create_task(api.db.execute(
                "DELETE FROM images WHERE identifier = 'second'"))
            await asyncio.sleep(0.3)
            assert not removed.done()
        await removed
    assert await _original(api, alice, "posters", "third") == ("image/jpeg", data)
