"""A query photo's features: SIFT on the photo downscaled by ``query_scale``, to at most
``query_max_side`` on its long side (``query_side``), RootSIFT, PCA."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from matcher.recognition.config import CFG, Config
from matcher.recognition.features import Features
from matcher.recognition.pca import project
from matcher.recognition.sift import detect


def query_side(width: int, height: int, cfg: Config | None = None) -> float:
    """The long side, in pixels, a photo of ``width`` x ``height`` is searched at."""
    cfg = cfg or CFG
    return min(cfg.query_scale * max(width, height), float(cfg.query_max_side))


def extract_query(
    gray: NDArray[np.uint8],
    cfg: Config | None = None,
    *,
    reduced: int = 1,
    full_size: tuple[int, int] | None = None,
) -> Features:
    """The ``query_features`` strongest SIFT keypoints of the photo brought to ``query_side``,
    with positions and sizes in the photo's own pixels. ``gray`` may be the photo decoded
    reduced by ``reduced`` from its ``full_size`` (width, height)."""
    cfg = cfg or CFG
    H, W = gray.shape[:2]
    W0, H0 = full_size or (W * reduced, H * reduced)
    k = min(1.0, query_side(W0, H0, cfg) / max(W0, H0) * reduced)  # of the decoded image
    s = k / reduced  # of the full photo
    im = (
        gray
        if k == 1.0
        else np.asarray(
            cv2.resize(
                gray, (max(1, round(W * k)), max(1, round(H * k))), interpolation=cv2.INTER_AREA
            ),
            np.uint8,
        )
    )
    det = detect(im, cfg.query_sift_contrast, cfg.query_features)
    return Features(
        xy=(det.xy / s).astype(np.float32),
        desc=project(det.desc),
        width=W0,
        height=H0,
        angle=det.angle,
        size=(det.size / s).astype(np.float32),
    )
