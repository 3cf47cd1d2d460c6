#!/usr/bin/env python3
"""Extract raw target features of distractors in chunks of 500 (cache files per chunk), then
assemble the full cache file that bench_offline.py expects.  Same keys as bench_offline."""
import glob, os, sys
import numpy as np
LAB = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, LAB)
import bench_offline as B
R = B.R
PCA = "/work/main/matcher/pca.npy"
R.load_pca(PCA)
cfg = R.CFG
tkey = B._h(tuple(getattr(cfg, k) for k in B.TKEYS), B.KEEP_TARGET, os.path.getsize(PCA), PCA)
cat = sorted(glob.glob(f"{B.PUB}/catalog/*.jpg"))
B.cached("t", cat, tkey, B.raw_target, lambda p: (p, cfg))
import csv
truth = list(csv.DictReader(open(f"{B.PUB}/truth.csv")))
qkey = B._h(cfg.query_scale, cfg.query_sift_contrast, B.KEEP_QUERY)
B.cached("q", [f"{B.PUB}/queries/{r['query']}.jpg" for r in truth], qkey, B.raw_query,
         lambda p: (p, cfg.query_scale, cfg.query_sift_contrast))
print("catalog+queries done", flush=True)
dall = sorted(glob.glob(sys.argv[1] + "/*.jpg"))
CH = 500
parts = []
for i in range(0, len(dall), CH):
    parts += B.cached("t", dall[i:i + CH], tkey, B.raw_target, lambda p: (p, cfg))
    print("chunk", i + CH, flush=True)
full = f"{B.CACHE}/t_{tkey}_{B._h(tuple(dall))}.npy"
np.save(full, np.array(parts + [None], dtype=object)[:-1], allow_pickle=True)
print("full", full, flush=True)
