"""Decoding uploads: reduced as far as the caller's size allows, turned as EXIF says, and
refused by what their structure declares before anything is decoded."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from matcher.imaging import ImageRejected, Limits, decode_gray
from shared.codes import ResultCode
from shared.imageformat import ImageFormat, dimensions, read_header, sniff
from tests.images import bench_photo, encode, flat, target, upscaled, with_orientation

LIMITS = Limits(max_pixels=40_000_000, max_png_inflated_bytes=24 << 20)


def test_sizes_are_read_without_decoding() -> None:
    jpeg, png = target("pub.home.0"), flat(320, 200)
    assert sniff(jpeg) is ImageFormat.JPEG and sniff(png) is ImageFormat.PNG
    assert dimensions(png) == (320, 200)
    gray = decode_gray(jpeg, LIMITS).gray
    assert dimensions(jpeg) == (gray.shape[1], gray.shape[0])
    progressive = cv2.imencode(".jpg", np.zeros((30, 40, 3), np.uint8),
                               [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    assert dimensions(progressive) == (40, 30)
    assert dimensions(b"\xff\xd8\xff") is None and dimensions(b"nope") is None


def test_image_over_the_pixel_limit_is_refused() -> None:
    with pytest.raises(ImageRejected) as refused:
        decode_gray(flat(400, 300), Limits(max_pixels=100_000, max_png_inflated_bytes=1 << 20))
    assert refused.value.code == ResultCode.FILE_TOO_LARGE


@pytest.mark.parametrize(("orientation", "shown"), [(1, (4032, 3024)), (6, (3024, 4032))])
def test_a_large_jpeg_is_decoded_reduced_turned_as_exif_says(
        orientation: int, shown: tuple[int, int]) -> None:
    photo = with_orientation(upscaled(bench_photo("q00000"), 6.3), orientation)
    whole = decode_gray(photo, LIMITS)
    reduced = decode_gray(photo, LIMITS, side=lambda w, h: 400)
    assert (whole.reduced, whole.width, whole.height) == (1, *shown)
    assert whole.gray.shape == (shown[1], shown[0])
    # 1/8 would leave 504 px on the long side, enough for 400
    assert (reduced.reduced, reduced.width, reduced.height) == (8, *shown)
    assert reduced.gray.shape == (shown[1] // 8, shown[0] // 8)
    area = cv2.resize(whole.gray, reduced.gray.shape[::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(area.astype(int) - reduced.gray).mean() < 2.0  # the same picture


def test_reduction_keeps_the_side_asked_for() -> None:
    photo = upscaled(bench_photo("q00000"), 1.6)  # 1024 x 768
    for side, factor in [(1024, 1), (512, 2), (320, 2), (256, 4), (128, 8), (100, 8)]:
        decoded = decode_gray(photo, LIMITS, side=lambda w, h, s=side: s)
        assert decoded.reduced == factor
        assert max(decoded.gray.shape) >= side
    png = encode(cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR), ".png")
    assert decode_gray(png, LIMITS, side=lambda w, h: 128).reduced == 1  # inflated whole


def test_a_progressive_jpeg_is_refused_when_its_coefficients_outweigh_the_pixel_limit() -> None:
    # libjpeg holds every coefficient of a progressive JPEG: 3 bytes a pixel in 4:2:0 colour,
    # 6 in 4:4:4, allowed up to 1.5 bytes a pixel of the pixel limit
    img = cv2.imdecode(np.frombuffer(bench_photo("q00000"), np.uint8), cv2.IMREAD_COLOR)
    limits = Limits(max_pixels=2 * 640 * 480 + 1000, max_png_inflated_bytes=1 << 20)

    def jpeg(progressive: int, sampling: int) -> bytes:
        return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_PROGRESSIVE, progressive,
                                          cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling])[1].tobytes()

    assert decode_gray(jpeg(1, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420), limits).gray.shape == \
        (480, 640)
    assert decode_gray(jpeg(0, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444), limits).gray.shape == \
        (480, 640)
    header = read_header(jpeg(1, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444))
    assert header is not None and header.coefficient_bytes == 640 * 480 * 3 * 2
    with pytest.raises(ImageRejected) as refused:
        decode_gray(jpeg(1, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444), limits)
    assert refused.value.code == ResultCode.FILE_TOO_LARGE
