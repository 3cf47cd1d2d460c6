"""A chaos run: the catalog it starts from, and one scenario (load, fault, load, audit)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import aiohttp

from benchmarks.chaos.faults import Fault
from benchmarks.chaos.ledger import Ledger, Tally
from benchmarks.chaos.load import Catalog, Load, audit
from benchmarks.nginx import Nginx, nginx_binary
from benchmarks.recognition import CHANNEL, USER, Client, truth
from cloudreco.local import LocalStack
from shared.codes import ResultCode
from shared.jobs import LIVENESS

PHOTOS_TRIED = 3  # easy and medium photos tried per target before the chaos
# Inliers a photo's answer needs before the chaos to be kept: three times what verification
# asks (min_inliers 7). The replicas' hnswlib graphs differ (one built by adds and removals,
# one rebuilt), so a photo found with 8 inliers by one can be missed by the other.
RELIABLE_SCORE = 21
PROBE_CLIENTS = 4  # concurrent FindImage clients while photos are tried
READY_TIMEOUT = 180.0  # seconds the stack gets to serve with every replica again
TIMEOUT = aiohttp.ClientTimeout(total=60)
T = TypeVar("T")


@dataclass
class Chaos:
    """One stack under chaos: its user's secret, its catalog, and what it acknowledged (kept
    across scenarios, so that each audit checks everything acknowledged so far)."""

    stack: LocalStack
    secret: str
    catalog: Catalog
    ledger: Ledger
    replicas: int
    front: Nginx | None  # nginx in front of the gateways, where installed
    rng: random.Random = field(default_factory=lambda: random.Random(7))


@dataclass(frozen=True)
class Outcome:
    scenario: str
    how: str
    answers: dict[str, Counter[str]]  # per endpoint, by code ("none": no HTTP answer)
    no_answer: Counter[str]  # by why: refused, dropped, timed out
    failed_codes: Counter[str]  # codes of the answers a healthy stack does not give
    window: float  # seconds from the first to the last failure after the fault
    recovery: float | None  # seconds from the fault until FindImage answered 0 again
    back: float  # seconds from the fault until the stack served with every replica
    wrong: list[str]
    misses: list[str]  # "target#photo at +s" (from the fault)
    lost: list[str]
    removed_returned: list[str]
    unacknowledged_stored: int


async def _each(items: list[T], clients: int, work: Callable[[T], Awaitable[None]]) -> None:
    """``work`` on every item, ``clients`` at a time."""
    queue = list(items)

    async def worker() -> None:
        while queue:
            await work(queue.pop())

    await asyncio.gather(*(worker() for _ in range(clients)))


async def _setup(client: Client, data: Path, targets: int, replicas: int
                 ) -> tuple[Catalog, Ledger]:
    """Add the first ``targets`` catalog targets under their own names and keep those with
    a photo the healthy stack finds with ``RELIABLE_SCORE`` inliers; every other one kept
    becomes a pool target, removed again (so the pool's own names are removed identifiers
    the audits check). Adds go ``replicas`` at a time: a replica serves its shard's adds one
    at a time."""
    names = sorted(p.stem for p in (data / "catalog").glob("*.jpg"))[:targets]
    images = {n: (data / "catalog" / f"{n}.jpg").read_bytes() for n in names}
    candidates: dict[str, list[str]] = {}
    for row in truth(data):
        if row["expected"] in images and row["difficulty"] in ("easy", "medium"):
            candidates.setdefault(row["expected"], []).append(row["query"])
    added: list[str] = []

    async def add(name: str) -> None:
        _, body = await client.post("AddImage", {"channel": CHANNEL, "identifier": name},
                                    images[name])
        if body["returncode"] == ResultCode.SUCCESS:
            added.append(name)

    await _each(names, replicas, add)
    photos: dict[str, list[bytes]] = {}

    async def probe(photo: tuple[str, str]) -> None:
        name, query = photo
        jpeg = (data / "queries" / f"{query}.jpg").read_bytes()
        _, body = await client.post("FindImage", {"channel": CHANNEL}, jpeg)
        if body.get("identifier") == name and body["score"] >= RELIABLE_SCORE:
            photos.setdefault(name, []).append(jpeg)

    await _each([(n, q) for n in added for q in candidates.get(n, [])[:PHOTOS_TRIED]],
                PROBE_CLIENTS, probe)
    usable = [n for n in sorted(added) if n in photos]
    base, pool = usable[0::2], usable[1::2]
    ledger = Ledger(target_of={n: n for n in names}, base=set(base))
    for name in pool:
        _, body = await client.post("RemoveImage", {"channel": CHANNEL, "identifier": name})
        if body["returncode"] != ResultCode.SUCCESS:
            raise RuntimeError(f"RemoveImage {name} answered {body}")
        ledger.removed[name] = time.monotonic()
    return Catalog(base, pool, images, photos), ledger


# The steady load keeps several requests in flight on purpose; the stack queues them rather
# than refusing the excess with 20015 as its overload guard does by default (the load test's
# subject), so that every failure counted here comes from the fault. Two gateways (the
# default, said here because the gateway scenario kills one of them).
STACK_ENV = {"CLOUDRECO_MAX_INFLIGHT": "8", "CLOUDRECO_MATCHER_JOBS": "4",
             "CLOUDRECO_GATEWAYS": "2"}


@contextlib.contextmanager
def front(stack: LocalStack, prefix: Path) -> Iterator[Nginx | None]:
    """deploy/nginx.conf in front of the running ``stack``, or None (said on standard output)
    when nginx is not installed. Both of its upstream servers name the stack's one port, which
    the gateways share (SO_REUSEPORT): a request nginx passes on goes out on a new connection,
    which Linux gives to a gateway that still listens."""
    binary = nginx_binary()
    if binary is None:
        print("nginx is not installed: the clients call the gateways directly in every "
              "scenario", flush=True)
        yield None
        return
    with Nginx(binary, prefix, [stack.port, stack.port]) as nginx:
        yield nginx


def prepare(stack: LocalStack, data: Path, targets: int, replicas: int,
            nginx: Nginx | None) -> Chaos:
    """A user, a channel and the starting catalog on the running ``stack``, with ``nginx``
    in front of it (or None)."""
    secret = stack.cli("user", "create", USER).strip().splitlines()[-1]
    stack.cli("channel", "create", USER, CHANNEL)

    async def setup() -> tuple[Catalog, Ledger]:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            return await _setup(Client(session, stack.url, secret), data, targets, replicas)

    catalog, ledger = asyncio.run(setup())
    if len(catalog.base) < 2 or len(catalog.pool) < 2:
        raise RuntimeError(f"too few targets found reliably: {len(catalog.base)} base, "
                           f"{len(catalog.pool)} pool")
    return Chaos(stack, secret, catalog, ledger, replicas, nginx)


async def _serving(session: aiohttp.ClientSession, url: str, replicas: int) -> bool:
    """Whether /health says every shard has all its replicas live."""
    try:
        async with session.get(f"{url}/health", timeout=aiohttp.ClientTimeout(total=2)) as r:
            body = await r.json()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return False
    return bool(body["returncode"] == 0 and min(body["replicas"]) >= replicas)


async def _back(chaos: Chaos, session: aiohttp.ClientSession, fault: Fault, before: set[int],
                since: float) -> float:
    """Seconds from ``since`` until the killed process is replaced by a new one and the
    stack serves with every replica (not before a killed replica's liveness has lapsed)."""
    await asyncio.sleep(LIVENESS)
    while time.monotonic() - since < READY_TIMEOUT:
        if (await asyncio.to_thread(fault.pids, chaos.stack)) - before and \
                await _serving(session, chaos.stack.url, chaos.replicas):
            return time.monotonic() - since
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{fault.name}: the stack did not serve again in {READY_TIMEOUT} s")


async def _scenario(chaos: Chaos, fault: Fault, before: float, after: float, clients: int
                    ) -> Outcome:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        url = chaos.stack.url
        if fault.through_front and chaos.front is not None:
            url = chaos.front.url
        client = Client(session, url, chaos.secret)
        deadline = time.monotonic() + READY_TIMEOUT
        while not await _serving(session, chaos.stack.url, chaos.replicas):
            if time.monotonic() > deadline:
                raise RuntimeError("the stack is not serving with every replica")
            await asyncio.sleep(0.2)
        tally = Tally()
        load = Load(client, chaos.catalog, chaos.ledger, tally, chaos.rng)
        until = time.monotonic() + before + after
        running = [asyncio.create_task(load.finder(until)) for _ in range(clients)]
        running.append(asyncio.create_task(load.writer(until)))
        await asyncio.sleep(before)
        pids = await asyncio.to_thread(fault.pids, chaos.stack)
        await asyncio.to_thread(fault.inject, chaos.stack)
        fault_at = time.monotonic()
        back = asyncio.create_task(_back(chaos, session, fault, pids, fault_at))
        await asyncio.gather(*running)
        came_back = await back
        await audit(Load(client, chaos.catalog, chaos.ledger, Tally(), chaos.rng), tally)
    how = fault.how
    if fault.through_front:
        how += ("; the clients call nginx (deploy/nginx.conf) in front of the gateways"
                if chaos.front is not None else
                "; the clients call the gateways directly: nginx is not installed")
    return _outcome(fault, how, tally, fault_at, came_back)


def _outcome(fault: Fault, how: str, tally: Tally, fault_at: float, back: float) -> Outcome:
    failed = tally.failures(0.0)
    return Outcome(
        fault.name, how, tally.by_code(),
        Counter(a.no_answer for a in tally.answers if a.code is None),
        Counter(f"{a.endpoint} {a.code}" for a in failed if a.code is not None),
        tally.window(fault_at), tally.recovery(fault_at), back, tally.wrong,
        [f"{target}#{photo} at {sent - fault_at:+.1f} s" + (
            " (missed again once the stack served)" if (target, photo) in tally.missed_again
            else "") for target, photo, sent in tally.misses],
        sorted(tally.lost), sorted(tally.removed_returned), tally.unacknowledged_stored)


def run_scenario(chaos: Chaos, fault: Fault, *, before: float, after: float, clients: int
                 ) -> Outcome:
    """Load the stack for ``before`` seconds, inject ``fault``, load it ``after`` seconds
    more, wait until it serves with every replica again, and audit the catalog."""
    if chaos.replicas < fault.min_replicas:
        raise ValueError(f"{fault.name} needs {fault.min_replicas} replicas per shard")
    return asyncio.run(_scenario(chaos, fault, before, after, clients))
