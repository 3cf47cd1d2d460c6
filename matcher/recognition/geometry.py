"""Geometric agreement of correspondences: the (rotation, scale) groups they fall into, and
whether each agrees with a homography in orientation and size as well as in position."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from matcher.recognition.config import Config
from matcher.recognition.features import Features
from matcher.recognition.slots import from_geo, octaves, turn


def clusters(
    q: Features, rows: NDArray[np.int64], geo: NDArray[np.uint8], cfg: Config, tries: int = 1
) -> list[NDArray[np.bool_]]:
    """Up to ``tries`` groups of correspondences whose rotation (photo angle - target angle) and
    scale change lie within ``cluster_angle`` and ``cluster_scale`` of one correspondence: the
    one with the most such neighbours, then the one with the most among those left out.  A flat
    target seen in a photo turns and scales by about one amount everywhere; chance
    correspondences spread over all of them, and a symmetric pattern (a row of notes) makes two
    groups half a turn apart.  Without orientations, one group of all of them."""
    n = len(rows)
    if q.angle is None or q.size is None or n == 0:
        return [np.ones(n, bool)]
    t_angle, t_size, known = from_geo(geo)
    if not known.all():
        return [np.ones(n, bool)]
    rot = q.angle[rows] - t_angle
    zoom = octaves(q.size[rows], t_size)
    near = (turn(rot[:, None], rot[None, :]) <= cfg.cluster_angle) & (
        np.abs(zoom[:, None] - zoom[None, :]) <= cfg.cluster_scale
    )
    out: list[NDArray[np.bool_]] = []
    free = np.ones(n, bool)
    counts = near.sum(1)  # neighbours of each correspondence among those not yet grouped
    while len(out) < tries and counts.max() > 0:
        group = near[int(np.argmax(counts))] & free
        out.append(group)
        free &= ~group
        if len(out) < tries:
            counts = (counts - near[:, group].sum(1)) * free
    return out


def consistent(
    Hm: NDArray[np.float64],
    src: NDArray[np.float32],
    geo: NDArray[np.uint8],
    q: Features,
    rows: NDArray[np.int64],
    cfg: Config,
) -> NDArray[np.bool_]:
    """Which correspondences agree with the homography in orientation and scale as well as in
    position: the target keypoint's orientation and size, carried through ``Hm`` at that point,
    must land within ``angle_tol`` degrees and ``size_tol`` (factor) of the photo keypoint's.
    Random correspondences that fit a homography by chance rarely do.  Unknown geometry (either
    side) passes."""
    if q.angle is None or q.size is None or len(rows) == 0:
        return np.ones(len(rows), bool)
    d_angle, d_size, known = residuals(Hm, src, geo, q.angle[rows], q.size[rows])
    ok = (d_angle <= cfg.angle_tol) & (d_size <= np.log2(cfg.size_tol))
    return np.asarray(ok | ~known, bool)


def residuals(
    Hm: NDArray[np.float64],
    src: NDArray[np.float32],
    geo: NDArray[np.uint8],
    q_angle: NDArray[np.float32],
    q_size: NDArray[np.float32],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """|orientation error| in degrees, |log2 size ratio|, and whether the target's is known,
    of target keypoints at ``src`` carried through ``Hm`` against photo keypoints."""
    n = len(src)
    t_angle, t_size, known = from_geo(geo)
    rad = np.deg2rad(t_angle)
    step = np.maximum(t_size, 2.0)[:, None] * 0.5
    p = src.astype(np.float64)
    ends = np.concatenate([p, p + step * np.stack([np.cos(rad), np.sin(rad)], 1)])
    mapped = cv2.perspectiveTransform(ends[None], Hm)[0]
    v = mapped[n:] - mapped[:n]
    exp_angle = np.rad2deg(np.arctan2(v[:, 1], v[:, 0]))
    exp_size = t_size * np.linalg.norm(v, axis=1) / step[:, 0]
    return turn(q_angle, exp_angle), np.abs(octaves(q_size, exp_size)), known


def own_inliers(src: NDArray[np.float32], shared: NDArray[np.bool_], margin: float = 0.0) -> int:
    """Inliers (at ``src`` in the target) that rest on the target's own content: not on an
    entry another catalog image shares, nor inside the hull of those that are (the rest of a
    masthead whose other entries are shared) or within ``margin`` (target pixels) of it (the
    masthead's edges, whose keypoints see more of the masthead than of the cover)."""
    own = src[~shared]
    if int(shared.sum()) < 3 or len(own) == 0:
        return len(own)
    hull = cv2.convexHull(src[shared])
    return sum(cv2.pointPolygonTest(hull, (float(x), float(y)), True) < -margin for x, y in own)
