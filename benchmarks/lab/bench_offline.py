#!/usr/bin/env python3
"""Offline benchmark of recognition.py on /work/shared/bench/public (or a tuning set).

  bench_offline.py [--distractors DIR] [--ndistr N] [--pca FILE] [--set key=value ...]
                   [--label TEXT] [--timing N] [--queries DIR --truth CSV --catalog DIR]

Prints one table row: recall per difficulty, false positives on negatives, wrong identifier on
positives, per-query ms (extract / search / total, median and p95, single thread), vectors and
bytes per image.  Raw SIFT per image is cached under data/cache (keyed by the extraction
parameters) so that selection / index / voting / verification parameters can be swept fast.
"""
from __future__ import annotations

import argparse, csv, glob, hashlib, json, os, sys, time
from dataclasses import replace
from multiprocessing import Pool

import cv2
import numpy as np

LAB = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, LAB)
import recognition as R  # noqa: E402

PUB = "/work/shared/bench/public"
CACHE = f"{LAB}/data/cache"
KEEP_TARGET = 400
KEEP_QUERY = 1500


def _h(*a) -> str:
    return hashlib.md5(repr(a).encode()).hexdigest()[:10]


# ---------------------------------------------------------------- raw feature extraction
def raw_target(args):
    path, cfg = args
    cv2.setNumThreads(1)
    g = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    H0, W0 = g.shape
    t = time.perf_counter()
    xy, d, sc, credit = R._target_candidates(g, cfg)
    el = time.perf_counter() - t
    k = KEEP_TARGET
    return xy[:k], np.clip(np.round(d[:k]), 0, 255).astype(np.uint8), sc[:k], credit[:k], W0, H0, el


TKEYS = ("target_sizes", "target_sift_contrast", "pool_per_scale", "n_views", "view_seed", "view_sides", "view_tilt",
         "view_blur", "view_noise", "view_tol", "spread_gamma", "target_grid", "query_sift_contrast")


def raw_query(args):
    path, scale, contrast = args
    cv2.setNumThreads(1)
    g = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    H0, W0 = g.shape
    t = time.perf_counter()
    im = g if scale == 1 else cv2.resize(g, (round(W0 * scale), round(H0 * scale)), interpolation=cv2.INTER_AREA)
    xy, d, resp, size = R._detect(im, contrast, KEEP_QUERY)
    return (xy / scale).astype(np.float32), np.clip(np.round(d), 0, 255).astype(np.uint8), W0, H0, time.perf_counter() - t


def cached(kind, paths, key, fn, args_of, procs=2):
    os.makedirs(CACHE, exist_ok=True)
    fn_cache = f"{CACHE}/{kind}_{key}_{_h(tuple(paths))}.npy"
    if os.path.exists(fn_cache):
        return np.load(fn_cache, allow_pickle=True).tolist()
    with Pool(procs) as p:
        res = p.map(fn, [args_of(x) for x in paths], chunksize=8)
    np.save(fn_cache, np.array(res + [None], dtype=object)[:-1], allow_pickle=True)
    return res


def target_features(raw, cfg: R.Config) -> R.Features:
    xy, d, sc, credit, W0, H0, _ = raw
    n = cfg.target_budget
    if cfg.min_credit > 0 and cfg.n_views > 0:
        n = min(n, int((credit >= cfg.min_credit).sum()))
    d = d[:n].astype(np.float32)
    return R.Features(xy=xy[:n], desc=R.project(d) if len(d) else np.zeros((0, R._dim()), np.float32),
                      width=W0, height=H0, scale=sc[:n], credit=credit[:n], n_views=cfg.n_views)


def query_features(raw, cfg: R.Config) -> R.Features:
    xy, d, W0, H0, _ = raw
    n = cfg.query_features
    return R.Features(xy=xy[:n], desc=R.project(d[:n].astype(np.float32)), width=W0, height=H0)


def parse_set(kvs):
    out = {}
    for kv in kvs:
        k, v = kv.split("=", 1)
        cur = getattr(R.CFG, k)
        if isinstance(cur, tuple):
            out[k] = tuple(type(cur[0])(x) for x in v.split(","))
        elif isinstance(cur, bool):
            out[k] = v.lower() in ("1", "true", "yes")
        else:
            out[k] = type(cur)(v)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--catalog", default=f"{PUB}/catalog")
    ap.add_argument("--queries", default=f"{PUB}/queries")
    ap.add_argument("--truth", default=f"{PUB}/truth.csv")
    ap.add_argument("--distractors", default=None)
    ap.add_argument("--ndistr", type=int, default=0)
    ap.add_argument("--pca", default=f"{LAB}/pca.npy")
    ap.add_argument("--set", nargs="*", default=[])
    ap.add_argument("--sweep", nargs="*", default=[], help="search-side variants: 'k=v,k=v' each")
    ap.add_argument("--label", default="")
    ap.add_argument("--dump", default=None)
    ap.add_argument("--timing", type=int, default=0, help="end-to-end single-thread timing on N queries")
    a = ap.parse_args()
    if a.pca == "none":
        R.set_pca(None, None)
    else:
        R.load_pca(a.pca)
    cfg = replace(R.CFG, **parse_set(a.set))
    R.CFG = cfg
    truth = list(csv.DictReader(open(a.truth)))
    cat = sorted(glob.glob(f"{a.catalog}/*.jpg"))
    names = [os.path.basename(p)[:-4] for p in cat]
    tkey = _h(tuple(getattr(cfg, k) for k in TKEYS), KEEP_TARGET, os.path.getsize(a.pca) if a.pca != "none" else 0, a.pca)
    t0 = time.time()
    traw = cached("t", cat, tkey, raw_target, lambda p: (p, cfg))
    draw = []
    if a.distractors:
        dall = sorted(glob.glob(f"{a.distractors}/*.jpg"))
        dp = dall[: a.ndistr or None]
        full = f"{CACHE}/t_{tkey}_{_h(tuple(dall))}.npy"
        if len(dp) < len(dall) and os.path.exists(full):    # a prefix of the full extraction
            draw = np.load(full, allow_pickle=True).tolist()[: len(dp)]
        else:
            draw = cached("t", dp, tkey, raw_target, lambda p: (p, cfg))
    qkey = _h(cfg.query_scale, cfg.query_sift_contrast, KEEP_QUERY)
    qpaths = [f"{a.queries}/{r['query']}.jpg" for r in truth]
    qraw = cached("q", qpaths, qkey, raw_query, lambda p: (p, cfg.query_scale, cfg.query_sift_contrast))
    t1 = time.time()
    tf = [target_features(r, cfg) for r in traw]
    df = [target_features(r, cfg) for r in draw]
    qf = [query_features(r, cfg) for r in qraw]
    levels = [R.rate_level(f) for f in tf]
    dim = tf[0].desc.shape[1]
    ix = R.ChannelIndex(dim=dim, capacity=len(tf) + len(df) + 16, cfg=cfg)
    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    rss0 = rss()
    tb = time.time()
    for i, f in enumerate(tf):
        ix.add(i, f)
    if df:
        # bulk add for speed (same index, same layout as ChannelIndex.add)
        for j in range(0, len(df), 500):
            chunk = df[j:j + 500]
            n = sum(len(f.desc) for f in chunk)
            ix._grow(n)
            sl = np.arange(ix._next, ix._next + n)
            ix._ix.add_items(np.concatenate([f.desc for f in chunk]), sl, num_threads=2)
            ix._slot_img[sl] = np.concatenate([np.full(len(f.desc), 100000 + j + q) for q, f in enumerate(chunk)])
            ix._slot_xy[sl] = np.concatenate([f.xy for f in chunk])
            off = 0
            for q, f in enumerate(chunk):
                ix._images[100000 + j + q] = (sl[off:off + len(f.desc)], f.width, f.height)
                off += len(f.desc)
            ix._next += n
    tbuild = time.time() - tb
    rss_img = (rss() - rss0) / max(1, len(ix))
    nvec = ix.n_vectors
    # hnswlib memory model measured in this lab (bytes/vector at M=8: 4*dim + ~196; at M=16: 4*dim + ~260)
    per_vec = 4 * dim + (196 if cfg.M <= 8 else 196 + (cfg.M - 8) * 8) + 16  # + xy (8) + slot->image (8)
    bytes_img = nvec * per_vec / len(ix)
    variants = [("", {})] + [(s, parse_set(s.split(","))) for s in a.sweep]
    for vname, over in variants:
        ix.cfg = replace(cfg, **over)
        res = []
        ts = []
        for r, f in zip(truth, qf):
            t = time.perf_counter()
            m = ix.search(f, limit=1)
            ts.append(time.perf_counter() - t)
            res.append(names[m[0].image_id] if m and m[0].image_id < len(names) else ("<distr>" if m else ""))
        rec = {}
        for lvl in ("easy", "medium", "hard"):
            pos = [(r, x) for r, x in zip(truth, res) if r["expected"] and r["difficulty"] == lvl]
            rec[lvl] = sum(x == r["expected"] for r, x in pos) / max(1, len(pos))
        neg = [x for r, x in zip(truth, res) if not r["expected"]]
        fp = sum(bool(x) for x in neg)
        wrong = sum(bool(x) and x != r["expected"] for r, x in zip(truth, res) if r["expected"])
        npos = sum(bool(r["expected"]) for r in truth)
        ext = np.array([r[4] for r in qraw]) * 1000
        tex = np.array([r[-1] for r in traw]) * 1000
        ss = np.array(ts) * 1000
        tot = ext + ss
        row = (f"| {a.label}{(' ' + vname) if vname else ''} | {rec['easy']:.3f} | {rec['medium']:.3f} | {rec['hard']:.3f} | "
               f"{fp}/{len(neg)} | {wrong}/{npos} | {np.median(ext):.1f} | {np.median(ss):.1f}/{np.percentile(ss, 95):.1f} | "
               f"{np.median(tot):.1f}/{np.percentile(tot, 95):.1f} | {nvec / len(ix):.0f} | {bytes_img / 1024:.1f} KiB (RSS {rss_img / 1024:.1f}) | {len(ix)} | {np.median(tex):.0f} |")
        print(row, flush=True)
        with open(f"{LAB}/data/rows.log", "a") as fh:
            fh.write(row + f"  <!-- set={a.set} pca={os.path.basename(a.pca)} build={tbuild:.0f}s -->\n")
        if a.dump and not vname:
            lv = {names[i]: levels[i] for i in range(len(names))}
            ev = {names[i]: float(tf[i].credit.sum()) / max(1, tf[i].n_views) if tf[i].credit is not None else 0.0 for i in range(len(names))}
            json.dump([{**r, "got": x, "level": lv.get(r["expected"]), "E": ev.get(r["expected"]), "ms": s} for r, x, s in zip(truth, res, ss.tolist())],
                      open(a.dump, "w"))
    ix.cfg = cfg
    if a.timing:
        cv2.setNumThreads(1)
        te, tsr = [], []
        for r in truth[: a.timing]:
            g = cv2.imread(f"{a.queries}/{r['query']}.jpg", cv2.IMREAD_GRAYSCALE)
            t = time.perf_counter(); f = R.extract_query(g, cfg); t2 = time.perf_counter()
            ix.search(f, limit=1); t3 = time.perf_counter()
            te.append(t2 - t); tsr.append(t3 - t2)
        te, tsr = np.array(te) * 1000, np.array(tsr) * 1000
        print(f"timing e2e n={a.timing}: extract {np.median(te):.1f}/{np.percentile(te, 95):.1f} "
              f"search {np.median(tsr):.1f}/{np.percentile(tsr, 95):.1f} total {np.median(te + tsr):.1f}/{np.percentile(te + tsr, 95):.1f}")
        tt = []
        for p in cat[:40]:
            g = cv2.imread(p, cv2.IMREAD_GRAYSCALE)
            t = time.perf_counter(); R.extract_target(g, cfg); tt.append(time.perf_counter() - t)
        print(f"timing extract_target: median {np.median(tt) * 1000:.1f} ms p95 {np.percentile(tt, 95) * 1000:.1f}")
    print(f"# extraction {t1 - t0:.0f}s, build {tbuild:.0f}s, {nvec} vectors", file=sys.stderr)


if __name__ == "__main__":
    main()
