"""Recognising image formats by content, and reading their size without decoding them."""

from __future__ import annotations

import struct
from enum import StrEnum

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class ImageFormat(StrEnum):
    JPEG = "jpeg"
    PNG = "png"


def sniff(head: bytes) -> ImageFormat | None:
    """The format whose signature ``head`` starts with, or None."""
    if head.startswith(_JPEG_MAGIC):
        return ImageFormat.JPEG
    if head.startswith(_PNG_MAGIC):
        return ImageFormat.PNG
    return None


def dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of a JPEG or PNG, or None when it cannot be read."""
    fmt = sniff(data)
    if fmt is ImageFormat.PNG:
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if fmt is ImageFormat.JPEG:
        return _jpeg_dimensions(data)
    return None


def _jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _SOF_MARKERS:
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return int(width), int(height)
        pos += 2 + length
    return None
