"""Turning uploaded bytes into a grayscale image, refusing what cannot or should not decode."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from shared.codes import ResultCode
from shared.imageformat import dimensions

Gray = npt.NDArray[np.uint8]


class ImageRejected(Exception):
    """The upload is not an image this service can take; ``code`` says why."""

    def __init__(self, code: ResultCode) -> None:
        super().__init__(code.message)
        self.code = code


def decode_gray(data: bytes, *, max_pixels: int) -> Gray:
    """Decode a JPEG or PNG to 8-bit grayscale.

    The size is read from the header first, so that a small file declaring a huge image
    is refused (20006) before any memory is spent on it.
    """
    size = dimensions(data)
    if size is None or size[0] <= 0 or size[1] <= 0:
        raise ImageRejected(ResultCode.BAD_IMAGE_FORMAT)
    if size[0] * size[1] > max_pixels:
        raise ImageRejected(ResultCode.FILE_TOO_LARGE)
    buf = np.frombuffer(data, dtype=np.uint8)
    gray = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    if gray is None or gray.size == 0:
        raise ImageRejected(ResultCode.BAD_IMAGE_FORMAT)
    return np.ascontiguousarray(gray, dtype=np.uint8)
