"""How far the found outline's corners are from the truth, on generated photos whose
homography is known: the data to fit the outline's accuracy on (the real set's Oxford photos
only check it).

    python -m benchmarks.corners --data ../shared/bench/public [--targets 80] [--seed 3]
        [--set query_max_side=480]

make_bench.py posters (never the benchmark's images) are the catalog; each is photographed
once at each difficulty by make_bench.py's own camera (``view``), whose homography is taken
as it is made. Each photo is searched in-process with the shipped settings (or ``--set``'s,
as in ``benchmarks.recall``); for the right answers, the mean distance of the outline's four
corners from the true ones (photo pixels), by difficulty.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from benchmarks.generated import DIFFICULTIES, as_stored, gray, make_bench, posters
from benchmarks.recall import parse_setting
from matcher import recognition
from matcher.recognition import ChannelIndex, Config


def view_with_truth(generator: ModuleType, rng: random.Random, target: NDArray[np.uint8],
                    backgrounds: list[NDArray[np.uint8]], difficulty: str
                    ) -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
    """make_bench.py's camera-like photo of ``target`` (gray, through its JPEG) and the
    homography it warped the target with (target pixels to photo pixels)."""
    made: list[NDArray[np.float64]] = []

    def perspective(src: Any, dst: Any) -> Any:
        m = cv2.getPerspectiveTransform(src, dst)
        made.append(np.asarray(m, np.float64))
        return m

    scope = vars(generator)  # make_bench.py's globals: its cv2, with the warp recorded
    names = {n: getattr(cv2, n) for n in dir(cv2) if not n.startswith("__")}
    scope["cv2"] = SimpleNamespace(**(names | {"getPerspectiveTransform": perspective}))
    try:
        shot, quality = generator.view(rng, target, backgrounds, difficulty)
    finally:
        scope["cv2"] = cv2
    return as_stored(np.asarray(shot, np.uint8), quality), made[0]


def corner_errors(data: Path, targets: int, seed: int, cfg: Config = recognition.CFG
                  ) -> dict[str, list[float]]:
    """The corner error of each right answer, by difficulty; a miss counts as absent."""
    generator = make_bench(data)
    rng = random.Random(seed)
    covers = posters(generator, targets + 20, seed * 1000 + 7)
    catalog, backgrounds = covers[:targets], covers[targets:]
    index = ChannelIndex(cfg=cfg)
    for image_id, cover in enumerate(catalog):
        f = recognition.extract_target(gray(cover), cfg)
        if recognition.rate_level(f, cfg):
            index.add(image_id, f)
    errors: dict[str, list[float]] = {d: [] for d in DIFFICULTIES}
    for image_id, cover in enumerate(catalog):
        h, w = cover.shape[:2]
        outline = np.array([[[0, 0], [w, 0], [w, h], [0, h]]], np.float64)
        for difficulty in DIFFICULTIES:
            photo, truth = view_with_truth(generator, rng, cover, backgrounds, difficulty)
            found = index.search(recognition.extract_query(photo, cfg), limit=1)
            if found and found[0].image_id == image_id:
                true = cv2.perspectiveTransform(outline, truth)[0]
                errors[difficulty].append(
                    float(np.linalg.norm(found[0].corners - true, axis=1).mean()))
    return errors


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--targets", type=int, default=80)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    args = p.parse_args()
    cfg = dataclasses.replace(recognition.CFG, **dict(map(parse_setting, args.set)))
    errors = corner_errors(args.data, args.targets, args.seed, cfg)
    every = [e for d in DIFFICULTIES for e in errors[d]]
    print("| difficulty | right answers | corner error median | p90 |")
    print("|---|---|---|---|")
    for d in (*DIFFICULTIES, "all"):
        e = every if d == "all" else errors[d]
        n = args.targets if d != "all" else args.targets * len(DIFFICULTIES)
        print(f"| {d} | {len(e)}/{n} | {statistics.median(e):.2f} px | "
              f"{np.percentile(e, 90):.2f} px |" if e else f"| {d} | 0/{n} | | |")


if __name__ == "__main__":
    main()
