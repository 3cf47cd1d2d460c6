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
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.inprocess import gray, index_catalog
from benchmarks.recognition import score, truth
from matcher import features, recognition


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
    index, names, levels = index_catalog(args.data, cfg)
    rows = truth(args.data)
    answers: dict[str, str] = {}
    seconds = []
    for row in rows:
        photo = gray(args.data / "queries" / f"{row['query']}.jpg")
        started = time.perf_counter()
        q = recognition.extract_query(photo, cfg)
        found = index.search(q) if len(q.xy) >= features.MIN_QUERY_FEATURES else []
        seconds.append(time.perf_counter() - started)
        answers[row["query"]] = names[found[0].image_id] if found else ""
        if row["difficulty"] == "easy" and row["expected"] \
                and answers[row["query"]] != row["expected"]:
            print(f"easy miss: {row['query']} ({row['expected']}) -> "
                  f"{answers[row['query']] or 'nothing'}")
    result = score(rows, answers)
    by_level = dict(sorted(Counter(levels.values()).items()))
    print(f"settings {args.set or 'defaults'}: levels {by_level}; "
          f"recall {', '.join(f'{d} {v:.3f}' for d, v in result.recall.items())}; "
          f"false positives {result.false_positives[0]} of {result.false_positives[1]}; "
          f"wrong {result.wrong[0]}; extract+search median {np.median(seconds) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
