"""Requests racing each other: a removal against the searches running around it, and the
counters every AddImage, RemoveImage and channel deletion keep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import pytest

from cloudreco import admin
from gateway.keys import BACKEND
from matcher import features, snapshot
from matcher.extractor import TargetExtractor
from matcher.features import FEATURE_VERSION
from matcher.imaging import Limits
from matcher.jobs import Lagging, Matcher
from matcher.shard import Shard
from shared import changes
from shared.codes import ResultCode
from shared.jobs import Search, SearchResult
from shared.settings import Settings
from tests.api import Api, User
from tests.conftest import Shards
from tests.images import photo_of, target

GARDEN, HOME = "pub.building.0", "pub.home.0"
CLIENTS = 3  # FindImage callers running at once
AFTER = 6  # FindImage calls that must begin after the removal answered


class Searches:
    """FindImage callers running until stopped, noting when each call began and what it
    answered."""

    def __init__(self, api: Api, alice: User, photos: list[bytes]) -> None:
        self.api, self.alice, self.photos = api, alice, photos
        self.seen: list[tuple[float, str | None]] = []
        self.answered = asyncio.Condition()
        self.stop = asyncio.Event()

    async def run(self, first: int) -> None:
        n = first
        while not self.stop.is_set():
            began = time.monotonic()
            answer = await self.api.find(self.alice, self.photos[n % len(self.photos)],
                                         "posters")
            assert answer["returncode"] == ResultCode.SUCCESS, answer
            async with self.answered:
                self.seen.append((began, answer.get("identifier")))
                self.answered.notify_all()
            n += 1

    async def until(self, done: Callable[[list[tuple[float, str | None]]], bool]) -> None:
        async with self.answered:
            await self.answered.wait_for(lambda: done(self.seen))


@pytest.mark.parametrize("shard_count", [1])
async def test_no_findimage_begun_after_a_remove_answered_returns_the_image(
        api: Api, shards: Shards) -> None:
    await shards.start(0)  # two replicas: the one that did not take the remove may lag
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    for identifier, name in (("garden", GARDEN), ("home", HOME)):
        assert (await api.add(alice, "posters", identifier, target(name)))["returncode"] == 0
    garden_id = await api.db.fetchval("SELECT id FROM images WHERE identifier = 'garden'")
    photos = [photo_of(GARDEN, seed=s)[0] for s in range(3)]
    searches = Searches(api, alice, photos)
    clients = [asyncio.create_task(searches.run(n)) for n in range(CLIENTS)]
    try:  # the searches do find it first
        await searches.until(lambda seen: "garden" in [found for _, found in seen])
        fields = {**alice.credentials, "channel": "posters", "identifier": "garden"}
        assert (await api.post("RemoveImage", fields))["returncode"] == ResultCode.SUCCESS
        removed = time.monotonic()
        # Beside the API, the matchers themselves, right away: each replica searches only
        # once its index reflects the log as it was when the search came in.
        backend = api.client.server.app[BACKEND]
        heads = await changes.heads(api.db, 1)
        channel = await api.db.fetchval("SELECT id FROM channels WHERE name = 'posters'")
        direct = await asyncio.gather(*(backend.find(p, [channel], heads) for p in photos))
        assert all(garden_id not in [m.image_id for m in found] for _, found in direct)
        await searches.until(lambda seen: sum(began > removed for began, _ in seen) >= AFTER)
    finally:
        searches.stop.set()
        await asyncio.gather(*clients)
    after = [found for began, found in searches.seen if began > removed]
    assert len(after) >= AFTER
    assert "garden" not in after


@pytest.mark.parametrize("shard_count", [1])
async def test_a_lagging_replica_waits_for_the_removal_instead_of_answering_it(
        api: Api, settings: Settings) -> None:
    """A replica's index as of before a removal: the search of a query that came in after
    the removal waits until the index reflects it, and if it never does, fails (20015 at the
    gateway) rather than answer from the stale index."""
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    assert (await api.add(alice, "posters", "garden", target(GARDEN)))["returncode"] == 0
    garden_id, channel = await api.db.fetchrow("SELECT id, channel_id FROM images")
    # a replica built as serve() builds one, without its follower: it moves only when told
    with ThreadPoolExecutor(2) as executor:
        lagging = Shard(0, api.db, executor, 2)
        await lagging.load(None, snapshot.Identity("none: no snapshot", 1, 0, FEATURE_VERSION))
        matcher = Matcher(settings, lagging, TargetExtractor(settings.add_nice, 1))
        query = features.encode(features.photo_features(
            photo_of(GARDEN)[0], Limits(settings.max_image_pixels,
                                        settings.max_png_inflated_bytes)))

        async def search(position: int, wait: float) -> list[int]:
            job = Search([channel], query, position, time.time() + wait).to_wire()
            found = SearchResult.from_wire(await matcher.search({}, job)).found()
            return [m.image_id for m in found]

        assert await search(lagging.applied, 5) == [garden_id]
        fields = {**alice.credentials, "channel": "posters", "identifier": "garden"}
        assert (await api.post("RemoveImage", fields))["returncode"] == ResultCode.SUCCESS
        [head] = await changes.heads(api.db, 1)
        assert lagging.applied < head and lagging.indexes[channel]  # it still holds garden
        with pytest.raises(Lagging):
            await search(head, 0.3)
        waiting = asyncio.create_task(search(head, 5))
        await lagging.catch_up()
        assert await waiting == []


async def _counters(db: asyncpg.Pool) -> list[tuple[int, int, int]]:
    """(kept image_count, images counted, max_images) of every channel."""
    rows = await db.fetch(
        "SELECT c.image_count, (SELECT count(*) FROM images i WHERE i.channel_id = c.id)"
        " AS counted, c.max_images FROM channels c ORDER BY c.id")
    return [(r["image_count"], r["counted"], r["max_images"]) for r in rows]


async def test_image_counts_stay_true_through_adds_removes_races_and_deletions(
        api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "small", max_images=2)
    await api.channel(alice, "other")
    names = [GARDEN, HOME, "pub.fruits.0", "pub.board.0"]
    answers = await asyncio.gather(*(api.add(alice, "small", f"img{i}", target(n))
                                     for i, n in enumerate(names)))
    assert sorted(a["returncode"] for a in answers) == \
        [0, 0, ResultCode.TOO_MANY_IMAGES, ResultCode.TOO_MANY_IMAGES]
    assert await _counters(api.db) == [(2, 2, 2), (0, 0, 100)]
    stored = [f"img{i}" for i, a in enumerate(answers) if a["returncode"] == 0]
    fields = {**alice.credentials, "channel": "small", "identifier": stored[0]}
    assert (await api.post("RemoveImage", fields))["returncode"] == ResultCode.SUCCESS
    assert (await api.post("RemoveImage", fields))["returncode"] == \
        ResultCode.IDENTIFIER_NOT_FOUND
    assert await _counters(api.db) == [(1, 1, 2), (0, 0, 100)]
    # the freed place is usable at once, and the next add finds the channel full again
    assert (await api.add(alice, "small", "again", target(GARDEN)))["returncode"] == 0
    assert (await api.add(alice, "small", "more", target(HOME)))["returncode"] == \
        ResultCode.TOO_MANY_IMAGES
    assert (await api.add(alice, "other", "garden", target(GARDEN)))["returncode"] == 0
    await admin.delete_channel(api.db, "small")
    assert await _counters(api.db) == [(1, 1, 100)]
    listed = await api.post("GetImages", {**alice.credentials, "channel": "other"})
    assert listed["totalcount"] == 1
