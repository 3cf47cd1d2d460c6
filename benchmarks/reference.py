"""The exhaustive reference of ../shared/bench/README.md, run beside the service for comparison.

Every query against every catalog image: SIFT (1000 features), Lowe ratio 0.8, one-to-one
matches, RANSAC homography, the same outline plausibility check as the service, at least 15
inliers; the answer is the catalog image with the most inliers. Its cost grows linearly with
the catalog, so it runs on a fixed sample of queries and on the public catalog only.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from matcher.recognition import plausible

FEATURES = 1000
RATIO = 0.8
MIN_INLIERS = 15


@dataclass(frozen=True)
class Side:
    xy: npt.NDArray[np.float32]
    desc: npt.NDArray[np.float32]
    width: int
    height: int


def sift(path: Path) -> Side:
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    keypoints, desc = cv2.SIFT.create(nfeatures=FEATURES).detectAndCompute(gray, None)
    xy = np.array([k.pt for k in keypoints], np.float32).reshape(-1, 2)
    desc = np.zeros((0, 128), np.float32) if desc is None else desc
    return Side(xy, desc, gray.shape[1], gray.shape[0])


def match(query: Side, target: Side) -> int:
    """Inliers of a verified match of ``target`` in ``query``, 0 when none."""
    if len(query.desc) < 2 or len(target.desc) < 2:
        return 0
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(query.desc, target.desc, k=2)
    good = sorted((p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance),
                  key=lambda m: m.distance)
    used_q: set[int] = set()
    used_t: set[int] = set()
    one_to_one = []
    for m in good:
        if m.queryIdx not in used_q and m.trainIdx not in used_t:
            used_q.add(m.queryIdx)
            used_t.add(m.trainIdx)
            one_to_one.append(m)
    if len(one_to_one) < MIN_INLIERS:
        return 0
    src = target.xy[[m.trainIdx for m in one_to_one]]
    dst = query.xy[[m.queryIdx for m in one_to_one]]
    homography, mask = cv2.findHomography(src, dst, cv2.RANSAC, 5.0)
    if homography is None or mask is None or int(mask.sum()) < MIN_INLIERS:
        return 0
    w, h = target.width, target.height
    outline = np.array([[[0, 0]], [[w, 0]], [[w, h]], [[0, h]]], np.float32)
    corners = cv2.perspectiveTransform(outline, homography).reshape(4, 2).astype(np.float32)
    return int(mask.sum()) if plausible(corners, query.width, query.height) else 0


_catalog: dict[str, Side] = {}


def _init(catalog: dict[str, Side]) -> None:
    cv2.setNumThreads(1)
    _catalog.update(catalog)


def _answer(path: Path) -> tuple[str, str, float]:
    started = time.perf_counter()
    query = sift(path)
    scores = {name: match(query, target) for name, target in _catalog.items()}
    best = max(scores, key=lambda n: scores[n])
    return path.stem, best if scores[best] else "", time.perf_counter() - started


def run(catalog: list[Path], queries: list[Path], processes: int
        ) -> tuple[dict[str, str], list[float]]:
    """(answer per query stem, seconds per query) using ``processes`` worker processes."""
    sides = {p.stem: sift(p) for p in catalog}
    # spawn, not fork: the caller has run threads (aiohttp, OpenCV), and a forked child can
    # inherit one of their locks held and hang.
    with multiprocessing.get_context("spawn").Pool(processes, _init, (sides,)) as pool:
        results = pool.map(_answer, queries, chunksize=1)
    return {q: a for q, a, _ in results}, [s for _, _, s in results]
