"""Reads of the graph by name: an entity with its relation history, a path between two names."""

from __future__ import annotations

from mem0_mcp.errors import InvalidInputError
from mem0_mcp.graph.extraction import normalize_name
from mem0_mcp.graph.store import GraphStore
from mem0_mcp.graph.timeline import read_as_of, relations_at
from mem0_mcp.graph.validation import check_name
from mem0_mcp.models import EntityView, GraphPath, Scope

MAX_HOPS = 6


def entity_view(
    store: GraphStore, name: str, scope: Scope, depth: int = 1, *, as_of: str | None = None
) -> EntityView:
    """Every entity of the scope with this name (one per exact scope), its relations within
    ``depth`` hops including invalidated ones (the relation history), newest first; with
    ``as_of`` (ISO 8601 date or time), only the entities and relations known and true then.
    Raises ``InvalidInputError``."""
    norm = normalize_name(check_name("name", name))
    hops = max(1, min(int(depth), 3))
    when = read_as_of(as_of)
    with store.burst():
        found = store.named(scope, norm)
        if when is None:
            rels = store.relations(scope, [e.id for e in found], depth=hops, include_invalid=True)
        else:
            found = [e for e in found if e.created_at <= when]
            rels = relations_at(store, scope, [e.id for e in found], when, depth=hops, limit=1000)
    rels.sort(key=lambda r: (r.invalidated_at is None, r.created_at), reverse=True)
    ids = {e.id for e in found}
    neighbours: dict[str, str] = {}
    for r in rels:
        for nid, nname in ((r.source_id, r.source), (r.destination_id, r.destination)):
            if nid not in ids:
                neighbours[nid] = nname
    return EntityView(entities=found, neighbours=sorted(set(neighbours.values())), relations=rels)


def shortest_path(store: GraphStore, source: str, target: str, scope: Scope, max_hops: int = 3) -> GraphPath:
    """The shortest chain of valid relations between two named entities, either direction;
    when none, ``found`` is false with the reason. Raises ``InvalidInputError``."""
    s_norm = normalize_name(check_name("source", source))
    t_norm = normalize_name(check_name("target", target))
    if isinstance(max_hops, bool) or not isinstance(max_hops, int) or not 1 <= max_hops <= MAX_HOPS:
        raise InvalidInputError("max_hops", f"must be an integer from 1 to {MAX_HOPS}")
    with store.burst():
        starts = store.named(scope, s_norm)
        ends = store.named(scope, t_norm)
        for a in starts:
            for b in ends:
                if a.id == b.id:
                    continue
                found = store.find_path(scope, a.id, b.id, max_hops)
                if found:
                    return GraphPath(found=True, hops=len(found), relations=found)
    missing = [n for n, hits in ((source, starts), (target, ends)) if not hits]
    why = (
        f"no entity named {', '.join(map(repr, missing))} in this scope"
        if missing
        else (f"no chain of valid relations within {max_hops} hops")
    )
    return GraphPath(found=False, hops=0, relations=[], reason=why)
