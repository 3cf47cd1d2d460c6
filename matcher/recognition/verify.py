"""Whether a candidate image is in the photo: correspondences grouped by rotation and scale,
made one-to-one, a homography (USAC_MAGSAC), inliers that agree with it in orientation and
size, and a plausible outline."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from matcher.recognition.candidates import Candidate, Entries, Pairs
from matcher.recognition.config import Config
from matcher.recognition.features import Features, Match
from matcher.recognition.geometry import clusters, consistent, own_inliers
from matcher.recognition.outline import inside, outline_ok
from matcher.recognition.query import query_side
from matcher.recognition.slots import from_fraction

Debug = dict[str, Any] | None


def check(q: Features, c: Candidate, cfg: Config, debug: Debug = None) -> Match | None:
    """Candidate ``c`` verified by the knn's correspondences or, if those fail, for the
    ``rematch_top`` best by votes, by each photo descriptor's nearest among its own entries:
    the densest (rotation, scale) group of those, then the next densest at the stricter
    ``second_cluster_inliers`` (a row of notes matches itself half a turn round too)."""
    for near in clusters(q, c.knn.rows, c.knn.geo, cfg):
        if (m := fit(q, c, c.knn.take(near), cfg.min_inliers, cfg, debug)) is not None:
            return m
    if c.rank >= cfg.rematch_top or c.own is None:
        return None
    pairs = rematch(q, c.own, cfg)
    bars = (cfg.rematch_min_inliers, cfg.second_cluster_inliers)
    for near, bar in zip(clusters(q, pairs.rows, pairs.geo, cfg, tries=2), bars, strict=False):
        if (m := fit(q, c, pairs.take(near), bar, cfg, debug)) is not None:
            return m
    return None


def rematch(q: Features, own: Entries, cfg: Config) -> Pairs:
    """Each photo descriptor's nearest among a target's own entries, within
    ``rematch_maxdist``."""
    D = 2.0 - 2.0 * (q.desc @ own.desc.T)  # (nq,m)
    best = D.argmin(1)
    db = D[np.arange(len(D)), best]
    good = db <= cfg.rematch_maxdist
    near = best[good]
    return Pairs(
        np.nonzero(good)[0],
        own.slots[near].astype(np.int64),
        db[good].astype(np.float32),
        own.xy[near],
        own.geo[near],
        own.shared[near],
    )


def one_to_one(p: Pairs) -> Pairs:
    """Greedy by distance: each photo keypoint and each target slot in one pair at most."""
    o = np.argsort(p.d, kind="stable")
    _, fr = np.unique(p.rows[o], return_index=True)
    keep = np.zeros(len(o), bool)
    keep[fr] = True
    o = o[keep]
    _, fs = np.unique(p.slots[o], return_index=True)
    return p.take(o[fs])


def fit(
    q: Features, c: Candidate, p: Pairs, min_inl: int, cfg: Config, debug: Debug
) -> Match | None:
    """A homography from the one-to-one correspondences, its inliers that agree in
    orientation and size (at least ``min_inl``), and the plausibility of the outline."""
    p = one_to_one(p)
    if len(p.rows) < max(min_inl, 4):
        return None
    w, h = c.width, c.height
    src = from_fraction(p.xy, w, h)
    dst = q.xy[p.rows].astype(np.float32)
    # the photo's positions are in its own pixels, searched at query_side of its long side
    reproj = cfg.reproj * max(q.width, q.height) / query_side(q.width, q.height, cfg)
    Hm, mask = cv2.findHomography(
        src, dst, cv2.USAC_MAGSAC, reproj, maxIters=2000, confidence=0.995
    )
    if Hm is None or mask is None:
        return None
    inl = mask.ravel().astype(bool)
    inl[inl] = consistent(np.asarray(Hm, np.float64), src[inl], p.geo[inl], q, p.rows[inl], cfg)
    ni = int(inl.sum())
    if debug is not None:
        debug.setdefault("verify", {})[c.image_id] = (len(p.rows), ni)
    margin = cfg.own_margin * float(np.sqrt(w * h))
    if ni < min_inl or own_inliers(src[inl], p.shared[inl] > 0, margin) < cfg.min_own_inliers:
        return None
    corners = np.array([[[0, 0], [w, 0], [w, h], [0, h]]], np.float32)
    out = cv2.perspectiveTransform(corners, Hm)[0]
    outline = out.astype(np.float64)
    if not outline_ok(outline, cfg, q.width, q.height):
        return None
    if cv2.contourArea(cv2.convexHull(src[inl])) < cfg.min_hull * w * h:
        return None
    centred = bool(inside(outline, np.array([[q.width / 2, q.height / 2]], np.float32))[0])
    return Match(c.image_id, float(ni), out.astype(np.float32), centred)
