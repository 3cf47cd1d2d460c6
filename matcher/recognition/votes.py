"""Votes of a photo's descriptors for catalog images, from their nearest index entries."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from matcher.recognition.config import Config


class Votes(NamedTuple):
    """The images voted for, best first, and the knn correspondences behind each."""

    images: NDArray[np.int64]  # image ids, by votes, at most ``candidates``
    votes: NDArray[np.float64]  # their votes
    rows: NDArray[np.int64]  # every counted correspondence: photo keypoint,
    image: NDArray[np.int64]  # its image,
    slots: NDArray[np.int64]  # index slot
    d: NDArray[np.float32]  # and squared distance


def vote(
    labels: NDArray[np.int64], dists: NDArray[np.float32], slot_img: NDArray[np.int32], cfg: Config
) -> Votes | None:
    """Each photo descriptor (a row of ``labels``, its k nearest slots, and ``dists``) votes
    once per image among its neighbours within ``max_dist``: 1 - d/d_k, +0.5 when d is under
    ``ratio`` times the nearest of another image (for the row's best image, the second
    image's; for the others, the best's). None when no neighbour counts."""
    k = labels.shape[1]
    imgs = slot_img[labels]  # (nq,k)
    ok = (dists <= cfg.max_dist) & (imgs >= 0)
    # first neighbour of each row from an image other than the row's best image
    other = np.where(imgs != imgs[:, :1], dists, np.inf).min(1)
    rows = np.repeat(np.arange(len(labels)), k)
    fm = ok.ravel()
    rows, fi, fl, fd = rows[fm], imgs.ravel()[fm], labels.ravel()[fm], dists.ravel()[fm]
    if len(fi) == 0:
        return None
    d_other = np.where(fi == imgs[rows, 0], other[rows], dists[rows, 0])
    ratio = fd / np.maximum(d_other, 1e-6)
    dk = np.maximum(dists[rows, -1], 1e-6)
    w = np.clip(1.0 - fd / dk, 0.0, 1.0) + np.where(ratio < cfg.ratio, 0.5, 0.0)
    # one vote per (row, image): its nearest entry of that image comes first in the row
    _, first = np.unique(rows * (1 << 32) + fi, return_index=True)
    uimg, inv = np.unique(fi[first], return_inverse=True)
    votes = np.bincount(inv, weights=w[first]).astype(np.float64)
    order = np.argsort(-votes)[: cfg.candidates]
    return Votes(uimg[order].astype(np.int64), votes[order], rows, fi.astype(np.int64), fl, fd)
