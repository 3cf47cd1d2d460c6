"""Affine simulation (ASIFT) on the target side: SIFT of the target as a camera sees it from
steep angles, and steep views to rank those keypoints. SIFT is invariant to rotation and
scale but not to the foreshortening of a steep view; describing the target also compressed
along a few directions (a tilt t = 1/cos(angle from the normal)) lets a photo taken at 50-70
degrees find it."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
from numpy.typing import NDArray

from matcher.recognition.config import Config
from matcher.recognition.sift import Detected, detect


def simulate(
    im: NDArray[np.uint8], tilt: float, phi: float
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.float64]]:
    """``im`` turned by ``phi`` degrees and compressed by ``tilt`` along x (blurred along x
    first against aliasing, as ASIFT does); the mask of the image within it; and the 2x3
    affine map from ``im``'s pixels to the simulation's."""
    h, w = im.shape[:2]
    a = np.deg2rad(phi)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64) @ rot.T
    turn = np.hstack([rot, -corners.min(0)[:, None]])
    tw, th = (int(v) for v in np.ceil(np.ptp(corners, 0)) + 1)
    fill = int(np.median(im))
    turned = cv2.warpAffine(im, turn, (tw, th), flags=cv2.INTER_LINEAR, borderValue=fill)
    inside = cv2.warpAffine(np.full((h, w), 255, np.uint8), turn, (tw, th), flags=cv2.INTER_NEAREST)
    turned = cv2.GaussianBlur(turned, (0, 0), sigmaX=0.8 * np.sqrt(tilt * tilt - 1.0), sigmaY=0.01)
    ow = max(1, round(tw / tilt))
    out = cv2.resize(turned, (ow, th), interpolation=cv2.INTER_LINEAR)
    mask = cv2.erode(
        cv2.resize(inside, (ow, th), interpolation=cv2.INTER_NEAREST), np.ones((7, 7), np.uint8)
    )
    sx = ow / tw  # cv2.resize maps x to (x + 0.5) * sx - 0.5
    affine = np.diag([sx, 1.0]) @ turn
    affine[0, 2] += 0.5 * sx - 0.5
    return np.asarray(out, np.uint8), np.asarray(mask, np.uint8), affine


def tilted_keypoints(
    gray: NDArray[np.uint8], cfg: Config
) -> list[tuple[tuple[float, float], Detected]]:
    """SIFT of the target at ``target_sizes[0]`` under each of ``tilts`` along
    ``tilt_directions`` directions, back in the target's pixels: positions through the inverse
    affine map, orientation and size as the keypoint's orientation vector mapped back, so that
    carried through the photo's homography they are the photo keypoint's again."""
    H0, W0 = gray.shape[:2]
    s = min(1.0, cfg.target_sizes[0] / max(H0, W0))
    im = (
        gray
        if s >= 1.0
        else np.asarray(
            cv2.resize(
                gray, (max(1, round(W0 * s)), max(1, round(H0 * s))), interpolation=cv2.INTER_AREA
            ),
            np.uint8,
        )
    )
    found: list[tuple[tuple[float, float], Detected]] = []
    for tilt in cfg.tilts:
        for k in range(cfg.tilt_directions):
            phi = 180.0 * k / cfg.tilt_directions
            sim, mask, affine = simulate(im, tilt, phi)
            det = detect_masked(sim, mask, cfg.target_sift_contrast)
            if len(det.xy) == 0:
                continue
            inv = np.linalg.inv(affine[:, :2])
            xy = (det.xy - affine[:, 2]) @ inv.T / s
            rad = np.deg2rad(det.angle)
            u = np.stack([np.cos(rad), np.sin(rad)], 1) @ inv.T  # unit vector mapped back
            angle = np.rad2deg(np.arctan2(u[:, 1], u[:, 0])) % 360.0
            size = det.size * np.linalg.norm(u, axis=1) / s
            back = det._replace(
                xy=xy.astype(np.float32),
                angle=angle.astype(np.float32),
                size=size.astype(np.float32),
            )
            found.append(((tilt, phi), back))
    return found


def detect_masked(im: NDArray[np.uint8], mask: NDArray[np.uint8], contrast: float) -> Detected:
    """``detect`` keeping only keypoints inside ``mask`` (away from the simulation's edges)."""
    det = detect(im, contrast)
    if len(det.xy) == 0:
        return det
    x = np.clip(det.xy[:, 0].astype(int), 0, im.shape[1] - 1)
    y = np.clip(det.xy[:, 1].astype(int), 0, im.shape[0] - 1)
    return det.take(np.flatnonzero(mask[y, x] > 0))


def steep_views(
    gray: NDArray[np.uint8], cfg: Config, around: tuple[float, float] | None = None
) -> Iterator[tuple[NDArray[np.uint8], NDArray[np.float64]]]:
    """``tilt_views`` views of the target seen at a steep angle (tilt drawn within
    ``tilt_range``, any direction and turn, ``tilt_view_sides`` in size, blurred and noisy), each
    with the homography from the target's pixels to it."""
    rng = np.random.default_rng(cfg.view_seed + 1)
    H0, W0 = gray.shape[:2]
    fill = int(np.median(gray))
    for _ in range(cfg.tilt_views):
        lo_side, hi_side = np.log(cfg.tilt_view_sides)
        side = float(np.exp(rng.uniform(lo_side, hi_side)))
        tilt = rng.uniform(*cfg.tilt_range)
        phi, psi = rng.uniform(0, np.pi, 2)
        if around is not None:  # near one simulation's tilt and direction
            tilt = around[0] * rng.uniform(0.85, 1.15)
            phi = np.deg2rad(around[1] + rng.uniform(-10.0, 10.0))
        k = side / max(H0, W0)
        lin = k * _rot(psi) @ np.diag([1.0 / tilt, 1.0]) @ _rot(phi)
        corners = np.array([[0, 0], [W0, 0], [W0, H0], [0, H0]], np.float64) @ lin.T
        lo = corners.min(0) - 6
        size = np.ceil(corners.max(0) - lo + 6).astype(int)
        Hm = np.vstack([np.hstack([lin, -lo[:, None]]), [0, 0, 1]])
        src, pre = gray, np.eye(3)
        if k < 0.5:  # pre-shrink to limit aliasing and cost
            src = np.asarray(
                cv2.resize(gray, None, fx=2 * k, fy=2 * k, interpolation=cv2.INTER_AREA), np.uint8
            )
            pre = np.diag([1 / (2 * k), 1 / (2 * k), 1.0])
        fv = np.asarray(
            cv2.warpAffine(
                src,
                (Hm @ pre)[:2],
                (int(size[0]), int(size[1])),
                flags=cv2.INTER_AREA,
                borderValue=fill,
            ),
            np.float32,
        )
        fv = np.asarray(cv2.GaussianBlur(fv, (0, 0), rng.uniform(*cfg.view_blur)), np.float32)
        fv += rng.normal(0, rng.uniform(*cfg.view_noise), fv.shape).astype(np.float32)
        yield np.clip(fv, 0, 255).astype(np.uint8), Hm


def _rot(a: float) -> NDArray[np.float64]:
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
