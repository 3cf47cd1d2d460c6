"""RootSIFT descriptors projected to the indexed dimensions by the shipped PCA.

``pca.npy`` beside this file holds a (d+1, 128) float32 array: row 0 the mean, rows 1..d the
projection. It is made by ``benchmarks/fit_pca.py`` from generated images only, and read once
at import into read-only arrays: a missing file fails the import, never a silent 128-d index.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

SHIPPED_FILE = Path(__file__).with_name("pca.npy")


class Projection(NamedTuple):
    mean: NDArray[np.float32]  # (128,)
    proj: NDArray[np.float32]  # (128, d)

    @property
    def dim(self) -> int:
        return int(self.proj.shape[1])


def load_pca(path: Path = SHIPPED_FILE) -> Projection:
    """The projection stored in ``path`` (``pca.npy``'s layout), as read-only arrays."""
    a = np.load(path).astype(np.float32)
    mean, proj = a[0].copy(), np.ascontiguousarray(a[1:].T)
    mean.flags.writeable = proj.flags.writeable = False
    return Projection(mean, proj)


PCA = load_pca()


def root_sift(d: NDArray[np.float32]) -> NDArray[np.float32]:
    """RootSIFT: L1-normalised, then the square root of each component."""
    d = d / (np.abs(d).sum(1, keepdims=True) + 1e-7)
    return np.sqrt(d).astype(np.float32)


def project(d128: NDArray[np.float32], pca: Projection = PCA) -> NDArray[np.float32]:
    """Raw SIFT descriptors (n, 128) -> RootSIFT -> PCA -> L2 normalised (n, d)."""
    if len(d128) == 0:
        return np.zeros((0, pca.dim), np.float32)
    r = ((root_sift(d128) - pca.mean) @ pca.proj).astype(np.float32)
    r /= np.linalg.norm(r, axis=1, keepdims=True) + 1e-7
    return np.ascontiguousarray(r, dtype=np.float32)
