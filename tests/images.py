"""Images for the tests: benchmark catalog targets, camera-like photos made of them, and the
real set's photos (read in place from ../shared/bench/real)."""

from __future__ import annotations

import csv
import os
import struct
import zlib
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "bench"
BENCH = Path(os.environ.get("CLOUDRECO_BENCH_DATA", _SHARED / "public"))
# Real photos: research data read in place, never copied into the project (its README).
REAL = Path(os.environ.get("CLOUDRECO_REAL_DATA", _SHARED / "real"))


@cache
def _jpeg(root: Path, folder: str, name: str) -> bytes:
    path = root / folder / f"{name}.jpg"
    variable = "CLOUDRECO_REAL_DATA" if root == REAL else "CLOUDRECO_BENCH_DATA"
    assert path.exists(), f"benchmark data missing: {path} (set {variable})"
    return path.read_bytes()


def target(name: str) -> bytes:
    """A benchmark catalog image (JPEG bytes)."""
    return _jpeg(BENCH, "catalog", name)


def bench_photo(name: str) -> bytes:
    """A benchmark query photo (JPEG bytes)."""
    return _jpeg(BENCH, "queries", name)


def real_target(name: str) -> bytes:
    """A catalog image of the real set (JPEG bytes)."""
    return _jpeg(REAL, "catalog", name)


def real_photo(name: str) -> bytes:
    """A photo of the real set (JPEG bytes)."""
    return _jpeg(REAL, "queries", name)


def real_truth(name: str) -> dict[str, str]:
    """The real set's truth for photo ``name``: expected, difficulty, kind, H."""
    path = REAL / "truth.csv"
    assert path.exists(), f"benchmark data missing: {path} (set CLOUDRECO_REAL_DATA)"
    with path.open() as f:
        return next(row for row in csv.DictReader(f) if row["query"] == name)


def true_corners(name: str) -> npt.NDArray[np.float64]:
    """Where the truth's homography puts the corners of real photo ``name``'s target, (0,0),
    (w,0), (w,h), (0,h) of the catalog image, in the photo."""
    row = real_truth(name)
    h, w = cv2.imdecode(np.frombuffer(real_target(row["expected"]), np.uint8),
                        cv2.IMREAD_GRAYSCALE).shape
    homography = np.array([float(v) for v in row["H"].split()], np.float64).reshape(3, 3)
    outline = np.array([[[0, 0], [w, 0], [w, h], [0, h]]], np.float64)
    return np.asarray(cv2.perspectiveTransform(outline, homography)[0], np.float64)


def encode(img: npt.NDArray[np.uint8], ext: str = ".jpg", quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(ext, img, [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg" else [])
    assert ok
    return buf.tobytes()


def flat(width: int = 640, height: int = 480, ext: str = ".png") -> bytes:
    """A featureless grey image: nothing to recognise in it."""
    return encode(np.full((height, width, 3), 128, np.uint8), ext)


def photo_of(name: str, *, seed: int = 0, share: float = 0.45, angle: float = 25.0,
             tilt: float = 0.08, blur: float = 1.2, occlusion: float = 0.15,
             size: tuple[int, int] = (640, 480)) -> tuple[bytes, npt.NDArray[np.float32]]:
    """A camera-like photo of catalog image ``name``: warped by a homography onto a cluttered
    background, partly covered, blurred, noised and JPEG-compressed.

    Returns the JPEG and the true corners of the target in the photo (0,0),(w,0),(w,h),(0,h).
    """
    rng = np.random.default_rng(seed)
    img = cv2.imdecode(np.frombuffer(target(name), np.uint8), cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    width, height = size
    side = np.sqrt(share * width * height / (w * h))
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    centred = (src - [w / 2, h / 2]) * side
    theta = np.deg2rad(angle)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    jitter = rng.uniform(-tilt, tilt, (4, 2)) * [width, height]
    dst = (centred @ rot.T + [width / 2, height / 2] + jitter).astype(np.float32)
    background = cv2.resize(rng.integers(0, 255, (height // 16, width // 16, 3), np.uint8),
                            size, interpolation=cv2.INTER_CUBIC)
    photo = cv2.warpPerspective(img, cv2.getPerspectiveTransform(src, dst), size,
                                dst=background, borderMode=cv2.BORDER_TRANSPARENT)
    if occlusion > 0:  # a patch over part of the target, as a hand or a glare would
        x0, y0 = dst.min(axis=0)
        x1, y1 = dst.max(axis=0)
        pw, ph = np.sqrt(occlusion) * (x1 - x0), np.sqrt(occlusion) * (y1 - y0)
        px, py = rng.uniform(x0, max(x0, x1 - pw)), rng.uniform(y0, max(y0, y1 - ph))
        cv2.rectangle(photo, (int(px), int(py)), (int(px + pw), int(py + ph)),
                      (60, 70, 80), thickness=-1)
    photo = cv2.GaussianBlur(photo, (0, 0), blur)
    noisy = photo.astype(np.float32) + rng.normal(0, 4, photo.shape)
    return encode(np.clip(noisy, 0, 255).astype(np.uint8), quality=70), dst


def upscaled(jpeg: bytes, factor: float, quality: int = 90) -> bytes:
    """The photo ``jpeg`` enlarged ``factor`` times, as a bigger camera would take it."""
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    big = cv2.resize(img, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    return encode(big, quality=quality)


def with_orientation(jpeg: bytes, orientation: int) -> bytes:
    """``jpeg`` with an EXIF APP1 segment whose Orientation tag (0x0112) is ``orientation``
    (6: the stored pixels are shown turned a quarter clockwise)."""
    entry = struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)  # SHORT, one value
    tiff = b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 1) + entry + struct.pack("<I", 0)
    payload = b"Exif\0\0" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(width: int, height: int, idat: bytes, *, colour: int = 0, depth: int = 8,
            extra: bytes = b"") -> bytes:
    """A PNG built chunk by chunk, with valid checksums, whatever its header and data say:
    ``extra`` chunks go between IHDR and IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))
