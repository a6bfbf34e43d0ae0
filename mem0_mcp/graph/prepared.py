"""Mentions become entities: resolved against the stored graph, created, related.

An add's graph half is prepared before the memory ids exist (``prepare_add``) and written later;
``add_relation`` resolves and writes at once. Both go through the functions here."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mem0_mcp.graph.extraction import Extraction, GraphExtractor, Triple, normalize_name, self_name
from mem0_mcp.graph.store import GraphStore
from mem0_mcp.graph.validation import may_merge_by_embedding
from mem0_mcp.models import EntityMerge, GraphEntity, GraphRelation, Scope, Usage

logger = logging.getLogger(__name__)


@dataclass
class Mention:
    """A mention resolved to a stored entity, or to be created."""

    name: str
    norm: str
    type: str
    vector: np.ndarray
    entity: GraphEntity | None = None
    # How it was resolved to ``entity``: "name" (the same normalized name), "alias" or "embedding".
    merged_by: str | None = None

    def merge(self) -> EntityMerge | None:
        """What to tell the caller when this name now stands for a stored entity of another name."""
        if self.entity is None or self.merged_by not in ("alias", "embedding"):
            return None
        by = "alias" if self.merged_by == "alias" else "embedding"
        return EntityMerge(mention=self.name, into=self.entity.name, by=by)


def with_merges(rel: GraphRelation, *mentions: Mention | None) -> GraphRelation:
    """``rel`` saying which of its names were merged into a stored entity of another name: a write
    is never folded into another entity silently."""
    merges = [m for m in (x.merge() for x in mentions if x is not None) if m is not None]
    return rel.model_copy(update={"merged": merges}) if merges else rel


@dataclass
class PreparedAdd:
    """What an add extracted and resolved before the memory ids exist; ``GraphMemory.apply``
    writes it."""

    extraction: Extraction
    resolved: dict[str, Mention]
    existing: list[GraphRelation]
    invalidate: dict[str, str]  # relation id -> reason
    usage: Usage = field(default_factory=Usage)
    exact: bool = False  # names match stored entities by name or alias only (a caller's relations)


def resolve_mentions(
    store: GraphStore,
    entities: dict[str, str],
    vectors: np.ndarray,
    scope: Scope,
    *,
    merge_threshold: float | None,
) -> dict[str, Mention]:
    """Each mention (name -> type; ``vectors`` their name embeddings in order) -> a stored entity
    of exactly this scope (same normalized name or alias, else, with a ``merge_threshold``, an
    entity whose name embeds above it and ``may_merge_by_embedding`` allows), or a new one
    (``entity`` None)."""
    out = {n: Mention(n, normalize_name(n), entities[n], vectors[i]) for i, n in enumerate(entities)}
    by_name = store.entities_by_name(scope, [r.norm for r in out.values()])
    for r in out.values():
        if r.norm in by_name:
            r.entity = by_name[r.norm]
            r.merged_by = "name" if normalize_name(r.entity.name) == r.norm else "alias"
            continue
        if merge_threshold is None:
            continue
        # The nearest few: the nearest may be a name the guard keeps apart ("node 2" for
        # "node 1") while the next is the same thing written otherwise.
        for near in store.similar_entities(scope, r.vector, 3, exact=True):
            if (near.score or 0.0) < merge_threshold:
                break
            if may_merge_by_embedding(r.name, near.name):
                r.entity, r.merged_by = near, "embedding"
                break
    return out


def materialize(store: GraphStore, resolved: dict[str, Mention], scope: Scope, now: str) -> dict[str, str]:
    """Entity id per mention, creating what is new (re-checked by name under the write lock)."""
    ids: dict[str, str] = {}
    fresh = [r for r in resolved.values() if r.entity is None]
    again = store.entities_by_name(scope, [r.norm for r in fresh]) if fresh else {}
    for r in resolved.values():
        entity = r.entity or again.get(r.norm)
        if entity is None:
            entity = store.create_entity(scope, r.name, r.norm, r.type, r.vector, now)
            again[r.norm] = entity
        elif r.norm not in entity.aliases:
            store.add_alias(entity.id, r.norm)
            entity.aliases.append(r.norm)
        ids[r.name] = entity.id
    return ids


def upsert(
    store: GraphStore,
    scope: Scope,
    src: str,
    relation: str,
    dst: str,
    sources: Sequence[str],
    now: str,
    *,
    valid_from: str | None = None,
) -> GraphRelation:
    """The relation with ``sources`` added (event NONE), or created (event ADD) as recorded
    ``now`` and holding since ``valid_from`` (None: ``now``)."""
    found = store.find_relation(src, relation, dst)
    if found is not None:
        store.add_sources(found.id, sources)
        merged = list(dict.fromkeys([*found.sources, *sources]))
        return found.model_copy(update={"sources": merged, "event": "NONE"})
    created = store.create_relation(scope, src, relation, dst, sources, now, valid_from)
    return created.model_copy(update={"event": "ADD"})


def prepare_add(
    store: GraphStore,
    resolve: Callable[[dict[str, str], Scope], dict[str, Mention]],
    extractor: GraphExtractor,
    text: str,
    scope: Scope,
) -> PreparedAdd:
    """Extract from ``text``, resolve the mentions against the stored entities (``resolve``) and
    ask which stored relations the new ones contradict; writes nothing. Raises ``LLMError``."""
    extraction = extractor.extract(text, self_name(scope))
    usage = Usage(**extraction.usage.model_dump())
    if not extraction.relations:
        return PreparedAdd(extraction, {}, [], {}, usage)
    with store.burst():
        resolved = resolve(extraction.entities, scope)
        known = [r.entity.id for r in resolved.values() if r.entity is not None]
        existing = store.relations(scope, known, depth=1) if known else []
    existing = [r for r in existing if _same_scope(r, scope)]
    invalidate: dict[str, str] = {}
    new_keys = {_key(t, resolved) for t in extraction.relations}
    # A stored relation the new ones repeat cannot be contradicted by them.
    candidates = [r for r in existing if (r.source_id, r.relation, r.destination_id) not in new_keys]
    if candidates:
        triples = [Triple(r.source, r.relation, r.destination) for r in candidates]
        try:
            picked = extractor.contradicted(triples, extraction.relations, text, usage)
        except Exception as exc:
            logger.warning("graph: contradiction check failed, nothing invalidated: %s", exc)
            picked = {}
        invalidate = {candidates[i].id: reason for i, reason in picked.items()}
    return PreparedAdd(extraction, resolved, existing, invalidate, usage)


def _key(t: Triple, resolved: dict[str, Mention]) -> tuple[str | None, str, str | None]:
    s, d = resolved.get(t.source), resolved.get(t.destination)
    return (
        s.entity.id if s and s.entity else None,
        t.relation,
        d.entity.id if d and d.entity else None,
    )


def _same_scope(r: GraphRelation, scope: Scope) -> bool:
    return (r.user_id, r.agent_id, r.run_id) == (scope.user_id, scope.agent_id, scope.run_id)
