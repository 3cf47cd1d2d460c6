#!/usr/bin/env python3
"""Tuning set (NOT benchmark content): catalog = 200 make_bench distractors (seed 303),
queries = one synthetic view per level of each (synth.make_views, seed 5151), negatives = views of
60 other distractors (seed 202) not in the catalog.  Written to data/tune/."""
import csv, glob, os, subprocess, sys
LAB = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, LAB)
import synth
out = f"{LAB}/data/tune"
subprocess.run([sys.executable, "/work/shared/bench/make_bench.py", "--distractors", "200", "--out", f"{out}/catalog", "--seed", "303"], check=True)
cat = sorted(glob.glob(f"{out}/catalog/*.jpg"))
bgs = synth.backgrounds()
rows = synth.make_views(cat, ["easy", "medium", "hard"], 5151, f"{out}/queries", bgs)
negs = sorted(glob.glob(f"{LAB}/data/tune_neg/*.jpg"))[:60]
import random
rng = random.Random(77)
nrows = synth.make_views(negs, [None], 6161, f"{out}/queries", bgs) if False else []
for i, f in enumerate(negs):
    lvl = ["easy", "medium", "hard"][i % 3]
    nrows += [(q, -1, l) for q, _, l in synth.make_views([f], [lvl], 6161 + i, f"{out}/queries", bgs)]
with open(f"{out}/truth.csv", "w", newline="") as fh:
    w = csv.writer(fh); w.writerow(["query", "expected", "difficulty", "kind"])
    for q, fi, l in rows:
        w.writerow([q, os.path.basename(cat[fi])[:-4], l, "synthetic"])
    for q, fi, l in nrows:
        w.writerow([q, "", l, "negative"])
print(len(rows), len(nrows))
