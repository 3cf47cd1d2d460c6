"""What ``cloudreco reindex`` costs a serving stack: FindImage from one closed-loop client
before and while the public catalog's features are rebuilt from their originals.

Starts a local stack, adds the catalog, sends the positive query photos in a loop for
``--seconds`` (before), then again while ``cloudreco reindex --jobs J`` runs beside it
(during); reports per phase the answers by code, wrong identifiers, recall and latency
percentiles, and the reindex's rate. The pipeline is the same before and after, so every
image is rebuilt into what it was: what is measured is the work and the swaps.

    python -m benchmarks.reindex --data ../shared/bench/public [--jobs 1] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from benchmarks.recognition import (
    CHANNEL,
    USER,
    Client,
    machine,
    open_channel,
    percentile,
    truth,
    write_report,
)
from cloudreco.local import LocalStack


@dataclass
class Phase:
    """FindImage answers of one phase."""

    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    codes: Counter[int] = field(default_factory=Counter)
    found: int = 0
    wrong: int = 0

    def row(self) -> str:
        answered = self.codes[0]
        p50, p95, p99 = (percentile(self.latencies, q) for q in (50, 95, 99))
        codes = ", ".join(f"{c}: {n}" for c, n in sorted(self.codes.items()))
        return (f"| {self.name} | {self.seconds:.0f} s | {len(self.latencies)} | {codes} | "
                f"{self.found / max(1, answered):.3f} | {self.wrong} | {p50:.0f} / {p95:.0f} "
                f"/ {p99:.0f} ms |")


async def find_until(client: Client, photos: list[tuple[bytes, str]], phase: Phase,
                     done: asyncio.Event) -> None:
    """FindImage of ``photos`` in turn, one at a time, until ``done``."""
    started = time.monotonic()
    while not done.is_set():
        for photo, expected in photos:
            if done.is_set():
                break
            seconds, body = await client.post("FindImage", {"channel": CHANNEL}, photo)
            phase.latencies.append(seconds)
            phase.codes[body["returncode"]] += 1
            got = body.get("identifier")
            phase.found += got == expected
            phase.wrong += got is not None and got != expected
    phase.seconds = time.monotonic() - started


async def bench(stack: LocalStack, data: Path, seconds: float, jobs: int
                ) -> tuple[list[Phase], float, str]:
    secret = open_channel(stack)
    await _add_catalog(stack, secret, data / "catalog")
    photos = [((data / "queries" / f"{r['query']}.jpg").read_bytes(), r["expected"])
              for r in truth(data) if r["expected"]]
    before, during = Phase("before"), Phase(f"during reindex --jobs {jobs}")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        client = Client(session, stack.url, secret)
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        await find_until(client, photos, before, stop)
        finished = asyncio.Event()
        finding = asyncio.create_task(find_until(client, photos, during, finished))
        started = time.monotonic()
        reindexed = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cloudreco", "reindex", "--jobs", str(jobs), env=stack.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        out, _ = await reindexed.communicate()
        took = time.monotonic() - started
        finished.set()
        await finding
    return [before, during], took, out.decode().splitlines()[0]


async def _add_catalog(stack: LocalStack, secret: str, folder: Path) -> None:
    """``cloudreco add``, one upload at a time and retried on 20015: every image is added
    however busy the host."""
    env = {**stack.env, "CLOUDRECO_URL": stack.url, "CLOUDRECO_USERNAME": USER,
           "CLOUDRECO_SECRETKEY": secret}
    adding = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cloudreco", "add", CHANNEL, str(folder), "--jobs", "1",
        "--retries", "10", env=env, stderr=asyncio.subprocess.DEVNULL)
    if await adding.wait() != 0:
        raise RuntimeError("the catalog was not all added")


def markdown(phases: list[Phase], took: float, outcome: str, images: int, jobs: int) -> str:
    return "\n".join([
        f"Run {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC on {machine()}: "
        f"`python -m benchmarks.reindex --data ../shared/bench/public --jobs {jobs}` (1 shard, "
        "1 replica, 2 gateways: `cloudreco run`'s defaults; reindex on the same machine)",
        "",
        f"`cloudreco reindex --jobs {jobs}`: {images} images in {took:.0f} s "
        f"({images / took:.2f} images/s): {outcome}",
        "",
        "| FindImage, 1 client | time | requests | answers by code | recall | wrong "
        "identifier | p50 / p95 / p99 |",
        "|---|---|---|---|---|---|---|",
        *(p.row() for p in phases),
        "",
    ])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--jobs", type=int, default=1, help="reindex's --jobs")
    p.add_argument("--seconds", type=float, default=60.0, help="the phase before reindex")
    p.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="cloudreco-reindex-") as tmp:
        stack = LocalStack(Path(tmp) / "data")
        stack.start()
        try:
            phases, took, outcome = asyncio.run(bench(stack, args.data, args.seconds,
                                                      args.jobs))
        finally:
            stack.stop()
    images = len(list((args.data / "catalog").glob("*.jpg")))
    body = markdown(phases, took, outcome, images, args.jobs)
    print(body)
    if args.write:
        write_report("reindex", "## Reindex while serving\n\n" + body)


if __name__ == "__main__":
    main()
