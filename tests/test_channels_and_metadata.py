"""GetChannels and SetMetadata, the two endpoints the console adds to the seed's six: a user's
channels with their counts, and an image's metadata replaced without uploading it again."""

from __future__ import annotations

import pytest

from cloudreco.client import Channel, NotFoundError
from shared.codes import ResultCode
from tests.api import Api
from tests.images import photo_of, target


async def test_get_channels_lists_the_callers_channels_with_their_counts(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    await api.channel(alice, "posters", max_images=3)
    await api.channel(alice, "flyers")
    await api.channel(bob, "bobs")
    await api.stored("posters", ["one", "two"])
    await api.stored("bobs", ["three"])

    answer = await api.post("GetChannels", alice.credentials)
    assert answer["channels"] == [
        {"channel": "flyers", "imagecount": 0, "maximages": 100},
        {"channel": "posters", "imagecount": 2, "maximages": 3},
    ]
    bobs = await api.post("GetChannels", bob.credentials, urlencoded=True)
    assert bobs["channels"] == [{"channel": "bobs", "imagecount": 1, "maximages": 100}]
    wrong = await api.post("GetChannels", {"username": "alice", "secretkey": "wrong"})
    assert (wrong["returncode"], set(wrong)) == (ResultCode.BAD_SECRET, {"returncode", "message"})


async def test_set_metadata_replaces_what_get_image_answers(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    await api.channel(alice, "posters")
    await api.channel(bob, "bobs")
    await api.stored("posters", ["poster.001"])
    await api.stored("bobs", ["poster.001"])
    fields = {**alice.credentials, "channel": "posters", "identifier": "poster.001"}

    async def metadata() -> str | None:
        read = await api.post("GetImage", {"channel": "posters", "identifier": "poster.001"})
        assert read["returncode"] == ResultCode.SUCCESS
        value: str | None = read.get("metadata")
        return value

    new = '{"url": "https://example.com/é", "n": 1}'
    assert (await api.post("SetMetadata", {**fields, "metadata": new}))["returncode"] == 0
    assert await metadata() == new
    refused = {"[1, 2": ResultCode.BAD_METADATA, "NaN": ResultCode.BAD_METADATA}
    for text, code in refused.items():
        assert (await api.post("SetMetadata", {**fields, "metadata": text}))["returncode"] == code
    assert await metadata() == new
    # as at AddImage, a form without metadata leaves the image none
    assert (await api.post("SetMetadata", fields, urlencoded=True))["returncode"] == 0
    assert await metadata() is None

    for other, code in (({"identifier": "missing"}, ResultCode.IDENTIFIER_NOT_FOUND),
                        ({"channel": "bobs"}, ResultCode.NOT_YOUR_CHANNEL),
                        ({"channel": "nobodys"}, ResultCode.CHANNEL_NOT_FOUND),
                        ({"identifier": ""}, ResultCode.FIELD_MISSING)):
        answer = await api.post("SetMetadata", {**fields, **other, "metadata": "{}"})
        assert answer["returncode"] == code, other
    bobs = await api.post("GetImage", {"channel": "bobs", "identifier": "poster.001"})
    assert bobs["metadata"] == '{"n": "poster.001"}'


async def test_find_image_answers_the_metadata_set_after_adding(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters", max_images=5)
    async with api.connect(alice) as client:
        await client.add_image("posters", "home", target("pub.home.0"), metadata={"v": 1})
        await client.set_metadata("posters", "home", {"v": 2})
        found = await client.find_image(photo_of("pub.home.0")[0], channel="posters")
        assert found.match is not None
        assert (found.match.identifier, found.match.metadata) == ("home", '{"v": 2}')
        assert await client.get_channels() == [Channel("posters", 1, 5)]
        with pytest.raises(NotFoundError) as refused:
            await client.set_metadata("posters", "gone", None)
        assert refused.value.code == ResultCode.IDENTIFIER_NOT_FOUND
