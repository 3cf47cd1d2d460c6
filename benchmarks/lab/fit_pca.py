#!/usr/bin/env python3
"""Fit the RootSIFT -> d PCA shipped as pca.npy.  Data: make_bench distractors generated with
`make_bench.py --distractors 300 --out data/train_d --seed 101` (not benchmark content): target-side
multi-scale SIFT of each + query-side SIFT of one synthetic camera view per level (synth.py,
seed 4242).  Output: a (d+1,128) float32 array: row 0 mean, rows 1..d projection (optionally
whitened by eigval**-alpha/2).  Usage (shipped file): fit_pca.py --dims 32 --alpha 0 --ship  (needs data/train_d and data/bg, see README in REPORT.md)"""
import argparse, glob, os, sys
import cv2, numpy as np
LAB = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, LAB)
import recognition as R  # noqa
import synth  # noqa

ap = argparse.ArgumentParser()
ap.add_argument("--dims", type=int, nargs="+", default=[32])
ap.add_argument("--alpha", type=float, nargs="+", default=[0.0])
ap.add_argument("--n", type=int, default=300)
ap.add_argument("--seed", type=int, default=4242)
ap.add_argument("--outdir", default=f"{LAB}/data/pca")
ap.add_argument("--ship", action="store_true", help="also write the first (dim, alpha) as ./pca.npy")
a = ap.parse_args()
cv2.setNumThreads(2)
files = sorted(glob.glob(f"{LAB}/data/train_d/*.jpg"))[: a.n]
cache = f"{LAB}/data/pca_train_desc.npy"
if os.path.exists(cache):
    X = np.load(cache)
else:
    rng = np.random.default_rng(a.seed)
    parts = []
    for f in files:
        g = cv2.imread(f, 0)
        for side in (560, 320, 180):   # the target sizes used when pca.npy was fitted
            s = min(1.0, side / max(g.shape))
            im = cv2.resize(g, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            _, d, _, _ = R._detect(im, 0.02)
            if len(d) > 150:
                d = d[rng.choice(len(d), 150, replace=False)]
            parts.append(R.root_sift(d))
    vdir = f"{LAB}/data/pca_views"
    rows = synth.make_views(files, ["easy", "medium", "hard"], a.seed, vdir, synth.backgrounds())
    for qid, _, _ in rows:
        g = cv2.imread(f"{vdir}/{qid}.jpg", 0)
        g = cv2.resize(g, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        _, d, _, _ = R._detect(g, 0.02, 800)
        if len(d) > 150:
            d = d[rng.choice(len(d), 150, replace=False)]
        parts.append(R.root_sift(d))
    X = np.concatenate(parts).astype(np.float32)
    np.save(cache, X)
print("training descriptors", X.shape)
mean = X.mean(0)
C = np.cov((X - mean).T)
ev, V = np.linalg.eigh(C)
o = np.argsort(-ev)
ev, V = ev[o], V[:, o]
os.makedirs(a.outdir, exist_ok=True)
for d in a.dims:
    print(f"d={d} explained {ev[:d].sum() / ev.sum():.3f}")
    for al in a.alpha:
        P = V[:, :d] / (ev[:d] ** (al / 2))[None, :]
        arr = np.concatenate([mean[None, :], P.T]).astype(np.float32)
        np.save(f"{a.outdir}/pca_d{d}_a{al:g}.npy", arr)
        if a.ship and d == a.dims[0] and al == a.alpha[0]:
            np.save(f"{LAB}/pca.npy", arr)
