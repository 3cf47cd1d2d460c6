"""What a photo's size costs FindImage in memory and time.

    python -m benchmarks.photo_size cost [--photos 5] [--rounds 9] [--write]
    (make bench-photo-size)

It makes its photos at run time from the benchmark sets (nothing is stored): 640x480 public
queries, 1024 px phone photos of the real set and their 640 px copies (the base of the
ratios: the same photos at both sizes), those phone photos upscaled to 40 MP and
compressed under the 2 MiB upload limit, a smooth 40 MP JPEG, and the largest progressive
JPEG (20 MP: the most memory a JPEG may take to decode) and PNG (4K RGB) the limits let in.
For each kind it measures, in a fresh process per kind and variant (now; now with
``query_max_side`` 512; before, decoded whole and searched at half size with no bound), the
peak RSS rise of the matcher's decode and extraction over a warm process (VmHWM) and its CPU
time; then FindImage over HTTP on a fresh stack holding both catalogs (kinds interleaved, one
client: wall time and the matcher's CPU per request) and, per kind, the peak RSS rise of a
matcher started afresh and warmed on the 640 px photos. ``--write`` puts the table into
BENCHMARKS.md. The recall side of the size photos are searched at: ``benchmarks/size_recall.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import psutil
from threadpoolctl import threadpool_limits

from benchmarks.inprocess import LIMITS
from benchmarks.recognition import (
    CHANNEL,
    Client,
    Run,
    add_all,
    machine,
    open_channel,
    truth,
    write_report,
)
from benchmarks.size_recall import whole_photo_features
from cloudreco.local import LocalStack
from matcher import features, recognition
from matcher.memory import use_one_heap

ROOT = Path(__file__).resolve().parents[1]
FULL = (7296, 5472)  # 39.9 MP, 4:3: the largest photo the default pixel limit lets in
UPLOAD_LIMIT = 2 << 20  # the default CLOUDRECO_MAX_IMAGE_BYTES
PROGRESSIVE = (5120, 3840)  # 19.7 MP: 4:2:0, the largest progressive JPEG the limits let in
PNG_SIZE = (3840, 2160)  # 4K RGB: 24.9 MB inflated, just under the default 24 MiB PNG limit
BEFORE = dataclasses.replace(recognition.CFG, query_max_side=1 << 30)  # half size, no bound


def fitted(img: np.ndarray, limit: int = UPLOAD_LIMIT) -> bytes:
    """``img`` as the best JPEG quality (of 95, 90, ... 50) that fits in ``limit`` bytes."""
    for quality in range(95, 45, -5):
        data = bytes(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])[1])
        if len(data) <= limit:
            return data
    raise ValueError("does not fit the upload limit even at quality 50")


def smooth(size: tuple[int, int], period: float = 600.0) -> np.ndarray:
    """A colour picture of slow waves: nothing to recognise, and it compresses very well."""
    y, x = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float32)
    wave = (128 + 60 * np.sin(x / period) + 50 * np.cos(y / period)).astype(np.uint8)
    return cv2.merge([wave, np.flipud(wave), np.fliplr(wave)])


def photo_kinds(public: Path, real: Path, count: int) -> dict[str, list[bytes]]:
    """The photos ``cost`` sends, by kind; none is stored."""
    queries = [r["query"] for r in truth(public) if r["expected"]][:count]
    phones = [r["query"] for r in truth(real) if r["difficulty"].startswith("phone")][:count]
    small = [(public / "queries" / f"{q}.jpg").read_bytes() for q in queries]
    phone = [(real / "queries" / f"{q}.jpg").read_bytes() for q in phones]
    pixels = [cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_COLOR) for p in phone]
    waves = smooth(FULL)
    return {
        # the same photos at both sizes first: the 640 px copies are the base of the ratios
        "640 px JPEG (phone photo reduced)": [
            bytes(cv2.imencode(".jpg", cv2.resize(p, None, fx=640 / max(p.shape),
                                                  fy=640 / max(p.shape),
                                                  interpolation=cv2.INTER_AREA),
                               [cv2.IMWRITE_JPEG_QUALITY, 88])[1]) for p in pixels],
        "1024 px JPEG (phone photo)": phone,
        "640x480 JPEG (public query)": small,
        "40 MP JPEG (phone photo upscaled)": [
            fitted(cv2.resize(p, FULL, interpolation=cv2.INTER_CUBIC)) for p in pixels],
        "40 MP JPEG (smooth)": [fitted(waves)],
        "20 MP progressive JPEG (smooth)": [bytes(cv2.imencode(
            ".jpg", smooth(PROGRESSIVE), [cv2.IMWRITE_JPEG_QUALITY, 90,
                                          cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1])],
        "PNG at the PNG limit (smooth RGB)": [bytes(cv2.imencode(
            ".png", smooth(PNG_SIZE, period=700), [cv2.IMWRITE_PNG_COMPRESSION, 9])[1])],
    }


def extract_child(args: argparse.Namespace) -> None:
    """In a fresh process set up as a matcher is: warm it on a small photo, then extract each
    of ``args.photos``; prints the peak RSS rise over the warm process and the times."""
    threadpool_limits(1)
    use_one_heap()
    cv2.setNumThreads(os.cpu_count() or 1)

    cfg = dataclasses.replace(recognition.CFG, query_max_side=args.max_side)

    def run(data: bytes) -> recognition.Features:
        return whole_photo_features(data, BEFORE) if args.before else \
            features.photo_features(data, LIMITS, cfg)

    run(args.warm.read_bytes())
    me = psutil.Process()
    warm = peak_rss(me)  # of this process's memory: ru_maxrss would start at its parent's
    wall, cpu = [], []
    for path in args.photos:
        data = path.read_bytes()
        started, used = time.perf_counter(), time.process_time()
        run(data)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - used) * 1000)
    print(json.dumps({"rise_mib": (peak_rss(me) - warm) / 2**20, "warm_mib": warm / 2**20,
                      "wall_ms": wall, "cpu_ms": cpu}))


# How a photo was decoded and searched: now; now with the bound at 512 px; before this
# bound (decoded whole, searched at half size).
VARIANTS = {"now": [], "512": ["--max-side", "512"], "before": ["--before"]}


def in_process(files: dict[str, list[Path]], warm: Path, rounds: int) -> dict[str, Any]:
    """Per kind and variant: a fresh process's peak RSS rise and times. Before, a 40 MP
    photo took seconds and gigabytes: it runs once, on one photo."""
    out: dict[str, Any] = {}
    for kind, paths in files.items():
        for variant, flags in VARIANTS.items():
            large = variant == "before" and "40 MP" in kind
            photos = paths[:1] if large else paths * rounds
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.photo_size", "_extract", "--warm", str(warm),
                 *flags, *map(str, photos)], capture_output=True, text=True, check=True, cwd=ROOT)
            out[f"{kind}/{variant}"] = json.loads(done.stdout)
    return out


def peak_rss(proc: psutil.Process) -> int:
    """The process's peak resident memory so far (VmHWM), in bytes."""
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


async def fresh_matcher(stack: LocalStack) -> psutil.Process:
    """Stop the stack's matcher and wait for the one its supervisor starts instead (from the
    snapshot the old one saved), so that its peak RSS is its own."""
    old = stack.processes("matcher")[0]
    old.terminate()
    await asyncio.to_thread(old.wait, 60)
    for _ in range(600):
        new = [p for p in stack.processes("matcher") if p.pid != old.pid]
        if new and await asyncio.to_thread(stack.healthy):
            return new[0]
        await asyncio.sleep(0.2)
    raise RuntimeError("the matcher did not come back")


async def through_stack(stack: LocalStack, kinds: dict[str, list[bytes]], catalogs: list[Path],
                        rounds: int) -> dict[str, Any]:
    """FindImage of every photo, kinds interleaved, one client: wall time, the matcher's CPU
    per request and the answers. Then, per kind, in a matcher started afresh and warmed on
    the first kind's photos (640 px): its peak RSS (VmHWM) rise over the kind's photos."""
    secret = open_channel(stack)
    out: dict[str, Any] = {kind: {"ms": [], "cpu_ms": [], "codes": {}} for kind in kinds}
    warm_up = next(iter(kinds.values()))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        client = Client(session, stack.url, secret)

        async def find(photo: bytes) -> dict[str, Any]:
            return (await client.post("FindImage", {"channel": CHANNEL}, photo))[1]

        await add_all(client, [p for c in catalogs for p in sorted(c.glob("*.jpg"))], Run())
        matcher = stack.processes("matcher")[0]
        for photo in warm_up:
            await find(photo)
        for _ in range(rounds):
            for kind, photos in kinds.items():
                for photo in photos:
                    used = sum(matcher.cpu_times()[:2])
                    seconds, body = await client.post("FindImage", {"channel": CHANNEL}, photo)
                    out[kind]["cpu_ms"].append((sum(matcher.cpu_times()[:2]) - used) * 1000)
                    out[kind]["ms"].append(seconds * 1000)
                    code = str(body["returncode"]) + (" found" if "identifier" in body else "")
                    out[kind]["codes"][code] = out[kind]["codes"].get(code, 0) + 1
        for kind, photos in kinds.items():
            matcher = await fresh_matcher(stack)
            for photo in warm_up:
                await find(photo)
            warm = peak_rss(matcher)
            for photo in photos:
                await find(photo)
            out[kind]["rise_mib"] = (peak_rss(matcher) - warm) / 2**20
    return out


def cost_table(kinds: dict[str, list[bytes]], stack: dict[str, Any], local: dict[str, Any]
               ) -> str:
    base = float(np.median(stack[next(iter(kinds))]["ms"]))
    lines = [
        "| photo | size sent | FindImage p50 / p95 | x 640 px | matcher CPU per request "
        "| answers | matcher peak RSS rise | fresh process: peak RSS rise, now / at 512 / "
        "before | decode + extract CPU, now / at 512 / before |",
        "|---|---|---|---|---|---|---|---|---|"]
    for kind, photos in kinds.items():
        s = stack[kind]
        runs = [local[f"{kind}/{variant}"] for variant in VARIANTS]
        rises = " / ".join(f"{r['rise_mib']:.0f}" for r in runs)
        cpus = " / ".join(f"{np.median(r['cpu_ms']):.0f}" for r in runs)
        answers = ", ".join(f"{c} x{n}" for c, n in sorted(s["codes"].items()))
        lines.append(
            f"| {kind} | {np.median([len(p) for p in photos]) / 2**10:.0f} KiB "
            f"| {np.median(s['ms']):.0f} / {np.percentile(s['ms'], 95):.0f} ms "
            f"| {np.median(s['ms']) / base:.2f} | {np.median(s['cpu_ms']):.0f} ms | {answers} "
            f"| {s['rise_mib']:.0f} MiB "
            f"| {rises} MiB | {cpus} ms |")
    return "\n".join(lines)


def cost(args: argparse.Namespace) -> None:
    kinds = photo_kinds(args.data, args.real, args.photos)
    with tempfile.TemporaryDirectory(prefix="cloudreco-photo-size-") as tmp:
        files: dict[str, list[Path]] = {}
        for k, (kind, photos) in enumerate(kinds.items()):
            files[kind] = []
            for n, photo in enumerate(photos):
                files[kind].append(Path(tmp) / f"{k}-{n}.img")
                files[kind][-1].write_bytes(photo)
        local = in_process(files, files[next(iter(files))][0], args.rounds)
        # AddImage of the catalogs, 4 at a time, may wait long on a busy shared host
        stack = LocalStack(Path(tmp) / "data", CLOUDRECO_JOB_TIMEOUT="60")
        stack.start()
        try:
            measured = asyncio.run(through_stack(stack, kinds, [args.data / "catalog",
                                                                args.real / "catalog"],
                                                 args.rounds))
        finally:
            stack.stop()
    body = "\n".join([
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}: "
        f"`make bench-photo-size` ({args.photos} photos per kind where the sets have them, "
        f"{args.rounds} rounds, kinds interleaved; one client; the public and real catalogs "
        "in one channel)",
        "", cost_table(kinds, measured, local), ""])
    print(body)
    if args.write:
        write_report("photo-size", body)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("cost", help="memory and time of photos by size, over HTTP and in-process")
    c.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "bench" / "public")
    c.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "bench" / "real")
    c.add_argument("--photos", type=int, default=5, help="photos per kind, where there are")
    c.add_argument("--rounds", type=int, default=9)
    c.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    e = sub.add_parser("_extract")  # one kind in a fresh process, for ``cost``
    e.add_argument("--warm", type=Path, required=True)
    e.add_argument("--before", action="store_true")
    e.add_argument("--max-side", type=int, default=recognition.CFG.query_max_side)
    e.add_argument("photos", type=Path, nargs="+")
    args = p.parse_args()
    {"cost": cost, "_extract": extract_child}[args.command](args)


if __name__ == "__main__":
    main()
