"""The graph of a store on object storage: each node derives its own, from what all nodes did.

Why not one shared graph: Kùzu locks its database to one process, and the graph log is a SQLite
file, which object storage cannot share. So each node keeps the graph in its own data dir (log,
in-memory copy, Kùzu view), and publishes every change it makes to the shared feed
(``stores/graph_feed.py``) by name: the relations an add's extraction found for which memory
ids, the explicit ``add_relation`` / ``delete_relation`` calls, deleted memories, scope deletes.
Every node applies the other nodes' rows through the same code that wrote them locally, so no
node calls an LLM again for another's memory. A node that starts empty derives the whole graph
from the feed; nodes apply rows in the writers' order, and entity resolution by embedding may
merge names in a different order on two nodes (the same names end up in one entity or two).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from mem0_mcp.graph.extraction import Extraction, Triple, normalize_name
from mem0_mcp.graph.prepared import Mention, PreparedAdd
from mem0_mcp.graph.store import GraphStore
from mem0_mcp.models import GraphRelation, Scope
from mem0_mcp.stores.graph_feed import OVERLAP_SECONDS, FeedRow, GraphFeed, seq_seconds
from mem0_mcp.stores.object_store import RemoteStore

logger = logging.getLogger(__name__)

STATE_FILE = "graph-feed.json"  # in the node's data dir: the cursor and the rows applied near it
NODE_FILE = "node-id"  # the data dir's name on the feed


class LocalGraph(Protocol):
    """What applying a feed row needs of the node's graph (``GraphMemory``)."""

    store: GraphStore

    def resolve(
        self, entities: dict[str, str], scope: Scope, *, by_embedding: bool = True
    ) -> dict[str, Mention]: ...

    def apply(
        self,
        prepared: PreparedAdd,
        scope: Scope,
        memory_ids: Sequence[str],
        event_at: str | None = None,
        *,
        job: int | None = None,
        publish: bool = True,
    ) -> list[GraphRelation]: ...

    def relate(
        self,
        source: str,
        relation: str,
        destination: str,
        scope: Scope,
        *,
        source_type: str | None = None,
        destination_type: str | None = None,
        publish: bool = True,
    ) -> GraphRelation: ...

    def delete_relation(
        self, source: str, relation: str, destination: str, scope: Scope, *, publish: bool = True
    ) -> int: ...


def relations_body(
    prepared: PreparedAdd, scope: Scope, memory_ids: Sequence[str], event_at: str | None
) -> dict[str, Any]:
    """An add's graph write as a feed row's body: names, not this node's ids."""
    by_id = {r.id: r for r in prepared.existing}
    return {
        "scope": scope.as_dict(),
        "memory_ids": list(memory_ids),
        "event_at": event_at,
        "entities": dict(prepared.extraction.entities),
        "relations": [[t.source, t.relation, t.destination] for t in prepared.extraction.relations],
        "invalidate": [
            [by_id[i].source, by_id[i].relation, by_id[i].destination, reason]
            for i, reason in prepared.invalidate.items()
            if i in by_id
        ],
        "exact": prepared.exact,
    }


def _apply_relations(graph: LocalGraph, body: Mapping[str, Any]) -> None:
    scope = Scope(**body["scope"])
    extraction = Extraction(dict(body["entities"]), [Triple(s, r, d) for s, r, d in body["relations"]])
    store = graph.store
    with store.burst():
        resolved = graph.resolve(extraction.entities, scope, by_embedding=not body.get("exact"))
        existing: list[GraphRelation] = []
        invalidate: dict[str, str] = {}
        for source, relation, destination, reason in body.get("invalidate") or []:
            ends = store.entities_by_name(scope, [normalize_name(source), normalize_name(destination)])
            s, d = ends.get(normalize_name(source)), ends.get(normalize_name(destination))
            found = store.find_relation(s.id, relation, d.id) if s is not None and d is not None else None
            if found is not None and found.invalidated_at is None:
                existing.append(found)
                invalidate[found.id] = reason
    prepared = PreparedAdd(extraction, resolved, existing, invalidate, exact=bool(body.get("exact")))
    graph.apply(prepared, scope, body["memory_ids"], body.get("event_at"), publish=False)


def apply_row(graph: LocalGraph, row: FeedRow) -> None:
    """Apply another node's change to this node's graph. Raises ``StoreError``."""
    body = row.body
    if row.op == "relations":
        _apply_relations(graph, body)
    elif row.op == "relate":
        graph.relate(
            body["source"],
            body["relation"],
            body["destination"],
            Scope(**body["scope"]),
            source_type=body.get("source_type"),
            destination_type=body.get("destination_type"),
            publish=False,
        )
    elif row.op == "unrelate":
        graph.delete_relation(
            body["source"], body["relation"], body["destination"], Scope(**body["scope"]), publish=False
        )
    elif row.op == "forget":
        graph.store.forget_source(body["memory_id"], deleted=bool(body.get("deleted")))
    elif row.op == "delete_scope":
        graph.store.delete_scope(Scope(**body["scope"]))
    elif row.op == "reset":
        graph.store.reset()
    else:
        logger.warning("graph feed: row %s: unknown op %r (from a newer version), skipped", row.id, row.op)


class SharedGraph:
    """This node's side of the feed: publishes its changes, applies the other nodes' (in the
    background, every ``every`` seconds: the staleness bound of the graph, as of memories)."""

    @classmethod
    def open(cls, remote: RemoteStore, data_dir: Path, every: float) -> SharedGraph:
        """This data dir's side of the feed on ``remote`` (its node id is made once, kept there)."""
        marker = data_dir / NODE_FILE
        try:
            node = marker.read_text().strip()
        except OSError:
            node = ""
        if not node:
            node = uuid.uuid4().hex[:16]
            data_dir.mkdir(parents=True, exist_ok=True)
            marker.write_text(node + "\n")
        return cls(GraphFeed(remote, node), data_dir, every)

    def __init__(self, feed: GraphFeed, data_dir: Path, every: float) -> None:
        self.feed = feed
        self.every = max(0.2, every)
        self._state = data_dir / STATE_FILE
        self.cursor, self._applied = self._load()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _load(self) -> tuple[int, dict[str, int]]:
        try:
            data = json.loads(self._state.read_text())
            return int(data["cursor"]), {str(k): int(v) for k, v in data["applied"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            return 0, {}

    def _save(self) -> None:
        tmp = self._state.with_name(self._state.name + ".tmp")
        tmp.write_text(json.dumps({"cursor": self.cursor, "applied": self._applied}))
        os.replace(tmp, self._state)

    def publish(self, op: str, body: Mapping[str, Any]) -> None:
        """Tell the other nodes; a failure is logged (this node's graph has the change; the
        others miss it until `mem0-mcp graph rebuild`), never raised: the graph is derived."""
        try:
            self.feed.append(op, body)  # followers here skip it by its node id
        except Exception:
            logger.exception("graph feed: publishing %s failed; other nodes miss this change", op)

    def follow(self, graph: LocalGraph) -> int:
        """Apply the rows other nodes published since the last call; the count. A row that
        fails is logged and skipped (it is not retried: the graph is derived)."""
        with self._lock:
            rows = self.feed.after(self.cursor)
            done = 0
            for row in rows:
                # This data dir's own rows (any of its processes) are in its graph already.
                if row.id in self._applied or row.node == self.feed.node:
                    continue
                try:
                    apply_row(graph, row)
                    done += 1
                except Exception:
                    logger.exception("graph feed: applying %s %s of node %s failed", row.op, row.id, row.node)
                self._applied[row.id] = row.seq
            if rows:
                self.cursor = max(self.cursor, rows[-1].seq)
                floor = seq_seconds(self.cursor) - 2 * OVERLAP_SECONDS
                self._applied = {i: s for i, s in self._applied.items() if seq_seconds(s) >= floor}
                self._save()
            return done

    def start(self, graph: LocalGraph) -> None:
        """Follow the feed in the background until ``close``."""

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.follow(graph)
                    self.feed.compact_if_due()
                except Exception:
                    logger.exception("graph feed: following failed; retrying")
                self._stop.wait(self.every)

        self._thread = threading.Thread(target=loop, name="mem0-graph-feed", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def reset(self) -> None:
        """Every node's graph is being reset: the feed starts again with a reset row."""
        self.feed.reset()
        self.publish("reset", {})
