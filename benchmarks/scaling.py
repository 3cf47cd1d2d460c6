"""How one shard's index scales with the catalog: memory per image and search time at N images.

    python -m benchmarks.scaling --data ../shared/bench/public --sizes 1000 10000 50000

In-process and single-threaded, like one matcher thread: the public catalog is added as
AddImage adds it, then distractors from make_bench.py (generated once into bench-data/) up to
each size. Every public query is then extracted once and searched at every size. Distractor
features skip the synthetic views that rank a target's descriptors (``n_views=0``): the same
number of real SIFT vectors per image, chosen by response instead, which is what the index
cost depends on, at a twentieth of the extraction time. Recall at each size is printed for
orientation only; `make bench-scale` measures it through the service with real targets.
Writes the ``scaling`` block of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import cv2
import numpy as np
import psutil
from threadpoolctl import threadpool_limits

from benchmarks.inprocess import DISTRACTOR_ID, extract_targets, index_catalog, photo
from benchmarks.recognition import distractors, machine, truth, write_report
from matcher.memory import release_freed_memory, use_one_heap
from matcher.recognition import CFG

CHUNK = 2000


def rss() -> int:
    """Resident memory after giving freed heap back, as the matcher does after each add."""
    release_freed_memory()
    return int(psutil.Process().memory_info().rss)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    p.add_argument("--no-report", action="store_true")
    args = p.parse_args()
    threadpool_limits(1)
    use_one_heap()  # as the matcher does
    cv2.setNumThreads(1)
    sizes = sorted(args.sizes)
    extra = distractors(args.data, max(sizes))
    rows = truth(args.data)
    queries = [photo(args.data / "queries" / f"{r['query']}.jpg") for r in rows]

    base = rss()
    index, names, _ = index_catalog(args.data)
    lines = [
        f"Run on {machine()}: `python -m benchmarks.scaling --data {args.data} --sizes "
        f"{' '.join(map(str, sizes))}` (in-process, one thread; see the script's docstring)",
        "",
        "| images in the index | RSS growth per image | per image added since the row above | "
        "search median | search p95 | hard recall (orientation) |",
        "|---|---|---|---|---|---|",
    ]
    added = 0
    last_rss, last_n = rss(), len(index)
    for size in sizes:
        todo = extra[added:added + max(0, size - len(index))]
        for f in extract_targets(todo, dataclasses.replace(CFG, n_views=0), CHUNK):
            index.add(DISTRACTOR_ID + added, f)
            added += 1
        grown = rss() - base
        times, hard = [], []
        for row, q in zip(rows, queries, strict=True):
            started = time.perf_counter()
            found = index.search(q)
            times.append(time.perf_counter() - started)
            if row["difficulty"] == "hard" and row["expected"]:
                hard.append(bool(found) and names.get(found[0].image_id) == row["expected"])
        ms = np.array(times) * 1000
        n = len(index)
        now = rss()
        marginal = (now - last_rss) / max(1, n - last_n)
        last_rss, last_n = now, n
        lines.append(f"| {n} | {grown / n / 1024:.1f} KiB | {marginal / 1024:.1f} KiB | "
                     f"{np.median(ms):.1f} ms | {np.percentile(ms, 95):.1f} ms | "
                     f"{np.mean(hard):.3f} |")
        print(lines[-1], flush=True)
    body = "\n".join(lines) + "\n"
    print(body)
    if not args.no_report:
        write_report("scaling", body)


if __name__ == "__main__":
    main()
