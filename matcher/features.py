"""Local features of catalog targets and query photos, their rating, and their stored form.

Extraction and rating live in ``matcher/recognition/`` (see its docstring and
BENCHMARKS.md for how the parameters were chosen); this module adds what the service needs
around them: features from uploaded bytes, the query-side floor and the form features are
stored and sent in.
"""

from __future__ import annotations

from dataclasses import replace

import msgpack
import numpy as np

from matcher.imaging import Decoded, Limits, decode_gray
from matcher.recognition import (
    CFG,
    Config,
    Features,
    extract_query,
    extract_target,
    query_side,
    rate_level,
)

__all__ = ["FEATURE_VERSION", "Features", "decode", "decode_photo", "encode", "extract_query",
           "extract_target", "photo_features", "rate_level", "rate_query", "target_features"]

# Bump when the descriptors change meaning (detector, normalisation, projection): stored
# features of another version cannot share an index. Choosing other keypoints of the same kind
# (thresholds, budget) is not a change: old and new targets search together.
# 2: multi-scale SIFT targets ranked on synthetic views, RootSIFT, PCA to 32 dimensions
#    (session 3 lowered the contrast thresholds and added a fine-detail fallback, still 2;
#    session 4 stores each keypoint's orientation and size beside them, still 2: features
#    stored without them decode with angle=None and are verified on positions alone).
FEATURE_VERSION = 2
# A photo with fewer features than this cannot give the inliers verification needs.
MIN_QUERY_FEATURES = 20


def decode_photo(image: bytes, limits: Limits, cfg: Config | None = None) -> Decoded:
    """An uploaded photo decoded for search (raises ImageRejected). A JPEG is decoded reduced
    by libjpeg to no less than twice the size it is searched at; the last halving or more is
    INTER_AREA's, as it always was: reducing in the DCT all the way lost hard photos of the
    public set (recall 0.569 -> 0.542, BENCHMARKS.md "Photo size")."""
    return decode_gray(image, limits, side=lambda w, h: 2 * query_side(w, h, cfg))


def photo_features(image: bytes, limits: Limits, cfg: Config | None = None) -> Features:
    """The features of an uploaded photo (raises ImageRejected), decoded by ``decode_photo``
    and described at ``query_side``, in the photo's own pixels."""
    photo = decode_photo(image, limits, cfg)
    return extract_query(photo.gray, cfg, reduced=photo.reduced,
                         full_size=(photo.width, photo.height))


def target_features(image: bytes, limits: Limits, cfg: Config | None = None) -> Features:
    """The features of an uploaded catalog image (raises ImageRejected), in its own pixels.
    The largest image target extraction draws from it is a synthetic view's source, brought
    to twice the view's size: a JPEG is decoded reduced to no less than twice that, so that
    the last halving is INTER_AREA's, as for photos."""
    cfg = cfg or CFG
    side = 4 * max(cfg.view_sides[1], cfg.fine_view_sides[1])
    decoded = decode_gray(image, limits, side=lambda w, h: side)
    f = extract_target(decoded.gray, cfg)
    if decoded.reduced == 1:
        return f
    return replace(f, xy=f.xy * decoded.reduced, width=decoded.width, height=decoded.height,
                   size=None if f.size is None else f.size * decoded.reduced)


def rate_query(f: Features) -> int:
    """The level of a query photo: 0 (too few features, 20013) or 1 to 5."""
    return 0 if len(f.xy) < MIN_QUERY_FEATURES else rate_level(f)


def encode(f: Features) -> bytes:
    """The stored and transmitted form: positions as float32; descriptors, and keypoint
    orientations and sizes where known, as float16 (features stored before session 4 have no
    orientations: they decode with ``angle=None`` and are verified on positions alone)."""
    packed: bytes = msgpack.packb({
        "v": FEATURE_VERSION, "w": f.width, "h": f.height,
        "n": len(f.xy), "d": int(f.desc.shape[1]),
        "xy": f.xy.astype(np.float32).tobytes(),
        "desc": f.desc.astype(np.float16).tobytes(),
        **({} if f.angle is None or f.size is None else {
            "angle": f.angle.astype(np.float16).tobytes(),
            "size": f.size.astype(np.float16).tobytes()}),
    }, use_bin_type=True)
    return packed


def decode(data: bytes) -> Features:
    """Inverse of ``encode``; raises ValueError on anything else."""
    try:
        d = msgpack.unpackb(data, raw=False)
        if d["v"] != FEATURE_VERSION:
            raise ValueError(f"feature version {d['v']}, this matcher speaks {FEATURE_VERSION}")
        n, dim = int(d["n"]), int(d["d"])
        xy = np.frombuffer(d["xy"], np.float32).reshape(n, 2)
        desc = np.frombuffer(d["desc"], np.float16).reshape(n, dim).astype(np.float32)
        angle, size = (None, None) if "angle" not in d else (
            np.frombuffer(d["angle"], np.float16).reshape(n).astype(np.float32),
            np.frombuffer(d["size"], np.float16).reshape(n).astype(np.float32))
        return Features(xy.copy(), desc, int(d["w"]), int(d["h"]), angle=angle, size=size)
    except (KeyError, TypeError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError) as e:
        raise ValueError(f"not encoded features: {e}") from e
