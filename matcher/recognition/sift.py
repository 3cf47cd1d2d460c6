"""SIFT keypoints of one grayscale image, as arrays."""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np
from numpy.typing import NDArray


class Detected(NamedTuple):
    """SIFT keypoints of one image, in that image's pixels."""

    xy: NDArray[np.float32]  # (n,2)
    desc: NDArray[np.float32]  # (n,128) raw SIFT
    response: NDArray[np.float32]
    size: NDArray[np.float32]
    angle: NDArray[np.float32]  # degrees, as OpenCV gives them

    def take(self, sel: NDArray[np.int64]) -> Detected:
        return Detected(*(a[sel] for a in self))


def detect(gray: NDArray[np.uint8], contrast: float, nmax: int = 0) -> Detected:
    """SIFT at ``contrast``; with ``nmax`` only the ``nmax`` strongest keypoints are described
    (describing is about half of SIFT's time on a photo). A SIFT object costs under a
    microsecond to make, so each call makes its own (safe on any thread)."""
    sift = cv2.SIFT_create(nfeatures=nmax, contrastThreshold=contrast)  # type: ignore[attr-defined]
    kps, d = sift.detectAndCompute(gray, None)
    if d is None or len(kps) == 0:
        z = np.zeros(0, np.float32)
        return Detected(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32), z, z, z)
    found = Detected(
        np.array([k.pt for k in kps], np.float32),
        d.astype(np.float32),
        np.array([k.response for k in kps], np.float32),
        np.array([k.size for k in kps], np.float32),
        np.array([k.angle for k in kps], np.float32),
    )
    if nmax:  # strongest first; OpenCV may keep a few more that tie with the last
        return found.take(np.argsort(-found.response, kind="stable")[:nmax])
    return found
