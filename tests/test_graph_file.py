"""An index's graph saved as hnswlib's state arrays and loaded back from memory maps."""

from pathlib import Path

import hnswlib
import numpy as np
import pytest

from matcher.recognition import graph_file

DIM = 8


def _graph(count: int) -> hnswlib.Index:
    graph = hnswlib.Index(space="l2", dim=DIM)
    graph.init_index(max_elements=max(count, 16) + 10, M=8, ef_construction=60, random_seed=1)
    if count:
        vectors = np.random.default_rng(3).standard_normal((count, DIM)).astype(np.float32)
        graph.add_items(vectors, np.arange(count) * 3)  # labels are not the positions
    return graph


def _queries() -> np.ndarray:
    return np.random.default_rng(4).standard_normal((50, DIM)).astype(np.float32)


def test_a_saved_graph_answers_as_the_original(tmp_path: Path) -> None:
    original = _graph(3000)
    original.set_ef(32)
    graph_file.write(graph_file.state(original), tmp_path / "c1")
    loaded = graph_file.load(tmp_path / "c1", DIM)
    loaded.set_ef(32)
    assert loaded.get_current_count() == 3000
    assert loaded.get_max_elements() == original.get_max_elements()
    for a, b in zip(original.knn_query(_queries(), k=5), loaded.knn_query(_queries(), k=5),
                    strict=True):
        assert np.array_equal(a, b)
    loaded.add_items(np.ones((1, DIM), np.float32), [99999])  # and it takes adds
    assert loaded.knn_query(np.ones((1, DIM), np.float32), k=1)[0][0, 0] == 99999


def test_an_empty_graph_round_trips(tmp_path: Path) -> None:
    graph_file.write(graph_file.state(_graph(0)), tmp_path / "c1")
    loaded = graph_file.load(tmp_path / "c1", DIM)
    assert loaded.get_current_count() == 0
    loaded.add_items(np.ones((1, DIM), np.float32), [5])
    assert loaded.knn_query(np.ones((1, DIM), np.float32), k=1)[0][0, 0] == 5


def test_a_graph_in_hnswlibs_own_format_still_loads(tmp_path: Path) -> None:
    original = _graph(500)
    original.save_index(str(tmp_path / "c1.hnsw"))
    loaded = graph_file.load(tmp_path / "c1", DIM)
    assert np.array_equal(loaded.knn_query(_queries(), k=3)[0],
                          original.knn_query(_queries(), k=3)[0])


def _rewrite(tmp_path: Path, name: str, change: object) -> None:
    path = tmp_path / f"c1.{name}.npy"
    a = np.load(path)
    np.save(path, change(a))  # type: ignore[operator]


@pytest.mark.parametrize(("name", "change"), [
    ("element_levels", lambda a: a + (np.arange(a.size) == 7)),  # one level more: links short
    ("element_levels", lambda a: a - 100),
    ("link_lists", lambda a: a[:-36]),
    ("data_level0", lambda a: a[:-1]),
    ("data_level0", lambda a: a.astype(np.int16)),
    ("label_lookup_internal", lambda a: a + 10_000),
    ("label_lookup_external", lambda a: a[:-1]),
])
def test_a_graph_whose_arrays_disagree_is_refused_before_hnswlib_reads_it(
        tmp_path: Path, name: str, change: object) -> None:
    graph_file.write(graph_file.state(_graph(2000)), tmp_path / "c1")
    _rewrite(tmp_path, name, change)
    with pytest.raises(ValueError, match="graph"):
        graph_file.load(tmp_path / "c1", DIM)


def test_a_graph_of_other_dimensions_or_unreadable_parameters_is_refused(
        tmp_path: Path) -> None:
    graph_file.write(graph_file.state(_graph(100)), tmp_path / "c1")
    with pytest.raises(ValueError, match="dimensions"):
        graph_file.load(tmp_path / "c1", DIM + 1)
    (tmp_path / "c1.graph.json").write_text('{"dim": 8')
    with pytest.raises(ValueError, match="unreadable"):
        graph_file.load(tmp_path / "c1", DIM)
