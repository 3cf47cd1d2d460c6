"""From a query photo's features to verified matches: votes, then geometry.

1. Each query descriptor's nearest indexed descriptors are grouped by target; a target gets a
   vote from the descriptor when its nearest descriptor passes Lowe's ratio test against the
   next one *of the same target* (so near-duplicate targets do not cancel each other out).
2. The best-voted targets are verified: one-to-one correspondences, a homography by
   USAC_MAGSAC, enough inliers, and an outline that a flat target seen by a camera can have.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from matcher.features import Features, Floats
from matcher.index import ChannelIndex, Neighbours, Target

NEIGHBOURS = 8  # indexed descriptors fetched per query descriptor
RATIO = 0.8  # Lowe's ratio, on distances (squared below)
CANDIDATES = 5  # targets verified per channel, best voted first
MIN_VOTES = 8
MIN_INLIERS = 15  # the exhaustive reference's threshold
# RANSAC threshold in pixels of a 640-pixel-wide photo, scaled to the photo's real size.
REPROJECTION_PX = 4.0
# The projected target may fill from this share of the photo ...
MIN_AREA_SHARE = 0.004
# ... to this many photos (a close-up sees part of the target).
MAX_AREA_SHARE = 16.0
# How much perspective may shrink one side of the target relative to its opposite side.
MAX_SIDE_RATIO = 4.0


@dataclass(frozen=True)
class Match:
    image_id: int
    score: float
    corners: Floats  # (4, 2): target corners (0,0) (w,0) (w,h) (0,h) in the photo's pixels


def search(index: ChannelIndex, q: Features, limit: int = 3) -> list[Match]:
    """Verified matches of ``q`` in ``index``, best first, at most ``limit``."""
    hood = index.neighbours(q.desc, NEIGHBOURS)
    if hood is None:
        return []
    rows, cols = _votes(hood)
    if len(rows) == 0:
        return []
    keys = hood.keys[rows, cols]
    found = []
    unique, counts = np.unique(keys, return_counts=True)
    for key in unique[np.argsort(-counts, kind="stable")][:CANDIDATES]:
        if counts[unique == key][0] < MIN_VOTES:
            break
        picked = keys == key
        target = hood.targets.get(int(key))
        if target is None:
            continue
        match = _verify(q, target, rows[picked], hood.keypoints[rows[picked], cols[picked]],
                        hood.distances[rows[picked], cols[picked]])
        if match is not None:
            found.append(match)
    found.sort(key=lambda m: -m.score)
    return found[:limit]


def _votes(hood: Neighbours) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """(row, column) of every neighbour that is its target's nearest and passes the ratio."""
    keys, dist = hood.keys, hood.distances
    k = keys.shape[1]
    same = keys[:, :, None] == keys[:, None, :]  # (n, k, k)
    earlier = np.tril(np.ones((k, k), bool), -1)
    first = ~np.any(same & earlier[None], axis=2)
    later = same & earlier.T[None]
    has_next = np.any(later, axis=2)
    next_col = np.argmax(later, axis=2)
    next_dist = np.where(has_next, np.take_along_axis(dist, next_col, axis=1), dist[:, -1:])
    passed = first & (dist < (RATIO * RATIO) * next_dist)
    rows, cols = np.nonzero(passed)
    return rows, cols


def _verify(q: Features, target: Target, query_idx: npt.NDArray[np.intp],
            target_idx: npt.NDArray[np.int64], dist: Floats) -> Match | None:
    order = np.argsort(dist, kind="stable")
    query_idx, target_idx = query_idx[order], target_idx[order]
    # One-to-one: each query and each target keypoint in at most one pair, closest first.
    _, first_q = np.unique(query_idx, return_index=True)
    keep = np.zeros(len(query_idx), bool)
    keep[first_q] = True
    _, first_t = np.unique(np.where(keep, target_idx, -1 - np.arange(len(keep))),
                           return_index=True)
    keep2 = np.zeros(len(query_idx), bool)
    keep2[first_t] = True
    keep &= keep2
    if keep.sum() < MIN_INLIERS:
        return None
    src = target.xy[target_idx[keep]]
    dst = q.xy[query_idx[keep]]
    threshold = REPROJECTION_PX * max(q.width, q.height) / 640
    homography, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, threshold,
                                          maxIters=2000, confidence=0.999)
    if homography is None or mask is None:
        return None
    inliers = int(mask.sum())
    if inliers < MIN_INLIERS:
        return None
    w, h = target.width, target.height
    outline = np.array([[[0, 0]], [[w, 0]], [[w, h]], [[0, h]]], np.float32)
    corners = cv2.perspectiveTransform(outline, homography).reshape(4, 2).astype(np.float32)
    if not plausible(corners, q.width * q.height):
        return None
    return Match(target.image_id, float(inliers), corners)


def plausible(corners: Floats, photo_area: float) -> bool:
    """Whether a projected target outline is one a camera could see of a flat target."""
    if not np.all(np.isfinite(corners)):
        return False
    edges = np.roll(corners, -1, axis=0) - corners
    following = np.roll(edges, -1, axis=0)
    turns = edges[:, 0] * following[:, 1] - edges[:, 1] * following[:, 0]
    if not np.all(turns > 0):  # convex and not mirrored
        return False
    x, y = corners[:, 0], corners[:, 1]
    area = 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    if not MIN_AREA_SHARE * photo_area <= area <= MAX_AREA_SHARE * photo_area:
        return False
    sides = np.linalg.norm(edges, axis=1)
    for a, b in ((sides[0], sides[2]), (sides[1], sides[3])):
        if max(a, b) > MAX_SIDE_RATIO * min(a, b):
            return False
    return True
