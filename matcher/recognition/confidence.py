"""What a verified match rests on, beyond its inlier count: how much of the target's visible
area its inliers span, and what share of the photo's keypoints inside the target's outline
they are. A match on a shared logo or masthead has its inliers in one band of the target,
and the rest of the outline full of photo keypoints that match nothing."""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np
from numpy.typing import NDArray


class Evidence(NamedTuple):
    inliers: int
    pairs: int  # one-to-one correspondences the homography was fitted on
    spread: float  # inliers' hull in the target / the target's area visible in the photo
    share: float  # inliers / photo keypoints inside the projected outline


def inside(outline: NDArray[np.float64], xy: NDArray[np.float32]) -> NDArray[np.bool_]:
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
) -> Evidence:
    """The evidence of a match whose target (``target_wh``) projects to ``outline`` in a photo
    (``photo_wh``, keypoints ``photo_xy``), with inliers at ``inlier_src`` in the target."""
    w, h = target_wh
    pw, ph = photo_wh
    frame = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
    seen, _ = cv2.intersectConvexConvex(outline.astype(np.float32), frame)
    visible = float(seen) / max(float(cv2.contourArea(outline.astype(np.float32))), 1e-6)
    hull = float(cv2.contourArea(cv2.convexHull(inlier_src)))
    within = int(inside(outline, photo_xy).sum())
    ni = len(inlier_src)
    return Evidence(ni, pairs, hull / max(w * h * min(visible, 1.0), 1e-6), ni / max(within, ni))


def features(e: Evidence) -> tuple[float, float, float, float]:
    """The confidence model's inputs: 1, log2 of the inliers, their spread (at most 1.5),
    and their share of the photo's keypoints in the outline."""
    return (1.0, float(np.log2(max(e.inliers, 1))), min(e.spread, 1.5), e.share)
