"""Synthetic views of a target: small, turned, slightly tilted, blurred and noisy renderings
of it, as a phone photo might show it, and the credit each target keypoint earns by being
re-found in them."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from matcher.recognition.config import Config
from matcher.recognition.pca import project
from matcher.recognition.sift import detect


def render_view(
    gray: NDArray[np.uint8], rng: np.random.Generator, cfg: Config
) -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
    """One view of ``gray`` drawn from ``rng``, and the homography from the target's pixels
    to the view's."""
    H0, W0 = gray.shape[:2]
    vside = float(np.exp(rng.uniform(np.log(cfg.view_sides[0]), np.log(cfg.view_sides[1]))))
    k = vside / max(H0, W0)
    a = rng.uniform(-np.pi, np.pi)
    src = np.array([[0, 0], [W0, 0], [W0, H0], [0, H0]], np.float32)
    c = (src - np.array([W0 / 2, H0 / 2])) * k
    c = c @ np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]).T
    c += rng.uniform(-cfg.view_tilt, cfg.view_tilt, (4, 2)) * vside
    c -= c.min(0) - 6
    vw, vh = int(np.ceil(c[:, 0].max() + 6)), int(np.ceil(c[:, 1].max() + 6))
    Hfull = cv2.getPerspectiveTransform(src, c.astype(np.float32))
    Hm, srcim = Hfull, gray
    if k < 0.5:  # pre-shrink to limit aliasing and cost
        srcim = np.asarray(
            cv2.resize(gray, None, fx=2 * k, fy=2 * k, interpolation=cv2.INTER_AREA), np.uint8
        )
        Hm = Hm @ np.diag([1 / (2 * k), 1 / (2 * k), 1.0])
    fill = int(np.median(gray))
    fv = np.asarray(
        cv2.warpPerspective(srcim, Hm, (vw, vh), flags=cv2.INTER_LINEAR, borderValue=fill),
        np.float32,
    )
    fv = np.asarray(cv2.GaussianBlur(fv, (0, 0), rng.uniform(*cfg.view_blur)), np.float32)
    fv += rng.normal(0, rng.uniform(*cfg.view_noise), fv.shape).astype(np.float32)
    return np.clip(fv, 0, 255).astype(np.uint8), np.asarray(Hfull, np.float64)


def view_credit(
    gray: NDArray[np.uint8], xy: NDArray[np.float32], d128: NDArray[np.float32], cfg: Config
) -> NDArray[np.float32]:
    """For each target keypoint (``xy`` in ``gray``'s pixels, raw SIFT ``d128``), the number
    of ``cfg.n_views`` views in which a view keypoint at the same place (``view_tol``) has it
    as its nearest descriptor."""
    credit = np.zeros(len(xy), np.float32)
    if cfg.n_views <= 0 or len(xy) == 0:
        return credit
    pd = project(d128)
    rng = np.random.default_rng(cfg.view_seed)
    for _ in range(cfg.n_views):
        view, Hfull = render_view(gray, rng, cfg)
        vxy, vd = detect(view, cfg.query_sift_contrast)[:2]
        if len(vxy) == 0:
            continue
        dist = 2.0 - 2.0 * (project(vd) @ pd.T)
        nn = np.argmin(dist, 1)  # nearest candidate of each view feature
        proj = cv2.perspectiveTransform(xy[nn][None].astype(np.float64), Hfull)[0]
        good = np.linalg.norm(proj - vxy, axis=1) <= cfg.view_tol
        np.add.at(credit, nn[good], 1.0)
    return credit
