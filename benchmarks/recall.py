"""Recall of the recognition pipeline in-process, without the service: for trying a setting.

    python -m benchmarks.recall --data ../shared/bench/public [--distractors 10000]
        [--set min_inliers=6 --set angle_tol=30]

Adds the catalog to one ChannelIndex as AddImage would (refusing level 0), then optionally
``--distractors`` make_bench.py images (their features are extracted on 2 processes once per
target-side setting and cached in bench-data/, about 12 minutes for 10,000), extracts and
searches every query on one thread, and prints recall per difficulty, false positives, wrong
identifiers, the easy misses, the median decode+extract+search time and, for photos whose
truth has a homography (``H``, as ../shared/bench/real has), the median corner error. It also
counts *false
verifications*: images other than the expected one that pass verification for any query (up
to 10 candidates per query, so a much larger sample of chance matches than the 34 negatives).
``--set`` overrides fields of ``matcher.recognition.Config`` (numbers, or comma-separated
tuples). Figures from here are for comparing settings in the same run; `make bench` measures
the service.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import pickle
import time
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from benchmarks.inprocess import DISTRACTOR_ID, extract_targets, gray, index_catalog, photo
from benchmarks.recognition import ROOT, distractors, score, truth
from matcher import features, recognition


def parse_setting(text: str) -> tuple[str, Any]:
    key, value = text.split("=", 1)
    current = getattr(recognition.CFG, key)
    if isinstance(current, tuple):
        return key, tuple(type(current[0])(v) for v in value.split(","))
    return key, type(current)(value)


def _target_side(cfg: recognition.Config) -> dict[str, Any]:
    """The settings a target's features depend on (its views use the query contrast)."""
    names = [f.name for f in dataclasses.fields(cfg)]
    return {n: getattr(cfg, n)
            for n in [*names[:names.index("query_scale")], "query_sift_contrast"]}


def distractor_features(data: Path, count: int, cfg: recognition.Config
                        ) -> list[tuple[int, bytes]]:
    """(level, stored features) of ``count`` distractors, cached per code and setting."""
    code = b"".join(p.read_bytes() for p in sorted(Path(recognition.__file__).parent.iterdir())
                    if p.suffix in (".py", ".npy"))
    digest = hashlib.sha1(code + repr(_target_side(cfg)).encode()).hexdigest()[:12]
    cache = ROOT / "bench-data" / f"features-{count}-{digest}.pkl"
    if cache.exists():
        cached: list[tuple[int, bytes]] = pickle.loads(cache.read_bytes())
        return cached
    done = [(recognition.rate_level(f), features.encode(f))
            for f in extract_targets(distractors(data, count), cfg)]
    cache.write_bytes(pickle.dumps(done))
    return done


def corner_error(corners: NDArray[np.float32], homography: str, catalog_image: Path) -> float:
    """Mean distance (px) of the found outline's corners from the true ones: ``homography``
    is the truth's ``H`` column (9 numbers, catalog pixels to photo pixels)."""
    h, w = gray(catalog_image).shape[:2]
    truth_h = np.array([float(v) for v in homography.split()], np.float64).reshape(3, 3)
    outline = np.array([[[0, 0], [w, 0], [w, h], [0, h]]], np.float64)
    true = cv2.perspectiveTransform(outline, truth_h)[0]
    return float(np.linalg.norm(corners - true, axis=1).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--distractors", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    args = p.parse_args()
    cv2.setNumThreads(1)
    cfg = dataclasses.replace(recognition.CFG, **dict(map(parse_setting, args.set)))
    index, names, levels = index_catalog(args.data, cfg)
    if args.distractors:
        for n, (level, stored) in enumerate(distractor_features(args.data, args.distractors, cfg)):
            if level:
                index.add(DISTRACTOR_ID + n, features.decode(stored))
    rows = truth(args.data)
    answers: dict[str, str] = {}
    seconds = []
    false_verified = 0
    corner_errors: list[float] = []
    for row in rows:
        started = time.perf_counter()
        q = photo(args.data / "queries" / f"{row['query']}.jpg", cfg)
        found = index.search(q, limit=cfg.candidates) \
            if len(q.xy) >= features.MIN_QUERY_FEATURES else []
        seconds.append(time.perf_counter() - started)
        answers[row["query"]] = names.get(found[0].image_id, "a distractor") if found else ""
        false_verified += sum(names.get(m.image_id) != row["expected"] for m in found)
        if row.get("H") and answers[row["query"]] == row["expected"]:
            corner_errors.append(corner_error(found[0].corners, row["H"], args.data / "catalog"
                                              / f"{row['expected']}.jpg"))
        if row["difficulty"] == "easy" and row["expected"] \
                and answers[row["query"]] != row["expected"]:
            print(f"easy miss: {row['query']} ({row['expected']}) -> "
                  f"{answers[row['query']] or 'nothing'}")
    result = score(rows, answers)
    by_level = dict(sorted(Counter(levels.values()).items()))
    print(f"settings {args.set or 'defaults'}: levels {by_level}; "
          f"recall {', '.join(f'{d} {v:.3f}' for d, v in result.recall.items())}; "
          f"false positives {result.false_positives[0]} of {result.false_positives[1]}; "
          f"wrong {result.wrong[0]}; false verifications {false_verified}; "
          f"decode+extract+search median {np.median(seconds) * 1000:.1f} ms"
          f"{f' (+{args.distractors} distractors)' if args.distractors else ''}"
          + (f"; corner error median {np.median(corner_errors):.2f} px over "
             f"{len(corner_errors)} photos" if corner_errors else ""))


if __name__ == "__main__":
    main()
