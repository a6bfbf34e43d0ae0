"""A Kùzu database opened per operation under a cross-process lock.

Kùzu locks its database file to one process, and several server processes share one data dir
(Claude Desktop and an IDE each spawn one). So the database is never held open for the life of
the process: every operation (or a short burst of them, see ``session``) opens it under a
cross-process file lock and closes it again, which checkpoints the write-ahead log.

This module owns the driver, the connection, the transaction of a write burst and the schema;
the queries live in ``mem0_mcp.graph.kuzu_store``.

The driver (setting ``graph_driver``) is Kùzu itself (archived, 0.11.3 its last release) or its
maintained fork Ladybug: the same Cypher and the same Python API (``Database(path,
buffer_pool_size=, read_only=, checkpoint_threshold=)``, ``Connection``, ``CALL
force_checkpoint_on_close``, ``SHOW_TABLES``), under another module name. ``load_driver`` is the one
place that picks it. Two differences matter here: Ladybug ships no extension (``LOAD EXTENSION
vector`` asks for an ``INSTALL`` download, so the optional HNSW index stays off), and the two
cannot be loaded in one process (both register the pybind11 type "Database": the second import
fails, and the process may crash at exit) -- one process, one driver. Neither opens the other's
database file (tested: Kùzu 0.11.3 and Ladybug 0.22.0).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import shutil
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from mem0_mcp.errors import ConfigError, StoreError
from mem0_mcp.stores.locks import WriteLock

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "1"

GraphDriver = Literal["kuzu", "ladybug"]
# Setting value -> (Python module, pip requirement). Both packages are imported lazily, by name.
DRIVERS: dict[str, tuple[str, str]] = {"kuzu": ("kuzu", "kuzu"), "ladybug": ("ladybug", "ladybug")}
# What Kùzu 0.11.3 and Ladybug 0.22.0 say when given a database (or its WAL) the other one wrote;
# Ladybug also says the second for a WAL it finds damaged.
_FOREIGN_FILE = ("not a valid", "checksum", "storage version")


def check_driver(driver: str) -> str:
    """``driver`` when its package is installed (found, not imported: that costs ~55 ms).
    Raises ``ConfigError`` naming ``graph_driver`` and the pip command."""
    if driver not in DRIVERS:
        raise ConfigError(f"graph_driver: {driver!r} is not one of {', '.join(DRIVERS)}")
    module, requirement = DRIVERS[driver]
    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"graph_driver={driver}: the Python package {requirement!r} is not installed; install it "
            f"with `pip install {requirement}` (or `pip install 'mem0-mcp[{requirement}]'`), or set "
            "MEM0_MCP_GRAPH_DRIVER=kuzu"
        )
    return driver


def load_driver(driver: str) -> ModuleType:
    """The driver's module (``Database``, ``Connection``), imported on first use. Raises
    ``ConfigError`` when it is missing or cannot load (e.g. the other driver is loaded already)."""
    module, requirement = DRIVERS[check_driver(driver)]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        other = [m for name, (m, _) in DRIVERS.items() if name != driver and m in sys.modules]
        why = f"{other[0]} is loaded in this process already and the two clash" if other else str(exc)
        raise ConfigError(f"graph_driver={driver}: cannot load {requirement!r} ({why})") from exc


class ForeignGraphError(StoreError):
    """The database files were written by another driver or version (or are damaged)."""


class KuzuDatabase:
    """One Kùzu database at ``path``, opened per session under ``lock_path``.

    ``vector_index``: also build Kùzu's HNSW index on entity embeddings (see ``KuzuGraphStore``).
    ``driver``: ``kuzu`` or ``ladybug`` (see the module's docstring); checked here, loaded at the
    first open. Raises ``ConfigError`` when its package is not installed.
    """

    def __init__(
        self,
        path: Path,
        *,
        lock_path: Path | None = None,
        buffer_pool_mb: int = 64,
        vector_index: bool = False,
        checkpoint_kb: int = 128,
        driver: GraphDriver = "kuzu",
    ) -> None:
        self.path = path
        self.driver = check_driver(driver)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = WriteLock(lock_path or path.parent / "graph.lock")
        self._buffer_pool = buffer_pool_mb * 1024 * 1024
        self._checkpoint_bytes = checkpoint_kb * 1024
        self._vector_index = vector_index
        self._db: Any = None
        self._conn: Any = None
        self._writable = False
        self._in_tx = False
        self._entity_table = False  # whether the open database has the Entity table
        self._dimension: int | None = None
        self.opens = 0
        self.open_seconds = 0.0
        self._stats_lock = threading.Lock()

    @property
    def vector_index(self) -> bool:
        """Whether the HNSW index on entity embeddings is in use (off when the extension is missing)."""
        return self._vector_index

    @property
    def is_open(self) -> bool:
        """Whether the database is open now (only inside a session: nothing stays open between)."""
        return self._conn is not None

    @property
    def connection(self) -> Any:
        """The open connection inside a session or burst, else None (for bulk loads)."""
        return self._conn

    @contextmanager
    def session(self, write: bool) -> Iterator[Any]:
        """A connection under the lock, reused inside an enclosing session; None when reading a
        graph that does not exist yet. A write session is one transaction, committed at the end
        and rolled back on an exception. Raises ``StoreError`` when the database cannot open."""
        with self._lock.hold():
            if self._conn is not None and (self._writable or not write):
                yield self._conn
                return
            if self._conn is not None:
                # A read burst that now needs to write: reopen writable, then back to read-only.
                self._close()
                try:
                    yield self._open(write=True)
                finally:
                    self._close()
                    self._open(write=False)
                return
            if not write and not self.path.exists():
                yield None
                return
            try:
                conn = self._open(write)
                if not write:
                    yield conn
                    return
                # One transaction per write burst: a graph update lands whole or not at all, and
                # one commit instead of one per statement (measured ~2x faster per add).
                self._begin()
                try:
                    yield conn
                except BaseException:
                    self._end("ROLLBACK")
                    raise
                self._end("COMMIT")
            finally:
                self._close()

    def _begin(self) -> None:
        self._exec("BEGIN TRANSACTION;")
        self._in_tx = True

    def _exec(self, statement: str) -> None:
        # Results are closed at once: a live result keeps the database from closing, and the
        # next process cannot open it until it does.
        result = self._conn.execute(statement)
        for r in result if isinstance(result, list) else [result]:
            r.close()

    def _end(self, how: str) -> None:
        if self._in_tx:
            self._in_tx = False
            try:
                self._exec(f"{how};")
            except RuntimeError:
                if how != "ROLLBACK":
                    raise
                # Kùzu already ended a failed transaction itself: the error that failed it is the
                # one to report, not "No active transaction for ROLLBACK".

    def _open(self, write: bool) -> Any:
        driver = load_driver(self.driver)
        started = time.perf_counter()
        try:
            self._db = driver.Database(
                str(self.path),
                buffer_pool_size=self._buffer_pool,
                read_only=not write,
                checkpoint_threshold=self._checkpoint_bytes,
            )
            self._conn = driver.Connection(self._db)
            if write:
                # Closing checkpoints by default, and a checkpoint after one new edge in a
                # 50k-edge table took 1-1.7 s (the rel table's CSR is rewritten); closing without
                # it takes ~10 ms. The WAL is durable at commit and replayed by the next open;
                # Kùzu checkpoints at a commit once the WAL passes checkpoint_kb. 128 KB (~20
                # adds) balances the two: replay costs every open ~0.3 ms per KB, a checkpoint
                # at 50k relations ~1.5 s.
                self._exec("CALL force_checkpoint_on_close=false;")
        except RuntimeError as exc:
            self._db = self._conn = None
            if any(s in str(exc).casefold() for s in _FOREIGN_FILE):
                raise ForeignGraphError(
                    f"graph store {self.path}: graph_driver={self.driver} cannot open it: another "
                    "driver (or version) wrote it, or it is damaged; set graph_driver to the one that "
                    "wrote it, or move it aside and run `mem0-mcp graph rebuild` to re-derive it from "
                    f"the memories ({exc})"
                ) from exc
            raise StoreError(f"graph store {self.path}: cannot open: {exc}") from exc
        self._writable = write
        # Writes on a table with a vector index must run with the extension loaded (without it
        # Kùzu 0.11.3 crashed in our tests).
        if self._vector_index:
            self._vector_index = self._load("vector")
        if write:
            self._ensure_schema()
        with self._stats_lock:
            self.opens += 1
            self.open_seconds += time.perf_counter() - started
        return self._conn

    def _load(self, extension: str) -> bool:
        try:
            self._exec(f"LOAD EXTENSION {extension};")
            return True
        except RuntimeError as exc:
            logger.warning("graph: Kùzu extension %s unavailable (%s)", extension, exc)
            return False

    def _close(self) -> None:
        conn, db = self._conn, self._db
        self._conn = self._db = None
        self._writable = self._in_tx = self._entity_table = False
        try:
            if conn is not None:
                conn.close()
        finally:
            if db is not None:
                db.close()

    def rows(self, conn: Any, query: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one parameterized query; its rows as dicts. Raises ``StoreError``."""
        try:
            result = conn.execute(query, dict(params or {}))
        except RuntimeError as exc:
            raise StoreError(f"graph query failed: {exc}") from exc
        cols = result.get_column_names()
        out = [dict(zip(cols, row, strict=True)) for row in result.get_all()]
        result.close()
        return out

    def _tables(self, conn: Any) -> set[str]:
        return {r["name"] for r in self.rows(conn, "CALL SHOW_TABLES() RETURN name")}

    def _ensure_schema(self) -> None:
        conn = self._conn
        tables = self._tables(conn)
        if "GraphMeta" not in tables:
            self.rows(conn, "CREATE NODE TABLE IF NOT EXISTS GraphMeta(key STRING PRIMARY KEY, value STRING)")
            self.rows(conn, "MERGE (m:GraphMeta {key: 'schema'}) SET m.value = $v", {"v": SCHEMA_VERSION})
        dim = self.rows(conn, "MATCH (m:GraphMeta {key: 'dimension'}) RETURN m.value AS v")
        self._dimension = int(dim[0]["v"]) if dim else None

    def ensure_entity_table(self, conn: Any, dimension: int) -> None:
        """Create the Entity and RELATES tables for ``dimension``-d embeddings on first use.

        Raises ``StoreError`` when the graph holds embeddings of another width."""
        if self._dimension is None:
            self._ensure_schema()
        if self._dimension is not None:
            if self._dimension != dimension:
                raise StoreError(
                    f"graph store {self.path}: entity embeddings are {self._dimension}-d but the "
                    f"embedder gives {dimension}-d; run `mem0-mcp graph rebuild` after switching models"
                )
            return
        d = int(dimension)
        # Index creation is refused inside an explicit transaction: commit what came before.
        in_tx = self._in_tx
        if in_tx:
            self._end("COMMIT")
        self.rows(
            conn,
            "CREATE NODE TABLE IF NOT EXISTS Entity(id STRING PRIMARY KEY, name STRING, norm STRING, "
            "type STRING, aliases STRING[], user_id STRING, agent_id STRING, run_id STRING, "
            f"embedding FLOAT[{d}], created_at STRING)",
        )
        self.rows(
            conn,
            "CREATE REL TABLE IF NOT EXISTS RELATES(FROM Entity TO Entity, id STRING, relation STRING, "
            "user_id STRING, agent_id STRING, run_id STRING, created_at STRING, valid_from STRING, "
            "invalidated_at STRING, invalidated_reason STRING, sources STRING[])",
        )
        if self._vector_index:
            self.rows(
                conn, "CALL CREATE_VECTOR_INDEX('Entity', 'entity_vectors', 'embedding', metric := 'cosine')"
            )
        self.rows(conn, "MERGE (m:GraphMeta {key: 'dimension'}) SET m.value = $v", {"v": str(d)})
        self._dimension = d
        if in_tx:
            self._begin()

    def has_graph(self, conn: Any) -> bool:
        """Whether ``conn`` (None: no database yet) holds the Entity table."""
        # Once per open: the answer can only change through this connection (schema creation).
        if conn is None:
            return False
        if not self._entity_table:
            self._entity_table = "Entity" in self._tables(conn)
        return self._entity_table

    def read_query(
        self, cypher: str, params: Mapping[str, object] | None, limit: int
    ) -> list[dict[str, object]]:
        """Run caller-written Cypher on a READ-ONLY open of the database (the caller has vetted it);
        at most ``limit`` rows. Raises ``StoreError`` on a query error or inside a burst."""
        with self._lock.hold():
            if self._conn is not None:
                raise StoreError("graph: read_query cannot run inside a burst")
            if not self.path.exists():
                return []
            conn = self._open(write=False)
            try:
                result = conn.execute(cypher, dict(params or {}))
                cols = result.get_column_names()
                out: list[dict[str, object]] = []
                while result.has_next() and len(out) < limit:
                    out.append(dict(zip(cols, result.get_next(), strict=True)))
                result.close()
                return out
            except RuntimeError as exc:
                raise StoreError(f"graph query failed: {exc}") from exc
            finally:
                self._close()

    def move_aside(self) -> Path:
        """Rename the database files (and write-ahead log) to ``<name>.unreadable-<time>``; the new
        name of the database. A file this driver cannot open is kept for a person to look at."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        with self._lock.hold():
            self._close()
            target = self.path.with_name(f"{self.path.name}.unreadable-{stamp}")
            for p in (self.path, self.path.with_name(self.path.name + ".wal")):
                if p.exists():
                    p.rename(p.with_name(p.name.replace(self.path.name, target.name, 1)))
            self._dimension = None
        return target

    def reset(self) -> None:
        """Close and delete the database files."""
        with self._lock.hold():
            self._close()
            for p in (self.path, self.path.with_name(self.path.name + ".wal")):
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink(missing_ok=True)
            self._dimension = None
