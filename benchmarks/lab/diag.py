import sys, csv, glob, os, numpy as np
from dataclasses import replace
sys.argv = [sys.argv[0]] + sys.argv[1:]
import bench_offline as B, recognition as R
import argparse
ap = argparse.ArgumentParser(); ap.add_argument("--set", nargs="*", default=[]); ap.add_argument("--pca", default="pca.npy"); ap.add_argument("--d", default=B.PUB)
a = ap.parse_args()
R.load_pca(a.pca)
cfg = replace(R.CFG, **B.parse_set(a.set)); R.CFG = cfg
truth = list(csv.DictReader(open(f"{a.d}/truth.csv")))
cat = sorted(glob.glob(f"{a.d}/catalog/*.jpg")); names = [os.path.basename(p)[:-4] for p in cat]
tkey = B._h(tuple(getattr(cfg, k) for k in B.TKEYS), B.KEEP_TARGET, os.path.getsize(a.pca), a.pca)
traw = B.cached("t", cat, tkey, B.raw_target, lambda p: (p, cfg))
qkey = B._h(cfg.query_scale, cfg.query_sift_contrast, B.KEEP_QUERY)
qraw = B.cached("q", [f"{a.d}/queries/{r['query']}.jpg" for r in truth], qkey, B.raw_query, lambda p: (p, cfg.query_scale, cfg.query_sift_contrast))
tf = [B.target_features(r, cfg) for r in traw]; qf = [B.query_features(r, cfg) for r in qraw]
ix = R.ChannelIndex(dim=tf[0].desc.shape[1], capacity=20000, cfg=cfg)
for i, f in enumerate(tf): ix.add(i, f)
ix.cfg = replace(cfg, min_inliers=4, candidates=10, min_votes=0)
stats = {}
for r, f in zip(truth, qf):
    if not r["expected"]: continue
    e = names.index(r["expected"]); dbg = {}
    ix.search(f, 3, dbg)
    vs = list(dbg.get("votes", {}).keys())
    rank = vs.index(e) if e in vs else 99
    v = dbg.get("verify", {}).get(e, (0, 0))
    stats.setdefault(r["difficulty"], []).append((rank, dbg["votes"].get(e, 0), v[0], v[1]))
for lvl, s in stats.items():
    s = np.array(s)
    print(lvl, "rank0 %.2f rank<3 %.2f rank<10 %.2f | med votes %.1f corr %.0f inl %.0f | inl>=8 %.2f inl>=6 %.2f" % (
        (s[:,0]==0).mean(), (s[:,0]<3).mean(), (s[:,0]<10).mean(), np.median(s[:,1]), np.median(s[:,2]), np.median(s[:,3]), (s[:,3]>=8).mean(), (s[:,3]>=6).mean()))
