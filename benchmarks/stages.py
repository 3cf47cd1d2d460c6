"""Where a FindImage's CPU goes, in-process and single-threaded: decode and extract, codec,
search.

    python -m benchmarks.stages --data ../shared/bench/public

Compare with `make bench`'s HTTP latency: the difference is the service's own overhead.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.inprocess import index_catalog, photo
from matcher import features


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--queries", type=int, default=80)
    args = p.parse_args()
    cv2.setNumThreads(1)
    index, _, _ = index_catalog(args.data)
    times: dict[str, list[float]] = {"extract": [], "codec": [], "search": []}
    for path in sorted((args.data / "queries").glob("*.jpg"))[: args.queries]:
        started = time.perf_counter()
        f = photo(path)
        times["extract"].append(time.perf_counter() - started)
        started = time.perf_counter()
        f = features.decode(features.encode(f))
        times["codec"].append(time.perf_counter() - started)
        started = time.perf_counter()
        index.search(f)
        times["search"].append(time.perf_counter() - started)
    for stage, values in times.items():
        ms = np.array(values) * 1000
        print(f"{stage}: median {np.median(ms):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms")


if __name__ == "__main__":
    main()
