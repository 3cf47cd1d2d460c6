"""What the size photos are searched at does to recall, on photos as they are and enlarged.

    python -m benchmarks.size_recall --data ../shared/bench/real [--sizes 0 4032]
        [--sides 320 512] [--whole]

Searches every query photo of ``--data`` in-process, at each long side of ``--sizes`` (0: as
it is; others: upscaled with cubic interpolation and stored as JPEG quality 90, the same view
from a bigger camera) and each ``query_max_side`` of ``--sides``: recall per group, false
positives, wrong answers, the median corner error where the truth has a homography (in the
photo's own pixels) and the median decode+extract+search time. ``--whole`` decodes photos
whole first, as FindImage did before it decoded JPEGs reduced.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.inprocess import LIMITS, index_catalog
from benchmarks.recognition import score, truth
from matcher import features, recognition
from matcher.imaging import decode_gray


def upscaled(data: bytes, side: int) -> bytes:
    """The photo ``data`` brought to ``side`` pixels on its long side, as JPEG quality 90."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    k = side / max(h, w)
    big = cv2.resize(img, (round(w * k), round(h * k)), interpolation=cv2.INTER_CUBIC)
    return bytes(cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 90])[1])


def whole_photo_features(data: bytes, cfg: recognition.Config) -> recognition.Features:
    """A photo's features from its whole decoded image, as FindImage extracted them before."""
    return recognition.extract_query(decode_gray(data, LIMITS).gray, cfg)


def corner_error(corners: np.ndarray, h: str, size: tuple[int, int]) -> float:
    """Mean distance of ``corners`` from the true ones (the truth's homography maps the
    catalog image's pixels, of ``size`` (height, width), to the photo's)."""
    truth_h = np.array([float(v) for v in h.split()], np.float64).reshape(3, 3)
    hgt, w = size
    outline = np.array([[0, 0], [w, 0], [w, hgt], [0, hgt]], np.float64)
    true = cv2.perspectiveTransform(outline[None], truth_h)[0]
    return float(np.linalg.norm(corners - true, axis=1).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--sizes", type=int, nargs="+", default=[0])
    p.add_argument("--sides", type=int, nargs="+", default=[recognition.CFG.query_max_side])
    p.add_argument("--whole", action="store_true", help="decode photos whole first")
    args = p.parse_args()
    cv2.setNumThreads(1)
    index, names, _ = index_catalog(args.data)
    ids = {name: i for i, name in names.items()}
    rows = truth(args.data)
    catalog_sizes = {name: cv2.imread(str(args.data / "catalog" / f"{name}.jpg"),
                                      cv2.IMREAD_GRAYSCALE).shape for name in ids}
    extract = whole_photo_features if args.whole else \
        lambda data, cfg: features.photo_features(data, LIMITS, cfg)
    originals: dict[str, tuple[int, ...]] = {}
    print(f"{args.data.name}: {len(rows)} photos, {len(names)} targets indexed; "
          f"{'whole' if args.whole else 'reduced'} decoding")
    for size in args.sizes:
        photos = {}
        for row in rows:
            data = (args.data / "queries" / f"{row['query']}.jpg").read_bytes()
            photos[row["query"]] = data if size == 0 else upscaled(data, size)
            originals[row["query"]] = cv2.imdecode(np.frombuffer(data, np.uint8),
                                                   cv2.IMREAD_GRAYSCALE).shape
        for side in args.sides:
            cfg = dataclasses.replace(recognition.CFG, query_max_side=side)
            index.cfg = cfg  # verification's tolerance is in the pixels searched
            answers: dict[str, str] = {}
            errors: list[float] = []
            seconds = []
            for row in rows:
                data = photos[row["query"]]
                started = time.perf_counter()
                q = extract(data, cfg)
                found = index.search(q, limit=cfg.candidates) \
                    if len(q.xy) >= features.MIN_QUERY_FEATURES else []
                seconds.append(time.perf_counter() - started)
                answers[row["query"]] = names[found[0].image_id] if found else ""
                if found and row.get("H") and answers[row["query"]] == row["expected"]:
                    # in the pixels of the photo as the truth has it, whatever size was sent
                    k = max(originals[row["query"]]) / max(q.width, q.height)
                    errors.append(corner_error(found[0].corners * k, row["H"],
                                               catalog_sizes[row["expected"]]))
            result = score(rows, answers)
            print(f"size {size or 'as is'} side {side}: "
                  f"{', '.join(f'{g} {v:.3f}' for g, v in result.recall.items())}; "
                  f"false positives {result.false_positives[0]} of "
                  f"{result.false_positives[1]}; wrong {result.wrong[0]}; corners "
                  f"{np.median(errors) if errors else float('nan'):.2f} px ({len(errors)}); "
                  f"median {np.median(seconds) * 1000:.1f} ms", flush=True)


if __name__ == "__main__":
    main()
