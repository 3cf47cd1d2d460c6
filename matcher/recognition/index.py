"""One channel's catalog in memory: an hnswlib index of target descriptors plus, per index
slot, the image it belongs to and its keypoint (for verification); searched by voting and
verifying candidates."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np
from numpy.typing import NDArray

from matcher.recognition import graph_file
from matcher.recognition.candidates import Candidate, Entries, Pairs
from matcher.recognition.config import CFG, Config
from matcher.recognition.features import Features, Match
from matcher.recognition.pca import PCA
from matcher.recognition.sharing import shared_hits
from matcher.recognition.slots import SlotTable, to_fraction, to_geo
from matcher.recognition.verify import Debug, check
from matcher.recognition.votes import vote
from matcher.rwlock import RWLock


class ChannelIndex:
    """One channel's catalog in memory: an hnswlib index of target descriptors plus, per index
    slot, the image it belongs to and the keypoint position (for verification)."""

    def __init__(
        self, dim: int | None = None, capacity: int = 1024, cfg: Config | None = None
    ) -> None:
        self.cfg = cfg or CFG
        self.dim = dim or PCA.dim
        self._slots = SlotTable(max(capacity, 16))
        self._ix = hnswlib.Index(space="l2", dim=self.dim)
        self._ix.init_index(
            max_elements=self._slots.cap,
            M=self.cfg.M,
            ef_construction=self.cfg.ef_construction,
            random_seed=graph_file.SEED,
        )
        self._ix.set_ef(self.cfg.ef)
        # Per image one int32 array, [width, height, slot, slot, ...]: one Python object
        self._images: dict[int, NDArray[np.int32]] = {}
        self._lock = RWLock()  # searches share it; add and remove hold it alone

    def __len__(self) -> int:
        return len(self._images)

    def __contains__(self, image_id: int) -> bool:
        return image_id in self._images

    @property
    def n_vectors(self) -> int:
        return self._slots.used

    def _grow(self, need: int) -> None:
        if self._slots.fits(need):
            return
        # grow by an eighth: hnswlib keeps ~44 resident bytes per spare slot (a mutex and a
        # level), so spare room costs ~0.25 KiB per image on average; a resize copies the
        # index, which at this rate is about 9 copies of it over its growth (amortised)
        new = max(int(self._slots.cap * 1.125), self._slots.next + need + 16)
        self._ix.resize_index(new)
        self._slots.grow(new)

    def add(self, image_id: int, f: Features) -> None:
        """Add (or replace) one image."""
        self.add_many([(image_id, f)])

    def _of(self, image_id: int) -> NDArray[np.int32]:
        return self._images[image_id][2:]

    def _size(self, image_id: int) -> tuple[int, int]:
        wh = self._images[image_id]
        return int(wh[0]), int(wh[1])

    def remove(self, image_id: int) -> None:
        with self._lock.write():
            self._remove(image_id)

    def _remove(self, image_id: int) -> None:
        if image_id not in self._images:
            return
        slots = self._of(image_id)
        recheck = self._unmark_after(slots)
        del self._images[image_id]
        for s in slots.tolist():
            self._ix.mark_deleted(s)
        self._slots.release(slots)
        recheck = recheck[self._slots.img[recheck] >= 0]
        if len(recheck):
            self._slots.shared[recheck] = 0
            self._mark_shared(recheck, np.asarray(self._ix.get_items(recheck), np.float32), 1)

    def add_many(self, items: list[tuple[int, Features]], threads: int = 1) -> None:
        """Add several images in one hnswlib insert spread over ``threads`` (a rebuild)."""
        with self._lock.write():
            for image_id, _ in items:
                self._remove(image_id)
            fresh = [(i, f) for i, f in items if len(f.desc)]
            for image_id, f in items:
                if not len(f.desc):
                    self._images[image_id] = np.array([f.width, f.height], np.int32)
            n = sum(len(f.desc) for _, f in fresh)
            if n == 0:
                return
            self._grow(n)
            sl = self._slots.take(n)
            self._ix.add_items(np.concatenate([f.desc for _, f in fresh]), sl, num_threads=threads)
            at = 0
            for image_id, f in fresh:
                mine = sl[at : at + len(f.desc)]
                at += len(f.desc)
                self._slots.img[mine] = image_id
                self._slots.xy[mine] = to_fraction(f.xy, f.width, f.height)
                self._slots.geo[mine] = to_geo(f.angle, f.size, len(f.desc))
                self._images[image_id] = np.concatenate([[f.width, f.height], mine]).astype(
                    np.int32
                )
            if self.cfg.shared_dist > 0:
                self._mark_shared(sl, np.concatenate([f.desc for _, f in fresh]), threads)

    def _mark_shared(
        self, slots: NDArray[np.int64], desc: NDArray[np.float32], threads: int
    ) -> None:
        """Mark the entries ``slots`` (descriptors ``desc``) that another image has (an entry
        of it within ``shared_dist``), and that image's entries too."""
        found = self._near(desc, threads)
        if found is None:
            return
        labels, dists = found
        own = self._slots.img[slots]
        sizes = {i: len(self._of(i)) for i in np.unique(own).tolist()}
        hit = shared_hits(own, labels, dists, self._slots.img, sizes, self.cfg.shared_dist)
        self._slots.shared[slots[hit.any(1)]] = 1
        self._slots.shared[labels[hit]] = 1

    def _near(
        self, desc: NDArray[np.float32], threads: int = 1
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]] | None:
        try:
            labels, dists = self._ix.knn_query(desc, k=min(3, self.n_vectors), num_threads=threads)
        except RuntimeError:  # fewer live entries nearby than k
            return None
        return labels.astype(np.int64), dists

    def _unmark_after(self, slots: NDArray[np.int32]) -> NDArray[np.int64]:
        """The marked entries of other images near the image at ``slots``, about to go: they
        are checked again once it is gone (``_mark_shared``)."""
        if self.cfg.shared_dist <= 0 or not self._slots.shared[slots].any():
            return np.zeros(0, np.int64)
        found = self._near(np.asarray(self._ix.get_items(slots), np.float32))
        if found is None:
            return np.zeros(0, np.int64)
        labels, dists = found
        near = labels[(dists <= self.cfg.shared_dist) & (self._slots.img[labels] >= 0)]
        return np.unique(near[self._slots.shared[near] > 0])

    def save(self, stem: Path) -> list[Path]:
        """Write the index to ``stem``.hnsw and ``stem``.npz; the files written. The graph is
        written by a fork of the process (``graph_file.start_save``): adds and removes wait
        only while the slot arrays are copied and the process forks; searches go on."""
        with self._lock.read():
            ids = np.fromiter(self._images, np.int64, len(self._images))
            rows = [self._images[i] for i in ids.tolist()]
            slots: dict[str, Any] = {
                "dim": self.dim,
                **self._slots.arrays(),
                "ids": ids,
                "lengths": np.array([len(r) for r in rows], np.int64),
                "flat": np.concatenate(rows) if rows else np.zeros(0, np.int32),
            }
            saving = graph_file.start_save(self._ix, stem)
        arrays = stem.with_suffix(".npz")
        try:
            with arrays.open("wb") as out:
                np.savez(out, **slots)
        finally:
            graph = saving.wait()
        return [graph, arrays]

    @classmethod
    def load(cls, stem: Path, dim: int, cfg: Config | None = None) -> ChannelIndex:
        """An index written by ``save`` (of descriptors of ``dim``); raises ValueError or
        OSError on a damaged one. The slot arrays are read on another thread while the graph
        loads."""
        with ThreadPoolExecutor(1) as reader:
            pending = reader.submit(_read_arrays, stem.with_suffix(".npz"))
            try:
                graph = graph_file.load(stem, dim)
            finally:
                a = pending.result()
        if int(a["dim"]) != dim:
            raise ValueError(f"{stem}: descriptors of {int(a['dim'])} dimensions, not {dim}")
        try:
            slots = SlotTable.from_arrays(a)
        except ValueError as e:
            raise ValueError(f"{stem}: {e}") from e
        index = cls(dim, 16, cfg)
        index._ix, index._slots = graph, slots
        index._ix.set_ef(index.cfg.ef)
        ends = np.cumsum(a["lengths"])
        flat = a["flat"]
        index._images = {
            int(i): flat[e - n : e].copy()
            for i, e, n in zip(a["ids"].tolist(), ends.tolist(), a["lengths"].tolist(), strict=True)
        }
        if index._slots.cap != index._ix.get_max_elements():
            raise ValueError(f"{stem}: index and slot arrays disagree")
        return index

    def search(
        self, q: Features, limit: int = 3, debug: Debug = None, threads: int = 1
    ) -> list[Match]:
        """The verified matches of ``q``, best first; ``threads`` share the index lookup.
        Searches run together: each holds the index shared only while it looks up and votes
        and copies out what verifying its candidates needs, and verifies outside the lock."""
        with self._lock.read():
            candidates = self._candidates(q, debug, threads)
        if candidates is None:
            with self._lock.write():  # the wider lookup sets the index-wide ef
                candidates = self._candidates(q, debug, threads, wide=True) or []
        out = [m for c in candidates if (m := check(q, c, self.cfg, debug)) is not None]
        out.sort(key=Match.order)
        return out[:limit]

    def _knn(
        self, q: Features, k: int, threads: int, wide: bool
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]] | None:
        """The ``k`` nearest entries of each photo descriptor; None when hnswlib finds fewer
        than ``k`` live ones (many deleted entries nearby).  ``wide`` looks 4 times wider.

        ef stays ``cfg.ef`` otherwise: hnswlib searches with max(ef, k) anyway, and ef is one
        field of the index, which a search running alongside would read while it changes; so
        ``wide`` needs the index held exclusively."""
        try:
            if not wide:
                labels, dists = self._ix.knn_query(q.desc, k=k, num_threads=threads)
            else:
                self._ix.set_ef(max(4 * self.cfg.ef, 4 * k))
                try:
                    labels, dists = self._ix.knn_query(q.desc, k=k, num_threads=threads)
                finally:
                    self._ix.set_ef(self.cfg.ef)
        except RuntimeError:
            return None
        return labels.astype(np.int64), dists

    def _candidates(
        self, q: Features, debug: Debug, threads: int, wide: bool = False
    ) -> list[Candidate] | None:
        """The images ``q``'s descriptors vote for, best first, each with its correspondences
        and what verifying them needs; None when the lookup needs to look wider.  Run with the
        index held: what it returns is a copy, still right after the index changes."""
        if self.n_vectors == 0 or len(q.desc) == 0:
            return []
        found = self._knn(q, min(self.cfg.k, self.n_vectors), threads, wide)
        if found is None:
            return [] if wide else None
        v = vote(*found, self._slots.img, self.cfg)
        if v is None:
            return []
        if debug is not None:
            debug["votes"] = dict(zip(v.images.tolist(), v.votes.tolist(), strict=True))
        out: list[Candidate] = []
        for rank, (img, votes) in enumerate(zip(v.images.tolist(), v.votes, strict=True)):
            if votes < self.cfg.min_votes:
                break
            sel = v.image == img
            out.append(
                self._candidate(
                    img,
                    rank,
                    Pairs(
                        v.rows[sel],
                        v.slots[sel],
                        v.d[sel],
                        self._slots.xy[v.slots[sel]],
                        self._slots.geo[v.slots[sel]],
                        self._slots.shared[v.slots[sel]],
                    ),
                )
            )
        return out

    def _candidate(self, img: int, rank: int, knn: Pairs) -> Candidate:
        """Image ``img`` with the knn's correspondences and, if it may be rematched, its own
        entries, copied out of the index."""
        w, h = self._size(img)
        sl = self._of(img)
        own = None
        if rank < self.cfg.rematch_top and len(sl) >= 2:
            stored = np.asarray(self._ix.get_items(sl), dtype=np.float32)  # (m,d)
            own = Entries(
                sl.copy(), stored, self._slots.xy[sl], self._slots.geo[sl], self._slots.shared[sl]
            )
        return Candidate(img, w, h, rank, knn, own)


def _read_arrays(path: Path) -> dict[str, NDArray[Any]]:
    with np.load(path) as a:
        return {name: a[name] for name in a.files}
