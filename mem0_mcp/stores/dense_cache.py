"""An in-process copy of the memory table's vectors and result columns, for exact dense search.

Measured here at 10k memories: LanceDB's flat search costs ~20 ms a query (reading the vector
column alone takes ~15 ms), a single-threaded matrix-vector product over the same vectors ~2 ms.
The copy follows this process's own writes as deltas. When another process wrote, it reads only
the fragments that process appended if no fragment it holds changed (appends are what other
processes mostly do); after anything else (their deletes, updates, compaction) it reloads. It
serves only plain scope searches (no metadata filters).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from mem0_mcp.stores.columns import RESULT_COLUMNS, SCOPE_COLUMNS
from mem0_mcp.stores.copy_arrays import (
    READ,
    LazyText,
    capacity,
    fragment_signatures,
    grown,
    prepared_row,
    rows_of_table,
)
from mem0_mcp.stores.int8_rows import Int8Rows
from mem0_mcp.stores.ivf import IvfBuilder, IvfIndex
from mem0_mcp.stores.staged_entries import StagedEntries

logger = logging.getLogger(__name__)

SCOPE = SCOPE_COLUMNS
COLUMNS = RESULT_COLUMNS


class DenseCache:
    def __init__(self, max_rows: int, *, ann_threshold: int = 0, nprobe: int = 32) -> None:
        self.max_rows = max_rows
        self.nprobe = nprobe
        self._ivf: IvfIndex | None = None
        self._ivf_builder = IvfBuilder(ann_threshold)
        self._generation = 0  # bumped by every reload, so an index trained before one is dropped
        # Bumped by every change of rows the copy holds (not by appends), so a kept scope mask
        # is dropped; after appends alone it is extended.
        self._edits = 0
        self._last_mask: tuple[tuple, np.ndarray | None] | None = None
        self.version: int | None = None  # table version the copy reflects; None: stale
        # fragment id -> signature at ``version`` (see fragment_signatures); None: unknown, so
        # another process's write means a reload.
        self._fragments: dict[int, str] | None = None
        self._lock = threading.Lock()
        self._n = 0
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        # Which rows can be in a top k (the full scan's candidates); past 8x the IVF threshold no
        # scope is scanned in full (smaller ones are gathered, larger ones use the IVF lists).
        self._int8 = Int8Rows(8 * ann_threshold if ann_threshold > 0 else max_rows)
        self._alive = np.zeros(0, dtype=bool)
        self._superseded = np.zeros(0, dtype=bool)
        self._codes: dict[str, np.ndarray] = {c: np.zeros(0, dtype=np.int32) for c in SCOPE}
        self._vocab: dict[str, dict[str | None, int]] = {c: {None: 0} for c in SCOPE}
        self._cols: dict[str, list[Any]] = {c: [] for c in COLUMNS}
        self._index: dict[str, int] = {}
        self._by_hash: dict[str, list[int]] = {}
        self._text = LazyText()
        self._staged = StagedEntries()

    # --- loading
    def live_ids(self) -> list[str]:
        """Ids the copy holds as live, each as often as it holds it (for checks and tests)."""
        return [self._cols["id"][p] for p in range(self._n) if self._alive[p]]

    def invalidate(self) -> None:
        with self._lock:
            self.version = None
            self._fragments = None

    def load(self, table: Any) -> bool:
        """Copy the table; False when it is larger than the cache may hold."""
        t0 = time.perf_counter()
        try:
            # One snapshot for the rows, the version and the fragments, so a write landing
            # meanwhile is neither missed nor read twice by a later catch_up.
            snapshot = table.to_lance()
        except ImportError:  # no pylance: no catch_up either, other processes' writes reload
            snapshot = None
        if snapshot is not None:
            version = int(snapshot.version)
            rows = int(snapshot.count_rows())
        else:
            version = int(table.version)  # read first: the copy is at least this new
            rows = int(table.count_rows())
        if rows > self.max_rows:
            self.invalidate()
            return False
        fragments: dict[int, str] | None = None
        if snapshot is not None:
            fragments = fragment_signatures(snapshot)
            data: pa.Table = snapshot.to_table(columns=READ)
        else:
            data = table.search().select(READ).limit(None).to_arrow()
        found, vectors = rows_of_table(data)
        with self._lock:
            self._n = 0
            self._matrix = np.zeros((capacity(len(found)), vectors.shape[1]), dtype=np.float32)
            self._alive = np.zeros(len(self._matrix), dtype=bool)
            self._superseded = np.zeros(len(self._matrix), dtype=bool)
            self._codes = {c: np.zeros(len(self._matrix), dtype=np.int32) for c in SCOPE}
            self._vocab = {c: {None: 0} for c in SCOPE}
            self._cols = {c: [] for c in COLUMNS}
            self._index = {}
            self._by_hash = {}
            self._text = LazyText()
            self._staged = StagedEntries()
            self._ivf = None
            self._int8 = Int8Rows(self._int8.limit)
            self._generation += 1
            self._append_locked(found, vectors)
            self.version = version
            self._fragments = fragments
        logger.debug("dense cache loaded %d rows in %.1f ms", len(found), (time.perf_counter() - t0) * 1e3)
        return True

    def catch_up(self, snapshot: Any) -> bool:
        """Take in the rows other processes appended up to ``snapshot`` (a lance dataset).

        False when that is not all they did (a fragment the copy holds changed or went away:
        deletes, updates, compaction) or the copy's own state is unknown: the caller reloads.
        """
        with self._lock:
            known, version = self._fragments, self.version
        if known is None or version is None or int(snapshot.version) < version:
            return False
        current = fragment_signatures(snapshot)
        if any(current.get(fid) != sig for fid, sig in known.items()):
            return False
        new = sorted(fid for fid in current if fid not in known)
        if self._n + sum(snapshot.get_fragment(fid).count_rows() for fid in new) > self.max_rows:
            return False
        parts = [rows_of_table(snapshot.get_fragment(fid).to_table(columns=READ)) for fid in new]
        with self._lock:
            if self.version != version:
                return False  # a reload or an own write got there first
            for found, vectors in parts:
                # A row staged here is newer than any state of it another process appended.
                keep = [i for i, r in enumerate(found) if not self._staged.staged(r["id"])]
                if keep:
                    self._append_locked([found[i] for i in keep], vectors[keep])
            self.version = int(snapshot.version)
            self._fragments = current
        return True

    def note_fragments(self, version: int, snapshot: Any) -> None:
        """After an own write: the fragments at ``version``, so other processes' appends that
        follow can be caught up with instead of reloaded."""
        signatures = fragment_signatures(snapshot)
        with self._lock:
            self._fragments = signatures if self.version == version == int(snapshot.version) else None

    def _append_locked(
        self, rows: Sequence[Mapping[str, Any]], vectors: np.ndarray, staged: bool = False
    ) -> None:
        need = self._n + len(rows)
        if need > len(self._matrix) or vectors.shape[1] != self._matrix.shape[1]:
            cap = capacity(need)
            dim = vectors.shape[1]
            matrix = np.zeros((cap, dim), dtype=np.float32)
            if self._matrix.shape[1] == dim:
                matrix[: self._n] = self._matrix[: self._n]
            self._matrix = matrix
            self._alive = grown(self._alive, cap)
            self._superseded = grown(self._superseded, cap)
            self._codes = {c: grown(a, cap) for c, a in self._codes.items()}
        start = self._n
        self._matrix[start:need] = vectors
        self._int8.write(start, self._matrix[start:need], len(self._matrix))
        for i, row in enumerate(rows):
            pos = start + i
            earlier = self._index.get(row["id"])
            if earlier is not None:
                # A staged row another process moved into the table (read back by catch_up):
                # one id, one live position.
                self._alive[earlier] = False
                self._edits += 1
            self._alive[pos] = True
            self._superseded[pos] = bool(row.get("superseded_at"))
            for c in SCOPE:
                vocab = self._vocab[c]
                self._codes[c][pos] = vocab.setdefault(row.get(c), len(vocab))
            for c in COLUMNS:
                value = row.get(c)
                self._cols[c].append(value)
            self._index[row["id"]] = pos
            self._by_hash.setdefault(row["hash"], []).append(pos)
            self._text.add(pos, row.get("search_text"), later=staged)
        if self._ivf is not None and self._ivf.covered == start:
            self._ivf.extend(vectors)
        self._n = need
        if self._ivf_builder.due(self._ivf, need):
            self._start_ivf_locked()

    def _start_ivf_locked(self) -> None:
        generation, snapshot = self._generation, self._matrix[: self._n]

        def install(index: IvfIndex) -> None:
            with self._lock:
                if generation != self._generation or snapshot.shape[1] != self._matrix.shape[1]:
                    return
                # Rows appended while it trained; rewritten rows kept their list (close enough:
                # their scores are still read from the current vectors).
                index.extend(self._matrix[index.covered : self._n])
                self._ivf = index

        self._ivf_builder.start(snapshot, install)

    @property
    def ann_ready(self) -> bool:
        return self._ivf is not None

    def wait_for_index(self, timeout: float | None = None) -> bool:
        return self._ivf_builder.wait(timeout)

    # --- deltas of this process's own writes (callers hold the write lock)
    def follows(self, after: int) -> bool:
        """Whether a write that committed version ``after`` came right after the copy's version.

        Versions are consecutive: if another process had committed in between, ours would not
        be the next one, and the copy reloads instead of taking the delta.
        """
        with self._lock:
            ok = self.version is not None and after == self.version + 1
            if not ok:
                self.version = None
            return ok

    def rebase(self, version: int) -> None:
        """The table moved to ``version`` without a change of content (compaction, index merge)."""
        with self._lock:
            if self.version is not None:
                self.version = version
            self._fragments = None  # rewritten by the compaction: see note_fragments

    def add(self, rows: Sequence[Mapping[str, Any]], vectors: np.ndarray, version: int) -> None:
        with self._lock:
            self._fragments = None  # an own write: see note_fragments
            if self.version is None:
                return
            if self._n + len(rows) > self.max_rows:
                self.version = None
                return
            # Rows staged at their journaling are here already, as the table now has them.
            keep = [i for i, r in enumerate(rows) if not self._holds_locked(r)]
            if keep:
                self._append_locked(
                    [prepared_row(rows[i]) for i in keep], np.asarray(vectors, dtype=np.float32)[keep]
                )
            self.version = version

    def stage(self, rows: Sequence[Mapping[str, Any]], vectors: np.ndarray, seqs: Mapping[str, int]) -> bool:
        """Hold rows journaled by this process (``seqs``: id -> journal entry) before they reach the
        table (write-behind), so reads served from the copy see them. False when the copy is
        stale or full: then reads move the journal first, as they must for any entry the copy
        lacks."""
        with self._lock:
            if self.version is None or self._n + len(rows) > self.max_rows:
                return False
            self._append_locked([prepared_row(r) for r in rows], np.asarray(vectors, dtype=np.float32), True)
            self._staged.stage(seqs)
            return True

    def stage_change(
        self, memory_id: str, row: Mapping[str, Any] | None, vector: np.ndarray | None, seq: int | None
    ) -> bool:
        """Apply a journaled update (``row``, the row as it is to be; ``vector`` None keeps the
        held one) or delete (``row`` None) of this process; ``seq``: its journal entry (None:
        the delete dropped the entry of an add). The caller holds the journal lock. An older
        state of the row the table brings later (``moving``, ``catch_up``) leaves it as staged.
        False when the copy cannot (stale, or it lacks the row)."""
        with self._lock:
            pos = self._index.get(memory_id)
            if self.version is None or pos is None:
                return False
            self._edits += 1
            if row is None:
                self._index.pop(memory_id)
                self._alive[pos] = False
            else:
                fresh = self._matrix[pos].copy() if vector is None else np.asarray(vector, dtype=np.float32)
                self._alive[pos] = False
                self._append_locked([prepared_row(row)], fresh[None, :])
            self._staged.change(memory_id, seq)
            return True

    def holds(self, seqs: Sequence[int]) -> bool:
        """Whether every one of the journal entries ``seqs`` is staged here (see ``stage``).

        Entries staged here that are gone from ``seqs`` below its newest were moved into the
        table (seqs grow with each commit) and are forgotten."""
        with self._lock:
            return self._staged.holds(seqs) and self.version is not None

    def moving(self, seqs: Mapping[str, int]) -> None:
        """This process's mover is about to apply these entries (id -> seq) to the table: its
        writes of a row staged here at a later seq leave the staged row as it is."""
        with self._lock:
            self._staged.moving(seqs)
            self._text.current()  # the mover's thread takes in what adds staged

    def forget(self, seqs: Sequence[int]) -> None:
        """Journal entries moved into the table (the table holds what they staged); the move
        is over. They stay staged until ``holds`` finds them gone from the journal: a reader
        may have read the journal before they were dropped."""
        with self._lock:
            self._staged.forget(seqs)

    def _holds_locked(self, row: Mapping[str, Any]) -> bool:
        """Whether a row the table now has is here already, or here in a newer staged state."""
        return self._staged.newer(row["id"]) or self._holds_row_locked(row)

    def _holds_row_locked(self, row: Mapping[str, Any]) -> bool:
        pos = self._index.get(row["id"])
        if pos is None or not self._alive[pos]:
            return False
        prepared = prepared_row(row)
        return all(self._cols[c][pos] == prepared.get(c) for c in COLUMNS)

    @property
    def generation(self) -> int:
        """Bumped by every reload (staged rows are dropped by one)."""
        return self._generation

    def update(self, memory_id: str, values: Mapping[str, Any], version: int) -> None:
        with self._lock:
            self._fragments = None  # an own write: see note_fragments
            self._edits += 1
            pos = self._index.get(memory_id)
            if self.version is None or pos is None:
                self.version = None
                return
            if "search_text" in values:
                # The text index never rewrites a row's postings: the row moves to a new position.
                row = {c: self._cols[c][pos] for c in COLUMNS}
                row.update({k: v for k, v in values.items() if k != "vector"})
                vector = values.get("vector")
                fresh = self._matrix[pos].copy() if vector is None else np.asarray(vector, dtype=np.float32)
                self._alive[pos] = False
                self._append_locked([row], fresh[None, :])
                self.version = version
                return
            for key, value in values.items():
                if key == "hash" and value != self._cols["hash"][pos]:
                    self._by_hash.setdefault(value, []).append(pos)
                if key == "vector":
                    self._matrix[pos] = np.asarray(value, dtype=np.float32)
                    self._int8.write(pos, self._matrix[pos : pos + 1], len(self._matrix))
                elif key in self._cols:
                    self._cols[key][pos] = value
                if key == "superseded_at":
                    self._superseded[pos] = bool(value)
            self.version = version

    def delete(self, ids: Sequence[str], version: int) -> None:
        with self._lock:
            self._fragments = None  # an own write: see note_fragments
            self._edits += 1
            if self.version is None:
                return
            for memory_id in ids:
                if self._staged.newer(memory_id):
                    continue
                pos = self._index.pop(memory_id, None)
                if pos is not None:
                    self._alive[pos] = False
            self.version = version

    # --- search
    def _mask_locked(self, scope: Mapping[str, str | None], include_superseded: bool) -> np.ndarray | None:
        """Rows a plain search may return: alive, in the scope (exactly), current unless asked.

        A search asks twice (full text, then dense) for the same scope, an add once after staging
        its row: the mask is kept until a held row changes, since building it reads every row
        (~2 ms at 1M), and rows appended meanwhile are read alone. Callers only read it.
        """
        key = (tuple(scope.items()), include_superseded, self._generation, self._edits)
        kept = self._last_mask[1] if self._last_mask is not None and self._last_mask[0] == key else None
        if kept is not None and len(kept) == self._n:
            return kept
        tail = None if kept is None else self._build_mask_locked(scope, include_superseded, len(kept))
        mask = np.concatenate([kept, tail]) if kept is not None and tail is not None else None
        if mask is None:  # nothing kept, or the appended rows brought the scope's first value
            mask = self._build_mask_locked(scope, include_superseded)
        self._last_mask = (key, mask)
        return mask

    def _build_mask_locked(
        self, scope: Mapping[str, str | None], include_superseded: bool, start: int = 0
    ) -> np.ndarray | None:
        """The mask of rows ``start`` to the end; None when a scope value is in no row."""
        n = self._n
        mask = self._alive[start:n].copy()
        if not include_superseded:
            mask &= ~self._superseded[start:n]
        for col, value in scope.items():
            if value:
                code = self._vocab[col].get(value)
                if code is None:
                    return None
                mask &= self._codes[col][start:n] == code
        return mask

    def _columns_locked(
        self, mask: np.ndarray, columns: Sequence[str], succession: Sequence[str]
    ) -> Sequence[str]:
        """``columns``, and ``succession`` too when a row of ``mask`` is superseded: a hit
        without them reads as current, and most stores hold no superseded row (each column read
        costs every hit a dict entry)."""
        if not succession or not np.logical_and(mask, self._superseded[: len(mask)]).any():
            return columns
        return (*columns, *(c for c in succession if c not in columns))

    def _hit_locked(self, pos: int, key: str, value: float, columns: Sequence[str]) -> dict[str, Any]:
        row: dict[str, Any] = {c: self._cols[c][pos] for c in columns}
        row[key] = value
        return row

    def search(
        self,
        vector: np.ndarray,
        k: int,
        scope: Mapping[str, str | None],
        include_superseded: bool,
        columns: Sequence[str] = COLUMNS,
        *,
        exact: bool | None = False,
        succession: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """The ``k`` rows of the scope nearest ``vector``, with ``columns`` and ``_distance`` (cosine
        distance), best first; ``succession``: see _columns_locked. ``exact`` False reads the IVF
        lists past the threshold, True every row, None every row but past the int8 rows' limit."""
        with self._lock:
            n = self._n
            mask = self._mask_locked(scope, include_superseded)
            if mask is None:
                return []
            columns = self._columns_locked(mask, columns, succession)
            q = np.asarray(vector, dtype=np.float32)
            idx = np.flatnonzero(mask)
            if not len(idx):
                return []
            sims: np.ndarray | None = None
            gathered = len(idx) * 8 < n  # a small part of the copy: its rows are gathered, not scanned
            # exact None: the lists only where reading every row would be a float32 scan of all.
            scan = exact is None and not gathered and not self._int8.serves(n)
            if (exact is False or scan) and self._ivf is not None and len(idx) >= self._ivf_builder.threshold:
                # Large scopes read only the rows of the nearest lists; small ones stay exhaustive.
                found, found_sims = self._ivf.search(q, self.nprobe, mask)
                covered = self._ivf.covered
                if covered < n:  # rows appended while a new index trained: scanned exactly
                    tail = covered + np.flatnonzero(mask[covered:n])
                    found = np.concatenate([found, tail])
                    found_sims = np.concatenate([found_sims, np.einsum("ij,j->i", self._matrix[tail], q)])
                if len(found) >= k:
                    idx, sims = found, found_sims
            if sims is None:
                # einsum: one thread, no BLAS thread pool fighting other processes for 2 cores. A
                # contiguous slice is read in place; gathering the scope's rows first copies
                # them, which only pays when the scope is a small part of the store.
                # Past that, the int8 rows name the few that can be in the top k (int8_rows.py).
                near = None if gathered else self._int8.candidates(q, idx, k, n)
                if near is not None or gathered:
                    idx = idx if near is None else near
                    sims = np.einsum("ij,j->i", self._matrix[idx], q)
                else:
                    sims = np.einsum("ij,j->i", self._matrix[:n], q)[idx]
            top = min(k, len(idx))
            best = np.argpartition(-sims, top - 1)[:top] if top < len(idx) else np.arange(len(idx))
            best = best[np.argsort(-sims[best], kind="stable")]
            return [self._hit_locked(int(idx[b]), "_distance", 1.0 - float(sims[b]), columns) for b in best]

    def text_search(
        self,
        query: str,
        k: int,
        scope: Mapping[str, str | None],
        include_superseded: bool,
        columns: Sequence[str] = COLUMNS,
        succession: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """BM25 over the scope's rows (see text_index), rows carrying ``_score`` like LanceDB's
        (``succession``: as in ``search``)."""
        with self._lock:
            mask = self._mask_locked(scope, include_superseded)
            if mask is None or not mask.any():
                return []
            columns = self._columns_locked(mask, columns, succession)
            positions, scores, ceiling = self._text.current().search(query, mask, k)
            hits = []
            for p, s in zip(positions, scores, strict=True):
                hit = self._hit_locked(int(p), "_score", float(s), columns)
                # The share of the query's lexical evidence this row carries (see TextIndex.search).
                hit["_coverage"] = float(s) / ceiling if ceiling > 0 else 0.0
                hits.append(hit)
            return hits

    def cosines(self, ids: Sequence[str], vector: np.ndarray) -> dict[str, float]:
        """Cosine to ``vector`` of each row of ``ids`` the copy holds (rows are unit vectors)."""
        with self._lock:
            found = [(i, self._index[i]) for i in ids if i in self._index]
            if not found:
                return {}
            positions = np.fromiter((p for _, p in found), dtype=np.int64, count=len(found))
            sims = np.einsum("ij,j->i", self._matrix[positions], np.asarray(vector, dtype=np.float32))
            return {i: float(x) for (i, _), x in zip(found, sims, strict=True)}

    def coverage(
        self, query: str, ids: Sequence[str], scope: Mapping[str, str | None], include_superseded: bool
    ) -> dict[str, float]:
        """Each row's share of the query's lexical evidence in ``scope`` (as ``text_search``
        gives it), for the rows of ``ids`` the copy holds."""
        with self._lock:
            mask = self._mask_locked(scope, include_superseded)
            if mask is None:
                return {}
            found = self._text.current().scores(query, mask)
            if found is None or found[1] <= 0:
                return {}
            scores, ceiling = found
            return {i: float(scores[self._index[i]]) / ceiling for i in ids if i in self._index}

    def find_hashes(
        self,
        hashes: Sequence[str],
        scope: Mapping[str, str | None],
        event_at: str | None,
        *,
        any_time: bool = False,
    ) -> dict[str, str]:
        """hash -> id of a live, current memory with that text in exactly this scope and event time."""
        with self._lock:
            found: dict[str, str] = {}
            cols = self._cols
            for h in hashes:
                for pos in self._by_hash.get(h, ()):
                    if (
                        self._alive[pos]
                        and not self._superseded[pos]
                        and cols["hash"][pos] == h
                        and (any_time or cols["event_at"][pos] == event_at)
                        and all(cols[c][pos] == (scope.get(c) or None) for c in SCOPE)
                    ):
                        found[h] = cols["id"][pos]
                        break
            return found

    def count(self, scope: Mapping[str, str | None]) -> int | None:
        """Rows of the scope a search reads, superseded ones too; None before the copy loads."""
        with self._lock:
            if self.version is None:
                return None
            mask = self._mask_locked(scope, True)
            return 0 if mask is None else int(np.count_nonzero(mask))

    def listing(self, scope: Mapping[str, str | None], include_superseded: bool) -> list[tuple[str, str]]:
        """(created_at, id) of every row a plain scope listing shows (the same mask as search)."""
        with self._lock:
            mask = self._mask_locked(scope, include_superseded)
            if mask is None:
                return []
            created, ids = self._cols["created_at"], self._cols["id"]
            return [(created[p], ids[p]) for p in np.flatnonzero(mask)]

    def rows(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            found = {i: self._index[i] for i in ids if i in self._index}
            return {i: {c: self._cols[c][p] for c in COLUMNS} for i, p in found.items() if self._alive[p]}
