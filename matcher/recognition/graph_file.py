"""An hnswlib graph on disk, in hnswlib's own file format: written by a fork of the process,
read back in bulk.

hnswlib holds the GIL while it writes a graph (about 10 s at 9.2 million vectors), which
stopped the replica's event loop for that long: it dropped out of its shard's live replicas
at every snapshot. ``start_save`` writes from a fork instead, which sees the graph as it was
at the fork; the replica only waits for the fork, and pages it changes meanwhile are copied.

hnswlib's ``load_index`` asks the file for its position twice per vector (an ``lseek`` each)
and reads every vector's upper-level links with a call of its own: at 9.2 million vectors that
took 6.7-8.8 s. This reader memory-maps the file, finds each vector's level with one pass over
the link section's words, and hands the arrays to hnswlib's ``__setstate__``, which copies
them in bulk (BENCHMARKS.md, "Restarting a 100,000-image replica").

``__setstate__`` trusts what it is given (it copies link lists at offsets it derives from the
levels), so the header, the levels and the file's size are checked against each other first:
a damaged file is a ValueError, never a read out of bounds. Damage inside the arrays (a
neighbour's number) is what the snapshot's checksums catch, before anything searches.
"""

from __future__ import annotations

import os
import signal
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np
from numpy.typing import NDArray

from matcher.lifeline import die_with_parent

# hnswlib's header: offsetLevel0_, max_elements_, cur_element_count, size_data_per_element_,
# label_offset_, offsetData_ (size_t), maxlevel_ (int), enterpoint_node_ (unsigned int),
# maxM_, maxM0_, M_ (size_t), mult_ (double), ef_construction_ (size_t).
HEADER = struct.Struct("<6QiI3QdQ")
WORD = 4  # the link section is in 32-bit words: a list's size in bytes, then the list
LABEL = 8
DELETED = 0x01  # in the third byte of a vector's level-0 link header
SEED = 100  # the graphs' random seed (their levels), as ChannelIndex makes them


def path(stem: Path) -> Path:
    return stem.with_suffix(".hnsw")


@dataclass(frozen=True)
class Saving:
    """A graph being written by a fork of this process."""

    pid: int
    path: Path

    def wait(self) -> Path:
        """The file, once written; raises OSError when the writer failed."""
        _, status = os.waitpid(self.pid, 0)  # lets go of the GIL while it waits
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise OSError(f"the process writing {self.path} ended with {code}")
        return self.path


def start_save(graph: hnswlib.Index, stem: Path) -> Saving:
    """Start writing ``graph`` as it is now to ``stem``.hnsw, in a fork of this process. The
    caller keeps the graph unchanged until this returns, and may change it after."""
    saved = path(stem)
    with warnings.catch_warnings():
        # Python 3.12+ warns of fork in a threaded process: the fork runs hnswlib's writer
        # only, which takes no lock another thread may hold, then _exit()s.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            _become_writer()
            graph.save_index(str(saved))  # says nothing when it cannot write (a full disk)
            code = 0 if os.path.getsize(saved) == graph.index_file_size() else 2
        finally:
            os._exit(code)
    return Saving(pid, saved)


def _become_writer() -> None:
    """In the fork: end with the replica, and take no signal as the replica's event loop
    (its wake-up descriptor is shared with the replica)."""
    die_with_parent()
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)


def load(stem: Path, dim: int) -> hnswlib.Index:
    """The graph saved at ``stem``; raises ValueError or OSError on a damaged one."""
    data = np.memmap(path(stem), np.uint8, mode="r")
    if data.size < HEADER.size:
        raise ValueError("graph file shorter than its header")
    head = dict(
        zip(
            (
                "offset_level0",
                "max_elements",
                "cur_element_count",
                "size_data_per_element",
                "label_offset",
                "offset_data",
                "max_level",
                "enterpoint_node",
                "max_M",
                "max_M0",
                "M",
                "mult",
                "ef_construction",
            ),
            HEADER.unpack(bytes(data[: HEADER.size])),
            strict=True,
        )
    )
    count, per_element = head["cur_element_count"], head["size_data_per_element"]
    _check_layout(head, dim)
    level0_end = HEADER.size + count * per_element
    if data.size < level0_end or (data.size - level0_end) % WORD:
        raise ValueError("graph file's size disagrees with its header")
    level0 = data[HEADER.size : level0_end]
    words = data[level0_end:].view("<u4")
    per_links = head["max_M"] * WORD + WORD
    levels, links = _levels_and_links(words, count, per_links)
    if count and (
        levels.max() > head["max_level"] or levels[head["enterpoint_node"]] != head["max_level"]
    ):
        raise ValueError("graph levels disagree with its entry point")
    rows = level0.reshape(count, per_element)
    labels = rows[:, head["label_offset"] : head["label_offset"] + LABEL].copy().view("<u8")
    deleted = bool(count) and bool((rows[:, head["offset_level0"] + 2] & DELETED).any())
    element_levels = np.zeros(max(head["max_elements"], count), np.int32)
    element_levels[:count] = levels
    state: dict[str, Any] = {
        **head,
        "max_elements": len(element_levels),
        "ser_version": 1,
        "space": "l2",
        "dim": dim,
        "index_inited": True,
        "ep_added": count > 0,
        "normalize": False,
        "num_threads": -1,
        "seed": SEED,
        "ef": 10,
        "has_deletions": deleted,
        "size_links_per_element": per_links,
        "allow_replace_deleted": False,
        "label_lookup_external": labels.ravel(),
        "label_lookup_internal": np.arange(count, dtype=np.uint32),
        "element_levels": element_levels,
        "data_level0": level0.view(np.int8),
        "link_lists": links.view(np.int8),
    }
    graph = hnswlib.Index.__new__(hnswlib.Index)
    graph.__setstate__((state,))
    return graph


def _check_layout(head: dict[str, Any], dim: int) -> None:
    """Raise ValueError unless the header describes vectors of ``dim`` floats laid out as
    hnswlib lays them: level-0 links, the vector, its label."""
    offset_data = head["max_M0"] * WORD + WORD
    if not (
        head["offset_level0"] == 0
        and head["offset_data"] == offset_data
        and head["label_offset"] == offset_data + dim * WORD
        and head["size_data_per_element"] == offset_data + dim * WORD + LABEL
        and 0 < head["max_M"] <= head["max_M0"] < 2**16
    ):
        raise ValueError(f"graph header is not of {dim}-dimensional vectors: {head}")
    count = head["cur_element_count"]
    if count > 2**32 - 1 or (count and not 0 <= head["enterpoint_node"] < count):
        raise ValueError("graph entry point past its elements")
    if count and not 0 <= head["max_level"] < 64:
        raise ValueError("graph top level out of range")


def _levels_and_links(
    words: NDArray[np.uint32], count: int, per_links: int
) -> tuple[NDArray[np.int32], NDArray[np.uint32]]:
    """Each vector's level, and all upper-level link lists end to end (what hnswlib's
    ``__getstate__`` gives), from the link section: per vector, its lists' size in bytes
    (0 for a vector on level 0 only) followed by the lists."""
    size = len(words)
    # next_set[k]: the first nonzero word at or after k, so that runs of level-0 vectors
    # (one zero word each) are stepped over at once
    index_type = np.int32 if size < 2**31 else np.int64
    at = np.where(words != 0, np.arange(size, dtype=index_type), index_type(size))
    next_set = np.minimum.accumulate(at[::-1])[::-1].copy().data
    sizes = np.ascontiguousarray(words).data
    levels = np.zeros(count, np.int32)
    starts: list[int] = []
    lengths: list[int] = []
    vector, word = 0, 0
    while word < size:
        found = next_set[word]
        vector += found - word
        if found == size:
            word = size
            break
        nbytes = sizes[found]
        if vector >= count or nbytes % per_links:
            raise ValueError("graph link section does not parse")
        levels[vector] = nbytes // per_links
        starts.append(found + 1)
        lengths.append(nbytes // WORD)
        vector, word = vector + 1, found + 1 + nbytes // WORD
    if vector != count or word != size:
        raise ValueError("graph link section does not hold one list per vector")
    if not starts:
        return levels, np.zeros(0, np.uint32)
    first = np.repeat(np.array(starts) - np.cumsum([0, *lengths[:-1]]), lengths)
    return levels, words[first + np.arange(len(first))]
