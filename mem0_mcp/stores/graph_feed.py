"""The graph's changes, shared by every node of a store on object storage (``store_uri``).

Each node keeps its own graph (the log in its data dir and the in-memory copy that follows it);
what nodes share is this feed: an append-only Lance table under the store URI, one row per graph
change a node made, written by name (entity names, relation words, memory ids), never by the
node's own entity or relation ids, so another node can apply it to its graph through the same
code that wrote it locally. LanceDB commits concurrent appends from several nodes safely; nothing
here is updated, only ``reset`` deletes.

Rows are ordered by ``seq`` (the writer's clock in microseconds, shifted left 10 bits, plus 10
random bits). A reader asks for the rows after its cursor less ``OVERLAP_SECONDS`` and skips the
ids it already applied, so a row committed late (a slow node, clocks apart by less than that)
is still seen once.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from mem0_mcp.errors import StoreError
from mem0_mcp.stores.object_store import RemoteStore, retry_conflicts

TABLE = "graph_feed"
# How far back (by the writers' clocks) a reader looks again for rows committed after it read.
OVERLAP_SECONDS = 120.0
# Appends of this node between compactions of the table (each append is a small file of its own).
COMPACT_EVERY = 256
SCHEMA = pa.schema(
    [
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("node", pa.string(), nullable=False),
        pa.field("op", pa.string(), nullable=False),
        pa.field("body", pa.string(), nullable=False),
    ]
)


@dataclass(frozen=True)
class FeedRow:
    """One graph change a node made: ``op`` names it, ``body`` holds its arguments by name."""

    seq: int
    id: str
    node: str
    op: str
    body: dict[str, Any]


def next_seq() -> int:
    """A feed position: the clock's microsecond, 10 random bits below it."""
    return (time.time_ns() // 1000) << 10 | random.getrandbits(10)


def seq_seconds(seq: int) -> float:
    """The writer's clock, in seconds, of a feed position."""
    return (seq >> 10) / 1e6


class GraphFeed:
    """The shared feed of graph changes on ``remote``, appended to as ``node``."""

    def __init__(self, remote: RemoteStore, node: str) -> None:
        self.remote = remote
        self.node = node
        self._db = remote.connect()
        self._table: Any = None
        self._lock = threading.Lock()
        self._read_version: int | None = None  # the table version the last ``after`` read
        self._appends = 0

    def _open(self, *, create: bool) -> Any:
        with self._lock:
            if self._table is None:
                try:
                    self._table = self._db.open_table(TABLE)
                except (FileNotFoundError, ValueError):
                    if not create:
                        return None
                    self._table = self._db.create_table(TABLE, schema=SCHEMA, exist_ok=True)
            return self._table

    def append(self, op: str, body: Mapping[str, Any]) -> FeedRow:
        """Publish one change; returns its row. Raises ``StoreError`` when the store refuses it."""
        row = FeedRow(next_seq(), f"{self.node}:{random.getrandbits(64):016x}", self.node, op, dict(body))
        data = [{"seq": row.seq, "id": row.id, "node": row.node, "op": op, "body": json.dumps(row.body)}]
        try:
            table = self._open(create=True)
            retry_conflicts(lambda: table.add(pa.Table.from_pylist(data, schema=SCHEMA)), what="graph feed")
            self._appends += 1
        except Exception as exc:
            where = self.remote.shown
            raise StoreError(f"graph feed on {where}: the change was not published ({exc})") from exc
        return row

    def after(self, seq: int) -> list[FeedRow]:
        """Rows from ``seq`` less the overlap on, oldest first (rows of every node, this one's
        too: the caller skips what it applied); none when nothing was committed since the last
        call. Raises ``StoreError``."""
        try:
            table = self._open(create=False)
            if table is None:
                return []
            # Nothing committed since the last read: no scan (a node polls every refresh).
            version = int(table.version)
            if version == self._read_version:
                return []
            self._read_version = version
            floor = max(0, seq - (int(OVERLAP_SECONDS * 1e6) << 10))
            found = table.search().where(f"seq >= {floor}").limit(None).to_list()
        except Exception as exc:
            raise StoreError(f"graph feed on {self.remote.shown}: cannot be read ({exc})") from exc
        rows = [FeedRow(r["seq"], r["id"], r["node"], r["op"], json.loads(r["body"])) for r in found]
        return sorted(rows, key=lambda r: (r.seq, r.id))

    def compact_if_due(self) -> bool:
        """Merge the table's small files once this node appended ``COMPACT_EVERY`` rows since the
        last time (several nodes may; a lost commit race is retried); whether it ran. Raises
        ``StoreError``."""
        if self._appends < COMPACT_EVERY:
            return False
        table = self._open(create=False)
        if table is None:
            return False
        try:
            retry_conflicts(table.optimize, what="graph feed compaction")
        except Exception as exc:
            raise StoreError(f"graph feed on {self.remote.shown}: compaction failed ({exc})") from exc
        self._appends = 0
        return True

    def reset(self) -> None:
        """Delete every row (the whole graph of every node is being reset)."""
        table = self._open(create=False)
        if table is not None:
            retry_conflicts(lambda: table.delete("true"), what="graph feed reset")
