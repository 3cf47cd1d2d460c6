"""Synthetic camera-like views of NON-benchmark images (make_bench distractors), for fitting
the PCA and tuning thresholds. Backgrounds: scikit-image sample photos (data/bg) and other
distractors."""
import glob, os, random, sys
import cv2, numpy as np
sys.path.insert(0, "/work/shared/bench")
from make_bench import view, load  # noqa: E402

LAB = os.path.dirname(os.path.abspath(__file__))


def backgrounds():
    bgs = [load(f, 1024) for f in sorted(glob.glob(f"{LAB}/data/bg/*.png"))]
    bgs = [b if b.ndim == 3 else cv2.cvtColor(b, cv2.COLOR_GRAY2BGR) for b in bgs]
    bgs = [b[..., :3] for b in bgs]
    bgs += [load(f, 1024) for f in sorted(glob.glob(f"{LAB}/data/tune_neg/*.jpg"))[60:80]]
    return bgs


def make_views(files, levels, seed, out, bgs):
    """one view per (file, level); returns rows (qid, expected_index_or_-1, level)"""
    os.makedirs(out, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    for fi, f in enumerate(files):
        t = load(f, 800)
        for lvl in levels:
            img, q = view(rng, t, bgs, lvl)
            qid = f"{os.path.basename(f)[:-4]}_{lvl}"
            cv2.imwrite(f"{out}/{qid}.jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
            rows.append((qid, fi, lvl))
    return rows
