"""One channel's descriptor index: hnswlib over every target's descriptors.

Labels encode ``(target key << KP_BITS) | keypoint``; a target key is never reused, so a label
is never reused either (hnswlib's replace_deleted only reuses internal slots safely for new
labels).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass

import hnswlib
import numpy as np
import numpy.typing as npt

from matcher.features import Features, Floats

KP_BITS = 12  # up to 4096 keypoints per target
KP_MASK = (1 << KP_BITS) - 1
# Graph degree and build effort: hnswlib's usual defaults, measured in BENCHMARKS.md.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 100
HNSW_EF = 64
INITIAL_CAPACITY = 4096
# hnswlib keeps ~44 resident bytes per empty slot (a mutex each): grow by a quarter, not double,
# so that spare capacity stays a small share of a large index.
GROWTH = 1.25


@dataclass(frozen=True)
class Target:
    """What verification needs of one indexed image."""

    image_id: int
    xy: Floats
    width: int
    height: int


@dataclass(frozen=True)
class Neighbours:
    """Nearest indexed descriptors of each query descriptor, nearest first."""

    keys: npt.NDArray[np.int64]  # (n, k) target keys
    keypoints: npt.NDArray[np.int64]  # (n, k) keypoint index within the target
    distances: Floats  # (n, k) squared L2
    targets: dict[int, Target]  # target key -> target


class ChannelIndex:
    """Descriptors of one channel's targets on this shard. Thread-safe."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._hnsw = hnswlib.Index(space="l2", dim=dim)
        self._hnsw.init_index(max_elements=INITIAL_CAPACITY, M=HNSW_M,
                              ef_construction=HNSW_EF_CONSTRUCTION, allow_replace_deleted=True)
        self._hnsw.set_ef(HNSW_EF)
        self._lock = threading.Lock()
        self._keys = itertools.count(1)
        self._by_image: dict[int, int] = {}  # image id -> target key
        self._targets: dict[int, Target] = {}  # target key -> target
        self._sizes: dict[int, int] = {}  # target key -> descriptor count
        self._live = 0  # descriptors searchable
        self._vacant = 0  # deleted slots hnswlib can reuse

    def __len__(self) -> int:
        return len(self._by_image)

    def __contains__(self, image_id: int) -> bool:
        return image_id in self._by_image

    def add(self, image_id: int, f: Features) -> None:
        """Index ``f`` as image ``image_id``; adding an indexed image again does nothing."""
        n = len(f)
        if n == 0 or n > KP_MASK + 1:
            raise ValueError(f"a target needs 1 to {KP_MASK + 1} keypoints, got {n}")
        if f.desc.shape[1] != self.dim:
            raise ValueError(f"descriptors of dimension {f.desc.shape[1]}, index has {self.dim}")
        with self._lock:
            if image_id in self._by_image:
                return
            key = next(self._keys)
            labels = (np.uint64(key) << np.uint64(KP_BITS)) + np.arange(n, dtype=np.uint64)
            self._reserve(n)
            self._hnsw.add_items(f.desc, labels, num_threads=1, replace_deleted=True)
            reused = min(n, self._vacant)
            self._vacant -= reused
            self._live += n
            self._by_image[image_id] = key
            self._targets[key] = Target(image_id, f.xy, f.width, f.height)
            self._sizes[key] = n

    def remove(self, image_id: int) -> bool:
        """Stop finding ``image_id``; False when it was not indexed."""
        with self._lock:
            key = self._by_image.pop(image_id, None)
            if key is None:
                return False
            n = self._sizes.pop(key)
            del self._targets[key]
            base = key << KP_BITS
            for label in range(base, base + n):
                self._hnsw.mark_deleted(label)
            self._live -= n
            self._vacant += n
            return True

    def neighbours(self, desc: Floats, k: int) -> Neighbours | None:
        """The ``k`` nearest indexed descriptors of each row of ``desc``; None when empty."""
        with self._lock:
            k = min(k, self._live)
            if k == 0 or len(desc) == 0:
                return None
            labels, distances = self._hnsw.knn_query(desc, k=k, num_threads=1)
            targets = dict(self._targets)
        labels = labels.astype(np.int64)
        return Neighbours(labels >> KP_BITS, labels & KP_MASK, distances, targets)

    def _reserve(self, n: int) -> None:
        fresh = max(0, n - self._vacant)
        used = self._live + self._vacant
        capacity = int(self._hnsw.get_max_elements())
        if used + fresh > capacity:
            self._hnsw.resize_index(max(used + fresh, int(capacity * GROWTH)))
