"""The entity graph in memory: what every graph read needs, rebuilt from the graph log's rows.

Measured before it (``benchmarks/graph.py``, 10k entities / 50k relations in scope): a graph
search opened Kùzu under the file lock and queried it, 208 ms p50 for one hop and 353 ms for two,
while a memory search took ~11 ms. Here the entity embeddings are one float32 matrix (scope ids
as integer codes beside it, so a scope is a vectorized mask), names and words are dict indexes
and relations an adjacency map, so a search is a matrix product and a few lookups.

``apply`` is the only way in: each process replays the same committed rows in the same order
(``mem0_mcp.stores.graph_log``), so each holds the same graph.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mem0_mcp.models import GraphEntity, GraphRelation, Scope
from mem0_mcp.stores.graph_log import LogRow, decode_vector, encode_vector

_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(
    """a an and are as at be by did do does for from has have how i in is it me my of on or our she he
    the their them they to was we what when where which who whom why with you your about""".split()  # noqa: SIM905
)
ScopeKey = tuple[str, str, str]


def scope_key(scope: Scope) -> ScopeKey:
    """A scope as three strings, ``''`` for an absent id (never a valid id)."""
    return (scope.user_id or "", scope.agent_id or "", scope.run_id or "")


def query_words(text: str) -> list[str]:
    """The words of a query that can name an entity (stop words out), at most 16, in order."""
    return list(dict.fromkeys(w for w in _WORD.findall(text.casefold()) if w not in _STOP))[:16]


@dataclass
class _Entity:
    model: GraphEntity
    key: ScopeKey
    row: int  # its row in the embedding matrix
    norm: str  # the normalized name: what text search matches words against
    words: frozenset[str]  # its words


@dataclass(slots=True)
class _Rel:
    """A relation as the copy keeps it: plain fields (a pydantic model per row made a 50k-relation
    replay 3x slower); ``model`` is built when a read first returns it, and dropped on change."""

    id: str
    source: str
    relation: str
    destination: str
    source_id: str
    destination_id: str
    created_at: str
    valid_from: str
    source_type: str = "entity"
    destination_type: str = "entity"
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    invalidated_at: str | None = None
    invalidated_reason: str | None = None
    sources: list[str] = field(default_factory=list)
    model: GraphRelation | None = None

    def out(self) -> GraphRelation:
        """The relation as reads return it, shared by every read until it changes: callers copy
        it (``model_copy``) to change it, as they did with the stores' results before."""
        if self.model is None:
            self.model = GraphRelation(**{f: getattr(self, f) for f in _REL_FIELDS})
        return self.model


_REL_FIELDS = tuple(f for f in _Rel.__dataclass_fields__ if f != "model")


class GraphCopy:
    """Entities and relations of every scope, as of log row ``seq``."""

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self.seq = 0
        self.dimension: int | None = None
        self._entities: dict[str, _Entity] = {}
        self._vectors = np.zeros((0, 0), dtype=np.float32)
        self._codes = np.zeros((0, 3), dtype=np.int32)
        self._alive = np.zeros(0, dtype=bool)
        self._row_ids: list[str | None] = []
        self._scope_codes: dict[str, int] = {"": 0}
        self._by_alias: dict[str, list[str]] = defaultdict(list)
        self._by_word: dict[str, set[str]] = defaultdict(set)
        self._relations: dict[str, _Rel] = {}
        self._adjacent: dict[str, set[str]] = defaultdict(set)
        self._by_triple: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        self._by_source: dict[str, set[str]] = defaultdict(set)
        self._jobs: dict[int, dict[str, Any]] = {}  # queued graph work not yet done, by seq
        self._deleted: set[str] = set()  # memories deleted for good (queued work skips them)

    # ------------------------------------------------------------------ replay
    def apply(self, row: LogRow) -> None:
        """Replay one committed change. Raises ``KeyError``/``ValueError`` on a row this copy
        cannot apply (the caller rebuilds the copy from the log)."""
        body = row.body
        match row.op:
            case "entity":
                self._add_entity(body)
            case "alias":
                self._add_alias(str(body["id"]), str(body["alias"]))
            case "relation":
                self._add_relation(_Rel(**{k: v for k, v in body.items() if k in _REL_FIELDS}))
            case "sources":
                rel = self._relations.get(str(body["id"]))
                if rel is not None:
                    self._set_sources(rel, [str(s) for s in body["sources"]])
            case "invalidate":
                rel = self._relations.get(str(body["id"]))
                if rel is not None and rel.invalidated_at is None:
                    rel.invalidated_at = str(body["when"])
                    rel.invalidated_reason = body.get("reason") or None
                    rel.model = None
            case "delete_relations":
                for rid in body["ids"]:
                    self._drop_relation(str(rid))
            case "delete_entities":
                for eid in body["ids"]:
                    self._drop_entity(str(eid))
            case "job":
                self._jobs[row.seq] = body
            case "job_done":
                self._jobs.pop(int(body["job"]), None)
            case "deleted":
                self._deleted.add(str(body["memory_id"]))
            case "reset":
                jobs, deleted = self._jobs, self._deleted
                self._clear()
                # Work queued for memories, and which memories are gone, outlive a reset of the graph.
                self._jobs, self._deleted = jobs, deleted
            case _:
                raise ValueError(f"graph log row {row.seq}: unknown change {row.op!r}")
        self.seq = row.seq

    def _code(self, value: str) -> int:
        return self._scope_codes.setdefault(value, len(self._scope_codes))

    def _add_entity(self, body: dict[str, Any]) -> None:
        vector = decode_vector(str(body["vector"]))
        if self.dimension is None:
            self.dimension = int(vector.shape[0])
            self._vectors = np.zeros((0, self.dimension), dtype=np.float32)
        if vector.shape[0] != self.dimension:
            raise ValueError(f"entity {body['id']}: {vector.shape[0]}-d, the graph holds {self.dimension}-d")
        length = float(np.linalg.norm(vector))
        row = len(self._row_ids)
        if row >= self._vectors.shape[0]:
            # Doubling keeps a bulk replay linear.
            cap = max(64, 2 * self._vectors.shape[0])
            self._vectors = np.resize(self._vectors, (cap, self.dimension))
            self._codes = np.resize(self._codes, (cap, 3))
            self._alive = np.resize(self._alive, cap)
            self._alive[row:] = False
        self._vectors[row] = vector / length if length > 0 else vector
        model = GraphEntity.model_construct(
            id=str(body["id"]),
            name=str(body["name"]),
            type=str(body.get("type") or "entity"),
            aliases=[str(a) for a in body.get("aliases") or [body["norm"]]],
            user_id=body.get("user_id") or None,
            agent_id=body.get("agent_id") or None,
            run_id=body.get("run_id") or None,
            created_at=str(body.get("created_at") or ""),
            score=None,
        )
        key = (model.user_id or "", model.agent_id or "", model.run_id or "")
        self._codes[row] = [self._code(k) for k in key]
        self._alive[row] = True
        self._row_ids.append(model.id)
        norm = str(body["norm"])
        self._entities[model.id] = _Entity(model, key, row, norm, frozenset(_WORD.findall(norm)))
        for alias in model.aliases:
            self._by_alias[alias].append(model.id)
        for word in _WORD.findall(norm):
            self._by_word[word].add(model.id)

    def _add_alias(self, entity_id: str, alias: str) -> None:
        ent = self._entities.get(entity_id)
        if ent is None or alias in ent.model.aliases:
            return
        ent.model.aliases.append(alias)
        self._by_alias[alias].append(entity_id)

    def _add_relation(self, rel: _Rel) -> None:
        if rel.source_id not in self._entities or rel.destination_id not in self._entities:
            return  # as Kùzu's MATCH ... CREATE: no edge without both ends
        self._relations[rel.id] = rel
        self._adjacent[rel.source_id].add(rel.id)
        self._adjacent[rel.destination_id].add(rel.id)
        self._by_triple[(rel.source_id, rel.relation, rel.destination_id)].add(rel.id)
        for source in rel.sources:
            self._by_source[source].add(rel.id)

    def _set_sources(self, rel: _Rel, sources: list[str]) -> None:
        for old in rel.sources:
            self._by_source[old].discard(rel.id)
        rel.sources = sources
        rel.model = None
        for source in sources:
            self._by_source[source].add(rel.id)

    def _drop_relation(self, rel_id: str) -> None:
        rel = self._relations.pop(rel_id, None)
        if rel is None:
            return
        for end in (rel.source_id, rel.destination_id):
            self._adjacent[end].discard(rel_id)
        self._by_triple[(rel.source_id, rel.relation, rel.destination_id)].discard(rel_id)
        for source in rel.sources:
            self._by_source[source].discard(rel_id)

    def _drop_entity(self, entity_id: str) -> None:
        ent = self._entities.pop(entity_id, None)
        if ent is None:
            return
        for rel_id in list(self._adjacent.pop(entity_id, ())):
            self._drop_relation(rel_id)
        self._alive[ent.row] = False
        self._row_ids[ent.row] = None
        for alias in ent.model.aliases:
            ids = self._by_alias.get(alias)
            if ids and entity_id in ids:
                ids.remove(entity_id)
        for word in _WORD.findall(ent.norm):
            self._by_word[word].discard(entity_id)

    # ------------------------------------------------------------------ entities
    def _matches(self, key: ScopeKey, scope: ScopeKey, *, exact: bool) -> bool:
        if exact:
            return key == scope
        return all(not want or have == want for have, want in zip(key, scope, strict=True))

    def entity(self, entity_id: str) -> GraphEntity | None:
        """A copy of the entity (callers may change it), or None."""
        ent = self._entities.get(entity_id)
        return None if ent is None else _copy_entity(ent.model)

    def entities_by_name(self, scope: Scope, norms: Sequence[str]) -> dict[str, GraphEntity]:
        """The oldest entity of exactly this scope per normalized name or alias in ``norms``."""
        key = scope_key(scope)
        out: dict[str, GraphEntity] = {}
        for norm in norms:
            found = [self._entities[i] for i in self._by_alias.get(norm, ()) if self._entities[i].key == key]
            if found:
                out[norm] = _copy_entity(min(found, key=lambda e: e.model.created_at).model)
        return out

    def named(self, scope: Scope, norm: str, limit: int = 20) -> list[GraphEntity]:
        """Entities called ``norm`` (name or alias) in the scope, as an AND of its ids."""
        key = scope_key(scope)
        found = [
            self._entities[i].model
            for i in self._by_alias.get(norm, ())
            if self._matches(self._entities[i].key, key, exact=False)
        ]
        found.sort(key=lambda m: m.created_at)
        return [_copy_entity(m) for m in found[:limit]]

    def _scope_rows(self, scope: Scope, *, exact: bool) -> np.ndarray:
        n = len(self._row_ids)
        mask = self._alive[:n].copy()
        for col, value in enumerate(scope_key(scope)):
            if value or exact:
                code = self._scope_codes.get(value)
                if code is None:
                    return np.zeros(0, dtype=np.int64)
                mask &= self._codes[:n, col] == code
        return np.flatnonzero(mask)

    def similar_entities(self, scope: Scope, vector: np.ndarray, k: int, *, exact: bool) -> list[GraphEntity]:
        """The ``k`` entities of the scope whose name embeds nearest ``vector`` (cosine as score)."""
        if self.dimension is None or k <= 0:
            return []
        rows = self._scope_rows(scope, exact=exact)
        if rows.size == 0:
            return []
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        length = float(np.linalg.norm(q))
        if q.shape[0] != self.dimension or length == 0:
            return []
        # One product over every row, then the scope's: gathering the scope's rows first copied
        # the matrix (10k x 384: 20 ms, against 1-2 ms for the product).
        sims = (self._vectors[: len(self._row_ids)] @ (q / length))[rows]
        top = np.argpartition(-sims, k - 1)[:k] if sims.size > k else np.arange(sims.size)
        top = top[np.argsort(-sims[top], kind="stable")]
        out = []
        for i in top:
            eid = self._row_ids[int(rows[i])]
            if eid is not None:
                out.append(_copy_entity(self._entities[eid].model, float(sims[i])))
        return out

    def text_entities(self, scope: Scope, text: str, k: int) -> list[GraphEntity]:
        """Entities whose names hold words of ``text`` as whole words; score = the share of the
        name's words matched (ties: more words matched, then id)."""
        wanted = set(query_words(text))
        if not wanted:
            return []
        key = scope_key(scope)
        candidates = set().union(*(self._by_word.get(w, set()) for w in wanted))
        scored: list[tuple[float, int, str]] = []
        for eid in candidates:
            ent = self._entities[eid]
            if ent.key != key and not self._matches(ent.key, key, exact=False):
                continue
            hits = len(wanted & ent.words)
            if hits:
                scored.append((hits / max(1, len(ent.words)), hits, eid))
        scored.sort(reverse=True)
        return [_copy_entity(self._entities[i].model, s) for s, _, i in scored[:k]]

    def entity_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Unit-length embeddings of the entities among ``ids``."""
        return {i: self._vectors[self._entities[i].row].copy() for i in ids if i in self._entities}

    def entities_of(self, scope: Scope) -> list[GraphEntity]:
        """The scope's entities (an AND of its ids), oldest first."""
        key = scope_key(scope)
        found = [e.model for e in self._entities.values() if self._matches(e.key, key, exact=False)]
        found.sort(key=lambda m: m.created_at)
        return [_copy_entity(m) for m in found]

    # ------------------------------------------------------------------ relations
    def relation(self, rel_id: str) -> GraphRelation | None:
        """A copy of the relation, or None."""
        rel = self._relations.get(rel_id)
        return None if rel is None else rel.out()

    def relations(
        self,
        scope: Scope,
        entity_ids: Sequence[str],
        *,
        depth: int = 1,
        include_invalid: bool = False,
        limit: int = 1000,
    ) -> list[GraphRelation]:
        """Relations within ``depth`` hops of the entities, each once, by hop then age. A hop leaves
        only from entities of the scope (an AND of its ids)."""
        key = scope_key(scope)
        seen: dict[str, _Rel] = {}
        frontier = list(dict.fromkeys(entity_ids))
        visited = set(frontier)
        for _ in range(max(1, depth)):
            hop: dict[str, _Rel] = {}
            for eid in frontier:
                ent = self._entities.get(eid)
                if ent is None or not self._matches(ent.key, key, exact=False):
                    continue
                for rid in self._adjacent.get(eid, ()):
                    rel = self._relations[rid]
                    if include_invalid or rel.invalidated_at is None:
                        hop[rid] = rel
            nxt: list[str] = []
            for rel in sorted(hop.values(), key=lambda r: (r.created_at, r.id)):
                seen.setdefault(rel.id, rel)
                for end in (rel.source_id, rel.destination_id):
                    if end not in visited:
                        visited.add(end)
                        nxt.append(end)
            if not nxt or len(seen) >= limit:
                break
            frontier = nxt
        return [r.out() for r in list(seen.values())[:limit]]

    def find_relation(self, source_id: str, relation: str, destination_id: str) -> GraphRelation | None:
        """The oldest valid relation source -relation-> destination, or None."""
        found = [
            self._relations[i]
            for i in self._by_triple.get((source_id, relation, destination_id), ())
            if self._relations[i].invalidated_at is None
        ]
        if not found:
            return None
        return min(found, key=lambda r: (r.created_at, r.id)).out()

    def relations_with_source(self, memory_id: str) -> list[GraphRelation]:
        """Relations that name ``memory_id`` among their sources."""
        return [self._relations[i].out() for i in sorted(self._by_source.get(memory_id, ()))]

    def orphans(self, entity_ids: Iterable[str], dropping: Iterable[str] = ()) -> list[str]:
        """Those of ``entity_ids`` with no relation left once the relations ``dropping`` are gone."""
        gone = set(dropping)
        return sorted(
            {e for e in entity_ids if e in self._entities and not (self._adjacent.get(e, set()) - gone)}
        )

    def find_path(self, scope: Scope, source_id: str, target_id: str, max_hops: int) -> list[GraphRelation]:
        """The relations along a shortest valid path (either direction), empty when none. The
        path must start at an entity of the scope."""
        start = self._entities.get(source_id)
        if start is None or target_id not in self._entities:
            return []
        if not self._matches(start.key, scope_key(scope), exact=False):
            return []
        came: dict[str, tuple[str, str] | None] = {source_id: None}
        frontier = [source_id]
        for _ in range(max(1, min(int(max_hops), 6))):
            nxt: list[str] = []
            for eid in frontier:
                for rid in sorted(self._adjacent.get(eid, ())):
                    rel = self._relations[rid]
                    if rel.invalidated_at is not None:
                        continue
                    other = rel.destination_id if rel.source_id == eid else rel.source_id
                    if other in came:
                        continue
                    came[other] = (eid, rid)
                    if other == target_id:
                        return self._walk_back(came, target_id)
                    nxt.append(other)
            if not nxt:
                break
            frontier = nxt
        return []

    def _walk_back(self, came: dict[str, tuple[str, str] | None], end: str) -> list[GraphRelation]:
        path: list[GraphRelation] = []
        step = came[end]
        while step is not None:
            prev, rid = step
            path.append(self._relations[rid].out())
            step = came[prev]
        return path[::-1]

    def relations_of(self, scope: Scope) -> list[GraphRelation]:
        """Relations whose source entity is in the scope, oldest first."""
        key = scope_key(scope)
        found = [
            r
            for r in self._relations.values()
            if r.source_id in self._entities
            and self._matches(self._entities[r.source_id].key, key, exact=False)
        ]
        found.sort(key=lambda r: (r.created_at, r.id))
        return [r.out() for r in found]

    def bodies(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every entity and relation as the log's rows hold them (entities oldest first), to
        write the graph anew elsewhere (the Kùzu view's rebuild)."""
        entities = []
        for ent in sorted(self._entities.values(), key=lambda e: (e.model.created_at, e.model.id)):
            m = ent.model
            entities.append(
                {
                    "id": m.id,
                    "name": m.name,
                    "norm": ent.norm,
                    "type": m.type,
                    "aliases": list(m.aliases),
                    **{k: v for k, v in zip(("user_id", "agent_id", "run_id"), ent.key, strict=True) if v},
                    "vector": encode_vector(self._vectors[ent.row]),
                    "created_at": m.created_at,
                }
            )
        relations = [
            {f: getattr(r, f) for f in _REL_FIELDS}
            for r in sorted(self._relations.values(), key=lambda r: (r.created_at, r.id))
        ]
        return entities, relations

    def deleted_memories(self, memory_ids: Sequence[str]) -> set[str]:
        """Those of ``memory_ids`` recorded as deleted."""
        return self._deleted.intersection(memory_ids)

    def open_jobs(self) -> list[tuple[int, dict[str, Any]]]:
        """Queued graph work not marked done yet, oldest first: (seq, body)."""
        return sorted(self._jobs.items())

    def counts(self) -> dict[str, int]:
        """How many entities and relations the graph holds, every scope."""
        return {"entities": len(self._entities), "relations": len(self._relations)}


def _copy_entity(model: GraphEntity, score: float | None = None) -> GraphEntity:
    return model.model_copy(
        update={"aliases": list(model.aliases), "score": None if score is None else round(float(score), 6)}
    )
