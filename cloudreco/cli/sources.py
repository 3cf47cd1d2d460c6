"""What ``cloudreco add`` uploads: the image files named, and an identifier for each from its
file name."""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})  # what AddImage takes
MIN_LENGTH, MAX_LENGTH = 3, 50  # the API's identifier rule: ^[A-Za-z0-9@_.]{3,50}$
_OUTSIDE = re.compile(r"[^A-Za-z0-9@_.]+")
_DIGEST_HEX = 8  # of SHA-1: a cut name stays apart from others sharing its first characters


def image_files(paths: Iterable[Path]) -> list[Path]:
    """Files named as they are (the service judges their content), and the JPEG and PNG
    files (by suffix) directly inside directories named, hidden ones left out, by name."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file()
                            and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        else:
            files.append(path)
    return files


def identifier_for(path: Path) -> str:
    """The file name without its extension, made to fit the identifier rule: accents are
    dropped (é to e), each run of other characters outside A-Z a-z 0-9 @ _ . becomes one _,
    a name shorter than 3 is padded with _, and one longer than 50 is cut to 41 characters,
    _ and the first 8 hex digits of the SHA-1 of the whole name."""
    stem = path.stem
    ascii_stem = "".join(c for c in unicodedata.normalize("NFKD", stem)
                         if not unicodedata.combining(c))
    name = _OUTSIDE.sub("_", ascii_stem).ljust(MIN_LENGTH, "_")
    if len(name) > MAX_LENGTH:
        digest = hashlib.sha1(os.fsencode(stem), usedforsecurity=False).hexdigest()[:_DIGEST_HEX]
        name = f"{name[:MAX_LENGTH - _DIGEST_HEX - 1]}_{digest}"
    return name
