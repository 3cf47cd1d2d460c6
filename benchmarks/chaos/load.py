"""The chaos benchmark's clients: FindImage of photos of known targets, and one writer that
adds pool targets under new identifiers and removes acknowledged ones, each answer checked
against the ledger; and the audit of the catalog once the stack serves again."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from benchmarks.chaos.ledger import Ledger, Tally
from benchmarks.recognition import CHANNEL, Client
from shared.codes import ResultCode

PAUSE = 0.05  # seconds a client waits between its requests: a steady load, not a flood
REFUSED_PAUSE = 0.1  # seconds before trying again when nothing listens (the gateway is down)
OVERTIME = 120.0  # seconds the FindImage load goes on past its end while it is failing
POOL_SHARE = 0.25  # share of FindImage photos that show pool targets (added and removed)
AUDIT_TRIES = 20  # an audit request answered 20015 or not at all is tried again this often
AUDIT_PAUSE = 0.5  # seconds between those tries


@dataclass(frozen=True)
class Catalog:
    """What the chaos runs on: base targets (in the catalog under their own names for the
    whole run), pool targets (added and removed under the load) and, for each, the photos
    the healthy stack found with a margin."""

    base: list[str]
    pool: list[str]
    images: dict[str, bytes]  # each target's catalog image
    photos: dict[str, list[bytes]]


class Load:
    """The requests of one scenario (or of one audit), recorded in ``tally``."""

    def __init__(self, client: Client, catalog: Catalog, ledger: Ledger, tally: Tally,
                 rng: random.Random) -> None:
        self.client = client
        self.catalog = catalog
        self.ledger = ledger
        self.tally = tally
        self.rng = rng

    async def call(self, endpoint: str, fields: dict[str, str], image: bytes | None = None,
                   *, expect: int = ResultCode.SUCCESS) -> dict[str, Any] | None:
        """One request, recorded; its answer, or None when none came."""
        sent = time.monotonic()
        try:
            _, body = await self.client.post(endpoint, {"channel": CHANNEL, **fields}, image)
        except aiohttp.ClientConnectorError:
            self.tally.record(endpoint, sent, None, ok=False, no_answer="refused")
            await asyncio.sleep(REFUSED_PAUSE)
            return None
        except aiohttp.ClientError:
            self.tally.record(endpoint, sent, None, ok=False, no_answer="dropped")
            return None
        except TimeoutError:
            self.tally.record(endpoint, sent, None, ok=False, no_answer="timed out")
            return None
        code = body["returncode"]
        self.tally.record(endpoint, sent, code, ok=code == expect)
        return body

    async def find(self, target: str, *, present: bool, photo: int | None = None
                   ) -> tuple[bool, str | None]:
        """FindImage of a photo of ``target`` (``present``: surely in the catalog), checked;
        whether it answered 0, and the identifier it named."""
        photos = self.catalog.photos[target]
        if photo is None:
            photo = self.rng.randrange(len(photos))
        sent = time.monotonic()
        body = await self.call("FindImage", {}, photos[photo])
        if body is None or body["returncode"] != ResultCode.SUCCESS:
            return False, None
        got: str | None = body.get("identifier")
        if got is None:
            if present:
                self.tally.misses.append((target, photo, sent))
        elif self.ledger.target_of.get(got) != target:
            self.tally.wrong.append(f"{target} -> {got}")
        elif self.ledger.removed_before(got, sent):
            self.tally.removed_returned.add(got)
        return True, got

    async def finder(self, until: float) -> None:
        """FindImage of base targets' photos (and some of pool targets') until ``until``,
        and past it until FindImage answers 0 again (for at most ``OVERTIME`` seconds)."""
        while time.monotonic() < until or (not self.tally.serving()
                                           and time.monotonic() < until + OVERTIME):
            if self.rng.random() < POOL_SHARE:
                await self.find(self.rng.choice(self.catalog.pool), present=False)
            else:
                await self.find(self.rng.choice(self.catalog.base), present=True)
            await asyncio.sleep(PAUSE)

    async def writer(self, until: float) -> None:
        """Until ``until``: add a free pool target under a new identifier, or remove the
        oldest acknowledged one once half the pool is in, each followed by reads that check
        it. The only writer: nothing else adds or removes while it checks."""
        while time.monotonic() < until:
            live = self.ledger.live()
            busy = self.ledger.busy_targets()
            free = [t for t in self.catalog.pool if t not in busy]
            if live and (len(live) >= len(self.catalog.pool) // 2 or not free):
                await self.remove(live[0])
            elif free:
                await self.add(self.rng.choice(free))
            await asyncio.sleep(PAUSE)

    async def add(self, target: str) -> None:
        identifier = f"c{len(self.ledger.target_of):05d}.{target}"
        self.ledger.target_of[identifier] = target
        body = await self.call("AddImage", {"identifier": identifier},
                               self.catalog.images[target])
        if body is None or body["returncode"] != ResultCode.SUCCESS:
            self.ledger.unsure_adds.add(identifier)
            return
        self.ledger.added[identifier] = time.monotonic()
        # Read after write: stored, and found by the very next FindImage.
        if await self.stored(identifier) is False:
            self.tally.lost.add(identifier)
        await self.find(target, present=True)

    async def remove(self, identifier: str) -> None:
        body = await self.call("RemoveImage", {"identifier": identifier})
        if body is not None and body["returncode"] == ResultCode.IDENTIFIER_NOT_FOUND:
            self.tally.lost.add(identifier)  # acknowledged, and gone without a RemoveImage
        if body is None or body["returncode"] != ResultCode.SUCCESS:
            self.ledger.unsure_removes.add(identifier)
            return
        self.ledger.removed[identifier] = time.monotonic()
        if await self.stored(identifier, expect=ResultCode.IDENTIFIER_NOT_FOUND):
            self.tally.removed_returned.add(identifier)
        # flags the identifier if it comes back
        await self.find(self.ledger.target_of[identifier], present=False)

    async def stored(self, identifier: str, *, expect: int = ResultCode.SUCCESS
                     ) -> bool | None:
        """Whether GetImage has ``identifier``; None when it did not say."""
        body = await self.call("GetImage", {"identifier": identifier}, expect=expect)
        if body is None or body["returncode"] not in (ResultCode.SUCCESS,
                                                      ResultCode.IDENTIFIER_NOT_FOUND):
            return None
        return bool(body["returncode"] == ResultCode.SUCCESS)

    async def settled(self, identifier: str, *, expect: int) -> bool:
        """GetImage of ``identifier``, tried again until the stack says: whether it is there."""
        for _ in range(AUDIT_TRIES):
            found = await self.stored(identifier, expect=expect)
            if found is not None:
                return found
            await asyncio.sleep(AUDIT_PAUSE)
        raise RuntimeError(f"GetImage {identifier}: no answer 0 or 20014 after recovery")

    async def listing(self) -> set[str]:
        """Every identifier GetImages lists now."""
        listed: set[str] = set()
        while True:
            for _ in range(AUDIT_TRIES):
                body = await self.call("GetImages", {"position": str(len(listed))})
                if body is not None and body["returncode"] == ResultCode.SUCCESS:
                    break
                await asyncio.sleep(AUDIT_PAUSE)
            else:
                raise RuntimeError("GetImages: no answer 0 after recovery")
            listed |= {image["identifier"] for image in body["images"]}
            if len(listed) >= body["totalcount"] or not body["images"]:
                return listed

    async def findable(self, identifier: str) -> bool:
        """Whether a FindImage of a photo of the identifier's target names that target."""
        target = self.ledger.target_of[identifier]
        for photo in range(len(self.catalog.photos[target])):
            if await self.names(target, photo):
                return True
        return False

    async def names(self, target: str, photo: int) -> bool:
        """Whether FindImage of this photo names ``target`` (tried again until it answers)."""
        for _ in range(AUDIT_TRIES):
            answered, got = await self.find(target, present=False, photo=photo)
            if answered:
                return got is not None and self.ledger.target_of.get(got) == target
            await asyncio.sleep(AUDIT_PAUSE)
        raise RuntimeError(f"FindImage of {target}: no answer 0 after recovery")


async def audit(load: Load, findings: Tally) -> None:
    """Once the stack serves again: settle the writes that got no answer (was the image
    stored, was it removed?), then check that every acknowledged image is listed and found
    by a photo, and that no removed one is listed. What it finds goes into ``findings``."""
    ledger = load.ledger
    for identifier in sorted(ledger.unsure_adds):
        if await load.settled(identifier, expect=ResultCode.SUCCESS):
            ledger.added[identifier] = time.monotonic()
            findings.unacknowledged_stored += 1
        ledger.unsure_adds.discard(identifier)
    for identifier in sorted(ledger.unsure_removes):
        if not await load.settled(identifier, expect=ResultCode.IDENTIFIER_NOT_FOUND):
            ledger.removed[identifier] = time.monotonic()
        ledger.unsure_removes.discard(identifier)
    listed = await load.listing()
    findings.lost |= (ledger.base | set(ledger.live())) - listed
    findings.removed_returned |= listed & set(ledger.removed)
    for identifier in ledger.live():
        if not await load.findable(identifier):
            findings.lost.add(identifier)
    for target, photo, _ in findings.misses:
        if not await load.names(target, photo):
            findings.missed_again.add((target, photo))
    findings.wrong += load.tally.wrong
    findings.removed_returned |= load.tally.removed_returned
