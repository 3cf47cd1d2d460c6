"""What extraction gives and search answers: an image's features, and a verified match."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Features:
    """Keypoints and descriptors of one image (a catalog target or a query photo)."""

    xy: NDArray[np.float32]  # (n,2) in the ORIGINAL image's pixel coordinates
    desc: NDArray[np.float32]  # (n,d)
    width: int
    height: int
    scale: NDArray[np.int8] | None = field(default=None, compare=False)  # target: scale index
    credit: NDArray[np.float32] | None = field(default=None, compare=False)  # target: views matched
    n_views: int = 0  # target: views made
    max_level: int = 5  # target: the best level its extraction can claim
    # SIFT orientation (degrees) and size (ORIGINAL px) of each keypoint; None when unknown
    # (features stored before they were kept): verification then checks positions only
    angle: NDArray[np.float32] | None = field(default=None, compare=False)
    size: NDArray[np.float32] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Match:
    """A target verified in a photo: its score (consistent inliers) and projected outline."""

    image_id: int
    score: float
    corners: NDArray[np.float32]  # (4,2) the target's corners in photo pixels
    centred: bool = False  # the outline holds the photo's centre

    def order(self) -> tuple[bool, float]:
        """Sort key, best first: centred on the photo, then by score (as answer_order)."""
        return (not self.centred, -self.score)
