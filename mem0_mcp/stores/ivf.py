"""An inverted-file (IVF) index over the in-process copy's vectors, for stores past a size setting.

Exact search reads every vector of the scope: ~1.6 ms at 10k memories, ~15 ms at 100k, ~150 ms
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
    """Centroids plus the list of every copy position. Callers hold the copy's lock."""

    def __init__(self, centroids: np.ndarray, lists_of: np.ndarray, trained_rows: int) -> None:
        self.centroids = centroids
        self.trained_rows = trained_rows
        self._lists_of = lists_of  # position -> list; grows with the copy

    @property
    def covered(self) -> int:
        return len(self._lists_of)

    def extend(self, vectors: np.ndarray) -> None:
        """Assign rows appended to the copy (positions continue where the index ends)."""
        if len(vectors):
            self._lists_of = np.concatenate([self._lists_of, assign(vectors, self.centroids)])

    def candidates(self, query: np.ndarray, nprobe: int, n: int) -> np.ndarray:
        """A boolean mask over the first ``n`` positions: rows of the ``nprobe`` nearest lists."""
        scores = self.centroids @ query
        nprobe = min(nprobe, len(scores))
        probe = np.argpartition(-scores, nprobe - 1)[:nprobe]
        probed = np.zeros(len(scores), dtype=bool)
        probed[probe] = True
        mask = np.zeros(n, dtype=bool)
        covered = min(n, len(self._lists_of))
        mask[:covered] = probed[self._lists_of[:covered]]
        mask[covered:] = True  # rows the index has not seen yet are scanned exactly
        return mask


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
                index = IvfIndex(centroids, assign(snapshot, centroids), len(snapshot))
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
