"""An hnswlib graph on disk: its state (hnswlib's pickle state) as one ``.npy`` file per array
and its parameters as JSON, loaded back from memory maps.

hnswlib's own ``load_index`` asks the file for its position twice per vector (two ``lseek``
calls each) before it reads anything; at 9.2 million vectors that and its small reads took
6.7-8.8 s, against 2.3 s for the same graph given back to ``__setstate__`` from memory-mapped
arrays (BENCHMARKS.md, "Restarting a 100,000-image replica"). Saving asks hnswlib for a copy
of its arrays (``state``), written afterwards (``write``): while they are written, the
process holds the graph twice.

``__setstate__`` copies link lists at offsets it derives from the element levels without
checking them against the arrays, so the arrays' shapes and the levels are checked here first:
a damaged file is a ValueError, never a read out of bounds. Damage inside the arrays (a
neighbour's number) is what the snapshot's checksums catch, before anything searches.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np
from numpy.typing import NDArray

ARRAYS = (
    "data_level0",
    "link_lists",
    "element_levels",
    "label_lookup_external",
    "label_lookup_internal",
)


def _params_path(stem: Path) -> Path:
    return stem.with_name(f"{stem.name}.graph.json")


def _array_path(stem: Path, name: str) -> Path:
    return stem.with_name(f"{stem.name}.{name}.npy")


def state(graph: hnswlib.Index) -> dict[str, Any]:
    """A copy of the graph's arrays and parameters, for ``write``."""
    copied: dict[str, Any] = graph.__getstate__()[0]
    return copied


def write(state: dict[str, Any], stem: Path) -> list[Path]:
    """Write a graph's ``state`` next to ``stem``; the files written. Takes the arrays out
    of ``state`` as they are written, so that each is freed once on disk."""
    written = []
    for name in ARRAYS:
        path = _array_path(stem, name)
        np.save(path, state.pop(name))
        written.append(path)
    params = _params_path(stem)
    params.write_text(json.dumps(state))
    return [params, *written]


def load(stem: Path, dim: int) -> hnswlib.Index:
    """The graph saved at ``stem`` (or, from an older snapshot, hnswlib's own file
    ``stem``.hnsw); raises ValueError or OSError on a damaged one."""
    legacy = stem.with_suffix(".hnsw")
    if legacy.exists():
        graph = hnswlib.Index(space="l2", dim=dim)
        graph.load_index(str(legacy), max_elements=0)
        return graph
    try:
        params = json.loads(_params_path(stem).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{stem}: graph parameters unreadable: {e}") from e
    arrays = {name: np.load(_array_path(stem, name), mmap_mode="r") for name in ARRAYS}
    check(params, arrays, dim)
    graph = hnswlib.Index.__new__(hnswlib.Index)
    graph.__setstate__(({**params, **arrays},))
    return graph


def check(params: dict[str, Any], arrays: dict[str, NDArray[Any]], dim: int) -> None:
    """Raise ValueError unless the arrays have the shapes and types the parameters give,
    and the link lists the element levels say (what ``__setstate__`` copies from)."""
    try:
        count, cap = int(params["cur_element_count"]), int(params["max_elements"])
        per_element, per_links = (
            int(params["size_data_per_element"]),
            int(params["size_links_per_element"]),
        )
        if int(params["dim"]) != dim or params["space"] != "l2":
            raise ValueError(f"a graph of {params['space']} in {params['dim']} dimensions")
    except (KeyError, TypeError) as e:
        raise ValueError(f"graph parameters incomplete: {e}") from e
    expected = {
        "data_level0": (np.int8, count * per_element),
        "element_levels": (np.int32, cap),
        "label_lookup_external": (np.uint64, count),
        "label_lookup_internal": (np.uint32, count),
    }
    for name, (dtype, size) in expected.items():
        a = arrays[name]
        if a.dtype != dtype or a.shape != (size,):
            raise ValueError(f"graph array {name}: {a.dtype} {a.shape}, not {size} of {dtype}")
    if not 0 <= count <= cap:
        raise ValueError(f"graph of {count} elements in room for {cap}")
    levels = np.asarray(arrays["element_levels"][:count], np.int64)
    links = arrays["link_lists"]
    if levels.size and (levels.min() < 0 or levels.max() > int(params["max_level"])):
        raise ValueError("graph element levels out of range")
    if links.dtype != np.int8 or links.shape != (int(levels.sum()) * per_links,):
        raise ValueError(f"graph link lists: {links.shape}, not what the levels give")
    if count and not 0 <= int(params["enterpoint_node"]) < count:
        raise ValueError("graph entry point past its elements")
    internal = arrays["label_lookup_internal"]
    if internal.size and int(internal.max()) >= max(count, 1):
        raise ValueError("graph labels point past its elements")
