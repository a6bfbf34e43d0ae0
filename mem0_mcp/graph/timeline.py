"""Time in the graph: which relations held, as far as the graph knew, at a given moment.

A relation holds from ``valid_from`` (when the fact it came from happened: the memory's event
time) until ``invalidated_at`` (when a contradicting fact happened); ``created_at`` is when it was
recorded. ``as_of`` answers what the graph believed true at that moment: valid then, and already
recorded then (a fact imported today about 2020 was not known in 2021).
"""

from __future__ import annotations

from collections.abc import Sequence

from mem0_mcp.clock import parse_time
from mem0_mcp.graph.store import GraphStore
from mem0_mcp.models import GraphRelation, Scope


def read_as_of(value: str | None) -> str | None:
    """``as_of`` in the stored format, parsed as an add's ``timestamp`` is (None: now, no filter).
    Raises ``InvalidInputError`` naming ``as_of``."""
    return None if value is None else parse_time(value, "as_of")


def true_at(r: GraphRelation, as_of: str) -> bool:
    """Whether ``r`` was recorded and valid at ``as_of`` (stored times compare as strings)."""
    return (
        r.created_at <= as_of
        and r.valid_from <= as_of
        and (r.invalidated_at is None or r.invalidated_at > as_of)
    )


def relations_at(
    store: GraphStore, scope: Scope, entity_ids: Sequence[str], as_of: str, *, depth: int, limit: int
) -> list[GraphRelation]:
    """Relations within ``depth`` hops of the entities, walking only relations true at ``as_of``:
    a hop through a relation that did not hold then reaches nothing. One store read per hop."""
    seen: dict[str, GraphRelation] = {}
    frontier = list(dict.fromkeys(entity_ids))
    visited = set(frontier)
    for _ in range(max(1, depth)):
        if not frontier:
            break
        hop = store.relations(scope, frontier, depth=1, include_invalid=True, limit=limit)
        frontier = []
        for r in hop:
            if r.id in seen or not true_at(r, as_of):
                continue
            seen[r.id] = r
            for end in (r.source_id, r.destination_id):
                if end not in visited:
                    visited.add(end)
                    frontier.append(end)
    return list(seen.values())[:limit]
