"""Generated images for fitting and testing the recognition core: the benchmark generator
(``make_bench.py``, beside the benchmark data) loaded as a module, and camera-like views of
generated posters made with it. Nothing here reads a benchmark photo."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from types import ModuleType

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
