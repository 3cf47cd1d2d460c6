"""Every photo's answers in-process, written to JSON, to check that a change of the code keeps
recognition's results: the verified matches (identifier, score, corners to 0.01 px) of each
photo and the level of each catalog image.

    python -m benchmarks.answers --data ../shared/bench/public --out before.json
    python -m benchmarks.answers --data ../shared/bench/public --out after.json \
        --compare before.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.inprocess import index_catalog, photo
from benchmarks.recognition import truth
from matcher import features


def answers(data: Path) -> dict[str, Any]:
    index, names, levels = index_catalog(data)
    out: dict[str, Any] = {"levels": levels}
    for row in truth(data):
        q = photo(data / "queries" / f"{row['query']}.jpg")
        found = index.search(q, limit=10) if len(q.xy) >= features.MIN_QUERY_FEATURES else []
        out[row["query"]] = [[names[m.image_id], round(m.score, 3),
                              np.round(m.corners, 2).tolist()] for m in found]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--compare", type=Path, help="answers written before: print what differs")
    args = p.parse_args()
    cv2.setNumThreads(1)
    now = answers(args.data)
    args.out.write_text(json.dumps(now, sort_keys=True))
    if args.compare:
        before = json.loads(args.compare.read_text())
        differ = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
        print(f"{len(now) - 1} photos; {len(differ)} differ{': ' if differ else ''}"
              f"{', '.join(differ[:20])}")


if __name__ == "__main__":
    main()
