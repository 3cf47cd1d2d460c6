"""Turning uploaded bytes into a grayscale image (or a colour thumbnail), refusing what
cannot or should not decode.

A JPEG is decoded reduced when the caller needs fewer pixels than it has: libjpeg scales by
1/2, 1/4 or 1/8 in the DCT, so a 40 MP photo costs about what its reduced size does. A PNG
is always inflated and unfiltered whole, whatever size is asked of OpenCV (which then resizes
it), so its cost is bounded by its own limit on that data instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from shared.codes import ResultCode
from shared.imageformat import Header, ImageFormat, png_inflates_to_its_size, read_header

Gray = npt.NDArray[np.uint8]

# A progressive (or multi-scan) JPEG's decoder holds every DCT coefficient of every component
# at once, 2 bytes each, and decodes every one of them whatever size it outputs: 3 bytes a
# pixel for 4:2:0 colour, 6 for 4:4:4. Allowed up to 1.5 bytes a pixel of the pixel limit (a
# 20 MP 4:2:0 image): a 40 MP 4:2:0 one took +114 MiB and 4x a 640x480 photo's CPU.
COEFFICIENT_BYTES_PER_PIXEL = 1.5
_REDUCED = {2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
            8: cv2.IMREAD_REDUCED_GRAYSCALE_8}
_REDUCED_COLOUR = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                   8: cv2.IMREAD_REDUCED_COLOR_8}
# A thumbnail's JPEG quality: libjpeg's usual default, where artefacts are hard to see.
THUMBNAIL_QUALITY = 85


class ImageRejected(Exception):
    """The upload is not an image this service can take; ``code`` says why."""

    def __init__(self, code: ResultCode) -> None:
        super().__init__(code.message)
        self.code = code


@dataclass(frozen=True)
class Decoded:
    """A decoded image, and the size of the full image it was reduced from."""

    gray: Gray
    reduced: int  # full-image pixels per decoded pixel, along each side: 1, 2, 4 or 8
    width: int  # of the full image, as displayed (after its EXIF orientation)
    height: int


@dataclass(frozen=True)
class Limits:
    """What an upload may cost to decode (see shared/settings.py)."""

    max_pixels: int
    max_png_inflated_bytes: int


def decode_gray(data: bytes, limits: Limits,
                side: Callable[[int, int], float] | None = None) -> Decoded:
    """Decode a JPEG or PNG to 8-bit grayscale, turned as its EXIF orientation says.

    ``side(width, height)`` is the long side, in pixels, the caller will bring the image to:
    a JPEG is decoded reduced by the largest factor that keeps its long side at least that.
    Without it the image is decoded whole. The file's structure is read first, so that one
    that is broken (20007) or would cost more than ``limits`` allow (20006) is refused before
    any memory is spent on it.
    """
    pixels, factor, width, height = _decode(data, limits, side, colour=False)
    return Decoded(pixels, factor, width, height)


def thumbnail(data: bytes, limits: Limits, max_side: int) -> bytes:
    """A JPEG of a JPEG or PNG in colour, its long side at most ``max_side`` (never
    enlarged), turned as its EXIF orientation says; refused as ``decode_gray`` refuses. A
    JPEG is decoded reduced, then brought to size by INTER_AREA."""
    pixels, _, _, _ = _decode(data, limits, lambda w, h: max_side, colour=True)
    long_side = max(pixels.shape[:2])
    if long_side > max_side:
        scale = max_side / long_side
        size = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
        pixels = np.asarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), np.uint8)
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, THUMBNAIL_QUALITY])
    if not ok:
        raise ImageRejected(ResultCode.BAD_IMAGE_FORMAT)
    return bytes(encoded)


def _decode(data: bytes, limits: Limits, side: Callable[[int, int], float] | None,
            *, colour: bool) -> tuple[npt.NDArray[np.uint8], int, int, int]:
    """(pixels, reduction factor, full width, full height): ``decode_gray``'s work, in 8-bit
    grayscale or BGR."""
    header = read_header(data)
    if header is None:
        raise ImageRejected(ResultCode.BAD_IMAGE_FORMAT)
    _check(data, header, limits)
    factor = 1 if side is None or header.format is not ImageFormat.JPEG else \
        _reduction(max(header.width, header.height), side(header.width, header.height))
    modes, whole = ((_REDUCED_COLOUR, cv2.IMREAD_COLOR) if colour
                    else (_REDUCED, cv2.IMREAD_GRAYSCALE))
    try:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), modes.get(factor, whole))
    except cv2.error as e:  # OpenCV's own checks on what the decoder reports
        raise ImageRejected(ResultCode.BAD_IMAGE_FORMAT) from e
    if pixels is None or pixels.size == 0:
        raise ImageRejected(ResultCode.BAD_IMAGE_FORMAT)
    width, height = header.width, header.height
    if (pixels.shape[1] - pixels.shape[0]) * (width - height) < 0:
        width, height = height, width  # its EXIF orientation turned it a quarter
    return np.ascontiguousarray(pixels, dtype=np.uint8), factor, width, height


def _check(data: bytes, header: Header, limits: Limits) -> None:
    if header.pixels > limits.max_pixels:
        raise ImageRejected(ResultCode.FILE_TOO_LARGE)
    if header.coefficient_bytes > COEFFICIENT_BYTES_PER_PIXEL * limits.max_pixels:
        raise ImageRejected(ResultCode.FILE_TOO_LARGE)
    if header.inflated_bytes > limits.max_png_inflated_bytes:
        raise ImageRejected(ResultCode.FILE_TOO_LARGE)
    if header.animated:  # not a photo, and OpenCV holds three whole frames to compose it
        raise ImageRejected(ResultCode.BAD_IMAGE_FORMAT)
    if header.format is ImageFormat.PNG and not png_inflates_to_its_size(data, header):
        raise ImageRejected(ResultCode.BAD_IMAGE_FORMAT)


def _reduction(long_side: int, needed: float) -> int:
    """The largest of libjpeg's factors (8, 4, 2) whose output keeps ``needed`` pixels on
    the long side (libjpeg rounds the reduced size up), or 1."""
    for factor in (8, 4, 2):
        if -(-long_side // factor) >= needed:
            return factor
    return 1
