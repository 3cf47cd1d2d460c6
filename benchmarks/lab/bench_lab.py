#!/usr/bin/env python3
"""Lab sweep (search ms = thread CPU time, single thread): build the index once (public catalog + N distractors from the chunked cache of
extract_chunks.py), then evaluate several search-side variants on public/ queries.
  bench_lab.py --ndistr N [--M 8] [--pca FILE --tkey-pca FILE] [--idf-k 16] --variants 'k=v,k=v' ...
Uses recog_lab.py (matcher/recognition.py + idf option).  Single-thread search timing."""
import argparse, csv, glob, os, sys, time
from dataclasses import replace
import numpy as np, cv2
LAB = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, LAB)
import recog_lab as R
sys.modules["recognition"] = R
import bench_offline as B
assert B.R is R
cv2.setNumThreads(1)
ap = argparse.ArgumentParser()
ap.add_argument("--ndistr", type=int, default=0)
ap.add_argument("--distractors", default="/work/main/bench-data/distractors-10000")
ap.add_argument("--pca", default="/work/main/matcher/pca.npy")
ap.add_argument("--tkey-pca", default="/work/main/matcher/pca.npy", help="pca whose cache (credits) is used")
ap.add_argument("--set", nargs="*", default=[])
ap.add_argument("--variants", nargs="*", default=[""])
ap.add_argument("--label", default="")
ap.add_argument("--catalog", default=f"{B.PUB}/catalog")
ap.add_argument("--queries", default=f"{B.PUB}/queries")
ap.add_argument("--truth", default=f"{B.PUB}/truth.csv")
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
R.load_pca(a.tkey_pca)
cfg0 = R.CFG
tkey = B._h(tuple(getattr(cfg0, k) for k in B.TKEYS), B.KEEP_TARGET, os.path.getsize(a.tkey_pca), a.tkey_pca)
R.load_pca(a.pca)
cfg = replace(R.CFG, **B.parse_set(a.set)); R.CFG = cfg
truth = list(csv.DictReader(open(a.truth)))
cat = sorted(glob.glob(f"{a.catalog}/*.jpg")); names = [os.path.basename(p)[:-4] for p in cat]
traw = B.cached("t", cat, tkey, B.raw_target, lambda p: (p, cfg))
qkey = B._h(cfg.query_scale, cfg.query_sift_contrast, B.KEEP_QUERY)
qraw = B.cached("q", [f"{a.queries}/{r['query']}.jpg" for r in truth], qkey, B.raw_query, lambda p: (p, cfg.query_scale, cfg.query_sift_contrast))
draw = []
if a.ndistr:
    dall = sorted(glob.glob(f"{a.distractors}/*.jpg"))
    for i in range(0, a.ndistr, 500):
        fn = f"{B.CACHE}/t_{tkey}_{B._h(tuple(dall[i:i + 500]))}.npy"
        draw += np.load(fn, allow_pickle=True).tolist()
    draw = draw[: a.ndistr]
tf = [B.target_features(r, cfg) for r in traw]
df = [B.target_features(r, cfg) for r in draw]
qf = [B.query_features(r, cfg) for r in qraw]
dim = tf[0].desc.shape[1]
ix = R.ChannelIndex(dim=dim, capacity=sum(len(f.desc) for f in tf + df) + 16, cfg=cfg)
tb = time.time()
allf = [(i, f) for i, f in enumerate(tf)] + [(100000 + j, f) for j, f in enumerate(df)]
for j in range(0, len(allf), 2000):
    chunk = allf[j:j + 2000]
    n = sum(len(f.desc) for _, f in chunk)
    sl = np.arange(ix._next, ix._next + n)
    ix._ix.add_items(np.concatenate([f.desc for _, f in chunk]), sl, num_threads=a.threads)
    ix._slot_img[sl] = np.concatenate([np.full(len(f.desc), i) for i, f in chunk])
    ix._slot_xy[sl] = np.concatenate([f.xy for _, f in chunk])
    off = 0
    for i, f in chunk:
        ix._images[i] = (sl[off:off + len(f.desc)], f.width, f.height); off += len(f.desc)
    ix._next += n
tbuild = time.time() - tb
nv = ix.n_vectors
# density (batch form of ChannelIndex._update_density): forward counts among idf_k neighbours
need_idf = any("idf=" in v for v in a.variants) or cfg.idf > 0
dens_cache = {}
def density(k, radius):
    key = k
    if key not in dens_cache:
        ix._ix.set_ef(max(cfg.ef, k + 1))
        X = ix._ix.get_items(np.arange(nv))
        lab, dist = ix._ix.knn_query(np.asarray(X, np.float32), k=k + 1, num_threads=a.threads)
        lab = lab.astype(np.int64)
        other = ix._slot_img[lab] != ix._slot_img[np.arange(nv)][:, None]
        dens_cache[key] = (other, dist)
        d1 = np.where(other, dist, np.inf).min(1)
        print(f"# nearest other-image dist percentiles 10/25/50/75/90: {np.percentile(d1, [10, 25, 50, 75, 90]).round(3)}", file=sys.stderr)
    other, dist = dens_cache[key]
    return np.minimum((other & (dist <= radius)).sum(1), 255).astype(np.uint8)
per_vec = 4 * dim + (196 if cfg.M <= 8 else 196 + (cfg.M - 8) * 8) + 16
print(f"# build {tbuild:.0f}s, {len(ix)} images, {nv} vectors, {nv / len(ix):.1f} vec/img, model {nv * per_vec / len(ix) / 1024:.2f} KiB/img (+{nv / len(ix) / 1024:.2f} KiB if uint8 density)", file=sys.stderr, flush=True)
for v in a.variants:
    over = B.parse_set([x for x in v.split(",") if x]) if v else {}
    c = replace(cfg, **over); ix.cfg = c
    if c.idf > 0:
        ix._slot_dens[:nv] = density(c.idf_k, c.idf_radius)
    res, ts, ranks = [], [], []
    for r, f in zip(truth, qf):
        dbg = {}
        t = time.thread_time(); m = ix.search(f, limit=1, debug=dbg); ts.append(time.thread_time() - t)
        res.append(names[m[0].image_id] if m and m[0].image_id < len(names) else ("<distr>" if m else ""))
        if r["expected"]:
            e = names.index(r["expected"])
            vk = list(dbg.get("votes", {}).keys())
            ranks.append(vk.index(e) if e in vk else 99)
    rec = {}
    for lvl in ("easy", "medium", "hard"):
        pos = [(r, x) for r, x in zip(truth, res) if r["expected"] and r["difficulty"] == lvl]
        rec[lvl] = sum(x == r["expected"] for r, x in pos) / max(1, len(pos))
    neg = [x for r, x in zip(truth, res) if not r["expected"]]
    fp = sum(bool(x) for x in neg)
    wrong = sum(bool(x) and x != r["expected"] for r, x in zip(truth, res) if r["expected"])
    npos = sum(bool(r["expected"]) for r in truth)
    ss = np.array(ts) * 1000
    hard = [rk for r, rk in zip([r for r in truth if r["expected"]], ranks) if r["difficulty"] == "hard"]
    hard = np.array(hard)
    diag = f"hard true-in-top1/3/10: {np.mean(hard < 1):.2f}/{np.mean(hard < 3):.2f}/{np.mean(hard < 10):.2f}"
    row = (f"| {a.label} {v} | {rec['easy']:.3f} | {rec['medium']:.3f} | {rec['hard']:.3f} | {fp}/{len(neg)} | {wrong}/{npos} | "
           f"{np.median(ss):.1f}/{np.percentile(ss, 95):.1f} | {nv * per_vec / len(ix) / 1024:.1f} KiB | {len(ix)} | {diag} |")
    print(row, flush=True)
    with open(f"{LAB}/data/lab_rows.log", "a") as fh:
        fh.write(row + f" <!-- set={a.set} pca={a.pca} -->\n")
