"""Sanity checks of the drop-in API: add / remove / slot reuse / growth / corners."""
import glob, sys, os
import cv2, numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recognition as R

PUB = "/work/shared/bench/public"


def test_api():
    cat = sorted(glob.glob(f"{PUB}/catalog/*.jpg"))[40:52]
    ix = R.ChannelIndex(capacity=64)              # forces resize_index
    feats = []
    for i, p in enumerate(cat):
        f = R.extract_target(cv2.imread(p, cv2.IMREAD_GRAYSCALE))
        assert f.desc.dtype == np.float32 and f.xy.shape == (len(f.desc), 2)
        feats.append(f)
        ix.add(i, f)
    assert len(ix) == len(cat)
    # a query made of target 3 warped by a known homography
    g = cv2.imread(cat[3], cv2.IMREAD_GRAYSCALE)
    h, w = g.shape
    dst = np.float32([[100, 60], [520, 90], [500, 420], [120, 400]])
    Hm = cv2.getPerspectiveTransform(np.float32([[0, 0], [w, 0], [w, h], [0, h]]), dst)
    photo = cv2.warpPerspective(g, Hm, (640, 480), borderValue=90)
    q = R.extract_query(photo)
    m = ix.search(q)
    assert m and m[0].image_id == 3, m
    assert np.abs(m[0].corners - dst).max() < 12, m[0].corners
    # removal and slot reuse
    n_before = ix.n_vectors
    ix.remove(3)
    assert all(x.image_id != 3 for x in ix.search(q))
    ix.add(33, feats[3])
    assert ix.n_vectors == n_before and ix._next == n_before   # slots were reused, no growth
    m = ix.search(q)
    assert m and m[0].image_id == 33
    ix.add(33, feats[3])                                        # re-add replaces
    assert len(ix) == len(cat)
    print("ok", [(x.image_id, x.score) for x in m], "level", R.rate_level(feats[3]))


if __name__ == "__main__":
    test_api()
