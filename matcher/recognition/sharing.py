"""Entries that several catalog images have: a masthead, a logo, a studio's ident. A photo of
another cover with the same masthead matches them as well as it matches the target; so a match
needs inliers on the target's own content too (see geometry.own_inliers)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

DUPLICATE_SHARE = 0.5  # an image sharing this share of its entries with one other is a copy


def shared_hits(
    own_img: NDArray[np.int32],
    labels: NDArray[np.int64],
    dists: NDArray[np.float32],
    slot_img: NDArray[np.int32],
    sizes: dict[int, int],
    max_dist: float,
) -> NDArray[np.bool_]:
    """Which of each entry's nearest index entries (``labels``, ``dists``; the entry belongs
    to image ``own_img``) are another image's within ``max_dist``. Two images that share at
    least DUPLICATE_SHARE of the entries of the first (``sizes``: entries per image) are copies
    of one target, not covers sharing a masthead: their hits do not count."""
    imgs = slot_img[labels]
    hit = np.asarray((imgs >= 0) & (imgs != own_img[:, None]) & (dists <= max_dist), bool)
    if not hit.any():
        return hit
    r, j = np.nonzero(hit)
    pair = own_img[r].astype(np.int64) * (1 << 32) + imgs[r, j].astype(np.int64)
    pairs = np.unique(np.stack([pair, r]), axis=1)[0]
    names, count = np.unique(pairs, return_counts=True)
    copies = {
        int(p)
        for p, c in zip(names.tolist(), count.tolist(), strict=True)
        if c >= DUPLICATE_SHARE * sizes[p >> 32]
    }
    if copies:
        hit[r, j] = ~np.isin(pair, list(copies))
    return hit
