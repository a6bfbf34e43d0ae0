"""Re-embed every memory with the configured embedder: what ``mem0-mcp reindex`` runs.

A data dir remembers the embedding model it was built with (``store.json``), and the engine
refuses to open it with another one (EmbedderMismatchError). This module moves a store to the
configured model without losing anything on the way:

1. Under the engine's write lock (a running server's writes wait; its reads go on), every row of
   the memory table is re-embedded in batches, from the same text the engine embeds for it, into
   a staging table (``memories_reindex``). A failure here leaves the memory table untouched.
2. The staging table's row count is checked against the memory table's.
3. ``store.json`` is marked "reindex in progress", so no engine opens the store half-swapped.
4. The memory table is overwritten from the staging table in one LanceDB commit (the vector
   column may change dimension). LanceDB keeps the previous version on disk until a compaction
   older than its retention removes it.
5. The indexes are rebuilt, the staging table dropped, and ``store.json`` names the new model.

Rerunning after an interruption at any step is safe: the rows' texts are never changed, so a
new run re-embeds whatever the memory table holds. The history (SQLite) is not touched: a
reindex is not a change of any memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa

from mem0_mcp.config import Settings
from mem0_mcp.embedding import Embedder, build_embedder
from mem0_mcp.engine.rows import ContextMode, EmbedInput, embed_inputs, text_hash
from mem0_mcp.engine.store_meta import read_meta, write_meta
from mem0_mcp.engine.write_behind import move_journal
from mem0_mcp.errors import Mem0Error, StoreError
from mem0_mcp.stores.columns import ROW_COLUMNS
from mem0_mcp.stores.history import HistoryStore
from mem0_mcp.stores.locks import WriteLock
from mem0_mcp.stores.vectors import TABLE, VectorStore, memory_schema

logger = logging.getLogger(__name__)

STAGING_TABLE = f"{TABLE}_reindex"
# The model name store.json carries while the memory table is being swapped: it matches no
# embedder, so the engine refuses to open the store (and names `mem0-mcp reindex`) meanwhile.
IN_PROGRESS = "reindex in progress: "

Progress = Callable[[int, int], None]


class EmptyStoreError(Mem0Error):
    """The data dir holds no memory table: there is nothing to re-embed."""


@dataclass(frozen=True)
class StoreInfo:
    """What a data dir holds, read without loading any model."""

    has_table: bool
    rows: int
    dimension: int | None
    model: str | None  # as recorded in store.json; None when not recorded
    interrupted: bool  # a previous reindex stopped between its swap and its last step


@dataclass(frozen=True)
class ReindexResult:
    rows: int
    seconds: float
    old_model: str | None
    new_model: str
    old_dimension: int | None
    new_dimension: int | None
    done: bool  # False: nothing needed doing (same model, no --force)
    message: str


def _move_journal(settings: Settings) -> None:
    """Adds still in the write-behind journal join the table first: re-embedded with the rest,
    instead of landing later with the old model's vectors."""
    if not settings.history_path.exists():
        return
    history = HistoryStore(settings.history_path)
    try:
        if history.has_pending():
            moved = move_journal(history, VectorStore(settings.lance_dir))
            logger.info("reindex: moved %d journaled memories into the table first", moved)
    finally:
        history.close()


def _connect(settings: Settings) -> Any:
    return lancedb.connect(str(settings.lance_dir), read_consistency_interval=timedelta(seconds=0))


def _open(db: Any, name: str) -> Any | None:
    try:
        return db.open_table(name)
    except (FileNotFoundError, ValueError):
        return None


def inspect_store(settings: Settings) -> StoreInfo:
    meta = read_meta(settings.data_dir)
    model = meta.get("embedder_model")
    tbl = _open(_connect(settings), TABLE) if settings.lance_dir.is_dir() else None
    return StoreInfo(
        has_table=tbl is not None,
        rows=int(tbl.count_rows()) if tbl is not None else 0,
        dimension=int(tbl.schema.field("vector").type.list_size) if tbl is not None else None,
        model=model,
        interrupted=isinstance(model, str) and model.startswith(IN_PROGRESS),
    )


def _chunks(reader: pa.RecordBatchReader, size: int) -> Iterator[pa.RecordBatch]:
    """Batches of exactly ``size`` rows (the last one smaller): LanceDB's follow its fragments."""
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in reader:
        while batch.num_rows:
            take = min(size - rows, batch.num_rows)
            pending.append(batch.slice(0, take))
            rows += take
            batch = batch.slice(take)
            if rows == size:
                yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)
                pending, rows = [], 0
    if rows:
        yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)


def reindex(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    batch_size: int | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> ReindexResult:
    """Re-embed every row of the memory table with ``embedder`` (default: the configured model).

    Raises EmptyStoreError when there is no memory table, StoreError when a step fails (the
    message says what state the store is in). With the recorded model equal to the configured
    one, returns at once (``done=False``) unless ``force``.
    """
    if settings.store_remote:
        raise StoreError(
            f"reindex works on a data dir, not yet on object storage ({settings.store_shown}): "
            "unset MEM0_MCP_STORE_URI and reindex a local copy (`mem0-mcp export`, then import)"
        )
    size = batch_size or settings.embedding_batch_size
    if size < 1:
        raise ValueError("batch_size must be at least 1")
    t0 = time.perf_counter()
    new_model = embedder.name if embedder is not None else settings.embedder_model
    # Both engine locks (write, then journal) for the whole run: a server's adds wait instead of
    # journaling vectors of the old model.
    with (
        WriteLock(settings.data_dir / "write.lock").hold(),
        WriteLock(settings.data_dir / "journal.lock").hold(),
    ):
        _move_journal(settings)
        if settings.lance_dir.is_dir():
            VectorStore(settings.lance_dir)  # opening it adds columns an older version lacked
        meta = read_meta(settings.data_dir)
        old_model = meta.get("embedder_model")
        if isinstance(old_model, str) and old_model.startswith(IN_PROGRESS):
            # An interrupted run: the table holds the old or the new vectors; re-embed either way.
            logger.warning("reindex: a previous reindex was interrupted; re-embedding every memory")
            old_model = meta.get("reindex_from")
            force = True
        db = _connect(settings) if settings.lance_dir.is_dir() else None
        src = _open(db, TABLE) if db is not None else None
        if src is None:
            if not meta:
                raise EmptyStoreError(
                    f"{settings.data_dir} holds no memories (no memory table): nothing to re-embed"
                )
            # A recorded model but no table: forget the model; the next write records the new one.
            write_meta(settings.data_dir, None)
            return _result(
                t0,
                old_model,
                new_model,
                meta.get("dimension"),
                None,
                done=True,
                message="no memories to re-embed; the recorded embedder identity was reset",
            )
        old_dim = int(src.schema.field("vector").type.list_size)
        if not force and old_model == new_model:
            return _result(
                t0,
                old_model,
                new_model,
                old_dim,
                old_dim,
                done=False,
                message=f"the store is already embedded with {new_model!r}: nothing to do "
                "(--force re-embeds anyway, e.g. when the model's files changed)",
            )
        emb = embedder if embedder is not None else build_embedder(settings)
        if not force and old_model is None and emb.dimension == old_dim:
            # An unrecorded model of the same dimension: the engine would open the store as is.
            return _result(
                t0,
                None,
                new_model,
                old_dim,
                old_dim,
                done=False,
                message=f"the store records no model and its {old_dim}-d vectors fit {new_model!r}: "
                "nothing to do (--force re-embeds anyway)",
            )
        total = int(src.count_rows())
        logger.info("reindex: re-embedding %d memories with %s (was %s)", total, new_model, old_model)
        staged, new_dim = _stage(db, src, emb, total, size, progress, old_model, settings.context_vectors)
        if staged != total or int(src.count_rows()) != total:
            _drop(db, STAGING_TABLE)
            raise StoreError(
                f"reindex: staged {staged} rows but the memory table holds {int(src.count_rows())} "
                f"(expected {total}); nothing was changed, the store still uses {old_model!r}"
            )
        _swap(settings, db, meta, old_model, new_model, new_dim, total)
    seconds = time.perf_counter() - t0
    message = f"{total} memories re-embedded in {seconds:.1f}s: {old_model} -> {new_model}"
    logger.info("reindex: %s (%s -> %s dimensions)", message, old_dim, new_dim)
    return ReindexResult(total, seconds, old_model, new_model, old_dim, new_dim, True, message)


def _result(
    t0: float,
    old_model: str | None,
    new_model: str,
    old_dim: int | None,
    new_dim: int | None,
    *,
    done: bool,
    message: str,
) -> ReindexResult:
    return ReindexResult(0, time.perf_counter() - t0, old_model, new_model, old_dim, new_dim, done, message)


def _stage(
    db: Any,
    src: Any,
    emb: Embedder,
    total: int,
    size: int,
    progress: Progress | None,
    old_model: str | None,
    mode: ContextMode,
) -> tuple[int, int]:
    """Write every row, re-embedded, to the staging table; (rows written, new dimension)."""
    _drop(db, STAGING_TABLE)  # a leftover of an interrupted run
    reader = src.search().select(list(ROW_COLUMNS)).limit(None).to_batches(size)
    chunks = _chunks(reader, size)
    done = 0
    failure: list[BaseException] = []

    def embedded(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, int]:
        rows = batch.select(list(ROW_COLUMNS)).to_pylist()
        vectors = embed_inputs([EmbedInput.of_row(r) for r in rows], emb.embed, mode)
        if vectors.ndim != 2 or vectors.shape[0] != len(rows):
            raise StoreError(f"the embedder returned shape {vectors.shape} for {len(rows)} texts")
        dim = int(vectors.shape[1])
        schema = memory_schema(dim)
        arrays = [batch.column(c).cast(schema.field(c).type) for c in ROW_COLUMNS]
        # The duplicate key is derived too: rows of older versions get today's (case, spacing,
        # punctuation and Unicode form folded).
        arrays[ROW_COLUMNS.index("hash")] = pa.array([text_hash(r["memory"]) for r in rows], type=pa.string())
        flat = pa.array(np.ascontiguousarray(vectors).ravel(), type=pa.float32())
        arrays.append(pa.FixedSizeListArray.from_arrays(flat, dim))
        return pa.RecordBatch.from_arrays(arrays, schema=schema), dim

    try:
        first = next(chunks, None)
        if first is None:
            new_dim = int(emb.dimension)
            db.create_table(STAGING_TABLE, schema=memory_schema(new_dim))
            return 0, new_dim
        head, new_dim = embedded(first)

        def batches() -> Iterator[pa.RecordBatch]:
            nonlocal done
            batch = head
            while True:
                done += batch.num_rows
                yield batch
                if progress:
                    progress(done, total)
                nxt = next(chunks, None)
                if nxt is None:
                    return
                try:
                    batch, dim = embedded(nxt)
                except BaseException as exc:  # kept: LanceDB reports it wrapped in an Arrow error
                    failure.append(exc)
                    raise
                if dim != new_dim:
                    failure.append(StoreError(f"the embedder changed dimension mid-way ({new_dim} -> {dim})"))
                    raise failure[-1]

        db.create_table(STAGING_TABLE, batches(), schema=memory_schema(new_dim))
        staged = _open(db, STAGING_TABLE)
        return (int(staged.count_rows()) if staged is not None else -1), new_dim
    except Exception as exc:
        _drop(db, STAGING_TABLE)
        cause = failure[0] if failure else exc
        raise StoreError(
            f"reindex failed after {done} of {total} memories: {cause}; nothing was changed, the "
            f"store still uses {old_model!r}"
        ) from cause


def _swap(
    settings: Settings,
    db: Any,
    meta: dict[str, Any],
    old_model: str | None,
    new_model: str,
    new_dim: int,
    total: int,
) -> None:
    """Replace the memory table by the staging table, rebuild its indexes, record the new model."""
    staged = db.open_table(STAGING_TABLE)
    write_meta(
        settings.data_dir,
        {
            "embedder_model": f"{IN_PROGRESS}{old_model} -> {new_model}",
            "dimension": new_dim,
            "reindex_from": old_model,
            "reindex_to": new_model,
        },
    )
    version = int(db.open_table(TABLE).version)
    try:
        db.create_table(
            TABLE,
            staged.search().limit(None).to_batches(),
            schema=memory_schema(new_dim),
            mode="overwrite",
        )
    except BaseException as exc:
        # The overwrite is one commit: unless it got as far as committing, the memory table is
        # the old one, and the store can go back to its model.
        try:
            unchanged = int(db.open_table(TABLE).version) == version
        except Exception:
            unchanged = False
        if unchanged:
            write_meta(settings.data_dir, meta or None)
            _drop(db, STAGING_TABLE)
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt and the like
        if not unchanged:
            raise StoreError(
                f"reindex: replacing the memory table failed: {exc}; the store stays closed to the "
                "engine until `mem0-mcp reindex` is run again"
            ) from exc
        raise StoreError(
            f"reindex: replacing the memory table failed: {exc}; nothing was changed, the store "
            f"still uses {old_model!r}"
        ) from exc
    try:
        store = VectorStore(settings.lance_dir)
        store.create_indexes()
        store.optimize(ann_threshold=settings.ann_index_threshold)  # the ANN index, past its threshold
        count = store.count()
        if count != total:
            raise StoreError(f"the new memory table holds {count} rows, expected {total}")
    except Exception as exc:
        raise StoreError(
            f"reindex: the memories were re-embedded but finishing failed ({exc}); the store stays "
            "closed to the engine until `mem0-mcp reindex` is run again"
        ) from exc
    _drop(db, STAGING_TABLE)
    write_meta(settings.data_dir, {"embedder_model": new_model, "dimension": new_dim})


def _drop(db: Any, name: str) -> None:
    try:
        db.drop_table(name, ignore_missing=True)
    except Exception as exc:  # best effort: a leftover staging table is dropped by the next run
        logger.warning("reindex: could not drop %s: %s", name, exc)
