"""AddImage: every outcome a client can get, each checked against what was stored."""

from __future__ import annotations

import pytest

from shared.codes import ResultCode
from tests.api import Api
from tests.conftest import Shards
from tests.images import flat, photo_of, target

GARDEN = "pub.building.0"


async def test_added_image_is_rated_stored_and_findable_at_once(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    added = await api.add(alice, "posters", "garden_1", target(GARDEN), metadata='{"x": 1}')
    assert added["returncode"] == ResultCode.SUCCESS
    assert 1 <= added["level"] <= 5
    photo, _ = photo_of(GARDEN)
    found = await api.find(alice, photo, "posters")
    assert found["identifier"] == "garden_1"
    assert found["metadata"] == '{"x": 1}'


@pytest.mark.parametrize("identifier", ["ab", "x" * 51, "has space", "slash/no", "ünï", ""])
async def test_identifier_outside_the_pattern_is_refused(api: Api, identifier: str) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    answer = await api.add(alice, "posters", identifier, target(GARDEN))
    expected = ResultCode.FIELD_MISSING if identifier == "" else ResultCode.BAD_IDENTIFIER
    assert answer["returncode"] == expected


async def test_identifier_at_the_pattern_limits_is_accepted(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    for identifier in ("a.b", "A@_." + "z" * 46):
        assert (await api.add(alice, "posters", identifier, target(GARDEN)))["returncode"] == 0


async def test_wrong_secret_and_unknown_user_are_refused(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    for username, secret in (("alice", "wrong"), ("nobody", alice.secret)):
        answer = await api.post("AddImage", {"username": username, "secretkey": secret,
                                             "channel": "posters", "identifier": "abc"},
                                image=target(GARDEN))
        assert answer["returncode"] == ResultCode.BAD_SECRET


async def test_unknown_and_foreign_channels_are_refused(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    await api.channel(bob, "bobs")
    assert (await api.add(alice, "nothere", "abc", target(GARDEN)))["returncode"] == \
        ResultCode.CHANNEL_NOT_FOUND
    assert (await api.add(alice, "bobs", "abc", target(GARDEN)))["returncode"] == \
        ResultCode.NOT_YOUR_CHANNEL


async def test_taken_identifier_is_refused_and_keeps_the_first_image(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    assert (await api.add(alice, "posters", "same", target(GARDEN), '"first"'))["returncode"] == 0
    again = await api.add(alice, "posters", "same", target("pub.home.0"), '"second"')
    assert again["returncode"] == ResultCode.IDENTIFIER_TAKEN
    got = await api.post("GetImage", {"channel": "posters", "identifier": "same"})
    assert got["metadata"] == '"first"'


async def test_full_channel_refuses_more_images(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "small", max_images=1)
    assert (await api.add(alice, "small", "one", target(GARDEN)))["returncode"] == 0
    answer = await api.add(alice, "small", "two", target("pub.home.0"))
    assert answer["returncode"] == ResultCode.TOO_MANY_IMAGES


async def test_featureless_image_is_refused_and_not_stored(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    answer = await api.add(alice, "posters", "blank", flat())
    assert answer["returncode"] == ResultCode.FEATURES_INSUFFICIENT
    listed = await api.post("GetImages", {**alice.credentials, "channel": "posters"})
    assert listed["totalcount"] == 0


@pytest.mark.parametrize("content", [b"GIF89a not an image", b"\xff\xd8\xff\xe0 truncated",
                                     b"\x89PNG\r\n\x1a\n broken"])
async def test_content_that_is_not_jpeg_or_png_is_refused(api: Api, content: bytes) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    answer = await api.add(alice, "posters", "bad", content)
    assert answer["returncode"] == ResultCode.BAD_IMAGE_FORMAT


async def test_oversized_upload_is_refused(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    big = target(GARDEN) + b"\0" * (2 * 1024 * 1024)
    assert (await api.add(alice, "posters", "big", big))["returncode"] == ResultCode.FILE_TOO_LARGE


@pytest.mark.parametrize("metadata", ["{not json", "x" * (64 * 1024 + 1),
                                      # Python's json reads these; no other client does
                                      "NaN", '{"a": Infinity}', "[-Infinity]"])
async def test_metadata_must_be_json_of_at_most_64_kib(api: Api, metadata: str) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    answer = await api.add(alice, "posters", "meta", target(GARDEN), metadata=metadata)
    assert answer["returncode"] == ResultCode.BAD_METADATA


async def test_metadata_with_a_number_of_any_length_is_json(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    metadata = '{"n": ' + "7" * 5000 + "}"  # past Python's 4300 digits for an int
    assert (await api.add(alice, "posters", "meta", target(GARDEN), metadata=metadata)
            )["returncode"] == ResultCode.SUCCESS
    read = await api.post("GetImage", {"channel": "posters", "identifier": "meta"})
    assert read["metadata"] == metadata


async def test_missing_fields_and_urlencoded_bodies_are_refused(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    fields = {**alice.credentials, "channel": "posters", "identifier": "abc"}
    assert (await api.post("AddImage", fields))["returncode"] == ResultCode.FIELD_MISSING
    del fields["channel"]
    assert (await api.post("AddImage", fields, image=target(GARDEN)))["returncode"] == \
        ResultCode.FIELD_MISSING
    answer = await api.post("AddImage", {**fields, "channel": "posters"}, urlencoded=True)
    assert answer["returncode"] == ResultCode.MULTIPART_NEEDED


async def test_add_to_a_shard_that_is_down_answers_busy_and_stores_nothing(
        api: Api, shards: Shards) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    for shard in range(shards.settings.shards):
        await shards.stop(shard)
    answer = await api.add(alice, "posters", "garden", target(GARDEN))
    assert answer["returncode"] == ResultCode.SYSTEM_BUSY
    assert (await api.post("GetImages", {**alice.credentials, "channel": "posters"})
            )["totalcount"] == 0
