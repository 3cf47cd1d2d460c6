#!/usr/bin/env python3
"""Extra negatives for FP calibration (NOT benchmark content): one view of each of the 300
data/train_d distractors (seed 101, not in the tuning catalog), levels cycling easy/medium/hard,
seed 7373 -> data/tune/queries, rows appended into data/tune/truth_big.csv."""
import csv, glob, os, sys
LAB = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, LAB)
import synth
out = f"{LAB}/data/tune"
bgs = synth.backgrounds()
rows = list(csv.reader(open(f"{out}/truth.csv")))
for i, f in enumerate(sorted(glob.glob(f"{LAB}/data/train_d/*.jpg"))):
    lvl = ["easy", "medium", "hard"][i % 3]
    for q, _, l in synth.make_views([f], [lvl], 7373 + i, f"{out}/queries", bgs):
        rows.append([q, "", l, "negative"])
with open(f"{out}/truth_big.csv", "w", newline="") as fh:
    csv.writer(fh).writerows(rows)
print(len(rows) - 1)
