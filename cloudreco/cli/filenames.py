"""File names for ``cloudreco export``: one per identifier of a channel, safe on Linux, macOS
and Windows file systems (case-insensitive ones included), and the same on every run."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable

# What an identifier may hold (the API's rule); the same characters are safe in file names.
_SAFE = re.compile(r"[A-Za-z0-9@_][A-Za-z0-9@_.]{0,49}")
_UNSAFE = re.compile(r"[^A-Za-z0-9@_.]")
MAX_STEM = 50
_DIGEST_HEX = 12  # of SHA-256: names made apart by it stay apart
# Windows refuses these as a file's name before its first dot, whatever the case.
_DEVICES = frozenset({"con", "prn", "aux", "nul", *(f"com{n}" for n in range(1, 10)),
                      *(f"lpt{n}" for n in range(1, 10))})


def file_stems(identifiers: Iterable[str]) -> dict[str, str]:
    """The file name (without extension) of each identifier. An identifier is its own name
    when it is made of A-Z a-z 0-9 @ _ . only, does not start or end with a dot, is not a
    Windows device name (CON, NUL, COM1...) before its first dot, and no other identifier
    of the set equals it but for case. Any other becomes its safe characters (others and
    leading or trailing dots replaced by _, a device name prefixed with _, cut to 50), ``~``
    and 12 hex digits of the SHA-256 of its UTF-8: ``~`` is in no identifier, so made names
    never meet kept ones."""
    given = list(identifiers)
    folded = Counter(i.casefold() for i in given)
    return {i: i if _keeps(i) and folded[i.casefold()] == 1 else _made(i) for i in given}


def _keeps(identifier: str) -> bool:
    return (_SAFE.fullmatch(identifier) is not None and not identifier.endswith(".")
            and identifier.split(".", 1)[0].lower() not in _DEVICES)


def _made(identifier: str) -> str:
    safe = _UNSAFE.sub("_", identifier)
    if safe.split(".", 1)[0].lower() in _DEVICES:
        safe = "_" + safe
    safe = re.sub(r"^\.+|\.+$", lambda m: "_" * len(m.group()), safe[:MAX_STEM])
    digest = hashlib.sha256(identifier.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{safe}~{digest[:_DIGEST_HEX]}"
