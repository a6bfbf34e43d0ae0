"""An inverted-file (IVF) index over the in-process copy's vectors, for stores past a size setting.

Exact search reads every vector of the scope: ~1.6 ms at 10k memories, ~18 ms at 100k, ~160 ms
at 1M here. The IVF index splits the vectors into about sqrt(n) lists around k-means centroids; a
query scores the centroids, then only the rows of the ``nprobe`` nearest lists, with their exact
vectors (no quantization, so the scores it returns are exact; only rows in unprobed lists can be
missed). Scope filters stay exact: the scope mask is applied before scoring, and a scope with
fewer rows than ``exact_below`` is scanned exhaustively.

Training runs in a background thread (a few seconds at 1M rows); until it is done, and while a
retrain after the store doubled is under way, searches use the previous index or exact search.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

logger = logging.getLogger(__name__)

TRAIN_SAMPLE = 65_536
TRAIN_ITERATIONS = 10
ASSIGN_CHUNK = 32_768


def list_count(rows: int) -> int:
    return max(16, int(np.sqrt(rows)))


def train_centroids(vectors: np.ndarray, lists: int, seed: int = 0) -> np.ndarray:
    """Spherical k-means (cosine) on a sample of unit vectors."""
    rng = np.random.default_rng(seed)
    if len(vectors) > TRAIN_SAMPLE:
        vectors = vectors[rng.choice(len(vectors), TRAIN_SAMPLE, replace=False)]
    sample = vectors
    lists = min(lists, len(sample))
    centroids = sample[rng.choice(len(sample), lists, replace=False)].copy()
    for _ in range(TRAIN_ITERATIONS):
        nearest = np.argmax(sample @ centroids.T, axis=1)
        counts = np.bincount(nearest, minlength=lists)
        order = np.argsort(nearest, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        sums = np.zeros_like(centroids)
        filled = counts > 0
        sums[filled] = np.add.reduceat(sample[order], starts[filled], axis=0)
        empty = ~filled
        if empty.any():  # an empty list restarts at a random sample vector
            sums[empty] = sample[rng.choice(len(sample), int(empty.sum()), replace=False)]
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        centroids = (sums / np.maximum(norms, 1e-12)).astype(np.float32)
    return centroids


def assign(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    out = np.empty(len(vectors), dtype=np.int32)
    for start in range(0, len(vectors), ASSIGN_CHUNK):
        chunk = vectors[start : start + ASSIGN_CHUNK]
        out[start : start + len(chunk)] = np.argmax(chunk @ centroids.T, axis=1)
    return out


class IvfIndex:
    """Centroids, and per list the positions and a contiguous copy of the vectors of its rows.

    The copies cost as much memory again as the vectors (1.5 KB a memory with MiniLM), and buy
    the speed: gathering the probed rows out of the big matrix took ~25 ms at 1M memories here,
    scoring contiguous blocks takes a few. Callers hold the copy's lock.
    """

    def __init__(self, centroids: np.ndarray, vectors: np.ndarray, trained_rows: int) -> None:
        self.centroids = centroids
        self.trained_rows = trained_rows
        lists = len(centroids)
        dim = centroids.shape[1]
        of = assign(vectors, centroids)
        order = np.argsort(of, kind="stable")
        counts = np.bincount(of, minlength=lists)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        self._counts = counts.astype(np.int64)
        self._positions: list[np.ndarray] = []
        self._vectors: list[np.ndarray] = []
        for i in range(lists):
            members = order[bounds[i] : bounds[i + 1]]
            cap = max(8, len(members) + len(members) // 4)
            pos = np.zeros(cap, dtype=np.int64)
            pos[: len(members)] = members
            vec = np.zeros((cap, dim), dtype=np.float32)
            vec[: len(members)] = vectors[members]
            self._positions.append(pos)
            self._vectors.append(vec)
        self.covered = len(vectors)

    def extend(self, vectors: np.ndarray) -> None:
        """Add rows appended to the copy (positions continue where the index ends)."""
        if not len(vectors):
            return
        of = assign(vectors, self.centroids)
        for lst in np.unique(of):
            rows = np.flatnonzero(of == lst)
            have = int(self._counts[lst])
            need = have + len(rows)
            if need > len(self._positions[lst]):
                cap = need + need // 2
                pos = np.zeros(cap, dtype=np.int64)
                pos[:have] = self._positions[lst][:have]
                vec = np.zeros((cap, vectors.shape[1]), dtype=np.float32)
                vec[:have] = self._vectors[lst][:have]
                self._positions[lst], self._vectors[lst] = pos, vec
            self._positions[lst][have:need] = self.covered + rows
            self._vectors[lst][have:need] = vectors[rows]
            self._counts[lst] = need
        self.covered += len(vectors)

    def probe(self, query: np.ndarray, nprobe: int) -> np.ndarray:
        scores = self.centroids @ query
        nprobe = min(nprobe, len(scores))
        return np.argpartition(-scores, nprobe - 1)[:nprobe]

    def search(self, query: np.ndarray, nprobe: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions (within ``allowed``) and cosines of the rows of the ``nprobe`` nearest lists."""
        found_pos, found_sims = [], []
        for lst in self.probe(query, nprobe):
            count = int(self._counts[lst])
            if not count:
                continue
            pos = self._positions[lst][:count]
            keep = allowed[pos]
            if not keep.any():
                continue
            sims = np.einsum("ij,j->i", self._vectors[lst][:count], query)
            found_pos.append(pos[keep])
            found_sims.append(sims[keep])
        if not found_pos:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return np.concatenate(found_pos), np.concatenate(found_sims)


class IvfBuilder:
    """Trains an index in a background thread when the copy crosses the size setting or doubles."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self._busy = threading.Lock()

    def due(self, index: IvfIndex | None, rows: int) -> bool:
        if self.threshold <= 0 or rows < self.threshold:
            return False
        return index is None or rows >= 2 * index.trained_rows

    def start(self, snapshot: np.ndarray, install: Callable[[IvfIndex], None]) -> bool:
        """Train on ``snapshot`` (the copy's first rows) in a thread, then ``install`` the index."""
        if not self._busy.acquire(blocking=False):
            return False

        def run() -> None:
            try:
                t0 = time.perf_counter()
                centroids = train_centroids(snapshot, list_count(len(snapshot)))
                index = IvfIndex(centroids, snapshot, len(snapshot))
                install(index)
                logger.info(
                    "vector index: %d lists over %d rows in %.1fs",
                    len(centroids),
                    len(snapshot),
                    time.perf_counter() - t0,
                )
            except Exception:
                logger.exception("building the vector index failed; search stays exact")
            finally:
                self._busy.release()

        threading.Thread(target=run, name="ivf-train", daemon=True).start()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no training runs (for tests and benchmarks)."""
        if self._busy.acquire(timeout=-1 if timeout is None else timeout):
            self._busy.release()
            return True
        return False
