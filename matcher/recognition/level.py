"""A target's level: 0 = too poor to recognise (AddImage refuses it), else 1..5 predicting how
hard a photo it is found in."""

from __future__ import annotations

import numpy as np

from matcher.recognition.config import CFG, Config
from matcher.recognition.features import Features

LEVEL_EDGES = (2.0, 6.0, 14.0, 26.0, 42.0)  # expected matches per synthetic view -> level 1..5


def expected_matches(f: Features) -> float:
    """Correct matches per synthetic view of the target (0 without views)."""
    if f.credit is None or f.n_views == 0 or len(f.credit) == 0:
        return 0.0
    return float(f.credit.sum()) / f.n_views


def rate_level(f: Features, cfg: Config = CFG) -> int:
    """0 = too poor to recognise (refuse), else 1..5 predicting recognisability.

    The target side renders ``n_views`` small, rotated, blurred, noisy views of the target and
    credits each indexed feature with the views in which it was re-found; the sum of credits per
    view is the expected number of correct matches in a hard-ish photo, which is what the
    verification needs (>= min_inliers).  Without credits (features from elsewhere, or a query
    photo) it falls back on the count and spatial coverage of the features."""
    n = len(f.xy)
    if n < 12:
        return 0
    if f.credit is not None and f.n_views > 0:
        e = expected_matches(f)
        if e < LEVEL_EDGES[0]:
            return 0
        return min(
            f.max_level, int(1 + np.searchsorted(np.array(LEVEL_EDGES[1:]), e, side="right"))
        )
    g = 4
    cx = np.clip((f.xy[:, 0] * g / max(f.width, 1)).astype(int), 0, g - 1)
    cy = np.clip((f.xy[:, 1] * g / max(f.height, 1)).astype(int), 0, g - 1)
    cover = len(set((cy * g + cx).tolist())) / (g * g)
    return int(np.clip(round(min(1.0, n / cfg.target_budget) * 2.5 + cover * 2.5), 1, 5))
