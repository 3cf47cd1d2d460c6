"""FindImage: the answer a client app builds on, and how it fails when the backend does."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from shared.codes import ResultCode
from shared.jobs import replicas_key
from tests.api import Api
from tests.conftest import Shards
from tests.images import flat, photo_of, target

GARDEN, BABOON, FRUITS = "pub.building.0", "pub.home.0", "pub.fruits.0"


# One shard extracts and searches in a single job; with more, the other shards search the
# extracted features. Targets land on shards by hash, so with 2 both paths answer.
@pytest.mark.parametrize("shard_count", [1, 2, 3])
async def test_photo_of_a_target_answers_it_with_metadata_score_and_corners(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    await api.add(alice, "posters", "garden", target(GARDEN), metadata='{"url": "g"}')
    await api.add(alice, "posters", "baboon", target(BABOON))
    photo, corners = photo_of(GARDEN, seed=3)
    found = await api.find(alice, photo, "posters")
    assert found["returncode"] == ResultCode.SUCCESS
    assert (found["identifier"], found["channel"], found["metadata"]) == \
        ("garden", "posters", '{"url": "g"}')
    assert found["score"] > 0
    assert np.abs(np.array(found["corners"]) - corners).max() < 6.0
    assert "level" not in found  # the seed answers level only when no channel is named


async def test_photo_of_something_else_answers_no_identifier(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    await api.add(alice, "posters", "garden", target(GARDEN))
    photo, _ = photo_of(FRUITS)
    found = await api.find(alice, photo, "posters")
    assert found["returncode"] == ResultCode.SUCCESS
    assert "identifier" not in found


async def test_without_channel_every_channel_of_the_user_is_searched(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    await api.channel(alice, "a1")
    await api.channel(alice, "a2")
    await api.channel(bob, "b1")
    await api.add(alice, "a2", "baboon", target(BABOON))
    await api.add(bob, "b1", "garden", target(GARDEN))
    found = await api.find(alice, photo_of(BABOON)[0])
    assert (found["identifier"], found["channel"]) == ("baboon", "a2")
    assert 1 <= found["level"] <= 5
    # bob's channel is not alice's to search
    assert "identifier" not in await api.find(alice, photo_of(GARDEN)[0])


async def test_named_channel_limits_the_search(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "a1")
    await api.channel(alice, "a2")
    await api.add(alice, "a1", "baboon", target(BABOON))
    assert "identifier" not in await api.find(alice, photo_of(BABOON)[0], "a2")


async def test_photo_without_features_is_refused(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    assert (await api.find(alice, flat(ext=".jpg"), "posters"))["returncode"] == \
        ResultCode.FEATURES_INSUFFICIENT


@pytest.mark.parametrize("size", [(1, 1), (1, 2000), (2000, 1)])
async def test_a_photo_one_pixel_wide_or_high_is_refused_as_featureless(
        api: Api, size: tuple[int, int], caplog: pytest.LogCaptureFixture) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    for channel in ("posters", None):  # one path extracts and searches, the other extracts
        answer = await api.find(alice, flat(*size), channel)
        assert answer["returncode"] == ResultCode.FEATURES_INSUFFICIENT
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_bad_photos_and_requests_are_refused(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    await api.channel(bob, "bobs")
    photo = photo_of(GARDEN)[0]
    assert (await api.find(alice, b"not an image"))["returncode"] == ResultCode.BAD_IMAGE_FORMAT
    assert (await api.find(alice, photo + b"\0" * (2 << 20)))["returncode"] == \
        ResultCode.FILE_TOO_LARGE
    assert (await api.find(alice, photo, "nope"))["returncode"] == ResultCode.CHANNEL_NOT_FOUND
    assert (await api.find(alice, photo, "bobs"))["returncode"] == ResultCode.NOT_YOUR_CHANNEL
    wrong = await api.post("FindImage", {"username": "alice", "secretkey": "x"}, image=photo)
    assert wrong["returncode"] == ResultCode.BAD_SECRET
    urlencoded = await api.post("FindImage", alice.credentials, urlencoded=True)
    assert urlencoded["returncode"] == ResultCode.MULTIPART_NEEDED
    assert (await api.post("FindImage", alice.credentials))["returncode"] == \
        ResultCode.FIELD_MISSING


async def test_removed_image_is_never_found_again(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    await api.add(alice, "posters", "garden", target(GARDEN))
    fields = {**alice.credentials, "channel": "posters", "identifier": "garden"}
    assert (await api.post("RemoveImage", fields))["returncode"] == ResultCode.SUCCESS
    assert "identifier" not in await api.find(alice, photo_of(GARDEN)[0], "posters")
    assert (await api.post("RemoveImage", fields))["returncode"] == \
        ResultCode.IDENTIFIER_NOT_FOUND
    # the identifier is free again, and the new image is the one found
    await api.add(alice, "posters", "garden", target(BABOON))
    assert (await api.find(alice, photo_of(BABOON)[0], "posters"))["identifier"] == "garden"


async def test_remove_image_checks_credentials_and_channel(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    await api.channel(bob, "bobs")
    await api.add(bob, "bobs", "garden", target(GARDEN))
    base = {"channel": "bobs", "identifier": "garden"}
    assert (await api.post("RemoveImage", {**alice.credentials, **base}, urlencoded=True)
            )["returncode"] == ResultCode.NOT_YOUR_CHANNEL
    assert (await api.post("RemoveImage", {**base, "username": "bob", "secretkey": "x"})
            )["returncode"] == ResultCode.BAD_SECRET
    assert (await api.post("RemoveImage", {**bob.credentials, **base, "channel": "none"})
            )["returncode"] == ResultCode.CHANNEL_NOT_FOUND
    assert (await api.post("RemoveImage", {**bob.credentials, "channel": "bobs"})
            )["returncode"] == ResultCode.FIELD_MISSING
    assert (await api.find(bob, photo_of(GARDEN)[0]))["identifier"] == "garden"


async def test_a_shard_without_a_live_replica_answers_system_busy_at_once(
        api: Api, shards: Shards) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    await api.add(alice, "posters", "garden", target(GARDEN))
    await shards.stop(1)
    started = time.monotonic()
    found = await api.find(alice, photo_of(GARDEN)[0], "posters")
    assert found["returncode"] == ResultCode.SYSTEM_BUSY
    assert time.monotonic() - started < 1.0  # not after waiting out the job timeout


async def test_a_hung_shard_answers_system_busy_at_the_timeout(api: Api, shards: Shards) -> None:
    """A shard with a replica that looks live but never answers."""
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    await api.add(alice, "posters", "garden", target(GARDEN))
    await shards.stop(0)
    await shards.redis.zadd(replicas_key(0), {"hung": time.time() * 1000 + 60_000})
    started = time.monotonic()
    found = await api.find(alice, photo_of(GARDEN)[0], "posters")
    elapsed = time.monotonic() - started
    assert found["returncode"] == ResultCode.SYSTEM_BUSY
    assert shards.settings.job_timeout - 0.5 <= elapsed <= shards.settings.job_timeout + 1.0


async def test_restarted_shards_rebuild_from_postgres(api: Api, shards: Shards) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    names = {"garden": GARDEN, "baboon": BABOON, "fruits": FRUITS}
    for identifier, name in names.items():
        assert (await api.add(alice, "posters", identifier, target(name)))["returncode"] == 0
    await shards.stop_all()
    # removed while every shard is down: Postgres forgets it, no shard hears of it
    fields = {**alice.credentials, "channel": "posters", "identifier": "fruits"}
    assert (await api.post("RemoveImage", fields))["returncode"] == ResultCode.SUCCESS
    for shard in range(shards.settings.shards):
        await shards.start(shard)
    for identifier in ("garden", "baboon"):
        found = await api.find(alice, photo_of(names[identifier], seed=7)[0], "posters")
        assert found.get("identifier") == identifier
    assert "identifier" not in await api.find(alice, photo_of(FRUITS)[0], "posters")
