"""Local features of catalog targets and query photos, their rating, and their stored form."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import msgpack
import numpy as np
import numpy.typing as npt

from matcher.imaging import Gray

Floats = npt.NDArray[np.float32]

# Bump when extraction changes: stored features of another version cannot share an index.
FEATURE_VERSION = 1

# A target is extracted at this size: a phone photo shows it at most about this large, and
# detail finer than that never reaches the query.
TARGET_MAX_SIDE = 480
TARGET_FEATURES = 500
# The photo side can afford more features than the index holds per target.
QUERY_MAX_SIDE = 640
QUERY_FEATURES = 1000
# Keypoints are spread over a GRID x GRID raster so that one busy corner cannot take them all.
GRID = 8


@dataclass(frozen=True)
class Features:
    """Keypoints of one image: positions in its original pixels, and their descriptors."""

    xy: Floats  # (n, 2)
    desc: Floats  # (n, d), L2-normalised
    width: int
    height: int

    def __len__(self) -> int:
        return int(self.xy.shape[0])


def extract_target(gray: Gray) -> Features:
    """Features of a catalog image, as the index stores them."""
    return _extract(gray, TARGET_MAX_SIDE, TARGET_FEATURES)


def extract_query(gray: Gray) -> Features:
    """Features of a query photo."""
    return _extract(gray, QUERY_MAX_SIDE, QUERY_FEATURES)


def _extract(gray: Gray, max_side: int, count: int) -> Features:
    height, width = gray.shape[:2]
    scale = min(1.0, max_side / max(width, height))
    work = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale,
                                                interpolation=cv2.INTER_AREA)
    sift = cv2.SIFT.create(nfeatures=count * 2)
    keypoints, desc = sift.detectAndCompute(work, None)
    if desc is None or not keypoints:
        return Features(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32),
                        width, height)
    xy = np.array([kp.pt for kp in keypoints], dtype=np.float32)
    response = np.array([kp.response for kp in keypoints], dtype=np.float32)
    keep = _spread(xy, response, work.shape[1], work.shape[0], count)
    return Features(xy[keep] / scale, _root_sift(desc[keep].astype(np.float32)), width, height)


def _spread(xy: Floats, response: Floats, width: int, height: int, count: int
            ) -> npt.NDArray[np.intp]:
    """Indices of up to ``count`` strongest keypoints, at most a fair share per grid cell."""
    cell_x = np.minimum((xy[:, 0] * GRID / width).astype(np.intp), GRID - 1)
    cell_y = np.minimum((xy[:, 1] * GRID / height).astype(np.intp), GRID - 1)
    cell = cell_y * GRID + cell_x
    order = np.argsort(-response, kind="stable")
    cap = max(1, math.ceil(2 * count / (GRID * GRID)))
    taken = np.zeros(GRID * GRID, np.intp)
    keep: list[int] = []
    for i in order:
        if taken[cell[i]] < cap:
            taken[cell[i]] += 1
            keep.append(int(i))
            if len(keep) == count:
                break
    return np.array(sorted(keep), dtype=np.intp)


def _root_sift(desc: Floats) -> Floats:
    desc = desc.astype(np.float32)
    desc /= desc.sum(axis=1, keepdims=True) + 1e-7
    return np.sqrt(desc)


# A target with fewer keypoints than this cannot reliably give the inliers verification needs.
MIN_TARGET_FEATURES = 60
MIN_QUERY_FEATURES = 20


def rate_level(f: Features, *, minimum: int = MIN_TARGET_FEATURES) -> int:
    """How reliably an image can be recognised: 0 (refuse) or 1 to 5.

    One point for having enough keypoints at all (``minimum``), one more for each of 200 and
    400 keypoints, and one each for keypoints covering at least half and three quarters of a
    4x4 raster over the image: recognition needs both many features and features spread
    over the target, so that a partly hidden or cropped view still shows enough of them.
    """
    n = len(f)
    if n < minimum:
        return 0
    cells = np.zeros((4, 4), np.int32)
    cx = np.minimum((f.xy[:, 0] * 4 / f.width).astype(np.intp), 3)
    cy = np.minimum((f.xy[:, 1] * 4 / f.height).astype(np.intp), 3)
    np.add.at(cells, (cy, cx), 1)
    coverage = float(np.mean(cells >= 3))
    return 1 + int(n >= 200) + int(n >= 400) + int(coverage >= 0.5) + int(coverage >= 0.75)


def encode(f: Features) -> bytes:
    """The stored and transmitted form: positions as float32, descriptors as float16."""
    packed: bytes = msgpack.packb({
        "v": FEATURE_VERSION, "w": f.width, "h": f.height,
        "n": len(f), "d": int(f.desc.shape[1]),
        "xy": f.xy.astype(np.float32).tobytes(),
        "desc": f.desc.astype(np.float16).tobytes(),
    }, use_bin_type=True)
    return packed


def decode(data: bytes) -> Features:
    """Inverse of ``encode``; raises ValueError on anything else."""
    try:
        d = msgpack.unpackb(data, raw=False)
        if d["v"] != FEATURE_VERSION:
            raise ValueError(f"feature version {d['v']}, this matcher speaks {FEATURE_VERSION}")
        n, dim = int(d["n"]), int(d["d"])
        xy = np.frombuffer(d["xy"], np.float32).reshape(n, 2)
        desc = np.frombuffer(d["desc"], np.float16).reshape(n, dim).astype(np.float32)
        return Features(xy.copy(), desc, int(d["w"]), int(d["h"]))
    except (KeyError, TypeError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError) as e:
        raise ValueError(f"not encoded features: {e}") from e
