"""Index snapshots: a replica's channel indexes saved with the change-log position they
reflect, so that a restart loads them and replays only the changes after it.

A snapshot is a folder ``<root>/shard-<n>/<generation>-<seq>-<tag>`` holding each channel's
index files and ``manifest.json``, which names what it was taken of (database, shard-map
generation, shard, feature version) and each file's CRC-32. It is written under a temporary
name and renamed when complete, so a crash leaves no half snapshot under a real name. A
snapshot that fails any check (missing, damaged, of another database, map or feature
version, or ahead of the change log) is passed over: the caller then rebuilds from Postgres.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import mmap
import os
import shutil
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from matcher.recognition import ChannelIndex

log = logging.getLogger(__name__)
FORMAT = 2  # 2: the manifest names each channel's descriptor dimensions
KEEP = 2  # snapshots kept per shard: the newest, and one in case it turns out damaged


@dataclass(frozen=True)
class Identity:
    """What a snapshot must have been taken of to be loaded."""

    cluster_id: str
    generation: int
    shard: int
    feature_version: int


@dataclass(frozen=True)
class Snapshot:
    seq: int
    indexes: dict[int, ChannelIndex]
    written: float  # when it was written (epoch seconds)


def _crc(path: Path) -> int:
    """The file's CRC-32, in one call over a memory map: zlib lets go of the GIL for the
    whole file, so it runs beside a load that holds the GIL."""
    with path.open("rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return zlib.crc32(b"")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return zlib.crc32(view)


def _damaged(folder: Path, files: dict[str, int]) -> list[str]:
    return [name for name, crc in files.items() if _crc(folder / name) != crc]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def shard_dir(root: Path, shard: int) -> Path:
    return root / f"shard-{shard}"


def save(root: Path, ident: Identity, seq: int, indexes: dict[int, ChannelIndex]) -> Path:
    """Write a snapshot of ``indexes`` at change ``seq``; keeps the newest ``KEEP``."""
    home = shard_dir(root, ident.shard)
    tag = uuid.uuid4().hex[:8]
    tmp = home / f".tmp-{tag}"
    tmp.mkdir(parents=True)
    try:
        files: dict[str, int] = {}
        for channel_id, index in indexes.items():
            for path in index.save(tmp / f"c{channel_id}"):
                _fsync(path)
                files[path.name] = _crc(path)
        manifest = {"format": FORMAT, **dataclasses.asdict(ident), "seq": seq,
                    "channels": {str(c): indexes[c].dim for c in sorted(indexes)},
                    "files": files}
        (tmp / "manifest.json").write_text(json.dumps(manifest))
        _fsync(tmp / "manifest.json")
        final = home / f"{ident.generation}-{seq:016d}-{tag}"
        tmp.rename(final)
        _fsync(home)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in _candidates(home)[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _candidates(home: Path) -> list[Path]:
    """Complete snapshots of a shard, newest (highest generation, then seq) first."""
    def order(p: Path) -> tuple[int, int]:
        generation, seq, _ = p.name.split("-", 2)
        return int(generation), int(seq)

    found = []
    if home.is_dir():
        for p in home.iterdir():
            try:
                order(p)
            except ValueError:
                continue  # a temporary folder, or not ours
            found.append(p)
    return sorted(found, key=order, reverse=True)


def _read(folder: Path, ident: Identity, head: int, first_kept: int) -> Snapshot:
    manifest = json.loads((folder / "manifest.json").read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"format {manifest.get('format')}, not {FORMAT}")
    taken_of = Identity(**{f.name: manifest[f.name] for f in dataclasses.fields(Identity)})
    if taken_of != ident:
        raise ValueError(f"taken of {taken_of}, not {ident}")
    seq = int(manifest["seq"])
    if seq > head:
        raise ValueError(f"at change {seq}, ahead of the log's {head}")
    if seq + 1 < first_kept:
        raise ValueError(f"at change {seq}, but the log keeps changes from {first_kept} only")
    # The checksums are computed while the indexes load (hnswlib only copies what it reads
    # and checks the file's framing; nothing walks the graph before the sums are compared).
    with ThreadPoolExecutor(1) as checker:
        damaged = checker.submit(_damaged, folder, manifest["files"])
        try:
            indexes = {int(c): ChannelIndex.load(folder / f"c{c}", int(dim))
                       for c, dim in manifest["channels"].items()}
        finally:
            bad = damaged.result()
    if bad:
        raise ValueError(f"{', '.join(bad)} damaged (CRC mismatch)")
    return Snapshot(seq, indexes, (folder / "manifest.json").stat().st_mtime)


def load(root: Path, ident: Identity, head: int, first_kept: int) -> Snapshot | None:
    """The newest usable snapshot of the shard, or None (the caller rebuilds): one whose
    changes up to the log's ``head`` are all still in the log (from ``first_kept``)."""
    for folder in _candidates(shard_dir(root, ident.shard)):
        try:
            return _read(folder, ident, head, first_kept)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
            log.warning("snapshot %s not used: %s", folder, e)
    return None
