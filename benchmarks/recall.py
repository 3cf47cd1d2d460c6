"""Recall of the recognition pipeline in-process, without the service: for trying a setting.

    python -m benchmarks.recall --data ../shared/bench/public [--set query_sift_contrast=0.02]

Adds the catalog to one ChannelIndex as AddImage would (refusing level 0), extracts and
searches every query on one thread, and prints recall per difficulty, false positives, wrong
identifiers, the easy misses and the median extract+search time. ``--set`` overrides fields of
``matcher.recognition.Config`` (numbers, or comma-separated tuples). Figures from here are
for comparing settings in the same run; `make bench` measures the service.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.recognition import truth
from matcher import features, recognition
from matcher.imaging import decode_gray

MAX_PIXELS = 40_000_000


def parse_setting(text: str) -> tuple[str, Any]:
    key, value = text.split("=", 1)
    current = getattr(recognition.CFG, key)
    if isinstance(current, tuple):
        return key, tuple(type(current[0])(v) for v in value.split(","))
    return key, type(current)(value)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    args = p.parse_args()
    cv2.setNumThreads(1)
    cfg = dataclasses.replace(recognition.CFG, **dict(map(parse_setting, args.set)))
    index = recognition.ChannelIndex(cfg=cfg)
    names: dict[int, str] = {}
    levels: Counter[int] = Counter()
    for path in sorted((args.data / "catalog").glob("*.jpg")):
        f = recognition.extract_target(decode_gray(path.read_bytes(), max_pixels=MAX_PIXELS),
                                       cfg)
        level = recognition.rate_level(f)
        levels[level] += 1
        if level:
            names[len(names)] = path.stem
            index.add(len(names) - 1, f)
    hits: dict[str, list[bool]] = defaultdict(list)
    false_positives = wrong = negatives = 0
    seconds = []
    for row in truth(args.data):
        gray = decode_gray((args.data / "queries" / f"{row['query']}.jpg").read_bytes(),
                           max_pixels=MAX_PIXELS)
        started = time.perf_counter()
        q = recognition.extract_query(gray, cfg)
        found = index.search(q) if len(q.xy) >= features.MIN_QUERY_FEATURES else []
        seconds.append(time.perf_counter() - started)
        got = names[found[0].image_id] if found else ""
        if not row["expected"]:
            negatives += 1
            false_positives += bool(got)
            continue
        hits[row["difficulty"]].append(got == row["expected"])
        wrong += bool(got) and got != row["expected"]
        if row["difficulty"] == "easy" and got != row["expected"]:
            print(f"easy miss: {row['query']} ({row['expected']}) -> {got or 'nothing'}")
    recall = ", ".join(f"{d} {np.mean(hits[d]):.3f}" for d in ("easy", "medium", "hard"))
    print(f"settings {args.set or 'defaults'}: levels {dict(sorted(levels.items()))}; "
          f"recall {recall}; false positives {false_positives} of {negatives}; wrong {wrong}; "
          f"extract+search median {np.median(seconds) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
