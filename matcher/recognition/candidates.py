"""What verifying one candidate image needs, copied out of the index while it is held: once
it is released, a remove and an add may give the image's slots to another image."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray


class Pairs(NamedTuple):
    """Correspondences between photo keypoints and one target's keypoints."""

    rows: NDArray[np.int64]  # photo keypoints
    slots: NDArray[np.int64]  # the target keypoints' index slots (the one-to-one step's order)
    d: NDArray[np.float32]  # squared descriptor distances
    xy: NDArray[np.uint16]  # the target keypoints, as fractions (see slots.to_fraction)
    geo: NDArray[np.uint8]  # their orientation and size (see slots.to_geo)
    shared: NDArray[np.uint8]  # 1 where another catalog image has the same entry

    def take(self, sel: NDArray[np.int64] | NDArray[np.bool_]) -> Pairs:
        return Pairs(
            self.rows[sel],
            self.slots[sel],
            self.d[sel],
            self.xy[sel],
            self.geo[sel],
            self.shared[sel],
        )


class Entries(NamedTuple):
    """One target's index entries, for a rematch against them."""

    slots: NDArray[np.int32]
    desc: NDArray[np.float32]  # (m,d) as stored in the index
    xy: NDArray[np.uint16]
    geo: NDArray[np.uint8]
    shared: NDArray[np.uint8]


class Candidate(NamedTuple):
    """One image the photo's descriptors voted for."""

    image_id: int
    width: int
    height: int
    rank: int  # by votes, from 0
    knn: Pairs
    own: Entries | None  # its entries when it may be rematched and has two or more
