"""Generated images for fitting and testing the recognition core: the benchmark generator
(``make_bench.py``, beside the benchmark data) loaded as a module, and camera-like views of
generated posters made with it. Nothing here reads a benchmark photo."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
from numpy.typing import NDArray

DIFFICULTIES = ("easy", "medium", "hard")


def make_bench(data: Path) -> ModuleType:
    """``make_bench.py`` from the folder holding the benchmark data ``data``."""
    path = data.resolve().parent / "make_bench.py"
    spec = importlib.util.spec_from_file_location("make_bench", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def posters(generator: ModuleType, count: int, seed: int) -> list[NDArray[np.uint8]]:
    """``count`` generated flyer-like posters (BGR), as ``make_bench.py --distractors`` makes
    them."""
    rng = random.Random(seed)
    return [np.asarray(generator.poster(rng, []), np.uint8) for _ in range(count)]


def view(
    generator: ModuleType,
    rng: random.Random,
    target: NDArray[np.uint8],
    backgrounds: list[NDArray[np.uint8]],
    difficulty: str,
) -> tuple[NDArray[np.uint8], int]:
    """A camera-like photo of ``target`` (BGR) at ``difficulty`` over one of ``backgrounds``,
    and the JPEG quality the benchmark would store it at."""
    image, quality = generator.view(rng, target, backgrounds, difficulty)
    return np.asarray(image, np.uint8), int(quality)


def gray(bgr: NDArray[np.uint8]) -> NDArray[np.uint8]:
    return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), np.uint8)


def as_stored(shot: NDArray[np.uint8], quality: int) -> NDArray[np.uint8]:
    """A view as the benchmark stores it (a JPEG at ``quality``) and a service reads it: gray."""
    _, jpeg = cv2.imencode(".jpg", shot, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return gray(np.asarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), np.uint8))


def masthead(generator: ModuleType, rng: random.Random, width: int = 800) -> NDArray[np.uint8]:
    """A magazine masthead or a label's logo band: a coloured strip a sixth of a cover high
    with a title in large letters, a logo (a ring with initials) and a rule."""
    height = width // 5
    band = np.empty((height, width, 3), np.uint8)
    band[:] = generator.colour(rng)
    title = generator.word(rng).upper()
    font = rng.choice(generator.FONTS[:4])
    cv2.putText(
        band,
        title,
        (rng.randint(10, 60), int(height * 0.72)),
        font,
        rng.uniform(2.4, 3.4),
        generator.colour(rng),
        rng.randint(4, 8),
        cv2.LINE_AA,
    )
    cx, r = width - height // 2 - 10, height // 2 - 12
    cv2.circle(band, (cx, height // 2), r, generator.colour(rng), 6, cv2.LINE_AA)
    cv2.putText(
        band,
        generator.word(rng)[:2].upper(),
        (cx - r // 2 - 6, height // 2 + r // 3),
        generator.FONTS[1],
        1.6,
        generator.colour(rng),
        3,
        cv2.LINE_AA,
    )
    cv2.line(band, (0, height - 6), (width, height - 6), generator.colour(rng), 4)
    return band


def with_masthead(cover: NDArray[np.uint8], band: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """``cover`` with ``band`` across its top, scaled to its width."""
    h, w = cover.shape[:2]
    bh = round(band.shape[0] * w / band.shape[1])
    out = cover.copy()
    out[: min(bh, h)] = cv2.resize(band, (w, bh), interpolation=cv2.INTER_AREA)[: min(bh, h)]
    return out
