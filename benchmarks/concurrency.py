"""Searches per second in one channel from one thread and from several at once, in-process.

    python -m benchmarks.concurrency --data ../shared/bench/public [--queries 200]
        [--threads 1 2] [--runs 3]

Indexes the catalog as AddImage would, extracts the first ``--queries`` photos once, then
searches all of them from each number of ``--threads`` (every search with ``threads=1``, as a
matcher thread runs it), ``--runs`` times, the thread counts interleaved so that a noisy host
slows them alike. Prints the median searches per second of each; the CPU the process got
meanwhile, in cores; the cores the host gave just before to as many threads of work that
never holds the GIL (matrix products), which says whether the figure is the code's limit or
the host's; and how many photos got different answers from different runs (none should).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.inprocess import index_catalog, photo
from matcher import recognition

Answer = list[tuple[int, float, bytes]]


def _timed(fn: Callable[[recognition.Features], Any], queries: list[recognition.Features],
           threads: int) -> tuple[float, float, list[Any]]:
    """Calls per second of ``fn`` over ``queries`` from ``threads`` threads, the cores they
    used, and what it returned."""
    with ThreadPoolExecutor(threads) as pool:
        started, cpu = time.perf_counter(), time.process_time()
        out = list(pool.map(fn, queries))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return len(queries) / seconds, cpu / seconds, out


def _gil_free(q: recognition.Features) -> None:
    """About a millisecond of BLAS, which runs without the GIL."""
    _ = q.desc @ q.desc.T


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    cv2.setNumThreads(1)
    threadpool_limits(1)  # as the matcher: one BLAS thread per search thread
    index, _, _ = index_catalog(args.data)
    paths = sorted((args.data / "queries").glob("*.jpg"))[: args.queries]
    queries = [photo(path) for path in paths]
    rates: dict[int, list[float]] = {t: [] for t in args.threads}
    cores: dict[int, list[float]] = {t: [] for t in args.threads}
    host: dict[int, list[float]] = {t: [] for t in args.threads}
    answers: list[list[Answer]] = []
    for _ in range(args.runs):
        for threads in args.threads:
            host[threads].append(_timed(_gil_free, queries * 3, threads)[1])
            rate, used, found = _timed(index.search, queries, threads)
            rates[threads].append(rate)
            cores[threads].append(used)
            answers.append([[(m.image_id, m.score, m.corners.tobytes()) for m in matches]
                            for matches in found])
    differ = sum(len({repr(run[i]) for run in answers}) > 1 for i in range(len(queries)))
    print(f"{len(index)} images, {len(queries)} photos, {args.runs} runs; "
          f"photos with differing answers: {differ}")
    for threads, values in rates.items():
        print(f"{threads} thread(s): median {np.median(values):.1f} searches/s "
              f"(runs {', '.join(f'{v:.1f}' for v in values)}), "
              f"{np.median(cores[threads]):.2f} cores; GIL-free work got "
              f"{', '.join(f'{v:.2f}' for v in host[threads])} cores")


if __name__ == "__main__":
    main()
