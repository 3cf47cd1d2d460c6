"""Tenants: a user who names another user's channel or images gets 20004 or 20003, never
that user's data, and changes nothing of it, on every endpoint."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from shared.codes import ResultCode
from tests.api import Api, User
from tests.images import photo_of, target

GARDEN, HOME = "pub.building.0", "pub.home.0"
REFUSAL = {"returncode", "message"}  # a refusal carries nothing else


@dataclass(frozen=True)
class Tenants:
    alice: User  # owns "posters", holding "garden" (found once today)
    bob: User  # owns "bobs", holding "home"


async def _tenants(api: Api) -> Tenants:
    alice, bob = await api.user("alice"), await api.user("bob")
    await api.channel(alice, "posters")
    await api.channel(bob, "bobs")
    added = await api.add(alice, "posters", "garden", target(GARDEN), '{"owner": "alice"}')
    assert added["returncode"] == ResultCode.SUCCESS
    assert (await api.add(bob, "bobs", "home", target(HOME)))["returncode"] == ResultCode.SUCCESS
    assert (await api.find(alice, photo_of(GARDEN)[0]))["identifier"] == "garden"
    return Tenants(alice, bob)


async def _alices_view(api: Api, alice: User) -> dict[str, Any]:
    """Everything alice reads of her catalog: listing, image, statistics both ways."""
    today = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    own = {**alice.credentials, "channel": "posters"}
    dates = {"startdate": today, "enddate": today}
    return {
        "list": await api.post("GetImages", own),
        "image": await api.post("GetImage", {**own, "identifier": "garden"}),
        "by_channel": await api.post("Statistics", {**alice.credentials, **dates}),
        "by_identifier": await api.post("Statistics", {**own, **dates}),
    }


async def _refused(api: Api, endpoint: str, fields: dict[str, str], code: ResultCode,
                   image: bytes | None = None) -> None:
    answer = await api.post(endpoint, fields, image=image)
    assert answer["returncode"] == code, (endpoint, fields, answer)
    assert set(answer) == REFUSAL, answer


async def test_add_image_into_another_users_channel_is_not_yours(api: Api) -> None:
    t = await _tenants(api)
    before = await _alices_view(api, t.alice)
    bobs = {**t.bob.credentials, "channel": "posters"}
    # a taken identifier answers 20004 too: the refusal says nothing of alice's images
    for identifier in ("garden", "intruder"):
        await _refused(api, "AddImage", {**bobs, "identifier": identifier},
                       ResultCode.NOT_YOUR_CHANNEL, image=target(HOME))
    # alice's name with bob's secret is no way in either
    await _refused(api, "AddImage", {**bobs, "username": "alice", "identifier": "intruder"},
                   ResultCode.BAD_SECRET, image=target(HOME))
    assert await _alices_view(api, t.alice) == before


async def test_remove_image_of_another_users_channel_is_not_yours(api: Api) -> None:
    t = await _tenants(api)
    before = await _alices_view(api, t.alice)
    bobs = {**t.bob.credentials, "channel": "posters"}
    for identifier in ("garden", "no.such.image"):
        await _refused(api, "RemoveImage", {**bobs, "identifier": identifier},
                       ResultCode.NOT_YOUR_CHANNEL)
    # alice's identifier in bob's own channel is just unknown there
    await _refused(api, "RemoveImage", {**bobs, "channel": "bobs", "identifier": "garden"},
                   ResultCode.IDENTIFIER_NOT_FOUND)
    assert await _alices_view(api, t.alice) == before
    assert (await api.find(t.alice, photo_of(GARDEN, seed=1)[0], "posters")
            )["identifier"] == "garden"


async def test_get_images_of_another_users_channel_is_not_yours(api: Api) -> None:
    t = await _tenants(api)
    bobs = {**t.bob.credentials, "channel": "posters"}
    await _refused(api, "GetImages", bobs, ResultCode.NOT_YOUR_CHANNEL)
    await _refused(api, "GetImages", {**bobs, "position": "0"}, ResultCode.NOT_YOUR_CHANNEL)
    await _refused(api, "GetImages", {**bobs, "channel": "nobodys"},
                   ResultCode.CHANNEL_NOT_FOUND)


async def test_get_image_with_another_users_credentials_is_not_yours(api: Api) -> None:
    t = await _tenants(api)
    bobs = {**t.bob.credentials, "channel": "posters"}
    # whether the identifier exists or not: no oracle for bob
    for identifier in ("garden", "no.such.image"):
        await _refused(api, "GetImage", {**bobs, "identifier": identifier},
                       ResultCode.NOT_YOUR_CHANNEL)
    await _refused(api, "GetImage", {**bobs, "channel": "bobs", "identifier": "garden"},
                   ResultCode.IDENTIFIER_NOT_FOUND)


async def test_statistics_of_another_users_channel_is_not_yours(api: Api) -> None:
    t = await _tenants(api)
    before = await _alices_view(api, t.alice)
    today = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    bobs = {**t.bob.credentials, "startdate": today, "enddate": today}
    await _refused(api, "Statistics", {**bobs, "channel": "posters"},
                   ResultCode.NOT_YOUR_CHANNEL)
    for identifier in ("garden", "no.such.image"):
        await _refused(api, "Statistics", {**bobs, "channel": "posters",
                                           "identifier": identifier},
                       ResultCode.NOT_YOUR_CHANNEL)
    # without a channel, bob's statistics are bob's channels' only
    assert (await api.find(t.bob, photo_of(HOME)[0]))["identifier"] == "home"
    mine = await api.post("Statistics", bobs)
    assert mine["records"] == [{"date": today, "channel": "bobs", "count": 1}]
    await _refused(api, "Statistics", {**bobs, "channel": "bobs", "identifier": "garden"},
                   ResultCode.IDENTIFIER_NOT_FOUND)
    assert await _alices_view(api, t.alice) == before


async def test_find_image_searches_only_the_callers_channels(api: Api) -> None:
    t = await _tenants(api)
    before = await _alices_view(api, t.alice)
    carol = await api.user("carol")  # no channel at all
    photo = photo_of(GARDEN, seed=2)[0]
    await _refused(api, "FindImage", {**t.bob.credentials, "channel": "posters"},
                   ResultCode.NOT_YOUR_CHANNEL, image=photo)
    for user, channel in ((t.bob, None), (t.bob, "bobs"), (carol, None)):
        answer = await api.find(user, photo, channel)
        assert answer["returncode"] == ResultCode.SUCCESS
        assert set(answer) <= REFUSAL | {"level"}, answer  # no match, nothing of alice's
    # bob's misses counted nothing for alice, and alice still finds her image
    assert await _alices_view(api, t.alice) == before
    assert (await api.find(t.alice, photo))["identifier"] == "garden"
