"""A query photo's features: SIFT on the photo downscaled by ``query_scale``, RootSIFT, PCA."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from matcher.recognition.config import CFG, Config
from matcher.recognition.features import Features
from matcher.recognition.pca import project
from matcher.recognition.sift import detect


def extract_query(gray: NDArray[np.uint8], cfg: Config | None = None) -> Features:
    """The ``query_features`` strongest SIFT keypoints of the photo at ``query_scale``, with
    positions and sizes in the photo's own pixels."""
    cfg = cfg or CFG
    H0, W0 = gray.shape[:2]
    s = cfg.query_scale
    im = (
        gray
        if s == 1.0
        else np.asarray(
            cv2.resize(
                gray, (max(1, round(W0 * s)), max(1, round(H0 * s))), interpolation=cv2.INTER_AREA
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
