"""Fit the RootSIFT -> d PCA that the matcher ships as ``matcher/recognition/pca.npy``.

    python -m benchmarks.fit_pca --data ../shared/bench/public [--dims 32] [--write]

Training descriptors come from generated images only (never the benchmark's): ``--posters``
make_bench.py posters (seed 101), target-side SIFT of each at three sizes, and query-side SIFT
of one camera-like view per difficulty (over other posters as backgrounds) at half size, at
most 150 descriptors of each image. The output is a (d+1, 128) float32 array: row 0 the mean,
rows 1..d the projection.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from benchmarks.generated import DIFFICULTIES, make_bench, posters, view
from matcher.recognition.pca import SHIPPED_FILE, root_sift
from matcher.recognition.sift import detect

TARGET_SIDES = (560, 320, 180)  # target sizes the shipped projection was fitted on
PER_IMAGE = 150  # descriptors sampled from each image, so that no image dominates


def _sample(d: NDArray[np.float32], rng: np.random.Generator) -> NDArray[np.float32]:
    if len(d) > PER_IMAGE:
        d = d[rng.choice(len(d), PER_IMAGE, replace=False)]
    return root_sift(d)


def training_descriptors(data: Path, count: int, seed: int) -> NDArray[np.float32]:
    generator = make_bench(data)
    rng = np.random.default_rng(seed)
    images = posters(generator, count, 101)
    backgrounds = posters(generator, 20, 202)
    parts = []
    for image in images:
        g = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        for side in TARGET_SIDES:
            s = min(1.0, side / max(g.shape))
            im = cv2.resize(g, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            parts.append(_sample(detect(np.asarray(im, np.uint8), 0.02).desc, rng))
    draw = random.Random(seed)
    for image in images:
        for difficulty in DIFFICULTIES:
            photo, _ = view(generator, draw, image, backgrounds, difficulty)
            g = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
            g = cv2.resize(g, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
            parts.append(_sample(detect(np.asarray(g, np.uint8), 0.02, 800).desc, rng))
    return np.concatenate(parts).astype(np.float32)


def fit(x: NDArray[np.float32], dims: int) -> tuple[NDArray[np.float32], float]:
    """The (dims+1, 128) array and the share of the variance it keeps."""
    mean = x.mean(0)
    ev, v = np.linalg.eigh(np.cov((x - mean).T))
    o = np.argsort(-ev)
    ev, v = ev[o], v[:, o]
    arr = np.concatenate([mean[None, :], v[:, :dims].T]).astype(np.float32)
    return arr, float(ev[:dims].sum() / ev.sum())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True, help="benchmark data beside make_bench.py")
    p.add_argument("--dims", type=int, default=32)
    p.add_argument("--posters", type=int, default=300)
    p.add_argument("--seed", type=int, default=4242)
    p.add_argument("--out", type=Path, default=Path("bench-data/pca.npy"))
    p.add_argument("--write", action="store_true", help=f"write {SHIPPED_FILE} instead")
    args = p.parse_args()
    x = training_descriptors(args.data, args.posters, args.seed)
    arr, kept = fit(x, args.dims)
    out = SHIPPED_FILE if args.write else args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, arr)
    print(
        f"{len(x)} training descriptors; {args.dims} dimensions keep {kept:.3f} of the "
        f"variance; written to {out}"
    )


if __name__ == "__main__":
    main()
