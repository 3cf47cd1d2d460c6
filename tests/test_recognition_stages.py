"""The recognition stages alone, as functions over arrays."""

from __future__ import annotations

import numpy as np
import pytest

from matcher.recognition import CFG, Features
from matcher.recognition.candidates import Pairs
from matcher.recognition.geometry import clusters, own_inliers
from matcher.recognition.outline import inside, outline_ok
from matcher.recognition.pca import PCA, project
from matcher.recognition.sharing import shared_hits
from matcher.recognition.slots import (
    SlotTable,
    from_fraction,
    from_geo,
    to_fraction,
    to_geo,
)
from matcher.recognition.verify import one_to_one
from matcher.recognition.votes import vote


def test_stored_keypoints_keep_position_orientation_and_size() -> None:
    rng = np.random.default_rng(0)
    xy = (rng.random((50, 2)) * [6000, 4000]).astype(np.float32)
    angle = (rng.random(50) * 360).astype(np.float32)
    size = (2 + rng.random(50) * 200).astype(np.float32)
    assert np.abs(from_fraction(to_fraction(xy, 6000, 4000), 6000, 4000) - xy).max() < 0.1
    a, s, known = from_geo(to_geo(angle, size, 50))
    assert known.all()
    assert np.abs((a - angle + 180) % 360 - 180).max() <= 360 / 512 + 1e-6
    assert np.abs(np.log2(s / size)).max() <= 1 / 32 + 1e-6


def test_removed_slots_are_reused_before_new_ones_and_survive_a_snapshot() -> None:
    table = SlotTable(16)
    first = table.take(5)
    table.img[first] = 7
    table.release(first[1:3])
    assert table.used == 3 and table.img[first[1:3]].tolist() == [-1, -1]
    again = table.take(4)
    assert sorted(again[:2].tolist()) == sorted(first[1:3].tolist())
    assert again[2:].tolist() == [5, 6]
    assert not table.fits(10) and table.fits(9)
    table.grow(32)
    assert table.cap == 32 and table.fits(25)
    restored = SlotTable.from_arrays(table.arrays())
    assert (restored.next, restored.free, restored.img.tolist()) == (
        table.next,
        table.free,
        table.img.tolist(),
    )


def test_slot_arrays_of_different_lengths_are_refused() -> None:
    arrays = SlotTable(16).arrays()
    arrays["slot_xy"] = arrays["slot_xy"][:8]
    with pytest.raises(ValueError):
        SlotTable.from_arrays(arrays)


def test_descriptors_are_projected_to_unit_length() -> None:
    d = np.random.default_rng(1).random((5, 128)).astype(np.float32) * 100
    p = project(d)
    assert p.shape == (5, PCA.dim)
    assert np.allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-4)
    assert project(np.zeros((0, 128), np.float32)).shape == (0, PCA.dim)


def test_votes_go_to_the_image_whose_entries_are_nearest() -> None:
    slot_img = np.array([0, 0, 1, 1, -1], np.int32)  # slot 4 was deleted
    labels = np.array([[0, 2, 4], [1, 3, 4], [2, 0, 4], [4, 4, 4]], np.int64)
    dists = np.array([[0.1, 0.5, 0.55]] * 3 + [[0.1, 0.1, 0.1]], np.float32)
    v = vote(labels, dists, slot_img, CFG)
    assert v is not None
    assert v.images.tolist() == [0, 1]
    assert v.votes[0] > v.votes[1]
    assert 3 not in v.rows  # a photo descriptor near deleted entries only does not vote


def test_one_to_one_keeps_the_nearest_pair_of_each_keypoint_and_slot() -> None:
    p = Pairs(
        rows=np.array([0, 0, 1, 2]),
        slots=np.array([5, 6, 5, 7]),
        d=np.array([0.3, 0.1, 0.2, 0.4], np.float32),
        xy=np.zeros((4, 2), np.uint16),
        geo=np.zeros((4, 2), np.uint8),
        shared=np.zeros(4, np.uint8),
    )
    kept = one_to_one(p)
    assert sorted(zip(kept.rows.tolist(), kept.slots.tolist(), strict=True)) == [
        (0, 6),
        (1, 5),
        (2, 7),
    ]


def test_clusters_find_the_densest_turn_then_the_next() -> None:
    # 10 correspondences turned by 30 degrees, 6 by 210 (a pattern matching itself half a
    # turn round), 3 at random turns and scales
    turns = [30.0] * 10 + [210.0] * 6 + [100.0, 300.0, 150.0]
    n = len(turns)
    q = Features(
        xy=np.zeros((n, 2), np.float32),
        desc=np.zeros((n, PCA.dim), np.float32),
        width=640,
        height=480,
        angle=np.array(turns, np.float32),
        size=np.array([8.0] * 16 + [40.0, 2.0, 90.0], np.float32),
    )
    geo = to_geo(np.zeros(n, np.float32), np.full(n, 8.0, np.float32), n)
    first, second = clusters(q, np.arange(n), geo, CFG, tries=2)
    assert np.flatnonzero(first).tolist() == list(range(10))
    assert np.flatnonzero(second).tolist() == list(range(10, 16))


def test_outline_must_be_one_a_camera_sees() -> None:
    square = np.array([[100, 100], [300, 110], [290, 300], [110, 290]], np.float64)
    assert outline_ok(square, CFG, 640, 480)
    assert not outline_ok(square[::-1], CFG, 640, 480)  # mirrored
    assert not outline_ok(square[[0, 2, 1, 3]], CFG, 640, 480)  # self-crossing
    assert not outline_ok(square * 0.05, CFG, 640, 480)  # a speck
    sliver = np.array([[100, 100], [600, 100], [600, 104], [100, 180]], np.float64)
    assert not outline_ok(sliver, CFG, 640, 480)  # opposite sides 1:20


def test_inside_a_convex_outline() -> None:
    outline = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], np.float64)
    points = np.array([[5, 5], [11, 5], [5, -1], [9.9, 9.9]], np.float32)
    assert inside(outline, points).tolist() == [True, False, False, True]


def test_inliers_on_a_shared_masthead_are_not_the_targets_own() -> None:
    band = np.array([[x, y] for x in (10, 200, 390) for y in (5, 35)], np.float32)
    shared = np.array([True, True, False, False, True, True])  # the band's ends are shared
    body = np.array([[100, 200], [300, 300]], np.float32)
    src = np.concatenate([band, body])
    assert own_inliers(src, np.concatenate([shared, [False, False]])) == 2
    assert own_inliers(src, np.zeros(len(src), bool)) == len(src)


def test_inliers_at_the_edge_of_a_shared_masthead_are_not_the_targets_own() -> None:
    band = np.array([[x, y] for x in (10, 390) for y in (5, 35)], np.float32)
    edge = np.array([[400, 20], [200, 45]], np.float32)  # 10 px past the shared band
    body = np.array([[100, 200], [300, 300]], np.float32)
    src = np.concatenate([band, edge, body])
    shared = np.arange(len(src)) < len(band)
    assert own_inliers(src, shared) == 4
    assert own_inliers(src, shared, margin=12.0) == 2


def test_entries_another_image_has_are_shared_unless_it_is_a_copy() -> None:
    slot_img = np.array([0, 0, 0, 0, 1, 1, 1, 1], np.int32)
    own = np.full(4, 2, np.int32)  # a new image's four entries
    labels = np.array([[0, 4], [1, 5], [2, 6], [3, 7]])
    # its first entry is near one of image 0's; all four are near image 1's (a copy)
    dists = np.array([[0.05, 0.05], [0.9, 0.05], [0.9, 0.05], [0.9, 0.05]], np.float32)
    hits = shared_hits(own, labels, dists, slot_img, {2: 4}, 0.15)
    assert hits.tolist() == [[True, False], [False, False], [False, False], [False, False]]
