"""What the in-process benchmarks share: reading images and photos as the matcher does, indexing the
catalog as AddImage would (level 0 refused), and extracting many targets on worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from matcher import features, recognition
from matcher.imaging import Limits, decode_gray
from shared.settings import Settings

LIMITS = Limits(Settings.model_fields["max_image_pixels"].default,
                Settings.model_fields["max_png_inflated_bytes"].default)
DISTRACTOR_ID = 10_000_000  # distractors' image ids start here, above the catalog's


def gray(path: Path) -> NDArray[np.uint8]:
    """An image decoded whole."""
    return decode_gray(path.read_bytes(), LIMITS).gray


def target(path: Path, cfg: recognition.Config | None = None) -> recognition.Features:
    """A catalog image's features as AddImage extracts them."""
    return features.target_features(path.read_bytes(), LIMITS, cfg)


def photo(path: Path, cfg: recognition.Config | None = None) -> recognition.Features:
    """A photo's features as FindImage extracts them (decoded reduced where it can be)."""
    return features.photo_features(path.read_bytes(), LIMITS, cfg)


def index_catalog(data: Path, cfg: recognition.Config | None = None
                  ) -> tuple[recognition.ChannelIndex, dict[int, str], dict[str, int]]:
    """A ChannelIndex of ``data``'s catalog; identifiers by image id; each target's level."""
    cfg = cfg or recognition.CFG
    index = recognition.ChannelIndex(cfg=cfg)
    names: dict[int, str] = {}
    levels: dict[str, int] = {}
    for path in sorted((data / "catalog").glob("*.jpg")):
        f = target(path, cfg)
        levels[path.stem] = recognition.rate_level(f)
        if levels[path.stem]:
            names[len(names)] = path.stem
            index.add(len(names) - 1, f)
    return index, names, levels


def _extract_targets(paths: list[Path], cfg: recognition.Config) -> list[recognition.Features]:
    cv2.setNumThreads(1)
    with threadpool_limits(1):
        return [target(path, cfg) for path in paths]


def extract_targets(paths: list[Path], cfg: recognition.Config, chunk: int = 250
                    ) -> Iterator[recognition.Features]:
    """Targets' features in ``paths`` order, extracted by 2 single-threaded processes; yielded
    a chunk at a time, so that a caller measuring its own memory holds only one chunk."""
    chunks = [paths[i:i + chunk] for i in range(0, len(paths), chunk)]
    with ProcessPoolExecutor(2) as pool:
        for batch in pool.map(_extract_targets, chunks, [cfg] * len(chunks)):
            yield from batch
