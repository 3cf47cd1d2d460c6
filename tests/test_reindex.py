"""``cloudreco reindex``: every image's features rebuilt from its original while the stack
serves; replicas swap them in as they follow their shard's log, and FindImage keeps
answering, never with a wrong image."""

from __future__ import annotations

import asyncio
import os
import sys

import numpy as np
import pytest

from matcher import features
from matcher.catalog import Rebuilt, replace_features
from matcher.features import Features
from shared.settings import Settings
from tests.api import Api, User
from tests.images import photo_of, target

NAMES = {"home": "pub.home.0", "fruits": "pub.fruits.0", "building": "pub.building.0",
         "board": "pub.board.0", "baboon": "pub.baboon.0"}
# 20015 answers FindImage may give while reindex runs beside it (README, "Originals"): none.
# A replica applies each replacement in one short hold of its index, well within a request's
# wait for the replicas to reach its log position.
BUSY_BOUND = 0


async def _reindex(settings: Settings, *args: str) -> tuple[int, str, str]:
    """``cloudreco reindex ARGS`` as the operator runs it, against the test's database."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CLOUDRECO_")},
           "CLOUDRECO_DATABASE_URL": str(settings.database_url)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cloudreco", "reindex", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _found(api: Api, user: User, photo: bytes) -> tuple[int, str | None]:
    answer = await api.find(user, photo, "posters")
    return answer["returncode"], answer.get("identifier")


async def _degrade(api: Api) -> None:
    """Give every image features from which nothing can be found, logged as reindex logs
    its changes: the stored state an old, poorer pipeline would have left."""
    for row in await api.db.fetch(
            "SELECT id, level, width, height FROM images WHERE original IS NOT NULL"):
        empty = Features(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.float32),
                         row["width"], row["height"])
        assert await replace_features(api.db, row["id"], Rebuilt(
            row["level"], row["width"], row["height"], features.FEATURE_VERSION,
            features.encode(empty))) is not None


@pytest.mark.timeout(300)
async def test_reindex_rebuilds_every_image_while_find_image_answers(
        api: Api, settings: Settings) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    for identifier, name in NAMES.items():
        assert (await api.add(alice, "posters", identifier, target(name)))["returncode"] == 0
    await api.stored("posters", ["old.one"])  # added before originals were kept
    photos = {identifier: photo_of(name, seed=1)[0] for identifier, name in NAMES.items()}
    for identifier, photo in photos.items():
        assert await _found(api, alice, photo) == (0, identifier)
    await _degrade(api)
    for photo in photos.values():
        assert await _found(api, alice, photo) == (0, None)
    degraded = await api.db.fetchval("SELECT max(features_at) FROM images")

    answers: list[tuple[str, int, str | None]] = []
    reindexing = asyncio.Event()

    async def keep_finding() -> None:
        while not reindexing.is_set():
            for identifier, photo in photos.items():
                answers.append((identifier, *await _found(api, alice, photo)))

    finding = asyncio.create_task(keep_finding())
    status, out, err = await _reindex(settings)
    reindexing.set()
    await finding

    assert status == 1, err  # old.one has no original
    assert out.splitlines()[0].startswith("5 rebuilt (")
    assert "20024 no original kept for this image (added before originals were kept; left " \
           "unchanged): 1\n  posters/old.one\n" in out
    codes = [code for _, code, _ in answers]
    assert len(answers) >= len(photos) and set(codes) <= {0, 20015}
    assert codes.count(20015) <= BUSY_BOUND, answers
    wrong = [(want, got) for want, _, got in answers if got not in (None, want)]
    assert not wrong
    for identifier, photo in photos.items():
        assert await _found(api, alice, photo) == (0, identifier)
    rebuilt = await api.db.fetchval(
        "SELECT count(*) FROM images WHERE features_at > $1 AND original IS NOT NULL", degraded)
    assert rebuilt == len(NAMES)
    assert await api.db.fetchval("SELECT count(*) FROM shard_changes WHERE op = 4") \
        == 2 * len(NAMES)

    status, out, _ = await _reindex(settings, "--channel", "posters", "--before",
                                    degraded.isoformat())
    assert out.splitlines()[0].startswith("0 rebuilt (")  # all newer than that
    status, _, err = await _reindex(settings, "--channel", "nosuch")
    assert status == 2 and "no channel 'nosuch'" in err
