"""How the index keeps each entry's keypoint: its position as a fraction of the target's width
and height in 1/65535ths (finer than 0.1 px below 6,500 px), and its orientation and size in
one byte each."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def to_fraction(xy: NDArray[np.float32], w: int, h: int) -> NDArray[np.uint16]:
    frac = np.asarray(xy, np.float64) / np.array([max(w, 1), max(h, 1)]) * 65535.0
    return np.asarray(np.clip(np.rint(frac), 0, 65535), np.uint16)


def from_fraction(frac: NDArray[np.uint16], w: int, h: int) -> NDArray[np.float32]:
    return np.asarray(frac * np.array([w / 65535.0, h / 65535.0], np.float32), np.float32)


def to_geo(
    angle: NDArray[np.float32] | None, size: NDArray[np.float32] | None, n: int
) -> NDArray[np.uint8]:
    """Orientation in 256ths of a turn and log2(size) in 16ths of an octave, +1 (0 = unknown)."""
    if angle is None or size is None:
        return np.zeros((n, 2), np.uint8)
    a = np.rint(np.asarray(angle, np.float64) * 256.0 / 360.0).astype(np.int64) % 256
    z = np.clip(np.rint(np.log2(np.maximum(size, 1.0)) * 16.0) + 1, 1, 255)
    return np.stack([a, z], 1).astype(np.uint8)


def from_geo(
    geo: NDArray[np.uint8],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """(angle degrees, size px, known) from ``to_geo``'s codes."""
    angle = geo[:, 0].astype(np.float64) * (360.0 / 256.0)
    return angle, 2.0 ** ((geo[:, 1].astype(np.float64) - 1) / 16.0), geo[:, 1] > 0


def turn(a: NDArray[np.floating[Any]], b: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """|a - b| in degrees, the short way round."""
    return np.asarray(np.abs((a - b + 180.0) % 360.0 - 180.0), np.float64)


def octaves(a: NDArray[np.floating[Any]], b: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """log2(a / b) for sizes, either of which may be 0."""
    return np.asarray(np.log2(np.maximum(a, 1e-3) / np.maximum(b, 1e-3)), np.float64)


class SlotTable:
    """Per index slot: the image it belongs to (-1: none), its keypoint (``to_fraction``,
    ``to_geo``) and whether another image has the entry too (1: shared). 10 bytes a slot.
    Slots [0, ``next``) have been used once; ``free`` holds removed ones, reused first."""

    def __init__(self, cap: int) -> None:
        self.img = np.full(cap, -1, np.int32)
        self.xy = np.zeros((cap, 2), np.uint16)
        self.geo = np.zeros((cap, 2), np.uint8)
        self.shared = np.zeros(cap, np.uint8)
        self.next = 0
        self.free: list[int] = []

    @property
    def cap(self) -> int:
        return len(self.img)

    @property
    def used(self) -> int:
        return self.next - len(self.free)

    def fits(self, n: int) -> bool:
        return self.next + max(0, n - len(self.free)) <= self.cap

    def grow(self, cap: int) -> None:
        more = cap - self.cap
        self.img = np.concatenate([self.img, np.full(more, -1, np.int32)])
        self.xy = np.concatenate([self.xy, np.zeros((more, 2), np.uint16)])
        self.geo = np.concatenate([self.geo, np.zeros((more, 2), np.uint8)])
        self.shared = np.concatenate([self.shared, np.zeros(more, np.uint8)])

    def take(self, n: int) -> NDArray[np.int64]:
        """``n`` slots for new entries (room made by ``grow`` first)."""
        reuse = min(n, len(self.free))
        taken = [self.free.pop() for _ in range(reuse)]
        taken += range(self.next, self.next + n - reuse)
        self.next += n - reuse
        return np.array(taken, np.int64)

    def release(self, slots: NDArray[np.int32]) -> None:
        self.img[slots] = -1
        self.shared[slots] = 0
        self.free.extend(slots.tolist())

    def arrays(self) -> dict[str, Any]:
        """A copy, in the names snapshots keep it under."""
        return {
            "cap": self.cap,
            "next": self.next,
            "free": np.array(self.free, np.int64),
            "slot_img": self.img.copy(),
            "slot_xy": self.xy.copy(),
            "slot_geo": self.geo.copy(),
            "slot_shared": self.shared.copy(),
        }

    @classmethod
    def from_arrays(cls, a: dict[str, NDArray[Any]]) -> SlotTable:
        table = cls(0)
        table.img, table.xy, table.geo = a["slot_img"], a["slot_xy"], a["slot_geo"]
        table.shared = a.get("slot_shared", np.zeros(len(table.img), np.uint8))
        table.next, table.free = int(a["next"]), a["free"].tolist()
        if not (
            len(table.xy) == len(table.geo) == len(table.shared) == table.cap
            and table.next <= table.cap == int(a["cap"])
        ):
            raise ValueError("slot arrays of different lengths")
        return table
