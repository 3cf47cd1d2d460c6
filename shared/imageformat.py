"""Recognising image formats by content, and reading from their structure (a JPEG's markers,
a PNG's chunks) whether they are whole and what decoding them will cost, without decoding
them."""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Frames whose decoder keeps every DCT coefficient of the image: progressive, and
# differential (hierarchical) ones.
_BUFFERED_SOF = frozenset({0xC2, 0xC5, 0xC6, 0xC7, 0xCA, 0xCD, 0xCE, 0xCF})
_SOS, _EOI = 0xDA, 0xD9
# Segments that may stand between a frame's scans: DHT, DAC, DQT, DNL, DRI, DHP, EXP, APPn, COM.
_TABLE_MARKERS = frozenset({0xC4, 0xCC, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF, *range(0xE0, 0xF0), 0xFE})
# The end of a scan's entropy-coded data: a 0xFF that is not stuffing (00), a restart marker
# (D0-D7) or fill (FF).
_MARKER_AFTER_DATA = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
# Scans a JPEG may have. Each scan of a progressive JPEG revisits the whole image: a crafted
# one of thousands of empty scans fits in a few megabytes and decodes for minutes (measured:
# 24,000 scans of a 40 MP image in 1.9 MB, 39 s). Encoders write 6 to 10 scans (libjpeg's
# progressive script) or a few more (mozjpeg's optimised ones); nvImageCodec refuses over 256.
MAX_SCANS = 100
# PNG samples per pixel by colour type (grey, RGB, palette, grey+alpha, RGBA).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


class ImageFormat(StrEnum):
    JPEG = "jpeg"
    PNG = "png"


@dataclass(frozen=True)
class Header:
    """What an image's structure says about decoding it. Both formats give the size;
    ``coefficient_bytes`` is a JPEG's, ``inflated_bytes`` and ``animated`` a PNG's."""

    format: ImageFormat
    width: int
    height: int
    # JPEG: the DCT coefficients (2 bytes each) the decoder holds for the whole image at once,
    # 0 for a single-scan sequential JPEG (it decodes a row of blocks at a time).
    coefficient_bytes: int = 0
    # PNG: its image data once inflated (its rows of samples, each after a filter byte), which
    # the decoder inflates and unfilters whatever size it is asked for; an APNG's animation.
    inflated_bytes: int = 0
    animated: bool = False

    @property
    def pixels(self) -> int:
        return self.width * self.height


def sniff(head: bytes) -> ImageFormat | None:
    """The format whose signature ``head`` starts with, or None."""
    if head.startswith(_JPEG_MAGIC):
        return ImageFormat.JPEG
    if head.startswith(_PNG_MAGIC):
        return ImageFormat.PNG
    return None


def media_type(data: bytes) -> str:
    """The media type of a JPEG or PNG file (``image/jpeg``, ``image/png``); ValueError for
    anything else."""
    found = sniff(data[:16])
    if found is None:
        raise ValueError("not a JPEG or PNG")
    return f"image/{found}"


def dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of a JPEG or PNG, or None when it cannot be read."""
    header = read_header(data)
    return None if header is None else (header.width, header.height)


def read_header(data: bytes) -> Header | None:
    """The header of a whole JPEG or PNG file, or None when the file is not one: cut short,
    with a marker or chunk out of place, a bad chunk checksum, more than ``MAX_SCANS`` scans,
    or nothing to decode."""
    fmt = sniff(data)
    if fmt is ImageFormat.JPEG:
        return _jpeg_header(data)
    if fmt is ImageFormat.PNG:
        return _png_header(data)
    return None


def _jpeg_header(data: bytes) -> Header | None:
    """Walks the markers from SOI to EOI: segments by their length, each scan's
    entropy-coded data to the next marker. What follows EOI is not read (phones append
    gain maps and motion-photo videos there)."""
    frame: _Frame | None = None
    scans = 0
    pos = 2
    while pos + 2 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == _EOI:
            if frame is None or scans == 0:
                return None
            # a sequential frame of several scans is buffered whole, as a progressive one
            held = frame.coefficient_bytes if frame.progressive or scans > 1 else 0
            return Header(ImageFormat.JPEG, frame.width, frame.height, held)
        if pos + 4 > len(data):
            return None
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if length < 2 or end > len(data):
            return None
        if marker in _SOF_MARKERS and frame is None:
            frame = _jpeg_frame(data[pos + 4 : end], marker)
            if frame is None:
                return None
        elif marker == _SOS and frame is not None and scans < MAX_SCANS:
            scans += 1
            found = _MARKER_AFTER_DATA.search(data, end)
            if found is None:
                return None
            pos = found.start()
            continue
        elif marker not in _TABLE_MARKERS:
            return None  # a second frame, a scan before the frame or past MAX_SCANS, SOI...
        pos = end
    return None


@dataclass(frozen=True)
class _Frame:
    width: int
    height: int
    progressive: bool
    coefficient_bytes: int  # of the whole image, whether or not the decoder holds them


def _jpeg_frame(segment: bytes, marker: int) -> _Frame | None:
    """A start-of-frame segment's size and the bytes of the coefficient arrays libjpeg
    allocates when it buffers the image: 64 coefficients of 2 bytes per 8x8 block of each
    component, rounded up to whole MCUs."""
    if len(segment) < 6:
        return None
    height, width, count = struct.unpack(">HHB", segment[1:6])
    if width == 0 or height == 0 or count == 0 or len(segment) < 6 + 3 * count:
        return None
    sampling = [(max(segment[7 + 3 * i] >> 4, 1), max(segment[7 + 3 * i] & 15, 1))
                for i in range(count)]
    h_max = max(h for h, _ in sampling)
    v_max = max(v for _, v in sampling)
    blocks = 0
    for h, v in sampling:
        across = -(-width * h // (8 * h_max))
        down = -(-height * v // (8 * v_max))
        blocks += -(-across // h) * h * -(-down // v) * v
    return _Frame(width, height, marker in _BUFFERED_SOF, blocks * 128)


def _png_header(data: bytes) -> Header | None:
    """IHDR's size, and whether the chunks that follow it hold image data and end in IEND."""
    if len(data) < 33 or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    channels = _PNG_CHANNELS.get(colour)
    if width == 0 or height == 0 or channels is None or depth not in (1, 2, 4, 8, 16) \
            or interlace > 1:
        return None
    kinds = [kind for kind, _ in _png_chunks(data)]
    if not kinds or kinds[-1] != b"IEND" or b"IDAT" not in kinds:
        return None
    return Header(ImageFormat.PNG, width, height,
                  inflated_bytes=_png_rows_bytes(width, height, channels * depth, interlace),
                  animated=b"acTL" in kinds)


def png_inflates_to_its_size(data: bytes, header: Header) -> bool:
    """Whether a PNG's image data inflates to no more and no less than its rows: libpng
    inflates whatever follows them too (a few kilobytes can inflate to gigabytes), and fails
    on what is short. Inflates at most one byte more than the rows, a megabyte at a time."""
    stream = zlib.decompressobj()
    pending = b"".join(payload for kind, payload in _png_chunks(data) if kind == b"IDAT")
    left = header.inflated_bytes + 1
    try:
        while left > 0 and pending:
            left -= len(stream.decompress(pending, min(left, 1 << 20)))
            pending = stream.unconsumed_tail
    except zlib.error:
        return False
    return left == 1


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, memoryview]]:
    """(type, data) of each chunk, up to IEND or the first one cut short or failing its
    checksum."""
    view = memoryview(data)
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        end = pos + 12 + length
        if end > len(data) or zlib.crc32(view[pos + 4 : end - 4]) != \
                struct.unpack(">I", data[end - 4 : end])[0]:
            return
        kind = data[pos + 4 : pos + 8]
        yield kind, view[pos + 8 : end - 4]
        if kind == b"IEND":
            return
        pos = end


# Adam7's passes: the first column and row of each, and the steps between their pixels.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))


def _png_rows_bytes(width: int, height: int, bits: int, interlace: int) -> int:
    """Bytes of a PNG's filtered rows (a filter byte, then the row's packed samples)."""
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        across, down = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if across > 0 and down > 0:
            total += down * (1 + -(-across * bits // 8))
    return total
