"""The recognition benchmark, through the HTTP API of a running stack.

Starts a local stack (``cloudreco run``) in a scratch data directory, adds the benchmark catalog
(and optional distractors) with AddImage, sends every query photo to FindImage, and writes
recall per difficulty and per level, false positives, latency percentiles, throughput, the
AddImage rate and matcher memory per image into BENCHMARKS.md.

    python -m benchmarks.recognition --data ../shared/bench/public [--distractors 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np

from benchmarks import reference
from benchmarks.inprocess import gray
from cloudreco.client import wire
from cloudreco.local import LocalStack
from matcher.recognition import extract_query
from shared.codes import ResultCode

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "BENCHMARKS.md"
USER, CHANNEL = "bench", "bench"
ADD_CLIENTS = 4  # concurrent AddImage clients: the matchers' pools, not the client, limit
LOAD_CLIENTS = 8  # the throughput target is for 8 concurrent clients
ADD_ATTEMPTS = 6  # AddImage sent again after 20015, waiting 2, 4, ... 10 s between


@dataclass
class Client:
    session: aiohttp.ClientSession
    url: str
    secret: str

    async def post(self, endpoint: str, fields: dict[str, str], image: bytes | None = None
                   ) -> tuple[float, dict[str, Any]]:
        """One request (with the user's credentials), written and read by the client
        library's wire format; its seconds and its JSON answer, whatever its code."""
        call = wire.Call(endpoint, dict(fields),
                         None if image is None else wire.Upload(image, "image.jpg"))
        form = wire.form(call, {"username": USER, "secretkey": self.secret})
        started = time.perf_counter()
        async with self.session.post(f"{self.url}/{endpoint}", data=form) as resp:
            _, body = wire.answer(resp.status, resp.content_type, await resp.read())
        return time.perf_counter() - started, body


@dataclass
class Run:
    levels: dict[str, int] = field(default_factory=dict)
    add_seconds: float = 0.0
    add_failed: Counter[int] = field(default_factory=Counter)
    add_busy: int = 0  # AddImage answers 20015, each sent again (add_one)
    latencies: list[float] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)
    load_qps: float = 0.0
    load_cpu_ms: dict[str, float] = field(default_factory=dict)  # per FindImage, by part
    rss_empty: int = 0
    rss_catalog: int = 0  # after the catalog: the matcher is warm (thread pools, heaps)
    rss_full: int = 0


async def add_one(client: Client, identifier: str, image: bytes, run: Run) -> None:
    """AddImage ``image`` as ``identifier``, sent again while it is answered 20015: on a busy host
    the matcher can take longer than the gateway waits (CLOUDRECO_JOB_TIMEOUT), and a catalog
    left incomplete would make every figure after it wrong."""
    fields = {"channel": CHANNEL, "identifier": identifier}
    for attempt in range(ADD_ATTEMPTS):
        _, body = await client.post("AddImage", fields, image)
        if body["returncode"] != ResultCode.SYSTEM_BUSY:
            break
        run.add_busy += 1
        await asyncio.sleep(2.0 * (attempt + 1))
    if body["returncode"] == ResultCode.IDENTIFIER_TAKEN and attempt:
        # an earlier attempt was stored after the gateway stopped waiting for it
        _, body = await client.post("GetImage", fields)
    if body["returncode"] == 0:
        run.levels[identifier] = body["level"]
    else:
        run.add_failed[body["returncode"]] += 1


async def add_all(client: Client, images: list[Path], run: Run) -> None:
    queue = list(images)

    async def worker() -> None:
        while queue:
            path = queue.pop()
            await add_one(client, path.stem, path.read_bytes(), run)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(ADD_CLIENTS)))
    run.add_seconds += time.perf_counter() - started


async def find_all(client: Client, queries: list[Path], run: Run) -> None:
    for path in queries:  # one client: latency as a single user sees it
        seconds, body = await client.post("FindImage", {"channel": CHANNEL}, path.read_bytes())
        run.latencies.append(seconds)
        run.answers[path.stem] = body.get("identifier", "") if body["returncode"] == 0 \
            else f"error {body['returncode']}"


async def load(client: Client, queries: list[Path], run: Run) -> None:
    photos = [p.read_bytes() for p in queries]
    queue = list(range(len(photos)))

    async def worker() -> None:
        while queue:
            await client.post("FindImage", {"channel": CHANNEL}, photos[queue.pop()])

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(LOAD_CLIENTS)))
    run.load_qps = len(photos) / (time.perf_counter() - started)


def distractors(data: Path, count: int) -> list[Path]:
    """``count`` distractor images from make_bench.py, generated once into bench-data/."""
    out = ROOT / "bench-data" / f"distractors-{count}"
    if len(list(out.glob("*.jpg"))) < count:
        subprocess.run([sys.executable, str(data.parent / "make_bench.py"), "--distractors",
                        str(count), "--out", str(out), "--seed", "7"], check=True)
    return sorted(out.rglob("*.jpg"))[:count]


def open_channel(stack: LocalStack) -> str:
    """Create the benchmark's user and its unbounded channel on ``stack``; the secret key."""
    secret = stack.cli("user", "create", USER).strip().splitlines()[-1]
    stack.cli("channel", "create", USER, CHANNEL, "--max-images", "10000000")
    return secret


async def bench(stack: LocalStack, data: Path, extra: list[Path]) -> Run:
    secret = open_channel(stack)
    run = Run()
    catalog = sorted((data / "catalog").glob("*.jpg"))
    queries = [data / "queries" / f"{row['query']}.jpg" for row in truth(data)]
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        client = Client(session, stack.url, secret)
        run.rss_empty = stack.matcher_rss()
        await add_all(client, catalog, run)
        run.rss_catalog = stack.matcher_rss()
        if extra:
            await add_all(client, extra, run)
        run.rss_full = stack.matcher_rss()
        await find_all(client, queries, run)
        before = stack.cpu_seconds()
        await load(client, queries, run)
        after = stack.cpu_seconds()
        run.load_cpu_ms = {part: (after[part] - before.get(part, 0.0)) * 1000 / len(queries)
                           for part in sorted(after)}
    return run


def truth(data: Path) -> list[dict[str, str]]:
    with (data / "truth.csv").open() as f:
        return list(csv.DictReader(f))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values) * 1000, q))


@dataclass(frozen=True)
class Score:
    recall: dict[str, float]
    false_positives: tuple[int, int]
    wrong: tuple[int, int]
    errors: dict[str, int]

    def line(self) -> str:
        recall = ", ".join(f"{d} {v:.2f}" for d, v in self.recall.items())
        fp, neg = self.false_positives
        return f"{recall}; false positives {fp} of {neg}; wrong {self.wrong[0]} of {self.wrong[1]}"


def score(rows: list[dict[str, str]], answers: dict[str, str]) -> Score:
    """Recall per difficulty, false positives on negatives, wrong identifiers on positives."""
    hits: dict[str, list[bool]] = defaultdict(list)
    wrong = negatives = false_positives = 0
    errors: Counter[str] = Counter()
    for row in rows:
        got = answers[row["query"]]
        if got.startswith("error"):
            errors[got.split()[1]] += 1
            got = ""
        if not row["expected"]:
            negatives += 1
            false_positives += bool(got)
            continue
        hits[row["difficulty"]].append(got == row["expected"])
        wrong += bool(got) and got != row["expected"]
    order = {"easy": 0, "medium": 1, "hard": 2}
    recall = {d: float(np.mean(hits[d])) for d in sorted(hits, key=lambda d: order.get(d, 9))}
    return Score(recall, (false_positives, negatives), (wrong, len(rows) - negatives),
                 dict(errors))


def summarise(run: Run, data: Path, extra: int) -> dict[str, Any]:
    rows = truth(data)
    by_level: dict[int, list[bool]] = defaultdict(list)
    for row in rows:
        if row["expected"]:
            by_level[run.levels.get(row["expected"], 0)].append(
                run.answers[row["query"]] == row["expected"])
    result = score(rows, run.answers)
    added = len(run.levels)
    return {
        "catalog": added - extra, "distractors": extra, "queries": len(rows),
        "recall": result.recall,
        "recall_by_level": {lvl: (float(np.mean(v)), len(v))
                            for lvl, v in sorted(by_level.items())},
        "false_positives": result.false_positives,
        "wrong_identifier": result.wrong,
        "errors": result.errors,
        "latency_ms": {q: percentile(run.latencies, q) for q in (50, 95, 99)},
        "throughput_qps": run.load_qps,
        "load_cpu_ms": run.load_cpu_ms,
        "add_per_second": added / run.add_seconds,
        "add_failed": dict(run.add_failed),
        "add_busy": run.add_busy,
        "matcher_rss_mib": (run.rss_empty / 2**20, run.rss_catalog / 2**20,
                            run.rss_full / 2**20),
        "bytes_per_image": (run.rss_full - run.rss_empty) / max(1, added),
        # the cost of one more image in a warm matcher: growth over the distractors only
        "bytes_per_distractor": ((run.rss_full - run.rss_catalog) / extra) if extra else None,
    }


def compare_reference(data: Path, run: Run, sample: int) -> str:
    """The exhaustive reference and the service on the same seeded sample of queries."""
    rows = truth(data)
    rng = np.random.default_rng(145)
    picked = [rows[i] for i in sorted(rng.choice(len(rows), min(sample, len(rows)),
                                                 replace=False))]
    catalog = sorted((data / "catalog").glob("*.jpg"))
    started = time.perf_counter()
    answers, seconds = reference.run(catalog, [data / "queries" / f"{r['query']}.jpg"
                                               for r in picked], os.cpu_count() or 1)
    wall = time.perf_counter() - started
    service = score(picked, run.answers)
    ref = score(picked, answers)
    sample_ms = [run.latencies[i] for i, r in enumerate(rows) if r in picked]
    return "\n".join([
        f"Same run, the same {len(picked)} sampled queries (seed 145), public catalog only:",
        "",
        "| matcher | recall, false positives, wrong identifiers | time per query |",
        "|---|---|---|",
        f"| cloudreco over HTTP | {service.line()} | median "
        f"{percentile(sample_ms, 50):.0f} ms (one client) |",
        f"| exhaustive SIFT-1000 reference | {ref.line()} | median "
        f"{float(np.median(seconds)) * 1000:.0f} ms on one core; "
        f"{wall / len(picked) * 1000:.0f} ms wall on {os.cpu_count()} |",
        "",
    ])


def host_speed(data: Path) -> float:
    """Median milliseconds of one query photo's extraction on one thread: a yardstick of how
    fast this shared host ran, so that runs taken at different times can be compared."""
    cv2.setNumThreads(1)
    photo = gray(sorted((data / "queries").glob("*.jpg"))[0])
    times = []
    for _ in range(15):
        started = time.perf_counter()
        extract_query(photo)
        times.append(time.perf_counter() - started)
    return float(np.median(times)) * 1000


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}"


def markdown(s: dict[str, Any], command: str) -> str:
    recall = ", ".join(f"{d} {v:.3f}" for d, v in s["recall"].items())
    levels = ", ".join(f"level {lvl}: {r:.2f} ({n})" for lvl, (r, n) in
                       s["recall_by_level"].items())
    fp, neg = s["false_positives"]
    wrong, pos = s["wrong_identifier"]
    lat = s["latency_ms"]
    empty, warm, full = s["matcher_rss_mib"]
    per_distractor = ("" if s["bytes_per_distractor"] is None else
                      f"; {s['bytes_per_distractor'] / 1024:.1f} KiB per distractor from "
                      f"{warm:.0f} MiB after the catalog")
    return "\n".join([
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}: `{command}`",
        "",
        "| measure | value |",
        "|---|---|",
        f"| catalog + distractors | {s['catalog']} + {s['distractors']} images |",
        f"| recall by difficulty | {recall} |",
        f"| recall by level (queries) | {levels} |",
        f"| false positives on negatives | {fp} of {neg} ({fp / max(1, neg):.1%}) |",
        f"| wrong identifier on positives | {wrong} of {pos} ({wrong / max(1, pos):.1%}) |",
        f"| FindImage answers other than 0 | {s['errors'] or 'none'} |",
        f"| FindImage latency, 1 client | p50 {lat[50]:.0f} ms, p95 {lat[95]:.0f} ms, "
        f"p99 {lat[99]:.0f} ms |",
        f"| FindImage throughput, {LOAD_CLIENTS} clients | {s['throughput_qps']:.1f} /s |",
        "| CPU per FindImage under that load | " + ", ".join(
            f"{part} {ms:.1f} ms" for part, ms in s["load_cpu_ms"].items())
        + f" (total {sum(s['load_cpu_ms'].values()):.1f} ms) |",
        f"| AddImage rate, {ADD_CLIENTS} clients | {s['add_per_second']:.1f} /s "
        f"(refused: {s['add_failed'] or 'none'}; answered 20015 and sent again: "
        f"{s['add_busy']}) |",
        f"| matcher RSS empty -> full | {empty:.0f} MiB -> {full:.0f} MiB "
        f"({s['bytes_per_image'] / 1024:.1f} KiB per image{per_distractor}) |",
        "| host speed: one photo's extraction, 1 thread, before / after the run | "
        + " / ".join(f"{ms:.1f} ms" for ms in s["host_ms"]) + " |",
        "",
    ])


def write_report(section: str, body: str) -> None:
    """Replace the ``section`` block of BENCHMARKS.md, keeping everything else."""
    start, end = f"<!-- bench:{section} -->", f"<!-- /bench:{section} -->"
    text = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n"
    block = f"{start}\n{body}{end}"
    if start in text and end in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + f"\n\n{block}\n"
    REPORT.write_text(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--distractors", type=int, default=0)
    p.add_argument("--shards", type=int, default=1, help="matcher shards (the stack's default)")
    p.add_argument("--reference-sample", type=int, default=145,
                   help="queries for the exhaustive reference (0: skip it)")
    p.add_argument("--no-report", action="store_true", help="print only, leave BENCHMARKS.md")
    args = p.parse_args()
    extra = distractors(args.data, args.distractors) if args.distractors else []
    host_before = host_speed(args.data)
    with tempfile.TemporaryDirectory(prefix="cloudreco-bench-") as tmp:
        # The throughput step keeps 8 requests in flight on purpose: let the stack queue them
        # rather than answer the excess 20015 as its overload guard does by default.
        stack = LocalStack(Path(tmp) / "data", shards=args.shards,
                           CLOUDRECO_MAX_INFLIGHT=str(LOAD_CLIENTS),
                           CLOUDRECO_MATCHER_JOBS=str(LOAD_CLIENTS))
        stack.start()
        try:
            run = asyncio.run(bench(stack, args.data, extra))
        finally:
            stack.stop()
    summary = summarise(run, args.data, len(extra))
    summary["host_ms"] = [host_before, host_speed(args.data)]
    print(json.dumps(summary, indent=2))
    command = "make bench-scale" if args.distractors else "make bench"
    body = markdown(summary, command)
    if args.reference_sample and not args.distractors:
        body += "\n" + compare_reference(args.data, run, args.reference_sample)
        print(body)
    if not args.no_report:
        write_report("scale" if args.distractors else "public", body)
        print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
