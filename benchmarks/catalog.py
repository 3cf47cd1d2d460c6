"""Whether the catalog's SQL grows with the catalog or its history.

``--history``: a fresh database with one channel of N images (100,000 by default) and a year
of FindImage matches (``--matched-per-day`` identifiers counted each day), served by a real
gateway process on a socket; times GetImages at the first, middle and last page, GetImage, and
Statistics per user over the year, per identifier over the year and per channel over one day.
The rows are written with SQL (the features are a placeholder: these endpoints never read
them).

``--import N``: a fresh local stack (``cloudreco run``, one shard); N make_bench.py
distractors added to one channel through AddImage by 4 clients; the time per image over
each block of 1,000 (``--block``), so that the first and last blocks can be compared.

    python -m benchmarks.catalog --history --images 100000
    python -m benchmarks.catalog --data ../shared/bench/public --import 20000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import itertools
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from benchmarks.recognition import (
    CHANNEL,
    USER,
    distractors,
    machine,
    open_channel,
    percentile,
    write_report,
)
from cloudreco import admin
from cloudreco.client import ApiError, AsyncClient, ConflictError
from cloudreco.embedded import free_port, start_postgres, start_redis
from cloudreco.local import LocalStack
from gateway.app import create_app
from shared.db import migrate
from shared.settings import Settings

SECRET = "bench-secret-0123456789abcdef0123456789"
REPEATS = 30
ADD_CLIENTS = 4


async def fill(db: asyncpg.Pool, images: int, per_day: int, days: int) -> None:
    """One channel of ``images`` images and ``days`` days of matches, ``per_day`` identifiers
    a day (spread over the catalog, a different set each day)."""
    await admin.create_user(db, USER, SECRET)
    channel = await admin.create_channel(db, USER, CHANNEL, 10_000_000)
    # One statement of N inserts would walk the channel row's N updates by the count trigger.
    await db.execute("ALTER TABLE images DISABLE TRIGGER images_count")
    await db.execute(
        "INSERT INTO images (channel_id, identifier, metadata, level, shard, width, height,"
        " feature_version, features)"
        " SELECT $1, 'img.' || lpad(g::text, 6, '0'), '{\"n\": ' || g || '}', 3, 0, 640,"
        " 480, 1, '\\x00'::bytea FROM generate_series(1, $2) g", channel, images)
    await db.execute("ALTER TABLE images ENABLE TRIGGER images_count")
    await db.execute("UPDATE channels SET image_count = $2 WHERE id = $1", channel, images)
    today = dt.datetime.now(dt.UTC).date()
    await db.execute(
        "INSERT INTO match_counts (channel_id, identifier, day, count)"
        " SELECT $1, 'img.' || lpad((1 + (k * 7919 + d * 104729) % $2)::text, 6, '0'),"
        "        $4::date - d, 1 + k % 5"
        " FROM generate_series(0, $5 - 1) d, generate_series(1, $3) k"
        " ON CONFLICT DO NOTHING", channel, images, per_day, today, days)
    await db.execute(
        "INSERT INTO match_totals (channel_id, identifier, count)"
        " SELECT channel_id, identifier, sum(count) FROM match_counts GROUP BY 1, 2")
    await db.execute("UPDATE channels SET match_count = (SELECT sum(count) FROM match_counts)")
    await db.execute(
        "INSERT INTO channel_days (channel_id, day, count)"
        " SELECT channel_id, day, sum(count) FROM match_counts GROUP BY 1, 2")
    await db.execute("VACUUM ANALYZE")


async def timed(session: aiohttp.ClientSession, url: str, fields: dict[str, str]
                ) -> tuple[list[float], dict[str, Any]]:
    """Seconds of REPEATS requests (after 3 unmeasured), and the last answer."""
    times: list[float] = []
    body: dict[str, Any] = {}
    for n in range(REPEATS + 3):
        started = time.perf_counter()
        async with session.post(url, data=fields) as resp:
            body = await resp.json()
        if n >= 3:
            times.append(time.perf_counter() - started)
    assert body["returncode"] == 0, body
    return times, body


def serve_gateway(settings: dict[str, Any], port: int) -> None:
    """A gateway process of its own, as deployed: the client's parsing of large answers is
    not on its event loop."""
    web.run_app(create_app(Settings.model_validate(settings)), host="127.0.0.1", port=port,
                print=None)


async def wait_for(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{url}/healthz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError("the gateway did not start")


async def history(images: int, per_day: int, days: int) -> str:
    work = Path(tempfile.mkdtemp(prefix="cloudreco-catalog-"))
    dsn, stop_pg = start_postgres(work / "pg")
    redis_url, stop_redis = start_redis(work / "redis")
    try:
        await migrate(dsn)
        db = await asyncpg.create_pool(dsn, command_timeout=None)  # the fill takes minutes
        started = time.perf_counter()
        await fill(db, images, per_day, days)
        filled = time.perf_counter() - started
        rows = await db.fetchval("SELECT count(*) FROM match_counts")
        settings = Settings(database_url=dsn, redis_url=redis_url, data_dir=work)
        port = free_port()
        gateway = multiprocessing.get_context("spawn").Process(
            target=serve_gateway, args=(settings.model_dump(mode="json"), port), daemon=True)
        gateway.start()
        url = f"http://127.0.0.1:{port}"
        await wait_for(url)
        today = dt.datetime.now(dt.UTC).date()
        year = {"startdate": (today - dt.timedelta(days=days - 1)).strftime("%Y%m%d"),
                "enddate": today.strftime("%Y%m%d")}
        day = {"startdate": today.strftime("%Y%m%d"), "enddate": today.strftime("%Y%m%d")}
        auth = {"username": USER, "secretkey": SECRET}
        cases = {
            "GetImages, position 0": ("GetImages", {**auth, "channel": CHANNEL,
                                                    "position": "0"}),
            f"GetImages, position {images // 2}": ("GetImages", {
                **auth, "channel": CHANNEL, "position": str(images // 2)}),
            f"GetImages, position {images - 100}": ("GetImages", {
                **auth, "channel": CHANNEL, "position": str(images - 100)}),
            "GetImage": ("GetImage", {"channel": CHANNEL, "identifier": "img.000001"}),
            "Statistics per channel, the year": ("Statistics", {**auth, **year}),
            "Statistics per identifier, one image, the year": ("Statistics", {
                **auth, **year, "channel": CHANNEL, "identifier": "img.000001"}),
            "Statistics per identifier, the channel, one day": ("Statistics", {
                **auth, **day, "channel": CHANNEL}),
        }
        lines = [f"{images:,} images in one channel; {rows:,} daily match rows over {days} "
                 f"days ({per_day:,} identifiers a day); filled in {filled:.0f} s. {machine()}.",
                 "", "| request | answer | p50 | p95 |", "|---|---|---|---|"]
        async with aiohttp.ClientSession() as session:
            for name, (endpoint, fields) in cases.items():
                times, body = await timed(session, f"{url}/{endpoint}", fields)
                size = len(body.get("images", body.get("records", [body])))
                lines.append(f"| {name} | {size} rows | {1000 * statistics.median(times):.1f} ms"
                             f" | {percentile(times, 95):.1f} ms |")
        gateway.terminate()
        gateway.join()
        await db.close()
        return "\n".join(lines) + "\n"
    finally:
        stop_redis()
        stop_pg()
        shutil.rmtree(work, ignore_errors=True)


PARTS = ("gateway", "matcher", "other", "postgres", "redis")  # as LocalStack names them


@dataclasses.dataclass
class Block:
    """One block of the import: wall seconds and stack CPU seconds per image (in all and by
    part of the stack), the host's one-minute load average at its end (other work) and the
    replica's resident memory then."""

    wall: float
    cpu: float
    parts: dict[str, float]
    load: float
    rss: int


async def import_blocks(stack: LocalStack, secret: str, paths: list[Path], block: int
                        ) -> tuple[list[Block], Counter[str]]:
    """Each ``block`` of images in order, and the answers by kind. The adds go through
    ``cloudreco.client``, which sends an add answered 20015 again (with backoff): a busy host
    slows the import instead of thinning it."""
    queue = list(reversed(paths))
    def mark() -> tuple[float, dict[str, float], float, int]:
        return time.perf_counter(), stack.cpu_seconds(), os.getloadavg()[0], stack.matcher_rss()

    marks = [mark()]
    answers: Counter[str] = Counter()

    async def worker(client: AsyncClient) -> None:
        while queue:
            path = queue.pop()
            try:
                await client.add_image(CHANNEL, f"d.{path.stem}", path.read_bytes())
                answers["added"] += 1
            except ConflictError:  # an earlier attempt, answered 20015, stored it after all
                answers["added (20016 on a retry)"] += 1
            except ApiError as e:
                answers[f"refused {e.code}"] += 1
            if sum(answers.values()) % block == 0:
                marks.append(mark())

    async with AsyncClient(stack.url, USER, secret, retries=10, connections=ADD_CLIENTS,
                           timeout=120) as client:
        await asyncio.gather(*(worker(client) for _ in range(ADD_CLIENTS)))
    blocks = []
    for (t0, cpu0, _, _), (t1, cpu1, load, rss) in itertools.pairwise(marks):
        parts = {p: (cpu1.get(p, 0.0) - cpu0.get(p, 0.0)) / block for p in PARTS}
        blocks.append(Block((t1 - t0) / block, sum(parts.values()), parts, load, rss))
    return blocks, answers


def import_run(data: Path, count: int, block: int) -> str:
    paths = distractors(data, count)
    with tempfile.TemporaryDirectory(prefix="cloudreco-import-") as work:
        stack = LocalStack(Path(work), shards=1)
        stack.start()
        try:
            secret = open_channel(stack)
            blocks, answers = asyncio.run(import_blocks(stack, secret, paths, block))
        finally:
            stack.stop()
    lines = ["| block | wall ms per image | stack CPU ms per image | of it: " + " / ".join(PARTS)
             + " | load average at its end | replica RSS at its end |", "|---|---|---|---|---|---|"]
    lines += [f"| {i + 1} | {1000 * b.wall:.0f} | {1000 * b.cpu:.0f} | "
              + " / ".join(f"{1000 * b.parts[p]:.0f}" for p in PARTS)
              + f" | {b.load:.1f} | {b.rss / 2**20:.0f} MiB |"
              for i, b in enumerate(blocks)]
    first, last = blocks[0], blocks[-1]
    return (f"{len(paths):,} distractors added to one channel by {ADD_CLIENTS} clients through"
            f" AddImage ({', '.join(f'{n:,} {k}' for k, n in sorted(answers.items()))}), in"
            f" blocks of {block:,}. Stack"
            f" CPU: every process of the stack (LocalStack.cpu_seconds: gateways, matcher,"
            f" other = its extraction processes, Redis, and the detached Postgres's server"
            f" processes while they run: Postgres's short-lived workers, autovacuum's, are not"
            f" counted), which the host's other work does not"
            f" inflate as it does wall time. {machine()}.\n\n" + "\n".join(lines)
            + f"\n\nFirst block {1000 * first.wall:.0f} ms wall, {1000 * first.cpu:.0f} ms"
            f" CPU per image; last block {1000 * last.wall:.0f} ms wall,"
            f" {1000 * last.cpu:.0f} ms CPU.\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--history", action="store_true")
    p.add_argument("--images", type=int, default=100_000)
    p.add_argument("--matched-per-day", type=int, default=5_000)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--import", dest="imports", type=int, default=0, metavar="N")
    p.add_argument("--block", type=int, default=1000, help="images per timed block")
    p.add_argument("--data", type=Path, default=Path("../shared/bench/public"))
    p.add_argument("--write", action="store_true", help="write the tables into BENCHMARKS.md")
    args = p.parse_args()
    if args.history:
        report = asyncio.run(history(args.images, args.matched_per_day, args.days))
        print(report)
        if args.write:
            write_report("catalog-history", "## Catalog reads at 100,000 images and a year of "
                         "history\n\n`python -m benchmarks.catalog --history --write`, "
                         f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.\n\n" + report)
    if args.imports:
        report = import_run(args.data, args.imports, args.block)
        print(report)
        if args.write:
            write_report("catalog-import", f"## Importing {args.imports:,} images into one "
                         f"channel\n\n`python -m benchmarks.catalog --import {args.imports} "
                         f"--write`, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.\n\n" + report)


if __name__ == "__main__":
    main()
