"""Generated covers that share a masthead: how often a photo of a cover that is not in the
catalog is answered with another cover that carries the same masthead.

    python -m benchmarks.mastheads --data ../shared/bench/public [--seed 1] [--groups 40]

Builds a catalog from make_bench.py posters (never the benchmark's images): ``--groups``
groups of three covers that share one masthead (see generated.masthead), two of each group
in the catalog and the third left out, and ``--plain`` covers without one. Photos: a
camera-like view (easy, medium or hard) of every catalog cover, three of every left-out
cover (a magazine whose masthead is in the catalog on other issues: any answer is false) and
one of each of ``--negatives`` other posters. Each photo is searched in-process with the
shipped settings and the answers are scored: right answers on covers with and without a
masthead, false answers on left-out covers and on other negatives, wrong identifiers.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from numpy.typing import NDArray

from benchmarks.generated import (
    DIFFICULTIES,
    as_stored,
    gray,
    make_bench,
    masthead,
    posters,
    view,
    with_masthead,
)
from benchmarks.recall import parse_setting
from matcher import recognition
from matcher.features import MIN_QUERY_FEATURES
from matcher.recognition import ChannelIndex, Config, Match


class Photo(NamedTuple):
    image: NDArray[np.uint8]  # gray
    expected: int  # catalog image id, -1 for a photo of something not in the catalog
    kind: str  # "cover", "plain", "masthead" (a left-out cover) or "negative"


def build(data: Path, seed: int, groups: int, plain: int, negatives: int
          ) -> tuple[list[NDArray[np.uint8]], list[Photo]]:
    """The catalog (BGR covers, image id = position) and the photos."""
    generator = make_bench(data)
    rng = random.Random(seed)
    covers = posters(generator, 3 * groups + plain + negatives + 20, seed * 1000 + 1)
    backgrounds = covers[-20:]
    catalog: list[NDArray[np.uint8]] = []
    left_out: list[NDArray[np.uint8]] = []
    kinds: list[str] = []
    for g in range(groups):
        band = masthead(generator, rng)
        trio = [with_masthead(c, band) for c in covers[3 * g : 3 * g + 3]]
        catalog += trio[:2]
        kinds += ["cover", "cover"]
        left_out.append(trio[2])
    catalog += covers[3 * groups : 3 * groups + plain]
    kinds += ["plain"] * plain
    others = covers[3 * groups + plain : 3 * groups + plain + negatives]

    def photo(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
        shot, quality = view(generator, rng, image, backgrounds, rng.choice(DIFFICULTIES))
        return as_stored(shot, quality)

    photos = [Photo(photo(c), i, kinds[i]) for i, c in enumerate(catalog)]
    photos += [Photo(photo(c), -1, "masthead") for c in left_out for _ in range(3)]
    photos += [Photo(photo(c), -1, "negative") for c in others]
    return catalog, photos


def search_all(catalog: list[NDArray[np.uint8]], photos: list[Photo], cfg: Config
               ) -> tuple[list[list[Match]], dict[str, float]]:
    """Every photo's verified matches, and the median seconds of extract and search."""
    index = ChannelIndex(cfg=cfg)
    for image_id, cover in enumerate(catalog):
        f = recognition.extract_target(gray(cover), cfg)
        if recognition.rate_level(f, cfg):
            index.add(image_id, f)
    found, seconds = [], []
    for p in photos:
        started = time.perf_counter()
        q = recognition.extract_query(p.image, cfg)
        found.append(index.search(q, limit=10) if len(q.xy) >= MIN_QUERY_FEATURES else [])
        seconds.append(time.perf_counter() - started)
    return found, {"query_ms": float(np.median(seconds) * 1000)}


def tally(photos: list[Photo], answers: list[int]) -> dict[str, str]:
    """Right answers of photos of catalog covers, and false answers of the others, by kind."""
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for p, got in zip(photos, answers, strict=True):
        total[p.kind] += 1
        right[p.kind] += got == p.expected if p.expected >= 0 else got >= 0
    out = {k: f"{right[k]}/{total[k]}" for k in ("cover", "plain")}
    out |= {f"false {k}": f"{right[k]}/{total[k]}" for k in ("masthead", "negative")}
    wrong = sum(p.expected >= 0 and got >= 0 and got != p.expected
                for p, got in zip(photos, answers, strict=True))
    return out | {"wrong": str(wrong)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True, help="benchmark data beside make_bench.py")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--groups", type=int, default=40)
    p.add_argument("--plain", type=int, default=80)
    p.add_argument("--negatives", type=int, default=60)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    args = p.parse_args()
    cfg = dataclasses.replace(recognition.CFG, **dict(map(parse_setting, args.set)))
    cv2.setNumThreads(1)
    catalog, photos = build(args.data, args.seed, args.groups, args.plain, args.negatives)
    found, timing = search_all(catalog, photos, cfg)
    answers = [ms[0].image_id if ms else -1 for ms in found]
    print(f"seed {args.seed} {args.set or 'defaults'}: {len(catalog)} covers, "
          f"{len(photos)} photos; {tally(photos, answers)}; "
          f"extract+search median {timing['query_ms']:.0f} ms")


if __name__ == "__main__":
    main()
