"""What a verified match rests on, beyond its inlier count: how much of the target's visible
area its inliers span, and what share of the photo's keypoints inside the target's outline
they are. A match on a shared logo or masthead has its inliers in one band of the target,
and the rest of the outline full of photo keypoints that match nothing."""

from __future__ import annotations

from typing import Any, NamedTuple

import cv2
import numpy as np
from numpy.typing import NDArray


class Evidence(NamedTuple):
    inliers: int
    pairs: int  # one-to-one correspondences the homography was fitted on
    spread: float  # inliers' hull in the target / the target's area visible in the photo
    share: float  # inliers / photo keypoints inside the projected outline
    coverage: float  # inliers / the target's index entries that land in the photo
    # of the target's entries that land in the photo away from the inliers (outside their
    # hull), the share a photo keypoint near where they land describes alike; 1 when fewer
    # than REST_MIN land there
    rest: float


REST_MIN = 5


def inside(outline: NDArray[np.float64], xy: NDArray[np.floating[Any]]) -> NDArray[np.bool_]:
    """Which points ``xy`` lie inside a convex, positively turning ``outline`` (4,2)."""
    a, b = outline, np.roll(outline, -1, 0)
    edge = b - a  # (4,2)
    rel = xy[:, None, :] - a[None]  # (n,4,2)
    cross = edge[None, :, 0] * rel[..., 1] - edge[None, :, 1] * rel[..., 0]
    return np.asarray((cross > 0).all(1), bool)


def evidence(
    outline: NDArray[np.float64],
    inlier_src: NDArray[np.float32],
    pairs: int,
    target_wh: tuple[int, int],
    photo_xy: NDArray[np.float32],
    photo_wh: tuple[int, int],
    entries_xy: NDArray[np.float32],
    rest: float,
) -> Evidence:
    """The evidence of a match whose target (``target_wh``) projects to ``outline`` in a photo
    (``photo_wh``, keypoints ``photo_xy``), with inliers at ``inlier_src`` in the target and
    its index entries at ``entries_xy`` in the photo."""
    w, h = target_wh
    pw, ph = photo_wh
    frame = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
    seen, _ = cv2.intersectConvexConvex(outline.astype(np.float32), frame)
    visible = float(seen) / max(float(cv2.contourArea(outline.astype(np.float32))), 1e-6)
    hull = float(cv2.contourArea(cv2.convexHull(inlier_src)))
    within = int(inside(outline, photo_xy).sum())
    landed = int(inside(frame.astype(np.float64), entries_xy).sum())
    ni = len(inlier_src)
    spread = hull / max(w * h * min(visible, 1.0), 1e-6)
    return Evidence(ni, pairs, spread, ni / max(within, ni), ni / max(landed, ni), rest)


def rest_confirmed(
    entries_src: NDArray[np.float32],
    entries_desc: NDArray[np.float32],
    landed: NDArray[np.float64],
    hull: NDArray[np.float32],
    photo: tuple[NDArray[np.float32], NDArray[np.float32], tuple[int, int]],
    near_px: float,
    max_dist: float,
) -> float:
    """Share of the target's entries (``entries_src`` in the target, landing at ``landed`` in
    the photo) outside the inliers' ``hull`` and inside the photo that a photo keypoint within
    ``near_px`` of where they land matches within ``max_dist`` (``photo`` = keypoints,
    descriptors, size); 1.0 when fewer than REST_MIN land there."""
    xy, desc, (pw, ph) = photo
    frame = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float64)
    away = np.array(
        [cv2.pointPolygonTest(hull, (float(x), float(y)), False) < 0 for x, y in entries_src], bool
    )
    pick = np.flatnonzero(away & inside(frame, landed))
    if len(pick) < REST_MIN or len(xy) == 0:
        return 1.0
    near = np.linalg.norm(landed[pick, None, :] - xy[None], axis=2) <= near_px
    alike = 2.0 - 2.0 * (entries_desc[pick] @ desc.T) <= max_dist
    return float((near & alike).any(1).mean())


def probability(e: Evidence, weights: tuple[float, ...]) -> float:
    """P(the match is right | its evidence), by the logistic model ``weights`` over
    ``features`` (fitted by benchmarks/fit_confidence.py on generated covers)."""
    return float(1.0 / (1.0 + np.exp(-np.dot(features(e), weights))))


def features(e: Evidence) -> tuple[float, float, float, float, float, float]:
    """The confidence model's inputs: 1, log2 of the inliers, their spread (at most 1.5),
    their share of the photo's keypoints in the outline, the target's coverage, and the
    share of the rest of the target confirmed."""
    return (1.0, float(np.log2(max(e.inliers, 1))), min(e.spread, 1.5), e.share, e.coverage, e.rest)
