"""What the in-process benchmarks share: reading images as the matcher does, and indexing the
catalog as AddImage would (level 0 refused)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from matcher import recognition
from matcher.imaging import decode_gray

MAX_PIXELS = 40_000_000


def gray(path: Path) -> NDArray[np.uint8]:
    return decode_gray(path.read_bytes(), max_pixels=MAX_PIXELS)


def index_catalog(data: Path, cfg: recognition.Config | None = None
                  ) -> tuple[recognition.ChannelIndex, dict[int, str], dict[str, int]]:
    """A ChannelIndex of ``data``'s catalog; identifiers by image id; each target's level."""
    cfg = cfg or recognition.CFG
    index = recognition.ChannelIndex(cfg=cfg)
    names: dict[int, str] = {}
    levels: dict[str, int] = {}
    for path in sorted((data / "catalog").glob("*.jpg")):
        f = recognition.extract_target(gray(path), cfg)
        levels[path.stem] = recognition.rate_level(f)
        if levels[path.stem]:
            names[len(names)] = path.stem
            index.add(len(names) - 1, f)
    return index, names, levels
