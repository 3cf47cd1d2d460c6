"""A catalog target's indexed features: SIFT at a few "as seen in a photo" sizes, ranked by
how often synthetic views of the target re-find them, spread over the image, cut to a fixed
budget (so a target costs a bounded number of index entries)."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
from numpy.typing import NDArray

from matcher.recognition.config import CFG, Config
from matcher.recognition.features import Features
from matcher.recognition.level import expected_matches, rate_level
from matcher.recognition.pca import project
from matcher.recognition.sift import Detected, detect
from matcher.recognition.views import view_credit


def extract_target(gray: NDArray[np.uint8], cfg: Config | None = None) -> Features:
    """The indexed features of a catalog target: those of its usual sizes or, when those rate
    ``fine_max_level`` or less, those of its fine detail if they are re-found more often in
    their (larger) views; such a target is rated at most ``fine_max_level``."""
    cfg = cfg or CFG
    f = _extract(gray, cfg)
    if rate_level(f, cfg) > cfg.fine_max_level or not cfg.fine_sizes:
        return f
    fine = _extract(
        gray,
        replace(
            cfg,
            target_sizes=cfg.fine_sizes,
            target_sift_contrast=cfg.fine_sift_contrast,
            view_sides=cfg.fine_view_sides,
        ),
    )
    if expected_matches(fine) <= expected_matches(f):
        return f
    return replace(fine, max_level=cfg.fine_max_level)


def _extract(gray: NDArray[np.uint8], cfg: Config) -> Features:
    H0, W0 = gray.shape[:2]
    cand, sc, credit = ranked_candidates(gray, cfg)
    n = cfg.target_budget
    kept = cand.take(np.arange(min(n, len(cand.xy))))
    return Features(
        xy=kept.xy,
        desc=project(kept.desc),
        width=W0,
        height=H0,
        scale=sc[:n],
        credit=credit[:n],
        n_views=cfg.n_views,
        angle=kept.angle,
        size=kept.size,
    )


def ranked_candidates(
    gray: NDArray[np.uint8], cfg: Config
) -> tuple[Detected, NDArray[np.int8], NDArray[np.float32]]:
    """All candidate keypoints of a target, best first (xy and size in the target's pixels),
    with their scale index and view credit."""
    cand, sc = _candidates(gray, cfg)
    if len(cand.xy) == 0:
        return cand, sc, cand.response
    credit = view_credit(gray, cand.xy, cand.desc, cfg)
    o = _priority(cand.xy, cand.response, credit, gray.shape[1], gray.shape[0], cfg)
    return cand.take(o), sc[o], credit[o]


def _candidates(gray: NDArray[np.uint8], cfg: Config) -> tuple[Detected, NDArray[np.int8]]:
    """SIFT of the target at each of ``target_sizes``, ``pool_per_scale`` spread keypoints of
    each, in the target's pixels; and the scale index of each."""
    H0, W0 = gray.shape[:2]
    found: list[Detected] = []
    scales = []
    for si, side in enumerate(cfg.target_sizes):
        s = min(1.0, side / max(H0, W0))
        im = (
            gray
            if s >= 1.0
            else np.asarray(
                cv2.resize(
                    gray,
                    (max(1, round(W0 * s)), max(1, round(H0 * s))),
                    interpolation=cv2.INTER_AREA,
                ),
                np.uint8,
            )
        )
        det = detect(im, cfg.target_sift_contrast)
        det = det.take(
            spread(
                det.xy, det.response, im.shape[1], im.shape[0], cfg.pool_per_scale, cfg.target_grid
            )
        )
        found.append(det._replace(xy=det.xy / s, size=det.size / s))
        scales.append(np.full(len(det.xy), si, np.int8))
    cand = Detected(
        *(np.concatenate(parts).astype(np.float32) for parts in zip(*found, strict=True))
    )
    return cand, np.concatenate(scales)


def spread(
    xy: NDArray[np.float32], resp: NDArray[np.float32], w: int, h: int, n: int, grid: int
) -> NDArray[np.int64]:
    """Pick n indices, strongest first, round-robin over grid cells so they cover the image."""
    if len(xy) <= n:
        return np.argsort(-resp, kind="stable")
    cx = np.clip((xy[:, 0] * grid / max(w, 1)).astype(int), 0, grid - 1)
    cy = np.clip((xy[:, 1] * grid / max(h, 1)).astype(int), 0, grid - 1)
    cell = cy * grid + cx
    order = np.lexsort((-resp, cell))  # by cell, strongest first within
    cs = cell[order]
    start = np.searchsorted(cs, np.arange(grid * grid))
    rank = np.arange(len(order)) - start[cs]  # rank within its cell
    o2 = np.lexsort((-resp[order], rank))  # all rank-0, then rank-1, ...
    return order[o2][:n]


def _priority(
    xy: NDArray[np.float32],
    resp: NDArray[np.float32],
    credit: NDArray[np.float32],
    w: int,
    h: int,
    cfg: Config,
) -> NDArray[np.int64]:
    """Keypoints ordered by credit (then response), each losing ``spread_gamma`` per better
    keypoint in its grid cell, so that the budget covers the target."""
    g = cfg.target_grid
    cell = np.clip((xy[:, 1] * g / h).astype(int), 0, g - 1) * g + np.clip(
        (xy[:, 0] * g / w).astype(int), 0, g - 1
    )
    key = credit + 1e-3 * resp / (resp.max() + 1e-9)
    order = np.lexsort((-key, cell))
    rank = np.empty(len(xy), np.float32)
    cs = cell[order]
    start = np.searchsorted(cs, np.arange(g * g))
    rank[order] = np.arange(len(xy)) - start[cs]
    prio = key - cfg.spread_gamma * rank
    return np.argsort(-prio, kind="stable")
