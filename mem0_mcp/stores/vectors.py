"""The memory table on LanceDB: rows, vectors, full-text index, scalar indexes.

The table is the source of truth for what is remembered. It is created on the first write, when
the embedding dimension is known. Other processes may append to the same table; reads see their
writes within ``read_consistency_seconds``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
from lancedb.index import FTS, BTree, IvfPq

from mem0_mcp.errors import StoreError
from mem0_mcp.stores.columns import (
    NEIGHBOURS_FIELD,
    RESULT_COLUMNS,
    ROW_COLUMNS,
    SCOPE_COLUMNS,
    memory_schema,
    rows_to_arrow,
)
from mem0_mcp.stores.dense_cache import DenseCache
from mem0_mcp.stores.filters import hash_clause, sql_str
from mem0_mcp.stores.lance_recovery import Fallback, close_view, missing_file_error, open_readable_version
from mem0_mcp.stores.object_store import RemoteStore, create_shared, create_table_shared, retry_conflicts

logger = logging.getLogger(__name__)

TABLE = "memories"
FULL_CHECK_SECONDS = 1.0
# Up to this many rows a stale copy is reloaded before the read that found it stale (~0.5 s at
# 20k); past it, in a background thread while LanceDB answers.
SYNC_RELOAD_ROWS = 20_000


class VectorStore:
    def __init__(
        self,
        path: Path | RemoteStore,
        *,
        read_consistency_seconds: float = 0.0,
        dense_cache_rows: int = 0,
        ann_threshold: int = 0,
        ann_nprobe: int = 32,
        read_only: bool = False,
    ) -> None:
        """``read_only``: a data dir that cannot be written (no folder made, no column added);
        ``path`` a RemoteStore: on object storage, read within its refresh bound."""
        self.read_only = read_only
        self.remote = path if isinstance(path, RemoteStore) else None
        if isinstance(path, RemoteStore):
            self._db = path.connect()
            self._dataset_uri = f"{path.uri}/{TABLE}.lance"
            path = Path(TABLE)  # never statted: _versions_stamp asks LanceDB on a remote store
        else:
            if not read_only:
                path.mkdir(parents=True, exist_ok=True)
            self._db = lancedb.connect(
                str(path), read_consistency_interval=timedelta(seconds=read_consistency_seconds)
            )
            self._dataset_uri = str(path / f"{TABLE}.lance")
        self._table: Any = None
        self._create_lock = threading.Lock()
        self._dense_cache_rows = dense_cache_rows
        self._ann_threshold = ann_threshold
        self._ann_nprobe = ann_nprobe
        self._cache = self._fresh_cache() if dense_cache_rows > 0 else None
        self._reloading = threading.Lock()
        # Held around each write and its cache delta, and around a cache reload, so a reload
        # never sees a row that a delta then appends a second time.
        self._cache_io = threading.RLock()
        # Asking LanceDB for the table version lists the manifests on disk (~0.8 ms); a stat of
        # the manifest folder shows a new version for a few microseconds.
        self._versions_dir = path / f"{TABLE}.lance" / "_versions"
        self.dataset_dir = path / f"{TABLE}.lance"
        # Set when the newest version is unreadable and an earlier one is served (read-only).
        self.fallback: Fallback | None = None
        self._fresh_stamp: tuple[int, int, int] | None = None
        self._checked_at = 0.0
        self._compacting_from: int | None = None
        self.rows_at_optimize = 0  # table size at the last optimize (paces the next one)
        self._open_existing()

    # --- table lifecycle
    def _open_existing(self) -> None:
        if self.fallback is not None:
            return
        try:
            tbl = self._db.open_table(TABLE)
        except (FileNotFoundError, ValueError):
            self._table = None
            return
        except Exception as exc:  # a damaged manifest: serve the newest readable version
            if self.remote is not None:
                raise StoreError(f"cannot open the memory table of {self.remote.shown}: {exc}") from exc
            tbl, self.fallback = open_readable_version(self.dataset_dir, TABLE, exc)
            self._versions_dir = self.fallback.view / "_versions"
            self._dataset_uri = str(self.fallback.view)
            logger.warning(
                "memory table: version %d of %s is unreadable (%s): serving version %d read-only "
                "(writes are refused); `mem0-mcp doctor --repair` makes version %d the newest again",
                self.fallback.serving + len(self.fallback.unreadable),
                self.dataset_dir,
                self.fallback.reason,
                self.fallback.serving,
                self.fallback.serving,
            )
            self._table = tbl
            return
        self._table = self._add_missing_columns(tbl)

    def close(self) -> None:
        """Remove the fallback view, if one was made."""
        close_view(self.fallback)

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Around a read of the table: a missing file becomes a StoreError that names it."""
        try:
            yield
        except StoreError:
            raise
        except Exception as exc:
            clear = missing_file_error(exc)
            if clear is None:
                raise
            raise clear from exc

    def _add_missing_columns(self, tbl: Any) -> Any:
        """Give a table written by an older version the columns added since (all null)."""
        if NEIGHBOURS_FIELD.name in tbl.schema.names or self.read_only:
            return tbl
        try:
            tbl.add_columns(NEIGHBOURS_FIELD)
            logger.info("memory table: added the %s column", NEIGHBOURS_FIELD.name)
        except Exception as exc:
            # Another process may have added it first: fine when the column is there now.
            tbl = self._db.open_table(TABLE)
            if NEIGHBOURS_FIELD.name not in tbl.schema.names:
                raise StoreError(
                    f"cannot add the {NEIGHBOURS_FIELD.name} column to the memory table: {exc}"
                ) from exc
        return tbl

    @property
    def table(self) -> Any:
        if self._table is None:
            self._open_existing()  # another process may have created it
        return self._table

    @property
    def dimension(self) -> int | None:
        tbl = self.table
        if tbl is None:
            return None
        return int(tbl.schema.field("vector").type.list_size)

    def ensure_table(self, dimension: int) -> Any:
        with self._create_lock:
            tbl = self.table
            if tbl is not None:
                return tbl
            try:  # other nodes (on object storage) may be creating it and its indexes now
                tbl = create_table_shared(self._db, TABLE, memory_schema(dimension), what="memory table")
                create_shared(lambda: self.create_indexes(tbl), lambda: None, what="memory indexes")
            except Exception as exc:
                raise StoreError(f"cannot create the memory table: {exc}") from exc
            self._table = tbl
            return tbl

    def create_indexes(self, tbl: Any = None) -> None:
        """Create the full-text and scalar indexes the table (default: the memory table) lacks."""
        if (tbl := tbl if tbl is not None else self.table) is None:
            return
        tbl.checkout_latest()  # another node's indexes, after a race
        existing = {idx.name for idx in tbl.list_indices()}
        if "search_text_idx" not in existing:
            # English stemming + stopwords: queries and memories are mostly natural language.
            tbl.create_index("search_text", config=FTS(with_position=False), replace=True)
        for col in ("id", "hash", *SCOPE_COLUMNS):
            if f"{col}_idx" not in existing:
                tbl.create_index(col, config=BTree(), replace=True)

    def count(self, where: str = "") -> int:
        tbl = self.table
        if tbl is None:
            return 0
        with self.reading():
            return int(tbl.count_rows(where or None))

    # --- writes (callers hold the write lock)
    def add(self, rows: Sequence[Mapping[str, Any]], vectors: np.ndarray) -> int:
        tbl = self.ensure_table(int(vectors.shape[1]))
        with self._cache_io:
            after = _version_of(
                retry_conflicts(lambda: tbl.add(rows_to_arrow(rows, vectors)), what="add"), tbl
            )
            if self._cache is not None and self._cache.follows(after):
                self._cache.add(rows, vectors, after)
                self._note_own_write(after)
            return after  # the version committed

    def replace(self, rows: Sequence[Mapping[str, Any]], vectors: np.ndarray) -> None:
        """Rewrite whole rows by id (metadata a dict) in one commit."""
        tbl = self.table
        with self._cache_io:
            data = rows_to_arrow(rows, vectors)
            merged = retry_conflicts(
                lambda: tbl.merge_insert("id").when_matched_update_all().execute(data), what="replace"
            )
            after = _version_of(merged, tbl)
            if self._cache is not None and self._cache.follows(after):
                self._cache.delete([r["id"] for r in rows], after)
                self._cache.add(rows, vectors, after)
                self._note_own_write(after)

    def update(self, memory_id: str, values: dict[str, Any]) -> None:
        values = dict(values)
        if "metadata" in values:
            values["metadata"] = json.dumps(values["metadata"] or {}, separators=(",", ":"))
        cached = dict(values)
        if "vector" in values:
            values["vector"] = np.asarray(values["vector"], dtype=np.float32).tolist()
        tbl = self.table
        with self._cache_io:
            done = retry_conflicts(
                lambda: tbl.update(where=f"id = {sql_str(memory_id)}", values=values), what="update"
            )
            after = _version_of(done, tbl)
            if self._cache is not None and self._cache.follows(after):
                self._cache.update(memory_id, cached, after)
                self._note_own_write(after)

    def delete(self, where: str, ids: Sequence[str] | None = None) -> None:
        """Delete rows; ``ids`` (when the caller knows them) keeps the dense cache current."""
        tbl = self.table
        if tbl is None:
            return
        with self._cache_io:
            after = _version_of(retry_conflicts(lambda: tbl.delete(where), what="delete"), tbl)
            if self._cache is not None:
                if ids is not None and self._cache.follows(after):
                    self._cache.delete(ids, after)
                    self._note_own_write(after)
                else:
                    self._cache.invalidate()

    def _note_own_write(self, version: int) -> None:
        # Writers hold the cross-process write lock, so no other version can land between the commit
        # and this stat: the copy is current without asking LanceDB (~1.5 ms); a full check still runs.
        if self._fresh_stamp is not None:
            self._fresh_stamp = self._versions_stamp()
        self._note_fragments(version)

    def _note_fragments(self, version: int) -> None:
        # ~0.6 ms: lets the copy take in other processes' later appends instead of reloading.
        if self._cache is None:
            return
        try:
            import lance

            options = dict(self.remote.options) if self.remote is not None else None
            dataset = lance.dataset(self._dataset_uri, version=version, storage_options=options)
            self._cache.note_fragments(version, dataset)
        except Exception as exc:  # the copy then reloads on another process's write, as before
            logger.debug("cannot read the fragments of version %s: %s", version, exc)

    @property
    def copy(self) -> DenseCache | None:
        """The in-process copy searches are served from (None when dense_cache_rows is 0)."""
        return self._cache

    def table_names(self) -> list[str]:
        """The tables of the LanceDB database (the memory table, a reindex's staging table)."""
        return list(self._db.table_names())

    def load_copy(self) -> float:
        """Load a new in-process copy of the table, as a process opening the store does, and
        drop it; the seconds it took (for benchmarks)."""
        started = time.perf_counter()
        if self.table is not None:
            self._fresh_cache().load(self.table)
        return time.perf_counter() - started

    def drop(self) -> None:
        with self._cache_io:
            if TABLE in self._db.table_names():
                self._db.drop_table(TABLE)
            self._table = None
            self._invalidate_cache()

    def _invalidate_cache(self) -> None:
        if self._cache is not None:
            self._cache.invalidate()

    # --- reads
    def get(self, memory_id: str) -> dict[str, Any] | None:
        rows = self.query(f"id = {sql_str(memory_id)}", limit=1)
        return rows[0] if rows else None

    def query(
        self, where: str, *, columns: Sequence[str] = ROW_COLUMNS, limit: int | None = None
    ) -> list[dict]:
        tbl = self.table
        if tbl is None:
            return []
        q = tbl.search().select(list(columns))
        if where:
            q = q.where(where)
        q = q.limit(limit) if limit is not None else q.limit(None)
        with self.reading():
            return q.to_list()

    def vector_search(self, vector: np.ndarray, where: str, k: int) -> list[dict]:
        tbl = self.table
        if tbl is None:
            return []
        q = tbl.search(np.asarray(vector, dtype=np.float32), vector_column_name="vector")
        q = q.distance_type("cosine").select([*ROW_COLUMNS, "_distance"]).limit(k)
        if where:
            q = q.where(where, prefilter=True)
        with self.reading():
            return q.to_list()

    def _versions_stamp(self) -> tuple[int, int, int] | None:
        if self.remote is not None:
            # LanceDB asks the store for a newer version at most once per refresh bound.
            return None
        try:
            st = os.stat(self._versions_dir)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _current_cache(self) -> DenseCache | None:
        """The in-process copy, reloaded if another process wrote; None when it cannot serve."""
        tbl = self.table
        if self._cache is None or tbl is None:
            return None
        # Read before the version: a write landing in between changes the stamp again.
        stamp = self._versions_stamp()
        now = time.monotonic()
        if (
            stamp is not None
            and stamp == self._fresh_stamp
            and self._cache.version is not None
            # A filesystem with coarse timestamps could hide a write: look properly now and then.
            and now - self._checked_at < FULL_CHECK_SECONDS
        ):
            return self._cache
        cache = self._cache
        compacting = self._compacting_from
        # Its compaction changes no row and holds off every writer: no need to ask the table.
        if compacting is not None and cache.version == compacting:
            return cache
        version = int(tbl.version)
        caught_up = cache.version != version and self._catch_up(cache, tbl)
        if not caught_up and cache.version != version:
            if int(tbl.count_rows()) > SYNC_RELOAD_ROWS:
                # Reading and indexing a large table takes seconds: LanceDB serves meanwhile.
                self._reload_in_background(tbl)
                return None
            with self._cache_io:
                cache = self._cache
                if cache.version != int(tbl.version):
                    cache = self._fresh_cache()
                    with self.reading():
                        loaded = cache.load(tbl)
                    self._cache = cache
                    if not loaded:
                        return None
        if cache.version == version:
            self._fresh_stamp, self._checked_at = stamp, now
        return cache

    def _catch_up(self, cache: DenseCache, tbl: Any) -> bool:
        """Read only what other processes appended, when that is all they did."""
        with self._cache_io:
            if self._cache is not cache:
                return False
            try:
                return cache.catch_up(tbl.to_lance())
            except Exception as exc:
                logger.debug("catching up with other processes' writes failed (reloading): %s", exc)
                return False

    def _fresh_cache(self) -> DenseCache:
        return DenseCache(self._dense_cache_rows, ann_threshold=self._ann_threshold, nprobe=self._ann_nprobe)

    def _reload_in_background(self, tbl: Any) -> None:
        if not self._reloading.acquire(blocking=False):
            return

        def run() -> None:
            try:
                fresh = self._fresh_cache()
                loaded = fresh.load(tbl)  # off every lock: searches and writes go on
                with self._cache_io:
                    # Writes of this process since the load began are in the table, and the
                    # copy's version says it is older: the next read checks again.
                    self._cache = fresh
                if not loaded:
                    logger.info("memory table is larger than dense_cache_rows: searches use LanceDB")
            except Exception:
                logger.exception("reloading the in-process copy failed; searches use LanceDB")
            finally:
                self._reloading.release()

        threading.Thread(target=run, name="mem0-copy-load", daemon=True).start()

    def wait_for_copy(self, timeout: float | None = None) -> bool:
        """Load the copy now if it is stale, and wait for it (benchmarks, tests)."""
        self._current_cache()
        if self._reloading.acquire(timeout=-1 if timeout is None else timeout):
            self._reloading.release()
            return True
        return False

    def dense_search(
        self,
        vector: np.ndarray,
        k: int,
        scope: dict[str, str | None],
        *,
        include_superseded: bool,
        columns: Sequence[str] = RESULT_COLUMNS,
        exact: bool | None = False,
        succession: Sequence[str] = (),
    ) -> list[dict] | None:
        """Scope search from the in-process copy (IVF past the threshold unless ``exact``;
        ``exact``, ``succession``: DenseCache.search); None when the copy cannot serve it."""
        cache = self._current_cache()
        if cache is None:
            return None
        return cache.search(vector, k, scope, include_superseded, columns, exact=exact, succession=succession)

    def cached_text_search(
        self,
        query: str,
        k: int,
        scope: dict[str, str | None],
        *,
        include_superseded: bool,
        columns: Sequence[str] = RESULT_COLUMNS,
        succession: Sequence[str] = (),
    ) -> list[dict] | None:
        """BM25 over the scope from the in-process copy; None when the copy cannot serve it."""
        cache = self._current_cache()
        return cache.text_search(query, k, scope, include_superseded, columns, succession) if cache else None

    def current_row(self, memory_id: str) -> dict[str, Any] | None:
        """Result columns of a live row from the in-process copy once it is current with the
        table (None when the copy cannot serve or lacks the row)."""
        cache = self._current_cache()
        return None if cache is None else cache.rows([memory_id]).get(memory_id)

    def current_copy(self) -> DenseCache | None:
        """The in-process copy, caught up with the table; None when it cannot serve."""
        return self._current_cache()

    def cached_rows(self, ids: Sequence[str]) -> dict[str, dict]:
        """Result columns of live rows of the in-process copy, by id (absent ids are left out)."""
        return self._cache.rows(ids) if self._cache is not None else {}

    def existing_hashes(
        self,
        hashes: Sequence[str],
        scope: dict[str, str | None],
        event_at: str | None,
        *,
        any_time: bool = False,
    ) -> dict[str, str]:
        """hash -> id of live memories with the same text, scope (exactly) and event time (any
        time with ``any_time``)."""
        cache = self._current_cache()
        if cache is not None:
            return cache.find_hashes(hashes, scope, event_at, any_time=any_time)
        where = hash_clause(scope, hashes, event_at, any_time=any_time)
        return {r["hash"]: r["id"] for r in self.query(where, columns=("id", "hash"))}

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are rows of the table (superseded ones included)."""
        if not ids or self.table is None:
            return set()
        in_list = ", ".join(sql_str(i) for i in set(ids))
        return {r["id"] for r in self.query(f"id IN ({in_list})", columns=("id",))}

    def text_search(self, query: str, where: str, k: int) -> list[dict]:
        tbl = self.table
        if tbl is None:
            return []
        q = tbl.search(query, query_type="fts", fts_columns="search_text")
        q = q.select([*ROW_COLUMNS, "_score"]).limit(k)
        if where:
            q = q.where(where, prefilter=True)
        try:
            return q.to_list()
        except Exception as exc:  # a query of only stopwords/punctuation has no terms
            logger.debug("full-text search failed for %r: %s", query, exc)
            return []

    # --- maintenance
    def has_vector_index(self) -> bool:
        """Whether searches can use an ANN index: the copy's IVF lists or LanceDB's IVF-PQ."""
        if self._cache is not None and self._cache.ann_ready:
            return True
        tbl = self.table
        return tbl is not None and any(idx.columns == ["vector"] for idx in tbl.list_indices())

    def wait_for_index(self, timeout: float | None = None) -> bool:
        """Wait for the copy and its vector index build (benchmarks, tests)."""
        if not self.wait_for_copy(timeout):
            return False
        cache = self._current_cache()
        return cache.wait_for_index(timeout) if cache is not None else True

    def optimize(self, *, ann_threshold: int, indices_only: bool = False) -> None:
        """Merge new rows into the indexes, compact files; build the ANN index past the threshold.

        ``indices_only``: only merge rows appended since into the scalar and full-text indexes
        (no file is rewritten, so the cost follows the new rows, not the table): a lookup by id
        otherwise scans every fragment written since, one per commit."""
        tbl = self.table
        if tbl is None:
            return
        t0 = time.perf_counter()
        # Callers hold the write lock, which every writer of this data dir takes: the versions
        # committed here only compact files and merge indexes, so a copy that was current stays
        # current (reloading it would cost a full read and re-index of the table).
        with self._cache_io:
            start = int(tbl.version)
            was_current = self._cache is not None and self._cache.version == start
            # Searches meanwhile keep reading the copy instead of waiting to reload it.
            self._compacting_from = start if was_current else None
            try:
                if indices_only:
                    self._index_new_rows(tbl)
                else:
                    self._optimize_locked(tbl, ann_threshold)
            finally:
                self._compacting_from = None
            if was_current and self._cache is not None:
                self._cache.rebase(int(tbl.version))
                self._note_fragments(int(tbl.version))
            else:
                self._invalidate_cache()
        logger.info(
            "memory table %s in %.2fs", "indexed" if indices_only else "optimized", time.perf_counter() - t0
        )

    @staticmethod
    def _index_new_rows(tbl: Any) -> None:
        try:
            tbl.to_lance().optimize.optimize_indices()
        except Exception as exc:
            logger.warning("indexing new rows of the memory table failed (will retry later): %s", exc)

    def _optimize_locked(self, tbl: Any, ann_threshold: int) -> None:
        try:
            tbl.optimize()
            rows = tbl.count_rows()
            self.rows_at_optimize = rows
            # LanceDB's own index only serves when the table outgrows the in-process copy,
            # which keeps its own (see ivf.py): building IVF-PQ costs minutes of CPU at 100k.
            outgrown = rows > self._dense_cache_rows
            if (
                outgrown
                and rows >= ann_threshold
                and not any(idx.columns == ["vector"] for idx in tbl.list_indices())
            ):
                # IVF-PQ with enough partitions for ~4k rows each.
                partitions = max(1, rows // 4096)
                tbl.create_index(
                    "vector",
                    config=IvfPq(distance_type="cosine", num_partitions=partitions),
                    replace=True,
                )
        except Exception as exc:
            logger.warning("optimizing the memory table failed (will retry later): %s", exc)


def _version_of(result: Any, tbl: Any) -> int:
    """The version a write committed (LanceDB returns it; older releases return None)."""
    version = getattr(result, "version", None)
    return int(version) if version is not None else int(tbl.version)
