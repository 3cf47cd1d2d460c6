#!/usr/bin/env python3
"""Level-calibration set (NOT benchmark content): 90 targets made from make_bench distractors
(data/tune_neg, seed 202, images 0..59 and train_d) degraded to span recognisability: Gaussian
blur, low contrast, pure noise textures; 3 synthetic views each (synth.make_views, seed 9191).
Written to data/levelcal/."""
import csv, glob, os, sys
import cv2, numpy as np
LAB = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, LAB)
import synth
out = f"{LAB}/data/levelcal"
os.makedirs(f"{out}/catalog", exist_ok=True)
rng = np.random.default_rng(9191)
src = sorted(glob.glob(f"{LAB}/data/train_d/*.jpg"))[200:300]
k = 0
for i, f in enumerate(src[:90]):
    im = cv2.imread(f)
    kind = i % 6
    if kind == 0:
        im = cv2.GaussianBlur(im, (0, 0), rng.uniform(2, 7))
    elif kind == 1:
        m = im.mean((0, 1), keepdims=True)
        im = np.clip(m + (im - m) * rng.uniform(0.05, 0.3), 0, 255).astype(np.uint8)
    elif kind == 2:
        h, w = im.shape[:2]
        base = np.array(rng.integers(0, 255, 3), np.float32)
        im = np.clip(base + rng.normal(0, rng.uniform(10, 60), (h, w, 3)), 0, 255).astype(np.uint8)
    elif kind == 3:
        im = cv2.GaussianBlur(im, (0, 0), rng.uniform(1, 3))
        m = im.mean((0, 1), keepdims=True)
        im = np.clip(m + (im - m) * rng.uniform(0.2, 0.6), 0, 255).astype(np.uint8)
    cv2.imwrite(f"{out}/catalog/lc{i:03d}.jpg", im, [cv2.IMWRITE_JPEG_QUALITY, 90])
cat = sorted(glob.glob(f"{out}/catalog/*.jpg"))
rows = synth.make_views(cat, ["easy", "medium", "hard"], 9191, f"{out}/queries", synth.backgrounds())
with open(f"{out}/truth.csv", "w", newline="") as fh:
    w = csv.writer(fh); w.writerow(["query", "expected", "difficulty", "kind"])
    for q, fi, l in rows:
        w.writerow([q, os.path.basename(cat[fi])[:-4], l, "synthetic"])
print(len(rows))
