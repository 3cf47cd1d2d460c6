"""Image cloud-recognition core: local features, a per-channel hnswlib index, voting and
geometric verification.

Self-contained (numpy, cv2, hnswlib, and matcher.rwlock for the index's lock).  The PCA
projection that turns 128-d RootSIFT into the indexed descriptors ships next to this file as
``pca.npy`` and is reproduced by ``fit_pca.py`` (fitted on make_bench distractors and
synthetic views of them only).

Pipeline
--------
target (AddImage):  SIFT on the target resized to a few "as seen in a photo" sizes, RootSIFT,
                    PCA, then a fixed budget of descriptors spread over the image and over the
                    scales (so a target costs a bounded number of index entries).
query (photo):      SIFT on the photo downscaled by ``query_scale``, to at most
                    ``query_max_side`` on its long side, RootSIFT, PCA.
search:             knn in one hnswlib index per channel -> votes per image ->
                    correspondences of the best candidates (the knn's, or if those fail, each
                    photo descriptor's nearest among the candidate's own) that agree on one
                    rotation and scale (the densest such group; for the candidate's own, the
                    next densest too, at a stricter bar) -> one-to-one -> homography
                    (USAC_MAGSAC) -> inliers that also agree with it in orientation and
                    size -> plausibility of the projected outline.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import hnswlib
import numpy as np
from numpy.typing import NDArray

from matcher.rwlock import RWLock

__all__ = [
    "CFG",
    "ChannelIndex",
    "Config",
    "Features",
    "Match",
    "extract_query",
    "extract_target",
    "load_pca",
    "query_side",
    "rate_level",
]


@dataclass(frozen=True)
class Config:
    # --- target side
    target_max_side: int = 800  # targets are first brought to at most this size
    target_sizes: tuple[int, ...] = (200, 130)  # max side of the target at each scale
    target_budget: int = 92  # descriptors indexed per target
    target_grid: int = 4  # spreading grid (cells per side) per scale
    target_sift_contrast: float = 0.02
    pool_per_scale: int = 300  # candidates per scale before selection
    n_views: int = 8  # synthetic views of the target used to rank candidates
    view_seed: int = 1234
    view_sides: tuple[float, float] = (60.0, 200.0)  # target's max side in a view (px)
    view_tilt: float = 0.08
    view_blur: tuple[float, float] = (0.3, 1.1)
    view_noise: tuple[float, float] = (1.0, 4.0)
    view_tol: float = 3.0  # px in the view
    spread_gamma: float = 0.5  # credit lost per rank within a grid cell
    min_credit: float = 0.0
    # fine-detail fallback, for a target that rates 0 above (e.g. a photo of grain or noise):
    # larger sizes, weaker contrast, and views where the target fills much of the photo
    fine_sizes: tuple[int, ...] = (400, 300)
    fine_sift_contrast: float = 0.005
    fine_view_sides: tuple[float, float] = (200.0, 500.0)
    fine_max_level: int = 1  # found only from close, sharp photos: never rated easy
    # --- query side
    query_scale: float = 0.5
    query_max_side: int = 320  # px: the long side a photo is searched at, at most
    query_features: int = 800
    query_sift_contrast: float = 0.01
    # --- index
    M: int = 8
    ef_construction: int = 60
    ef: int = 16
    k: int = 6
    # --- voting
    max_dist: float = 0.60  # squared-L2 bound on normalised descriptors
    ratio: float = 0.90  # d(best of this image) / d(best of another image)
    candidates: int = 10
    vote_mode: str = "soft"  # "ratio": 1 / 0.25 by ratio test; "soft": 1 - d/d_k
    min_votes: float = 1.5
    # --- verification
    method: str = "magsac"  # or "ransac"
    reproj: float = 3.0  # px in the photo as searched (at query_side)
    min_inliers: int = 7  # inliers that also agree in orientation and scale
    min_inlier_ratio: float = 0.0
    min_area: float = 0.004  # projected outline area / photo area
    max_area: float = 9.0
    max_side_ratio: float = 6.0  # opposite sides of projected outline
    min_hull: float = 0.02  # hull of inliers in the target / target area
    angle_tol: float = 20.0  # degrees: inlier orientation vs the homography's (180 = off)
    size_tol: float = 1.68  # factor (0.75 octave): inlier size vs the homography's
    cluster: bool = True  # keep only correspondences near the densest (rotation, scale)
    cluster_angle: float = 30.0  # degrees
    cluster_scale: float = 1.0  # octaves
    rematch: bool = False  # re-match the query against each candidate's own descriptors
    rematch_ratio: float = 1.0  # Lowe ratio within the candidate image (1 = none: text repeats)
    rematch_maxdist: float = 0.6  # squared L2 bound (normalised descriptors), as max_dist
    rematch_fallback: bool = True  # rematch only candidates that failed the knn-based check
    rematch_min_inliers: int = 7
    rematch_min_ratio: float = 0.0  # inliers / putative matches after rematch
    rematch_top: int = 10  # fallback only for the first N candidates by votes
    # a rematch whose densest cluster fails tries the next densest (a row of notes or letters
    # matches itself half a turn round too) at this stricter bar (0 = no second try): a second
    # chance at 7 let a negative photo through at +10k, 9 did not
    second_cluster_inliers: int = 9


CFG = Config()
_HERE = os.path.dirname(os.path.abspath(__file__))
_PCA: tuple[NDArray[np.float32], NDArray[np.float32]] | None = None
_RAW = False  # set_pca(None, None): lab experiments on raw 128-d RootSIFT


def _pca() -> tuple[NDArray[np.float32], NDArray[np.float32]] | None:
    """The projection in use. A missing pca.npy raises: never a silent 128-d index."""
    if _RAW:
        return None
    return _PCA if _PCA is not None else load_pca()


def load_pca(path: str | None = None) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """pca.npy holds a (d+1, 128) float32 array: row 0 the mean, rows 1..d the projection."""
    global _PCA
    if path is not None or _PCA is None:
        a = np.load(path or os.path.join(_HERE, "pca.npy")).astype(np.float32)
        _PCA = (a[0].copy(), np.ascontiguousarray(a[1:].T))
    return _PCA


def set_pca(mean: NDArray[np.float32] | None, proj: NDArray[np.float32] | None) -> None:
    """Used by the fitting/benchmark scripts: proj is (128, d); None/None means raw RootSIFT."""
    global _PCA, _RAW
    _RAW = mean is None or proj is None
    _PCA = (
        None if mean is None or proj is None else (mean.astype(np.float32), proj.astype(np.float32))
    )


@dataclass(frozen=True)
class Features:
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
    image_id: int
    score: float
    corners: NDArray[np.float32]  # (4,2)


_tls = threading.local()


def _sift(contrast: float, nmax: int = 0) -> cv2.SIFT:
    """This thread's SIFT; with ``nmax`` it describes only the ``nmax`` strongest keypoints
    (describing is about half of SIFT's time on a photo)."""
    key = f"sift{contrast}/{nmax}"
    s = getattr(_tls, key, None)
    if s is None:
        s = cv2.SIFT_create(  # type: ignore[attr-defined]
            nfeatures=nmax, contrastThreshold=contrast)
        setattr(_tls, key, s)
    return s  # type: ignore[no-any-return]


def root_sift(d: NDArray[np.float32]) -> NDArray[np.float32]:
    d = d / (np.abs(d).sum(1, keepdims=True) + 1e-7)
    return np.sqrt(d).astype(np.float32)


def project(d128: NDArray[np.float32]) -> NDArray[np.float32]:
    """RootSIFT -> PCA -> L2 normalised."""
    r = root_sift(d128)
    pca = _pca()
    if pca is not None:
        mean, proj = pca
        r = ((r - mean) @ proj).astype(np.float32)
    r /= np.linalg.norm(r, axis=1, keepdims=True) + 1e-7
    return np.ascontiguousarray(r, dtype=np.float32)


class Detected(NamedTuple):
    """SIFT keypoints of one image, in that image's pixels."""

    xy: NDArray[np.float32]  # (n,2)
    desc: NDArray[np.float32]  # (n,128) raw SIFT
    response: NDArray[np.float32]
    size: NDArray[np.float32]
    angle: NDArray[np.float32]  # degrees, as OpenCV gives them

    def take(self, sel: NDArray[np.int64]) -> Detected:
        return Detected(*(a[sel] for a in self))


def _detect(gray: NDArray[np.uint8], contrast: float, nmax: int = 0) -> Detected:
    kps, d = _sift(contrast, nmax).detectAndCompute(gray, None)
    if d is None or len(kps) == 0:
        z = np.zeros(0, np.float32)
        return Detected(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32), z, z, z)
    found = Detected(
        np.array([k.pt for k in kps], np.float32),
        d.astype(np.float32),
        np.array([k.response for k in kps], np.float32),
        np.array([k.size for k in kps], np.float32),
        np.array([k.angle for k in kps], np.float32),
    )
    if nmax:  # strongest first; OpenCV may keep a few more that tie with the last
        return found.take(np.argsort(-found.response, kind="stable")[:nmax])
    return found


def _spread(
    xy: NDArray[np.float32], resp: NDArray[np.float32], w: int, h: int, n: int, grid: int
) -> NDArray[np.int64]:
    """Pick n indices, strongest first, round-robin over grid cells so they cover the image."""
    if len(xy) <= n:
        return np.argsort(-resp, kind="stable")
    cx = np.clip((xy[:, 0] * grid / max(w, 1)).astype(int), 0, grid - 1)
    cy = np.clip((xy[:, 1] * grid / max(h, 1)).astype(int), 0, grid - 1)
    cell = cy * grid + cx
    order = np.lexsort((-resp, cell))  # by cell, strongest first within
    cs = cell[order]
    start = np.searchsorted(cs, np.arange(grid * grid))
    rank = np.arange(len(order)) - start[cs]  # rank within its cell
    o2 = np.lexsort((-resp[order], rank))  # all rank-0, then rank-1, ...
    return order[o2][:n]


def _target_candidates(
    gray: NDArray[np.uint8], cfg: Config
) -> tuple[Detected, NDArray[np.int8], NDArray[np.float32]]:
    """All candidate features of a target, in priority order: their keypoints (xy and size in
    original px), scale index and credit.  Priority comes from synthetic views of the target
    itself: a feature is credited each time a view's feature at the same place has it as
    nearest neighbour."""
    H0, W0 = gray.shape[:2]
    found: list[Detected] = []
    ss = []
    for si, side in enumerate(cfg.target_sizes):
        s = min(1.0, side / max(H0, W0))
        im = (
            gray
            if s >= 1.0
            else np.asarray(
                cv2.resize(
                    gray,
                    (max(1, round(W0 * s)), max(1, round(H0 * s))),
                    interpolation=cv2.INTER_AREA,
                ),
                np.uint8,
            )
        )
        det = _detect(im, cfg.target_sift_contrast)
        det = det.take(_spread(det.xy, det.response, im.shape[1], im.shape[0],
                               cfg.pool_per_scale, cfg.target_grid))
        found.append(det._replace(xy=det.xy / s, size=det.size / s))
        ss.append(np.full(len(det.xy), si, np.int8))
    cand = Detected(*(np.concatenate(parts).astype(np.float32)
                      for parts in zip(*found, strict=True)))
    xy, d128, resp = cand.xy, cand.desc, cand.response
    sc = np.concatenate(ss)
    n = len(xy)
    if n == 0:
        return cand, sc, resp
    credit = np.zeros(n, np.float32)
    if cfg.n_views > 0:
        pd = project(d128)
        rng = np.random.default_rng(cfg.view_seed)
        fill = int(np.median(gray))
        for v in range(cfg.n_views):
            vside = float(np.exp(rng.uniform(np.log(cfg.view_sides[0]), np.log(cfg.view_sides[1]))))
            k = vside / max(H0, W0)
            a = rng.uniform(-np.pi, np.pi)
            src = np.array([[0, 0], [W0, 0], [W0, H0], [0, H0]], np.float32)
            c = (src - np.array([W0 / 2, H0 / 2])) * k
            c = c @ np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]).T
            c += rng.uniform(-cfg.view_tilt, cfg.view_tilt, (4, 2)) * vside
            c -= c.min(0) - 6
            vw, vh = int(np.ceil(c[:, 0].max() + 6)), int(np.ceil(c[:, 1].max() + 6))
            Hm = cv2.getPerspectiveTransform(src, c.astype(np.float32))
            Hfull = Hm
            if k < 0.5:  # pre-shrink to limit aliasing and cost
                pre = cv2.resize(gray, None, fx=2 * k, fy=2 * k, interpolation=cv2.INTER_AREA)
                Hm = Hm @ np.diag([1 / (2 * k), 1 / (2 * k), 1.0])
                srcim = pre
            else:
                srcim = gray
            fv = np.asarray(
                cv2.warpPerspective(srcim, Hm, (vw, vh), flags=cv2.INTER_LINEAR, borderValue=fill),
                np.float32,
            )
            fv = np.asarray(cv2.GaussianBlur(fv, (0, 0), rng.uniform(*cfg.view_blur)), np.float32)
            fv += rng.normal(0, rng.uniform(*cfg.view_noise), fv.shape).astype(np.float32)
            vim = np.clip(fv, 0, 255).astype(np.uint8)
            vxy, vd = _detect(vim, cfg.query_sift_contrast)[:2]
            if len(vxy) == 0:
                continue
            vp = project(vd)
            # nearest candidate of each view feature
            dist = 2.0 - 2.0 * (vp @ pd.T)
            nn = np.argmin(dist, 1)
            proj = cv2.perspectiveTransform(xy[nn][None].astype(np.float64), Hfull)[0]
            good = np.linalg.norm(proj - vxy, axis=1) <= cfg.view_tol
            np.add.at(credit, nn[good], 1.0)
    # priority: credit (then response), softly spread over a grid
    g = cfg.target_grid
    cell = np.clip((xy[:, 1] * g / H0).astype(int), 0, g - 1) * g + np.clip(
        (xy[:, 0] * g / W0).astype(int), 0, g - 1
    )
    key = credit + 1e-3 * resp / (resp.max() + 1e-9)
    order = np.lexsort((-key, cell))
    rank = np.empty(n, np.float32)
    cs = cell[order]
    start = np.searchsorted(cs, np.arange(g * g))
    rank[order] = np.arange(n) - start[cs]
    prio = key - cfg.spread_gamma * rank
    o = np.argsort(-prio, kind="stable")
    return cand.take(o), sc[o], credit[o]


def extract_target(gray: NDArray[np.uint8], cfg: Config | None = None) -> Features:
    """The indexed features of a catalog target: those of its usual sizes or, when those rate
    ``fine_max_level`` or less, those of its fine detail if they are re-found more often in
    their (larger) views; such a target is rated at most ``fine_max_level``."""
    cfg = cfg or CFG
    f = _extract_target(gray, cfg)
    if rate_level(f) > cfg.fine_max_level or not cfg.fine_sizes:
        return f
    fine = _extract_target(gray, replace(cfg, target_sizes=cfg.fine_sizes,
                                         target_sift_contrast=cfg.fine_sift_contrast,
                                         view_sides=cfg.fine_view_sides))
    if _expected_matches(fine) <= _expected_matches(f):
        return f
    return replace(fine, max_level=cfg.fine_max_level)


def _extract_target(gray: NDArray[np.uint8], cfg: Config) -> Features:
    H0, W0 = gray.shape[:2]
    cand, sc, credit = _target_candidates(gray, cfg)
    n = cfg.target_budget
    if cfg.min_credit > 0 and cfg.n_views > 0:
        n = min(n, int((credit >= cfg.min_credit).sum()))
    kept = cand.take(np.arange(min(n, len(cand.xy))))
    return Features(
        xy=kept.xy,
        desc=project(kept.desc) if len(kept.desc) else np.zeros((0, _dim()), np.float32),
        width=W0,
        height=H0,
        scale=sc[:n],
        credit=credit[:n],
        n_views=cfg.n_views,
        angle=kept.angle,
        size=kept.size,
    )


def query_side(width: int, height: int, cfg: Config | None = None) -> float:
    """The long side, in pixels, a photo of ``width`` x ``height`` is searched at."""
    cfg = cfg or CFG
    return min(cfg.query_scale * max(width, height), float(cfg.query_max_side))


def extract_query(gray: NDArray[np.uint8], cfg: Config | None = None, *, reduced: int = 1,
                  full_size: tuple[int, int] | None = None) -> Features:
    """The features of a photo, brought to ``query_side``. ``gray`` may be the photo decoded
    reduced by ``reduced`` from its ``full_size`` (width, height): positions, sizes and the
    size come out in the full photo's pixels either way."""
    cfg = cfg or CFG
    H, W = gray.shape[:2]
    W0, H0 = full_size or (W * reduced, H * reduced)
    k = min(1.0, query_side(W0, H0, cfg) / max(W0, H0) * reduced)  # of the decoded image
    s = k / reduced  # of the full photo
    im = (
        gray
        if k == 1.0
        else np.asarray(
            cv2.resize(gray, (max(1, round(W * k)), max(1, round(H * k))),
                       interpolation=cv2.INTER_AREA),
            np.uint8,
        )
    )
    det = _detect(im, cfg.query_sift_contrast, cfg.query_features)
    return Features(
        xy=(det.xy / s).astype(np.float32),
        desc=project(det.desc) if len(det.desc) else np.zeros((0, _dim()), np.float32),
        width=W0,
        height=H0,
        angle=det.angle,
        size=(det.size / s).astype(np.float32),
    )


def _dim() -> int:
    pca = _pca()
    return 128 if pca is None else pca[1].shape[1]


LEVEL_EDGES = (2.0, 6.0, 14.0, 26.0, 42.0)  # expected matches per synthetic view -> level 1..5


def _expected_matches(f: Features) -> float:
    """Correct matches per synthetic view of the target (0 without views)."""
    if f.credit is None or f.n_views == 0 or len(f.credit) == 0:
        return 0.0
    return float(f.credit.sum()) / f.n_views


def rate_level(f: Features) -> int:
    """0 = too poor to recognise (refuse), else 1..5 predicting recognisability.

    The target side renders ``n_views`` small, rotated, blurred, noisy views of the target and
    credits each indexed feature with the views in which it was re-found; the sum of credits per
    view is the expected number of correct matches in a hard-ish photo, which is what the
    verification needs (>= min_inliers).  Without credits (features from elsewhere) it falls back
    on the count and spatial coverage of the features."""
    n = len(f.xy)
    if n < 12:
        return 0
    if f.credit is not None and f.n_views > 0:
        e = _expected_matches(f)
        if e < LEVEL_EDGES[0]:
            return 0
        return min(f.max_level, int(1 + np.searchsorted(np.array(LEVEL_EDGES[1:]), e,
                                                          side="right")))
    g = 4
    cx = np.clip((f.xy[:, 0] * g / max(f.width, 1)).astype(int), 0, g - 1)
    cy = np.clip((f.xy[:, 1] * g / max(f.height, 1)).astype(int), 0, g - 1)
    cover = len(set((cy * g + cx).tolist())) / (g * g)
    return int(np.clip(round(min(1.0, n / CFG.target_budget) * 2.5 + cover * 2.5), 1, 5))


def _convex_ok(c: NDArray[np.float64], cfg: Config, W: int, H: int) -> bool:
    if not np.all(np.isfinite(c)):
        return False
    cl = []
    for i in range(4):
        a, b, d = c[i], c[(i + 1) % 4], c[(i + 2) % 4]
        cl.append((b[0] - a[0]) * (d[1] - b[1]) - (b[1] - a[1]) * (d[0] - b[0]))
    cross = np.array(cl)
    if not (np.all(cross > 0)):  # convex, and orientation preserved (no mirror)
        return False
    area = 0.5 * abs(
        sum(c[i, 0] * c[(i + 1) % 4, 1] - c[(i + 1) % 4, 0] * c[i, 1] for i in range(4))
    )
    fa = W * H
    if area < cfg.min_area * fa or area > cfg.max_area * fa:
        return False
    sides = np.linalg.norm(c - np.roll(c, -1, 0), axis=1)
    if sides.min() <= 1e-3:
        return False
    if max(sides[0], sides[2]) / min(sides[0], sides[2]) > cfg.max_side_ratio:
        return False
    if max(sides[1], sides[3]) / min(sides[1], sides[3]) > cfg.max_side_ratio:
        return False
    return True


class ChannelIndex:
    """One channel's catalog in memory: an hnswlib index of target descriptors plus, per index
    slot, the image it belongs to and the keypoint position (for verification)."""

    def __init__(
        self, dim: int | None = None, capacity: int = 1024, cfg: Config | None = None
    ) -> None:
        self.cfg = cfg or CFG
        self.dim = dim or _dim()
        self._cap = max(capacity, 16)
        self._ix = hnswlib.Index(space="l2", dim=self.dim)
        self._ix.init_index(
            max_elements=self._cap,
            M=self.cfg.M,
            ef_construction=self.cfg.ef_construction,
            random_seed=100,
        )
        self._ix.set_ef(self.cfg.ef)
        # Per index slot: its image, its keypoint as a fraction of the image's width and
        # height in 1/65535ths (finer than 0.1 px below 6,500 px), and the keypoint's
        # orientation and size in one byte each. 10 bytes a slot.
        self._slot_img = np.full(self._cap, -1, np.int32)
        self._slot_xy = np.zeros((self._cap, 2), np.uint16)
        self._slot_geo = np.zeros((self._cap, 2), np.uint8)  # angle, size (see _to_geo)
        self._next = 0  # slots [0, _next) have been used once
        self._free: list[int] = []  # deleted slots, to be reused
        # Per image one int32 array, [width, height, slot, slot, ...]: one Python object
        self._images: dict[int, NDArray[np.int32]] = {}
        self._lock = RWLock()  # searches share it; add and remove hold it alone

    def __len__(self) -> int:
        return len(self._images)

    def __contains__(self, image_id: int) -> bool:
        return image_id in self._images

    @property
    def n_vectors(self) -> int:
        return self._next - len(self._free)

    def _grow(self, need: int) -> None:
        if self._next + max(0, need - len(self._free)) <= self._cap:
            return
        # grow by an eighth: hnswlib keeps ~44 resident bytes per spare slot (a mutex and a
        # level), so spare room costs ~0.25 KiB per image on average; a resize copies the
        # index, which at this rate is about 9 copies of it over its growth (amortised)
        new = max(int(self._cap * 1.125), self._next + need + 16)
        self._ix.resize_index(new)
        self._slot_img = np.concatenate([self._slot_img, np.full(new - self._cap, -1, np.int32)])
        self._slot_xy = np.concatenate([self._slot_xy, np.zeros((new - self._cap, 2), np.uint16)])
        self._slot_geo = np.concatenate([self._slot_geo, np.zeros((new - self._cap, 2), np.uint8)])
        self._cap = new

    def add(self, image_id: int, f: Features) -> None:
        """Add (or replace) one image."""
        self.add_many([(image_id, f)])

    def _slots(self, image_id: int) -> NDArray[np.int32]:
        return self._images[image_id][2:]

    def _size(self, image_id: int) -> tuple[int, int]:
        wh = self._images[image_id]
        return int(wh[0]), int(wh[1])

    def remove(self, image_id: int) -> None:
        with self._lock.write():
            self._remove(image_id)

    def _remove(self, image_id: int) -> None:
        if image_id not in self._images:
            return
        slots = self._slots(image_id)
        del self._images[image_id]
        for s in slots.tolist():
            self._ix.mark_deleted(s)
            self._free.append(s)
        self._slot_img[slots] = -1

    def add_many(self, items: list[tuple[int, Features]], threads: int = 1) -> None:
        """Add several images in one hnswlib insert spread over ``threads`` (a rebuild)."""
        with self._lock.write():
            for image_id, _ in items:
                self._remove(image_id)
            fresh = [(i, f) for i, f in items if len(f.desc)]
            for image_id, f in items:
                if not len(f.desc):
                    self._images[image_id] = np.array([f.width, f.height], np.int32)
            n = sum(len(f.desc) for _, f in fresh)
            if n == 0:
                return
            self._grow(n)
            reuse = min(n, len(self._free))
            slots = [self._free.pop() for _ in range(reuse)] + list(
                range(self._next, self._next + n - reuse)
            )
            self._next += n - reuse
            sl = np.array(slots, np.int64)
            self._ix.add_items(np.concatenate([f.desc for _, f in fresh]), sl, num_threads=threads)
            at = 0
            for image_id, f in fresh:
                mine = sl[at : at + len(f.desc)]
                at += len(f.desc)
                self._slot_img[mine] = image_id
                self._slot_xy[mine] = _to_fraction(f.xy, f.width, f.height)
                self._slot_geo[mine] = _to_geo(f.angle, f.size, len(f.desc))
                self._images[image_id] = np.concatenate([[f.width, f.height], mine]).astype(
                    np.int32
                )

    def save(self, stem: Path) -> list[Path]:
        """Write the index to ``stem``.hnsw and ``stem``.npz; the files written. Searches go
        on meanwhile; adds and removes wait."""
        with self._lock.read():
            ids = np.fromiter(self._images, np.int64, len(self._images))
            rows = [self._images[i] for i in ids.tolist()]
            lengths = np.array([len(r) for r in rows], np.int64)
            flat = np.concatenate(rows) if rows else np.zeros(0, np.int32)
            graph, arrays = stem.with_suffix(".hnsw"), stem.with_suffix(".npz")
            self._ix.save_index(str(graph))
            with arrays.open("wb") as out:
                np.savez(out, dim=self.dim, cap=self._cap, next=self._next,
                         free=np.array(self._free, np.int64), slot_img=self._slot_img,
                         slot_xy=self._slot_xy, slot_geo=self._slot_geo, ids=ids,
                         lengths=lengths, flat=flat)
        return [graph, arrays]

    @classmethod
    def load(cls, stem: Path, dim: int, cfg: Config | None = None) -> ChannelIndex:
        """An index written by ``save`` (of descriptors of ``dim``); raises ValueError or
        OSError on a damaged one. The slot arrays are read on another thread while hnswlib
        reads the graph (numpy lets go of the GIL while it reads, hnswlib does not)."""
        with ThreadPoolExecutor(1) as reader:
            pending = reader.submit(_read_arrays, stem.with_suffix(".npz"))
            graph = hnswlib.Index(space="l2", dim=dim)
            try:
                graph.load_index(str(stem.with_suffix(".hnsw")), max_elements=0)
            finally:
                a = pending.result()
        if int(a["dim"]) != dim:
            raise ValueError(f"{stem}: descriptors of {int(a['dim'])} dimensions, not {dim}")
        index = cls(dim, 16, cfg)
        index._ix, index._cap = graph, int(a["cap"])
        index._ix.set_ef(index.cfg.ef)
        index._next = int(a["next"])
        index._free = a["free"].tolist()
        index._slot_img, index._slot_xy, index._slot_geo = a["slot_img"], a["slot_xy"], a["slot_geo"]
        ends = np.cumsum(a["lengths"])
        flat = a["flat"]
        index._images = {
            int(i): flat[e - n : e].copy()
            for i, e, n in zip(a["ids"].tolist(), ends.tolist(), a["lengths"].tolist(), strict=True)
        }
        if not (len(index._slot_img) == index._cap == index._ix.get_max_elements()
                and index._next <= index._cap):
            raise ValueError(f"{stem}: index and slot arrays disagree")
        return index

    def search(
        self, q: Features, limit: int = 3, debug: dict[str, Any] | None = None, threads: int = 1
    ) -> list[Match]:
        """The verified matches of ``q``, best first; ``threads`` share the index lookup.
        Searches run together: each holds the index shared only while it looks up and votes
        and copies out what verifying its candidates needs, and verifies outside the lock."""
        with self._lock.read():
            candidates = self._candidates(q, debug, threads)
        if candidates is None:
            with self._lock.write():  # the wider lookup sets the index-wide ef
                candidates = self._candidates(q, debug, threads, wide=True) or []
        out = [m for c in candidates if (m := _check(q, c, self.cfg, debug)) is not None]
        out.sort(key=lambda m: -m.score)
        return out[:limit]

    def _knn(self, q: Features, k: int, threads: int, wide: bool
             ) -> tuple[NDArray[np.int64], NDArray[np.float32]] | None:
        """The ``k`` nearest entries of each photo descriptor; None when hnswlib finds fewer
        than ``k`` live ones (many deleted entries nearby).  ``wide`` looks 4 times wider.

        ef stays ``cfg.ef`` otherwise: hnswlib searches with max(ef, k) anyway, and ef is one
        field of the index, which a search running alongside would read while it changes; so
        ``wide`` needs the index held exclusively."""
        try:
            if not wide:
                labels, dists = self._ix.knn_query(q.desc, k=k, num_threads=threads)
            else:
                self._ix.set_ef(max(4 * self.cfg.ef, 4 * k))
                try:
                    labels, dists = self._ix.knn_query(q.desc, k=k, num_threads=threads)
                finally:
                    self._ix.set_ef(self.cfg.ef)
        except RuntimeError:
            return None
        return labels.astype(np.int64), dists

    def _candidates(
        self, q: Features, debug: dict[str, Any] | None, threads: int, wide: bool = False
    ) -> list[_Candidate] | None:
        """The images ``q``'s descriptors vote for, best first, each with its correspondences
        and what verifying them needs; None when the lookup needs to look wider.  Run with the
        index held: what it returns is a copy, still right after the index changes."""
        cfg = self.cfg
        nv = self.n_vectors
        if nv == 0 or len(q.desc) == 0:
            return []
        k = min(cfg.k, nv)
        found = self._knn(q, k, threads, wide)
        if found is None:
            return [] if wide else None
        labels, dists = found
        imgs = self._slot_img[labels]  # (nq,k)
        ok = (dists <= cfg.max_dist) & (imgs >= 0)
        # first neighbour of each row from an image other than the row's best image
        best_img = imgs[:, :1]
        other = np.where(imgs != best_img, dists, np.inf).min(1)
        # vote: each query descriptor votes once per image (its nearest entry of that image)
        nq = len(q.desc)
        rows = np.repeat(np.arange(nq), k)
        fi, fl, fd, fm = imgs.ravel(), labels.ravel(), dists.ravel(), ok.ravel()
        rows, fi, fl, fd = rows[fm], fi[fm], fl[fm], fd[fm]
        if len(fi) == 0:
            return []
        # ratio against the best other image; the best image of a row is compared with the
        # second image, other images with the best one
        d_other = np.where(fi == imgs[rows, 0], other[rows], dists[rows, 0])
        ratio = fd / np.maximum(d_other, 1e-6)
        if cfg.vote_mode == "soft":
            dk = np.maximum(dists[rows, -1], 1e-6)
            w = np.clip(1.0 - fd / dk, 0.0, 1.0) + np.where(ratio < cfg.ratio, 0.5, 0.0)
        else:
            w = np.where(ratio < cfg.ratio, 1.0, 0.25)
        key = rows * (1 << 32) + fi
        _, first = np.unique(key, return_index=True)
        vimg, vw = fi[first], w[first]
        uimg, inv = np.unique(vimg, return_inverse=True)
        votes = np.bincount(inv, weights=vw)
        order = np.argsort(-votes)[: cfg.candidates]
        if debug is not None:
            debug["votes"] = {int(uimg[o]): float(votes[o]) for o in order}
        out: list[_Candidate] = []
        for rank, o in enumerate(order):
            if votes[o] < cfg.min_votes:
                break
            img = int(uimg[o])
            sel = fi == img
            out.append(self._candidate(img, rank, rows[sel], fl[sel], fd[sel]))
        return out

    def _candidate(self, img: int, rank: int, rows: NDArray[np.int64], slots: NDArray[np.int64],
                   d: NDArray[np.float32]) -> _Candidate:
        """Image ``img`` with the knn's correspondences and, if it may be rematched, its own
        entries, copied out of the index."""
        cfg = self.cfg
        w, h = self._size(img)
        sl = self._slots(img)
        own = None
        if (cfg.rematch or (cfg.rematch_fallback and rank < cfg.rematch_top)) and len(sl) >= 2:
            stored = np.asarray(self._ix.get_items(sl), dtype=np.float32)  # (m,d)
            own = _Entries(sl.copy(), stored, self._slot_xy[sl], self._slot_geo[sl])
        knn = _Pairs(rows, slots, d, self._slot_xy[slots], self._slot_geo[slots])
        return _Candidate(img, w, h, rank, knn, own)


class _Pairs(NamedTuple):
    """Correspondences between photo keypoints and one target's keypoints."""

    rows: NDArray[np.int64]  # photo keypoints
    slots: NDArray[np.int64]  # the target keypoints' index slots (the one-to-one step's order)
    d: NDArray[np.float32]  # squared descriptor distances
    xy: NDArray[np.uint16]  # the target keypoints, as ChannelIndex._slot_xy holds them
    geo: NDArray[np.uint8]  # their orientation and size, as ChannelIndex._slot_geo

    def take(self, sel: NDArray[np.int64] | NDArray[np.bool_]) -> _Pairs:
        return _Pairs(self.rows[sel], self.slots[sel], self.d[sel], self.xy[sel], self.geo[sel])


class _Entries(NamedTuple):
    """One target's index entries, for a rematch against them."""

    slots: NDArray[np.int32]
    desc: NDArray[np.float32]  # (m,d) as stored in the index
    xy: NDArray[np.uint16]
    geo: NDArray[np.uint8]


class _Candidate(NamedTuple):
    """What verifying one candidate image needs, copied out of the index while it is held: once
    it is released, a remove and an add may give the image's slots to another image."""

    image_id: int
    width: int
    height: int
    rank: int  # by votes, from 0
    knn: _Pairs
    own: _Entries | None  # when it may be rematched and has two entries or more


def _check(q: Features, c: _Candidate, cfg: Config, debug: dict[str, Any] | None
           ) -> Match | None:
    """Candidate ``c`` verified, by the knn's correspondences or if those fail (for the
    ``rematch_top`` best) by a rematch against its own entries."""
    m = _verify(q, c, cfg, debug, cfg.rematch)
    if m is None and cfg.rematch_fallback and not cfg.rematch and c.rank < cfg.rematch_top:
        m = _verify(q, c, cfg, debug, True)
    return m


def _verify(
    q: Features, c: _Candidate, cfg: Config, debug: dict[str, Any] | None, rematch: bool = False
) -> Match | None:
    """Whether ``c`` is in the photo: its correspondences (the knn's, or with ``rematch``
    each photo descriptor's nearest among ``c``'s own), then for the densest (rotation,
    scale) cluster of them, and for the rematch also the next densest at a stricter bar,
    a homography with enough consistent inliers and a plausible outline."""
    min_inl = cfg.rematch_min_inliers if rematch and cfg.rematch_fallback else cfg.min_inliers
    pairs = c.knn
    if rematch and c.own is not None:
        pairs = _rematch(q, c.own, cfg)
    tries = 2 if rematch and cfg.second_cluster_inliers > 0 else 1
    for i, near in enumerate(_clusters(q, pairs.rows, pairs.geo, cfg, tries)):
        m = _fit(q, c, pairs.take(near), min_inl if i == 0 else cfg.second_cluster_inliers,
                 rematch, cfg, debug)
        if m is not None:
            return m
    return None


def _rematch(q: Features, own: _Entries, cfg: Config) -> _Pairs:
    """Each photo descriptor's nearest among a target's own entries, within
    ``rematch_maxdist``."""
    D = 2.0 - 2.0 * (q.desc @ own.desc.T)  # (nq,m)
    every = np.arange(len(D))
    best = D.argmin(1)
    db = D[every, best]
    good = db <= cfg.rematch_maxdist
    if cfg.rematch_ratio < 1.0:
        # second nearest by a second pass (argpartition is 4x slower here)
        D[every, best] = np.inf
        good &= db <= cfg.rematch_ratio**2 * D.min(1)
    near = best[good]
    return _Pairs(np.nonzero(good)[0], own.slots[near].astype(np.int64),
                  db[good].astype(np.float32), own.xy[near], own.geo[near])


def _fit(
    q: Features,
    c: _Candidate,
    p: _Pairs,
    min_inl: int,
    rematch: bool,
    cfg: Config,
    debug: dict[str, Any] | None,
) -> Match | None:
    """One-to-one correspondences, a homography (USAC_MAGSAC), its inliers that agree in
    orientation and size, and the plausibility of the projected outline."""
    min_ratio = cfg.rematch_min_ratio if rematch else cfg.min_inlier_ratio
    # one-to-one: greedy by distance over query rows and target slots
    o = np.argsort(p.d, kind="stable")
    rows, slots = p.rows[o], p.slots[o]
    _, fr = np.unique(rows, return_index=True)
    keep = np.zeros(len(rows), bool)
    keep[fr] = True
    o, slots = o[keep], slots[keep]
    _, fs = np.unique(slots, return_index=True)
    p = p.take(o[fs])
    if len(p.rows) < max(min_inl, 4):
        return None
    w, h = c.width, c.height
    src = _from_fraction(p.xy, w, h)
    dst = q.xy[p.rows].astype(np.float32)
    meth = cv2.USAC_MAGSAC if cfg.method == "magsac" else cv2.RANSAC
    # the photo's positions are in its own pixels, searched at query_side of its long side
    reproj = cfg.reproj * max(q.width, q.height) / query_side(q.width, q.height, cfg)
    Hm, mask = cv2.findHomography(src, dst, meth, reproj, maxIters=2000, confidence=0.995)
    if Hm is None or mask is None:
        return None
    inl = mask.ravel().astype(bool)
    inl[inl] = _consistent(np.asarray(Hm, np.float64), src[inl], p.geo[inl], q, p.rows[inl], cfg)
    ni = int(inl.sum())
    if debug is not None:
        debug.setdefault("verify", {})[c.image_id] = (len(p.rows), ni)
    if ni < min_inl or ni < min_ratio * len(p.rows):
        return None
    corners = np.array([[[0, 0], [w, 0], [w, h], [0, h]]], np.float32)
    out = cv2.perspectiveTransform(corners, Hm)[0]
    if not _convex_ok(out.astype(np.float64), cfg, q.width, q.height):
        return None
    if cfg.min_hull > 0:
        hull = cv2.convexHull(src[inl])
        if cv2.contourArea(hull) < cfg.min_hull * w * h:
            return None
    return Match(image_id=c.image_id, score=float(ni), corners=out.astype(np.float32))


def _read_arrays(path: Path) -> dict[str, NDArray[Any]]:
    with np.load(path) as a:
        return {name: a[name] for name in a.files}


def _to_fraction(xy: NDArray[np.float32], w: int, h: int) -> NDArray[np.uint16]:
    frac = np.asarray(xy, np.float64) / np.array([max(w, 1), max(h, 1)]) * 65535.0
    return np.asarray(np.clip(np.rint(frac), 0, 65535), np.uint16)


def _to_geo(angle: NDArray[np.float32] | None, size: NDArray[np.float32] | None, n: int
            ) -> NDArray[np.uint8]:
    """Orientation in 256ths of a turn and log2(size) in 16ths of an octave, +1 (0 = unknown)."""
    if angle is None or size is None:
        return np.zeros((n, 2), np.uint8)
    a = np.rint(np.asarray(angle, np.float64) * 256.0 / 360.0).astype(np.int64) % 256
    z = np.clip(np.rint(np.log2(np.maximum(size, 1.0)) * 16.0) + 1, 1, 255)
    return np.stack([a, z], 1).astype(np.uint8)


def _from_geo(geo: NDArray[np.uint8]) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                                NDArray[np.bool_]]:
    """(angle degrees, size px, known) from ``_to_geo``'s codes."""
    angle = geo[:, 0].astype(np.float64) * (360.0 / 256.0)
    return angle, 2.0 ** ((geo[:, 1].astype(np.float64) - 1) / 16.0), geo[:, 1] > 0


def _consistent(Hm: NDArray[np.float64], src: NDArray[np.float32], geo: NDArray[np.uint8],
                q: Features, rows: NDArray[np.int64], cfg: Config) -> NDArray[np.bool_]:
    """Which correspondences agree with the homography in orientation and scale as well as in
    position: the target keypoint's orientation and size, carried through ``Hm`` at that point,
    must land within ``angle_tol`` degrees and ``size_tol`` (factor) of the photo keypoint's.
    Random correspondences that fit a homography by chance rarely do.  Unknown geometry (either
    side) passes."""
    if q.angle is None or q.size is None or len(rows) == 0:
        return np.ones(len(rows), bool)
    d_angle, d_size, known = _geometry_residuals(Hm, src, geo, q, rows)
    ok = (d_angle <= cfg.angle_tol) & (d_size <= np.log2(cfg.size_tol))
    return np.asarray(ok | ~known, bool)


def _clusters(q: Features, rows: NDArray[np.int64], geo: NDArray[np.uint8], cfg: Config,
              tries: int = 1) -> list[NDArray[np.bool_]]:
    """Up to ``tries`` groups of correspondences whose rotation (photo angle - target angle) and
    scale change lie within ``cluster_angle`` and ``cluster_scale`` of one correspondence: the
    one with the most such neighbours, then the one with the most among those left out.  A flat
    target seen in a photo turns and scales by about one amount everywhere; chance
    correspondences spread over all of them, and a symmetric pattern (a row of notes) makes two
    groups half a turn apart.  Without ``cfg.cluster``, or without orientations, one group of
    all of them."""
    n = len(rows)
    if not cfg.cluster or q.angle is None or q.size is None or n == 0:
        return [np.ones(n, bool)]
    t_angle, t_size, known = _from_geo(geo)
    if not known.all():
        return [np.ones(n, bool)]
    turn = q.angle[rows] - t_angle
    zoom = _octaves(q.size[rows], t_size)
    near = (_turn(turn[:, None], turn[None, :]) <= cfg.cluster_angle
            ) & (np.abs(zoom[:, None] - zoom[None, :]) <= cfg.cluster_scale)
    out: list[NDArray[np.bool_]] = []
    free = np.ones(n, bool)
    counts = near.sum(1)  # neighbours of each correspondence among those not yet grouped
    while len(out) < tries and counts.max() > 0:
        group = near[int(np.argmax(counts))] & free
        out.append(group)
        free &= ~group
        if len(out) < tries:
            counts = (counts - near[:, group].sum(1)) * free
    return out


def _geometry_residuals(
    Hm: NDArray[np.float64], src: NDArray[np.float32], geo: NDArray[np.uint8], q: Features,
    rows: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """|orientation error| in degrees, |log2 size ratio|, and whether the target's is known."""
    assert q.angle is not None and q.size is not None
    n = len(rows)
    t_angle, t_size, known = _from_geo(geo)
    rad = np.deg2rad(t_angle)
    step = np.maximum(t_size, 2.0)[:, None] * 0.5
    p = src.astype(np.float64)
    ends = np.concatenate([p, p + step * np.stack([np.cos(rad), np.sin(rad)], 1)])
    mapped = cv2.perspectiveTransform(ends[None], Hm)[0]
    v = mapped[n:] - mapped[:n]
    exp_angle = np.rad2deg(np.arctan2(v[:, 1], v[:, 0]))
    exp_size = t_size * np.linalg.norm(v, axis=1) / step[:, 0]
    return _turn(q.angle[rows], exp_angle), np.abs(_octaves(q.size[rows], exp_size)), known


def _turn(a: NDArray[np.floating[Any]], b: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """|a - b| in degrees, the short way round."""
    return np.asarray(np.abs((a - b + 180.0) % 360.0 - 180.0), np.float64)


def _octaves(a: NDArray[np.floating[Any]], b: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """log2(a / b) for sizes, either of which may be 0."""
    return np.asarray(np.log2(np.maximum(a, 1e-3) / np.maximum(b, 1e-3)), np.float64)


def _from_fraction(frac: NDArray[np.uint16], w: int, h: int) -> NDArray[np.float32]:
    return np.asarray(frac * np.array([w / 65535.0, h / 65535.0], np.float32), np.float32)


def plausible(corners: NDArray[np.float32], width: int, height: int) -> bool:
    """Whether a projected target outline is one a camera could see of a flat target."""
    return _convex_ok(corners.astype(np.float64), CFG, width, height)
