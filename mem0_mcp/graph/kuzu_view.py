"""Kùzu as a view of the graph log: the same entities and relations, for Cypher (``query_graph``).

Every process serves graph reads from its in-memory copy (``mem0_mcp.graph.copy``); Kùzu holds the
graph on disk in a form a person or an agent can query with Cypher. It is brought up to date from
the log in the background after writes, and before each Cypher query, by whichever process takes
its lock. The log seq it has applied is stored in the database in the same transaction as the
changes (``GraphMeta.applied_seq``), so each change lands once even when a process is killed
halfway. A database that cannot follow the log (deleted, from another release) is rebuilt from it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from mem0_mcp.graph.kuzu_db import ForeignGraphError, KuzuDatabase
from mem0_mcp.stores.graph_log import GraphLog, LogRow, decode_vector

logger = logging.getLogger(__name__)

# After a write, wait this long for more before syncing (one open for a burst of adds), but no
# longer than MAX_DELAY after the first unsynced write.
QUIET = 0.5
MAX_DELAY = 5.0
BATCH = 5000  # log rows per Kùzu transaction

_ENTITY = (
    "UNWIND $rows AS row MERGE (e:Entity {id: row.id}) SET e.name = row.name, e.norm = row.norm, "
    "e.type = row.type, e.aliases = row.aliases, e.user_id = row.u, e.agent_id = row.a, "
    "e.run_id = row.r, e.embedding = row.v, e.created_at = row.c"
)
_RELATION = (
    "UNWIND $rows AS row MATCH (s:Entity {id: row.s}), (d:Entity {id: row.d}) "
    "CREATE (s)-[r:RELATES {id: row.id, relation: row.rel, user_id: row.u, agent_id: row.a, "
    "run_id: row.r, created_at: row.c, valid_from: row.vf, invalidated_at: row.ia, "
    "invalidated_reason: row.ir, sources: row.src}]->(d)"
)


def _entity_row(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": body["id"],
        "name": body["name"],
        "norm": body["norm"],
        "type": body.get("type") or "entity",
        "aliases": list(body.get("aliases") or [body["norm"]]),
        "u": body.get("user_id") or "",
        "a": body.get("agent_id") or "",
        "r": body.get("run_id") or "",
        "v": decode_vector(str(body["vector"])).tolist(),
        "c": body.get("created_at") or "",
    }


def _relation_row(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": body["id"],
        "s": body["source_id"],
        "d": body["destination_id"],
        "rel": body["relation"],
        "u": body.get("user_id") or "",
        "a": body.get("agent_id") or "",
        "r": body.get("run_id") or "",
        "c": body.get("created_at") or "",
        "vf": body.get("valid_from") or body.get("created_at") or "",
        "ia": body.get("invalidated_at"),
        "ir": body.get("invalidated_reason") or "",
        "src": [str(s) for s in body.get("sources") or []],
    }


def _runs(rows: Sequence[LogRow]) -> Iterator[tuple[str, list[LogRow]]]:
    """Consecutive rows of one kind, so a bulk of entities or relations is one statement."""
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i].op != rows[start].op:
            yield rows[start].op, list(rows[start:i])
            start = i


class KuzuView:
    """Keeps the Kùzu database ``db`` up to date with ``log``; ``poke`` after writes."""

    def __init__(self, db: KuzuDatabase, log: GraphLog) -> None:
        self.db = db
        self.log = log
        self._wake = threading.Condition()
        self._first_poke: float | None = None
        self._last_poke = 0.0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._sync_lock = threading.Lock()

    # ------------------------------------------------------------------ background
    def poke(self) -> None:
        """A write was committed: sync soon (debounced, in a background thread)."""
        with self._wake:
            if self._closed:
                return
            now = time.monotonic()
            self._last_poke = now
            if self._first_poke is None:
                self._first_poke = now
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mem0-graph-view", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._first_poke is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                now = time.monotonic()
                due = min(self._last_poke + QUIET, (self._first_poke or now) + MAX_DELAY)
                if now < due:
                    self._wake.wait(due - now)
                    continue
                self._first_poke = None
            try:
                self.sync()
            except Exception:
                # The log holds every change; the next sync (or a query) catches up.
                logger.exception("graph: bringing the Kùzu view up to date failed; will retry")

    def close(self, *, flush: bool = True) -> None:
        """Stop the background thread; ``flush``: sync once more first (best effort)."""
        with self._wake:
            self._closed = True
            pending = self._first_poke is not None
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if flush and pending:
            try:
                self.sync()
            except Exception:
                logger.exception("graph: final Kùzu sync failed; the next start catches up")

    # ------------------------------------------------------------------ sync
    def sync(self) -> int:
        """Apply the log rows the database has not seen; how many. A database this driver cannot
        open (another driver wrote it) is moved aside and written anew from the log. Raises
        ``StoreError``."""
        with self._sync_lock:
            try:
                return self._sync()
            except ForeignGraphError as exc:
                if self.log.head() == 0:
                    raise
                aside = self.db.move_aside()
                logger.warning(
                    "graph: the Kùzu view could not be opened (%s); moved to %s and written anew "
                    "from the graph log",
                    exc,
                    aside,
                )
                return self._sync()

    def _sync(self) -> int:
        done = 0
        while True:
            with self.db.session(write=True) as conn:
                applied = self._applied(conn)
                rows = self.log.since(applied, limit=BATCH)
                if not rows:
                    return done
                if applied == 0 and self.db.has_graph(conn):
                    # Written before the log, or by a process killed before it recorded its
                    # seq: the log is the truth, so the view starts over from it.
                    self.db.rows(conn, "MATCH (e:Entity) DETACH DELETE e")
                cut = next((i for i, r in enumerate(rows) if r.op == "reset"), None)
                if cut == 0:
                    self._set_applied(conn, rows[0].seq)
                else:
                    batch = rows if cut is None else rows[:cut]
                    self._apply(conn, batch)
                    self._set_applied(conn, batch[-1].seq)
                    done += len(batch)
                    continue
            # A reset: drop the tables (the next model may embed with another width).
            self.db.reset()
            with self.db.session(write=True) as conn:
                self._set_applied(conn, rows[0].seq)
            done += 1

    def state(self) -> tuple[int, dict[str, int]]:
        """The log seq the database reflects and its entity and relation counts. Raises ``StoreError``."""
        with self.db.session(write=False) as conn:
            if conn is None:
                return 0, {"entities": 0, "relations": 0}
            meta = self.db.rows(conn, "MATCH (m:GraphMeta {key: 'applied_seq'}) RETURN m.value AS v")
            seq = int(meta[0]["v"]) if meta else 0
            if not self.db.has_graph(conn):
                return seq, {"entities": 0, "relations": 0}
            e = self.db.rows(conn, "MATCH (e:Entity) RETURN count(e) AS n")[0]["n"]
            r = self.db.rows(conn, "MATCH ()-[r:RELATES]->() RETURN count(r) AS n")[0]["n"]
        return seq, {"entities": int(e), "relations": int(r)}

    def rebuild(
        self, seq: int, entities: Sequence[dict[str, Any]], relations: Sequence[dict[str, Any]]
    ) -> None:
        """Write the database anew from the graph as of log row ``seq`` (new files, inserts only).

        Why: Kùzu 0.11.3 can keep relations a transaction deleted (seen here after a mix of
        updates and deletes: the relation still matched, and a second DELETE of it did nothing;
        the fork ``ladybug`` 0.22.0 did not). A database written by inserts alone is right.
        Raises ``StoreError``."""
        with self._sync_lock:
            self.db.reset()
            rows = [LogRow(0, "entity", e) for e in entities] + [LogRow(0, "relation", r) for r in relations]
            with self.db.session(write=True) as conn:
                for start in range(0, len(rows), BATCH):
                    self._apply(conn, rows[start : start + BATCH])
                self._set_applied(conn, seq)

    def _applied(self, conn: Any) -> int:
        found = self.db.rows(conn, "MATCH (m:GraphMeta {key: 'applied_seq'}) RETURN m.value AS v")
        return int(found[0]["v"]) if found else 0

    def _set_applied(self, conn: Any, seq: int) -> None:
        self.db.rows(conn, "MERGE (m:GraphMeta {key: 'applied_seq'}) SET m.value = $v", {"v": str(seq)})

    def _apply(self, conn: Any, rows: Sequence[LogRow]) -> None:
        first = next((r for r in rows if r.op == "entity"), None)
        if first is not None:
            # Table creation commits the open transaction: do it before any change of this batch.
            self.db.ensure_entity_table(conn, int(decode_vector(str(first.body["vector"])).shape[0]))
        elif not self.db.has_graph(conn):
            return  # nothing to change in a graph with no entity yet
        for op, run in _runs(rows):
            self._apply_run(conn, op, run)

    def _apply_run(self, conn: Any, op: str, run: list[LogRow]) -> None:
        q = self.db.rows
        if op == "entity":
            q(conn, _ENTITY, {"rows": [_entity_row(r.body) for r in run]})
        elif op == "relation":
            q(conn, _RELATION, {"rows": [_relation_row(r.body) for r in run]})
        elif op == "delete_relations":
            ids = [str(i) for r in run for i in r.body["ids"]]
            q(conn, "MATCH ()-[r:RELATES]->() WHERE r.id IN $ids DELETE r", {"ids": ids})
        elif op == "delete_entities":
            ids = [str(i) for r in run for i in r.body["ids"]]
            q(conn, "MATCH (e:Entity) WHERE e.id IN $ids DETACH DELETE e", {"ids": ids})
        else:
            for r in run:
                self._apply_one(conn, r)

    def _apply_one(self, conn: Any, row: LogRow) -> None:
        body, q = row.body, self.db.rows
        if row.op == "alias":
            q(
                conn,
                "MATCH (e:Entity {id: $id}) WHERE NOT list_contains(e.aliases, $alias) "
                "SET e.aliases = list_append(e.aliases, $alias)",
                {"id": body["id"], "alias": body["alias"]},
            )
        elif row.op == "sources":
            q(
                conn,
                "MATCH ()-[r:RELATES]->() WHERE r.id = $id SET r.sources = $src",
                {"id": body["id"], "src": [str(s) for s in body["sources"]]},
            )
        elif row.op in ("job", "job_done", "deleted"):
            pass  # queued work and its completion: bookkeeping of the log, not the graph
        elif row.op == "invalidate":
            q(
                conn,
                "MATCH ()-[r:RELATES]->() WHERE r.id = $id AND r.invalidated_at IS NULL "
                "SET r.invalidated_at = $t, r.invalidated_reason = $why",
                {"id": body["id"], "t": body["when"], "why": body.get("reason") or ""},
            )
        else:
            logger.warning("graph: log row %d has an unknown change %r; skipped in the view", row.seq, row.op)
