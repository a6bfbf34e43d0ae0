"""What graph memory needs from a graph database, and the factory that opens the configured one.

The protocol is all the pipeline, the tools and the CLI see, so the archived Kùzu can be swapped
for its fork (or another embedded graph) without touching them. The values crossing it are the
pydantic models ``GraphEntity`` and ``GraphRelation`` of ``mem0_mcp.models``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

import numpy as np

from mem0_mcp.models import GraphEntity, GraphRelation, Scope

if TYPE_CHECKING:
    from mem0_mcp.config import Settings

# One row of a caller-written Cypher query: column name -> value as the database returned it.
QueryRow = dict[str, object]


class GraphStore(Protocol):
    """Entities and relations by scope. ``exact`` means the entity's ids equal the scope's (absent
    ids absent); otherwise a scope is an AND of its ids. Failures raise ``StoreError``."""

    def burst(self, *, write: bool = False) -> AbstractContextManager[None]:
        """Keep the database open across the calls made inside (one transaction when writing)."""
        ...

    def entities_by_name(self, scope: Scope, norms: Sequence[str]) -> dict[str, GraphEntity]: ...
    def named(self, scope: Scope, norm: str) -> list[GraphEntity]: ...
    def similar_entities(
        self, scope: Scope, vector: np.ndarray, k: int, *, exact: bool
    ) -> list[GraphEntity]: ...
    def text_entities(self, scope: Scope, text: str, k: int) -> list[GraphEntity]: ...
    def entity_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]: ...
    def create_entity(
        self, scope: Scope, name: str, norm: str, type_: str, vector: np.ndarray, now: str
    ) -> GraphEntity: ...
    def add_alias(self, entity_id: str, alias: str) -> None: ...
    def relations(
        self,
        scope: Scope,
        entity_ids: Sequence[str],
        *,
        depth: int = 1,
        include_invalid: bool = False,
        limit: int = 1000,
    ) -> list[GraphRelation]: ...
    def find_relation(self, source_id: str, relation: str, destination_id: str) -> GraphRelation | None: ...
    def create_relation(
        self,
        scope: Scope,
        source_id: str,
        relation: str,
        destination_id: str,
        sources: Sequence[str],
        now: str,
        valid_from: str | None = None,
    ) -> GraphRelation: ...
    def add_sources(self, relation_id: str, sources: Sequence[str]) -> None: ...
    def invalidate(self, relation_id: str, when: str, reason: str | None) -> None: ...
    def delete_relation(self, relation_id: str) -> None: ...
    def forget_source(self, memory_id: str, *, deleted: bool = False) -> int:
        """Drop the memory as a relation source; ``deleted``: the memory is gone for good, so
        queued work for it must not write it back (``deleted_memories``)."""
        ...

    def deleted_memories(self, memory_ids: Sequence[str]) -> set[str]:
        """Those of ``memory_ids`` that ``forget_source(deleted=True)`` was told about."""
        ...

    def delete_scope(self, scope: Scope) -> int: ...
    def find_path(
        self, scope: Scope, source_id: str, target_id: str, max_hops: int
    ) -> list[GraphRelation]: ...
    def all_of(self, scope: Scope) -> tuple[list[GraphEntity], list[GraphRelation]]: ...
    def read_query(self, cypher: str, params: Mapping[str, object] | None, limit: int) -> list[QueryRow]: ...
    def counts(self) -> dict[str, int]: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...

    def queue_job(self, body: dict[str, object]) -> int:
        """Record graph work to do later, durably; its id (0: this store keeps no queue)."""
        ...

    def finish_job(self, seq: int, failed: str | None = None) -> None: ...
    def open_jobs(self) -> list[tuple[int, dict[str, object]]]: ...


def open_graph_store(settings: Settings, *, read_only: bool = False) -> GraphStore:
    """The graph store of ``settings``: the shared graph log (``graph-log.sqlite3``) read into
    memory, with Kùzu or Ladybug (``settings.graph_driver``, in ``settings.graph_dir``) as its
    view for Cypher. ``read_only``: a data dir that cannot be written (writes raise
    ``StoreError``). Raises ``ConfigError`` when the driver's package is not installed."""
    # Imported here: only a graph-enabled process pays for the backend's modules.
    from mem0_mcp.graph.kuzu_db import KuzuDatabase
    from mem0_mcp.graph.kuzu_view import KuzuView
    from mem0_mcp.graph.logged_store import LoggedGraphStore, import_legacy
    from mem0_mcp.stores.graph_log import GraphLog

    path = settings.graph_log_path
    refuse = f"the data dir {settings.data_dir} is read-only: the graph can be read, not changed"
    log = GraphLog(path, read_only=read_only, refuse=refuse)
    db = KuzuDatabase(
        settings.graph_dir, lock_path=settings.data_dir / "graph.lock", driver=settings.graph_driver
    )
    if not read_only:
        import_legacy(db, log)
    view = None if read_only else KuzuView(db, GraphLog(path))
    return LoggedGraphStore(log, view)
