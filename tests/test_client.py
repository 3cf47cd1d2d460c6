"""``cloudreco.client`` against the real gateway: typed answers, result codes raised by
family, pages read to the end, 20015 retried with backoff and nothing else retried."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from pathlib import Path

import psutil
import pytest

from cloudreco.client import (
    AddedImage,
    ApiError,
    AuthenticationError,
    BusyError,
    Client,
    ConflictError,
    DailyCount,
    Image,
    ImageRejectedError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ResultCode,
)
from cloudreco.client.config import Connection
from tests.api import Api, User
from tests.conftest import Shards
from tests.images import flat, photo_of, target

HOME, FRUITS = "pub.home.0", "pub.fruits.0"


async def test_a_target_is_added_found_read_and_removed(api: Api, tmp_path: Path) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    poster = tmp_path / "home.jpg"
    poster.write_bytes(target(HOME))
    async with api.connect(alice) as client:
        added = await client.add_image("posters", "home", poster, metadata={"url": "u"})
        assert isinstance(added, AddedImage) and 1 <= added.level <= 5
        found = await client.find_image(photo_of(HOME)[0], channel="posters")
        assert found.match is not None and found.level is None
        assert (found.match.identifier, found.match.channel) == ("home", "posters")
        assert json.loads(found.match.metadata or "") == {"url": "u"}
        assert len(found.match.corners) == 4 and found.match.score > 0
        anywhere = await client.find_image(photo_of(HOME, seed=1)[0])
        assert anywhere.match is not None and anywhere.level is not None
        await client.remove_image("posters", "home")
        assert (await client.find_image(photo_of(HOME)[0], channel="posters")).match is None


async def test_get_image_needs_no_credentials(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    await api.stored("posters", ["home"])
    async with api.connect() as anonymous:
        assert await anonymous.get_image("posters", "home") == \
            Image("home", '{"n": "home"}', level=3)
        with pytest.raises(NotFoundError) as missing:
            await anonymous.get_image("posters", "nothing")
    assert missing.value.code == ResultCode.IDENTIFIER_NOT_FOUND
    assert missing.value.message == "image identifier not exists"


async def test_result_codes_are_raised_by_family(api: Api, caplog: pytest.LogCaptureFixture
                                                 ) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    await api.channel(alice, "posters")
    await api.channel(bob, "bobs")
    await api.stored("posters", ["home"])
    async with api.connect(alice, backoff=5) as client, api.connect(
            User("alice", "wrong")) as stranger:
        refusals = [
            (stranger.get_images("posters"), AuthenticationError, ResultCode.BAD_SECRET),
            (client.get_images("bobs"), PermissionDeniedError, ResultCode.NOT_YOUR_CHANNEL),
            (client.get_images("nobody"), NotFoundError, ResultCode.CHANNEL_NOT_FOUND),
            (client.add_image("posters", "a b", target(HOME)), InvalidRequestError,
             ResultCode.BAD_IDENTIFIER),
            (client.add_image("posters", "home", target(HOME)), ConflictError,
             ResultCode.IDENTIFIER_TAKEN),
            (client.add_image("posters", "flat", flat()), ImageRejectedError,
             ResultCode.FEATURES_INSUFFICIENT),
            (client.statistics("2026", "2025"), InvalidRequestError, ResultCode.BAD_DATE),
        ]
        for call, family, code in refusals:
            with caplog.at_level(logging.INFO, "cloudreco.client"), \
                    pytest.raises(family) as refused:
                await call
            assert isinstance(refused.value, ApiError)
            assert (refused.value.code, refused.value.message) == (code, code.message)
    assert not caplog.records, "only 20015 is retried"


async def test_iter_images_reads_every_page(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters", max_images=1000)
    identifiers = [f"img{n:03d}" for n in range(230)]
    await api.stored("posters", identifiers)
    async with api.connect(alice) as client:
        last = await client.get_images("posters", 200)
        assert (last.totalcount, len(last.images), last.next_position) == (230, 30, None)
        assert [i.identifier async for i in client.iter_images("posters")] == identifiers
        first = await client.get_images("posters")
    assert first.next_position == 100
    assert first.images[0] == Image("img000", '{"n": "img000"}', level=3, matchratio=0.0)


async def test_statistics_are_dated_counts(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    today = dt.datetime.now(dt.UTC).date()
    async with api.connect(alice) as client:
        await client.add_image("posters", "fruits", target(FRUITS))
        for seed in range(2):
            assert (await client.find_image(photo_of(FRUITS, seed=seed)[0])).match
        by_channel = await client.statistics(today, today)
        by_image = await client.statistics(f"{today:%Y}", f"{today:%Y}", channel="posters",
                                           identifier="fruits")
    assert (by_channel.username, by_channel.channel) == ("alice", None)
    assert by_channel.records == [DailyCount(today, 2, channel="posters")]
    assert by_image.channel == "posters"
    assert by_image.records == [DailyCount(today, 2, identifier="fruits")]


async def test_busy_is_retried_until_the_matchers_are_back(
        api: Api, shards: Shards, caplog: pytest.LogCaptureFixture) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    async with api.connect(alice, retries=12, backoff=0.2, max_backoff=1) as client:
        await client.add_image("posters", "home", target(HOME))
        await shards.stop_all()  # a shard without a live replica: 20015 at once
        with caplog.at_level(logging.INFO, "cloudreco.client"):
            finding = asyncio.create_task(client.find_image(photo_of(HOME)[0]))
            for _ in range(200):  # until the first 20015 is answered
                if caplog.records:
                    break
                await asyncio.sleep(0.05)
            for shard in range(shards.settings.shards):
                await shards.start(shard)
            found = await finding
    assert found.match is not None and found.match.identifier == "home"
    assert "20015 system busy; retry 1 of 12" in caplog.records[0].getMessage()


async def test_busy_is_raised_after_the_retries(api: Api, shards: Shards,
                                                caplog: pytest.LogCaptureFixture) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    await shards.stop_all()
    async with api.connect(alice, retries=2, backoff=0.01) as client, api.connect(
            alice, retries=0) as impatient:
        with caplog.at_level(logging.INFO, "cloudreco.client"), \
                pytest.raises(BusyError) as busy:
            await client.find_image(photo_of(HOME)[0])
        assert busy.value.code == ResultCode.SYSTEM_BUSY
        assert len(caplog.records) == 2
        with pytest.raises(BusyError):
            await impatient.find_image(photo_of(HOME)[0])
    assert len(caplog.records) == 2


async def test_one_connection_serves_successive_calls(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    port = api.client.port
    async with api.connect(alice) as client:
        for _ in range(5):
            await client.get_images("posters")
        open_to_gateway = [c for c in psutil.Process().net_connections("tcp")
                           if c.raddr and c.raddr.port == port
                           and c.status == psutil.CONN_ESTABLISHED]
    assert len(open_to_gateway) == 1


async def test_the_blocking_client_reads_its_connection_from_the_environment(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    monkeypatch.setenv("CLOUDRECO_URL", api.url)
    monkeypatch.setenv("CLOUDRECO_USERNAME", alice.name)
    monkeypatch.setenv("CLOUDRECO_SECRETKEY", alice.secret)

    def work() -> list[str]:  # blocking code, on a thread of its own
        with Client() as client:
            client.add_image("posters", "home", target(HOME))
            return [i.identifier for i in client.iter_images("posters")]

    assert await asyncio.to_thread(work) == ["home"]


def test_arguments_come_before_the_environment() -> None:
    env = {"CLOUDRECO_URL": "http://service:80", "CLOUDRECO_USERNAME": "env",
           "CLOUDRECO_SECRETKEY": "s3cret"}
    assert Connection.resolve(environ=env) == Connection("http://service:80", "env", "s3cret")
    assert Connection.resolve("http://other/", "me", environ=env) == \
        Connection("http://other/", "me", "s3cret")
    assert Connection.resolve(environ={}) == Connection("http://127.0.0.1:8080", None, None)
    assert "s3cret" not in repr(Connection.resolve(environ=env))
