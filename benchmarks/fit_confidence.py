"""Fit the acceptance confidence of matches on generated covers (benchmarks.confidence).

    python -m benchmarks.fit_confidence --train 1 2 --test 3

Reads ``bench-data/confidence-<seed>.npz`` (made by ``python -m benchmarks.confidence
--seed <seed>``), fits a logistic model of P(match is right | evidence) on the ``--train``
seeds' verified matches, and prints its weights and, for each threshold, on the train and
``--test`` seeds: right answers kept and false answers left (photos of left-out covers
that share a masthead, and other negatives). Nothing here reads a benchmark photo.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from matcher.recognition.confidence import Evidence, features

ROOT = Path(__file__).resolve().parents[1]


class Run(NamedTuple):
    photo: NDArray[np.int64]  # per verified match
    right: NDArray[np.bool_]
    centred: NDArray[np.bool_]
    score: NDArray[np.float64]  # inliers
    x: NDArray[np.float64]  # model features
    kinds: NDArray[np.str_]  # per photo
    expected: NDArray[np.int64]


def load(seed: int) -> Run:
    with np.load(ROOT / "bench-data" / f"confidence-{seed}.npz") as a:
        rows, kinds, expected = a["rows"], a["kinds"], a["expected"]
    ev = [Evidence(int(r[3]), int(r[4]), *map(float, r[5:9])) for r in rows]
    x = np.array([features(e) for e in ev], np.float64).reshape(-1, 6)
    return Run(rows[:, 0].astype(np.int64), rows[:, 1] > 0, rows[:, 2] > 0, rows[:, 3], x,
               kinds, expected)


def logistic(x: NDArray[np.float64], y: NDArray[np.bool_], ridge: float = 1e-3
             ) -> NDArray[np.float64]:
    """Weights of P(y | x) = 1 / (1 + exp(-x @ w)) by Newton's method (x has a 1s column)."""
    w = np.zeros(x.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-x @ w))
        grad = x.T @ (p - y) + ridge * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + ridge * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def answers(run: Run, prob: NDArray[np.float64], threshold: float) -> dict[str, int]:
    """Right answers on covers, and false answers by kind, keeping matches >= threshold and
    answering as the service does (centred first, then by score)."""
    out = {"right": 0, "covers": 0, "false masthead": 0, "false negative": 0, "wrong": 0}
    keep = prob >= threshold
    for n, kind in enumerate(run.kinds):
        mine = np.flatnonzero((run.photo == n) & keep)
        best = -1
        if len(mine):
            order = sorted(mine, key=lambda i: (not run.centred[i], -run.score[i]))
            best = order[0]
        if run.expected[n] >= 0:
            out["covers"] += 1
            out["right"] += bool(best >= 0 and run.right[best])
            out["wrong"] += bool(best >= 0 and not run.right[best])
        elif best >= 0:
            out[f"false {kind}"] += 1
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--train", type=int, nargs="+", required=True)
    p.add_argument("--test", type=int, nargs="*", default=[])
    args = p.parse_args()
    train = [load(s) for s in args.train]
    x = np.concatenate([r.x for r in train])
    y = np.concatenate([r.right for r in train])
    w = logistic(x, y)
    print(f"{len(y)} verified matches, {int(y.sum())} right; weights "
          f"(1, log2 inliers, spread, share, coverage, rest) = "
          f"({', '.join(f'{v:.3f}' for v in w)})")
    for threshold in (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9):
        cells = []
        for name, runs in (("train", train), ("test", [load(s) for s in args.test])):
            for r in runs:
                prob = 1.0 / (1.0 + np.exp(-r.x @ w))
                cells.append(f"{name} {answers(r, prob, threshold)}")
        print(f"p >= {threshold}: " + "; ".join(cells))


if __name__ == "__main__":
    main()
