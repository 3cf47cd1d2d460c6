"""How long a replica of a large shard takes to serve again after a restart.

Fills a fresh database with N images of one shard (one channel), then times real matcher
processes (``cloudreco matcher --shard 0``) from start until they are live in the shard's
replica set: the first start rebuilds from Postgres; a SIGTERM saves a snapshot; the next
starts load it. Then it kills one with SIGKILL after a few more AddImage-like changes and
times the restart that loads the snapshot and replays the log after it; last, it logs more
changes to that one, due a snapshot every 2 s, and watches whether the shard stays live while
the replica saves.

The images' features are made, not extracted (extracting 100,000 targets takes hours here):
each takes 92 descriptors drawn from the real descriptors of the public catalog's targets,
with Gaussian noise and renormalised, at random positions. Loading time depends on the
index's size, not on what the descriptors show.

    python -m benchmarks.restart --data ../shared/bench/public --images 100000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
from redis import Redis

from benchmarks.inprocess import gray
from benchmarks.recognition import machine, write_report
from cloudreco.embedded import EmbeddedPostgres, EmbeddedRedis
from matcher import features, recognition
from shared import changes
from shared.cluster import shard_map
from shared.db import create_pool, migrate
from shared.jobs import replicas_key

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench-data" / "restart"
PER_IMAGE = 92  # descriptors per target, as extraction keeps
FILL_BATCH = 2000
NOISE = 0.08
SAVE_WATCH = 45.0  # seconds the live replicas are watched while a periodic snapshot is saved


def descriptor_pool(data: Path, targets: int) -> recognition.Features:
    """The real descriptors of the first ``targets`` catalog images, stacked."""
    found = [recognition.extract_target(gray(p))
             for p in sorted((data / "catalog").glob("*.jpg"))[:targets]]
    return recognition.Features(np.concatenate([f.xy for f in found]),
                                np.concatenate([f.desc for f in found]), 1, 1,
                                angle=np.concatenate([f.angle for f in found if
                                                      f.angle is not None]),
                                size=np.concatenate([f.size for f in found if
                                                     f.size is not None]))


def made_features(pool: recognition.Features, rng: np.random.Generator) -> bytes:
    pick = rng.integers(0, len(pool.desc), PER_IMAGE)
    desc = pool.desc[pick] + rng.normal(0, NOISE, (PER_IMAGE, pool.desc.shape[1]))
    desc /= np.linalg.norm(desc, axis=1, keepdims=True)
    xy = rng.uniform(0, 600, (PER_IMAGE, 2)).astype(np.float32)
    assert pool.angle is not None and pool.size is not None
    return features.encode(recognition.Features(
        xy, desc.astype(np.float32), 600, 600, angle=pool.angle[pick], size=pool.size[pick]))


async def fill(dsn: str, pool_features: recognition.Features, count: int) -> None:
    """One user, one channel, ``count`` images on shard 0, each logged as added."""
    await migrate(dsn)
    db = await create_pool(dsn, max_size=2)
    try:
        await shard_map(db, 1)
        user = await db.fetchval("INSERT INTO users (name, secret_salt, secret_hash)"
                                 " VALUES ('bench', '', '') RETURNING id")
        channel = await db.fetchval("INSERT INTO channels (user_id, name, max_images)"
                                    " VALUES ($1, 'bench', $2) RETURNING id", user, count + 100)
        rng = np.random.default_rng(7)
        for start in range(0, count, FILL_BATCH):
            rows = [(channel, f"img{i:07d}", 3, 0, 600, 600, features.FEATURE_VERSION,
                     made_features(pool_features, rng))
                    for i in range(start, min(count, start + FILL_BATCH))]
            await db.copy_records_to_table(
                "images", records=rows, columns=["channel_id", "identifier", "level", "shard",
                                                 "width", "height", "feature_version",
                                                 "features"])
            print(f"  filled {start + len(rows)} / {count}", flush=True)
    finally:
        await db.close()


async def log_changes(dsn: str, count: int) -> None:
    """``count`` more images added through the log, as AddImage does (the replay after a
    snapshot)."""
    db = await create_pool(dsn, max_size=1)
    try:
        rows = await db.fetch("SELECT id, channel_id FROM images ORDER BY id DESC LIMIT $1",
                              count)
        async with db.acquire() as conn, conn.transaction():
            for r in rows:
                await changes.append(conn, 0, changes.Op.ADDED, r["id"], r["channel_id"])
    finally:
        await db.close()


def start_replica(env: dict[str, str], redis: Redis, log: Path) -> tuple[subprocess.Popen[bytes],
                                                                          float]:
    """Start a replica; it and the seconds until it was live."""
    before = set(redis.zrange(replicas_key(0), 0, -1))
    started = time.monotonic()
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cloudreco", "matcher", "--shard", "0"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    while not set(redis.zrangebyscore(replicas_key(0), time.time() * 1000, "+inf")) - before:
        if proc.poll() is not None:
            raise RuntimeError(f"the replica exited with {proc.returncode}; see {log}")
        time.sleep(0.05)
    return proc, time.monotonic() - started


def live_gap(redis: Redis, seconds: float) -> float:
    """Watch the shard's live replicas for ``seconds`` (every 20 ms); the longest stretch
    with none."""
    longest, since = 0.0, None
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        now = time.monotonic()
        if redis.zcount(replicas_key(0), time.time() * 1000, "+inf"):
            since = None
        else:
            since = now if since is None else since
            longest = max(longest, now - since)
        time.sleep(0.02)
    return longest


def logged_saves(log: Path, pid: int) -> list[float]:
    """The seconds each snapshot save of replica ``pid`` took, from its log."""
    found = re.findall(rf" {pid} matcher\.worker INFO .*snapshot at change \d+ saved in "
                       r"([\d.]+) s", log.read_text())
    return [float(s) for s in found]


def stop(proc: subprocess.Popen[bytes], sig: signal.Signals) -> float:
    started = time.monotonic()
    proc.send_signal(sig)
    proc.wait(600)
    return time.monotonic() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--images", type=int, default=100_000)
    p.add_argument("--restarts", type=int, default=3)
    p.add_argument("--write", action="store_true", help="put the results in BENCHMARKS.md")
    p.add_argument("--reuse", action="store_true",
                   help="keep the database and snapshot of the last run (no fill, no rebuild)")
    args = p.parse_args()
    if not args.reuse:
        shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    log = WORK / "matcher.log"
    postgres = EmbeddedPostgres(WORK / "pg" / "data")
    redis_server = EmbeddedRedis(WORK / "redis")
    redis_server.start()
    try:
        if not args.reuse:
            print("extracting the descriptor pool", flush=True)
            pool_features = descriptor_pool(args.data, 40)
            t = time.monotonic()
            asyncio.run(fill(postgres.uri, pool_features, args.images))
            print(f"filled in {time.monotonic() - t:.0f} s", flush=True)
        env = {**os.environ, "CLOUDRECO_DATABASE_URL": postgres.uri,
               "CLOUDRECO_REDIS_URL": redis_server.url, "CLOUDRECO_DATA_DIR": str(WORK),
               "CLOUDRECO_SHARDS": "1", "CLOUDRECO_LOG_LEVEL": "INFO"}
        redis = Redis.from_url(redis_server.url)
        proc, rebuild = start_replica(env, redis, log)
        rss = psutil.Process(proc.pid).memory_info().rss
        first = ("loaded the last run's snapshot" if args.reuse else
                 "rebuild from Postgres, batched inserts on 2 threads")
        print(f"first start ({first}): live after {rebuild:.1f} s, RSS {rss / 2**20:.0f} MiB",
              flush=True)
        stops, loads = [stop(proc, signal.SIGTERM)], []
        for _ in range(args.restarts):
            proc, seconds = start_replica(env, redis, log)
            loads.append(seconds)
            stops.append(stop(proc, signal.SIGTERM))
            print(f"restart from snapshot: live after {seconds:.1f} s", flush=True)
        proc, _ = start_replica(env, redis, log)
        asyncio.run(log_changes(postgres.uri, 200))
        time.sleep(2)  # the replica applies them; the kill leaves its snapshot behind them
        stop(proc, signal.SIGKILL)
        # a snapshot due two seconds after start, with 200 changes to cover
        proc, after_kill = start_replica({**env, "CLOUDRECO_SNAPSHOT_INTERVAL": "2"}, redis, log)
        print(f"restart after SIGKILL (snapshot + 200 logged changes): {after_kill:.1f} s")
        asyncio.run(log_changes(postgres.uri, 200))
        gap = live_gap(redis, SAVE_WATCH)
        saves = logged_saves(log, proc.pid)
        stop(proc, signal.SIGTERM)
        print(f"periodic saves {saves}; longest without a live replica {gap:.2f} s")
        size = sum(f.stat().st_size for f in (WORK / "snapshots").rglob("*") if f.is_file())
        body = "\n".join([
            f"Run {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC on {machine()}: "
            f"`python -m benchmarks.restart --data {args.data} --images {args.images}"
            + (" --reuse`" if args.reuse else "`"),
            "",
            "| measure | value |",
            "|---|---|",
            f"| shard | {args.images} images in one channel, {PER_IMAGE} descriptors each |",
            f"| first start: {first} | {rebuild:.1f} s to live |",
            f"| replica RSS after the first start | {rss / 2**20:.0f} MiB |",
            f"| restart from its snapshot, SIGTERM then start, {args.restarts} times | "
            f"median {statistics.median(loads):.1f} s to live ("
            + ", ".join(f"{s:.1f}" for s in loads) + ") |",
            f"| restart after SIGKILL: last snapshot + 200 logged changes | "
            f"{after_kill:.1f} s to live |",
            f"| SIGTERM to exit, nothing changed since the snapshot | median "
            f"{statistics.median(stops):.1f} s |",
            "| a periodic snapshot after 200 more changes, as the replica logged it | "
            + (f"{saves[0]:.1f} s |" if saves else f"none within {SAVE_WATCH:.0f} s |"),
            f"| meanwhile, the longest the shard had no live replica (sampled every 20 ms) | "
            f"{gap:.2f} s |",
            f"| snapshots on disk (the newest two kept) | {size / 2**30:.2f} GiB |",
            "",
        ])
        print(body)
        if args.write:
            write_report("restart", body)
    finally:
        redis_server.stop()
        postgres.stop()


if __name__ == "__main__":
    main()
