"""The recognition settings production uses, one frozen dataclass read by every stage.

The values were chosen on generated data (see BENCHMARKS.md, "How the recognition defaults
were chosen", for each measured alternative). The target-side fields come first: what a
stored target's features depend on is the fields before ``query_scale``, plus
``query_sift_contrast`` (its synthetic views are described as photos are).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    # --- target side (AddImage)
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
    # fine-detail fallback, for a target that rates fine_max_level or less above (e.g. a
    # photo of grain or noise): larger sizes, weaker contrast, and views where the target
    # fills much of the photo
    fine_sizes: tuple[int, ...] = (400, 300)
    fine_sift_contrast: float = 0.005
    fine_view_sides: tuple[float, float] = (200.0, 500.0)
    fine_max_level: int = 1  # found only from close, sharp photos: never rated easy
    # --- query side (FindImage)
    query_scale: float = 0.5
    query_max_side: int = 320  # px: the long side a photo is searched at, at most
    query_features: int = 800
    query_sift_contrast: float = 0.01
    # --- index
    M: int = 8
    ef_construction: int = 60
    ef: int = 16
    k: int = 6
    # --- voting: each photo descriptor votes 1 - d/d_k for an image, +0.5 when it passes
    # the ratio test against the best other image
    max_dist: float = 0.60  # squared-L2 bound on normalised descriptors
    ratio: float = 0.90  # d(best of this image) / d(best of another image)
    candidates: int = 10
    min_votes: float = 1.5
    # --- verification (USAC_MAGSAC homography)
    reproj: float = 3.0  # px in the photo as searched (at query_side)
    min_inliers: int = 7  # inliers that also agree in orientation and scale
    min_area: float = 0.004  # projected outline area / photo area
    max_area: float = 9.0
    max_side_ratio: float = 6.0  # opposite sides of projected outline
    min_hull: float = 0.02  # hull of inliers in the target / target area
    angle_tol: float = 20.0  # degrees: inlier orientation vs the homography's
    size_tol: float = 1.68  # factor (0.75 octave): inlier size vs the homography's
    # an entry is shared when another catalog image (not a copy) has one within shared_dist
    # (squared L2): a masthead or logo several targets carry, printed alike (sharing.py). A
    # looser bar also marks the glyphs and corners unrelated posters have in common, which at
    # 10k images covers whole targets. A match needs min_own_inliers inliers off the shared
    # entries and their hull, and at least own_margin of the target's size (the square root
    # of its area) outside that hull (geometry.own_inliers).
    shared_dist: float = 0.08
    min_own_inliers: int = 4
    own_margin: float = 0.05
    # correspondences kept near the densest (rotation, scale) group
    cluster_angle: float = 30.0  # degrees
    cluster_scale: float = 1.0  # octaves
    # a candidate whose knn correspondences fail is re-matched against its own entries (no
    # ratio test within the image: text repeats), for the first rematch_top by votes
    rematch_maxdist: float = 0.6  # squared L2 bound (normalised descriptors), as max_dist
    rematch_min_inliers: int = 7
    rematch_top: int = 10
    # a rematch whose densest cluster fails tries the next densest (a row of notes or letters
    # matches itself half a turn round too) at this stricter bar: a second chance at 7 let a
    # negative photo through at +10k, 9 did not
    second_cluster_inliers: int = 9


CFG = Config()
