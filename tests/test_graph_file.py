"""hnswlib's graph file, written by a fork of the process and read back in bulk: the same
graph as hnswlib's own loader gives, and a damaged file refused before hnswlib is handed
anything."""

import struct
from collections.abc import Callable
from pathlib import Path

import hnswlib
import numpy as np
import pytest

from matcher.recognition import graph_file

DIM = 8


def _graph(count: int, deleted: int = 0) -> hnswlib.Index:
    graph = hnswlib.Index(space="l2", dim=DIM)
    graph.init_index(max_elements=max(count, 16) + 10, M=8, ef_construction=60, random_seed=1)
    if count:
        vectors = np.random.default_rng(3).standard_normal((count, DIM)).astype(np.float32)
        graph.add_items(vectors, np.arange(count) * 3)  # labels are not the positions
    for label in range(deleted):
        graph.mark_deleted(label * 3)
    return graph


def _queries() -> np.ndarray:
    return np.random.default_rng(4).standard_normal((50, DIM)).astype(np.float32)


def _saved(tmp_path: Path, graph: hnswlib.Index) -> tuple[hnswlib.Index, hnswlib.Index]:
    """The graph read back by this module and by hnswlib's ``load_index``."""
    graph_file.start_save(graph, tmp_path / "c1").wait()
    theirs = hnswlib.Index(space="l2", dim=DIM)
    theirs.load_index(str(tmp_path / "c1.hnsw"), max_elements=0)
    return graph_file.load(tmp_path / "c1", DIM), theirs


def test_a_graph_reads_back_as_hnswlibs_own_loader_reads_it(tmp_path: Path) -> None:
    ours, theirs = _saved(tmp_path, _graph(3000, deleted=40))
    assert ours.__getstate__()[0].keys() == theirs.__getstate__()[0].keys()
    for name, value in theirs.__getstate__()[0].items():
        if name not in ("seed", "num_threads"):
            assert np.array_equal(ours.__getstate__()[0][name], value), name
    for graph in (ours, theirs):
        graph.set_ef(32)
    for a, b in zip(ours.knn_query(_queries(), k=5), theirs.knn_query(_queries(), k=5),
                    strict=True):
        assert np.array_equal(a, b)
    assert 0 not in ours.knn_query(_queries(), k=5)[0]  # a deleted label stays deleted
    ours.add_items(np.ones((1, DIM), np.float32), [99999])  # and it takes adds
    assert ours.knn_query(np.ones((1, DIM), np.float32), k=1)[0][0, 0] == 99999


def test_the_file_holds_the_graph_as_it_was_when_the_save_started(tmp_path: Path) -> None:
    graph = _graph(3000)
    saving = graph_file.start_save(graph, tmp_path / "c1")
    graph.add_items(np.ones((5, DIM), np.float32), np.arange(5) + 10**6)  # while it writes
    saving.wait()
    assert graph_file.load(tmp_path / "c1", DIM).get_current_count() == 3000
    assert graph.get_current_count() == 3005


def test_a_writer_that_cannot_write_the_whole_file_is_an_os_error(tmp_path: Path) -> None:
    saving = graph_file.start_save(_graph(100), tmp_path / "missing" / "c1")
    with pytest.raises(OSError, match="ended with"):  # hnswlib itself says nothing
        saving.wait()


def test_an_empty_graph_reads_back(tmp_path: Path) -> None:
    ours, _ = _saved(tmp_path, _graph(0))
    assert ours.get_current_count() == 0
    ours.add_items(np.ones((1, DIM), np.float32), [5])
    assert ours.knn_query(np.ones((1, DIM), np.float32), k=1)[0][0, 0] == 5


def _link_section(data: bytes) -> int:
    count, per_element = struct.unpack_from("<QQ", data, 16)
    return graph_file.HEADER.size + count * per_element


def _first_upper_list(data: bytes) -> int:
    """The offset of the first nonzero list size in the link section."""
    words = np.frombuffer(data[_link_section(data):], "<u4")
    return _link_section(data) + 4 * int(np.flatnonzero(words)[0])


def _set_word(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + struct.pack("<I", value) + data[offset + 4:]


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda d: d[:-4],
    "a word added": lambda d: d + b"\0\0\0\0",
    "half a word added": lambda d: d + b"\0\0",
    "shorter than the header": lambda d: d[:50],
    "more vectors than the file holds": lambda d: d[:16] + struct.pack("<Q", 10**6) + d[24:],
    "the entry point past the vectors": lambda d: d[:52] + struct.pack("<I", 10**6) + d[56:],
    "a list size not a whole level": lambda d: _set_word(d, _first_upper_list(d), 37),
    "a list size past the end": lambda d: _set_word(d, _first_upper_list(d), 36 * 10**6),
    "the first vector's lists resized": lambda d: _set_word(
        d, _link_section(d), 36 if d[_link_section(d)] == 0 else 0),
    "another vector size": lambda d: d[:24] + struct.pack("<Q", 200) + d[32:],
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_graph_file_is_refused(tmp_path: Path, damage: str) -> None:
    graph_file.start_save(_graph(2000), tmp_path / "c1").wait()
    saved = tmp_path / "c1.hnsw"
    saved.write_bytes(DAMAGE[damage](saved.read_bytes()))
    with pytest.raises(ValueError, match="graph"):
        graph_file.load(tmp_path / "c1", DIM)


def test_a_graph_of_other_dimensions_is_refused(tmp_path: Path) -> None:
    graph_file.start_save(_graph(100), tmp_path / "c1").wait()
    with pytest.raises(ValueError, match="dimensional"):
        graph_file.load(tmp_path / "c1", DIM + 1)
