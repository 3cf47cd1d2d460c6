"""Whether a target's projected outline is one a camera could see of a flat target."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from matcher.recognition.config import CFG, Config


def outline_ok(c: NDArray[np.float64], cfg: Config, W: int, H: int) -> bool:
    """Corners ``c`` (4,2) in a ``W`` x ``H`` photo: finite, convex and not mirrored, an area
    within ``min_area``..``max_area`` of the photo's, and opposite sides within
    ``max_side_ratio`` of each other."""
    if not np.all(np.isfinite(c)):
        return False
    b, d = np.roll(c, -1, 0), np.roll(c, -2, 0)
    cross = (b[:, 0] - c[:, 0]) * (d[:, 1] - b[:, 1]) - (b[:, 1] - c[:, 1]) * (d[:, 0] - b[:, 0])
    if not np.all(cross > 0):  # convex, and orientation preserved (no mirror)
        return False
    area = 0.5 * abs(float(np.sum(c[:, 0] * b[:, 1] - b[:, 0] * c[:, 1])))
    photo = W * H
    if not cfg.min_area * photo <= area <= cfg.max_area * photo:
        return False
    sides = np.linalg.norm(c - b, axis=1)
    if sides.min() <= 1e-3:
        return False
    return bool(
        max(sides[0], sides[2]) / min(sides[0], sides[2]) <= cfg.max_side_ratio
        and max(sides[1], sides[3]) / min(sides[1], sides[3]) <= cfg.max_side_ratio
    )


def inside(outline: NDArray[np.float64], xy: NDArray[np.floating[Any]]) -> NDArray[np.bool_]:
    """Which points ``xy`` lie inside a convex outline (4,2) that turns as ``outline_ok``
    requires."""
    a, b = outline, np.roll(outline, -1, 0)
    edge = b - a  # (4,2)
    rel = xy[:, None, :] - a[None]  # (n,4,2)
    cross = edge[None, :, 0] * rel[..., 1] - edge[None, :, 1] * rel[..., 0]
    return np.asarray((cross > 0).all(1), bool)


def plausible(corners: NDArray[np.float32], width: int, height: int, cfg: Config = CFG) -> bool:
    """Whether a projected target outline is one a camera could see of a flat target."""
    return outline_ok(corners.astype(np.float64), cfg, width, height)
