"""Graph memory: entities and their relations, derived from the memories the engine stores.

The LanceDB rows and the SQLite history are the source of truth; the graph is derived from them
and can be rebuilt (``rebuild_graph``). So a graph failure never fails or loses a memory write:
it is logged and reported as a warning on the add result.

An add runs in two halves. ``begin`` starts, in a worker thread and concurrently with the
engine's vector work, everything that does not need the new memory ids: the extraction call,
embedding the entity names, resolving them against the stored entities and the contradiction
call. ``finish`` then writes the graph in one short burst (one open of the database), with the
memory ids as the relations' sources and the memories' event time as when the relations began
(``valid_from``) or when the ones they contradict stopped (``invalidated_at``); see
``mem0_mcp.graph.timeline`` for how ``as_of`` reads them back.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mem0_mcp.clock import now_iso
from mem0_mcp.errors import InvalidInputError
from mem0_mcp.graph.extraction import (
    EXPLICIT_SOURCE,
    GraphExtractor,
    Triple,
    load_graph_prompts,
    normalize_name,
    normalize_relation,
    self_name,
    transcript,
)
from mem0_mcp.graph.links import memory_links
from mem0_mcp.graph.prepared import Mention, PreparedAdd, with_merges
from mem0_mcp.graph.store import GraphStore, QueryRow, open_graph_store
from mem0_mcp.graph.timeline import read_as_of, relations_at
from mem0_mcp.graph.validation import (
    check_name,
    check_read_only,
    check_str,
    entity_type,
    may_merge_by_embedding,
)
from mem0_mcp.llm.base import LLM
from mem0_mcp.models import (
    AddResult,
    EntityView,
    GraphExport,
    GraphPath,
    GraphRelation,
    MemoryItem,
    Message,
    Scope,
    UpdateResult,
    Usage,
)

if TYPE_CHECKING:
    from mem0_mcp.config import Settings

logger = logging.getLogger(__name__)

MERGE_THRESHOLD = 0.9  # cosine of entity-name embeddings above which two mentions are one entity
SEED_THRESHOLD = 0.35  # cosine above which an entity is taken to match a search query
SEED_ENTITIES = 5
FIRST_PERSON = frozenset({"i", "me", "my", "mine", "myself"})
SELF_SEED = 0.5  # how strongly a first-person query matches the scope's own entity
MAX_HOPS = 6
_WORD = re.compile(r"\w+", re.UNICODE)
_QUERY_LIMIT = 500

# Texts -> one embedding row per text (the engine's embedder).
Embed = Callable[[Sequence[str]], np.ndarray]
# The LLM backend to extract with, looked up on each add (None: no LLM, no extraction).
LLMGetter = Callable[[], LLM | None]
# A graph value as the tools return it (the models' JSON, None fields left out).
Json = dict[str, object]


@dataclass
class GraphJob:
    """The prepared half of a graph add; ``finish`` writes it."""

    graph: GraphMemory
    scope: Scope
    future: Future[PreparedAdd] | None = None
    run: Callable[[], PreparedAdd] | None = None
    event_at: str | None = None  # when the added memories happened (None: when they are written)

    def finish(self, result: AddResult) -> AddResult:
        """Write the graph for the memories of ``result``; failures become warnings, never errors."""
        try:
            prepared = self.future.result() if self.future is not None else self.run() if self.run else None
            if prepared is None:
                return result
            result.usage.merge(prepared.usage)
            ids = [e.id for e in result.results if e.event in ("ADD", "UPDATE", "NONE")]
            if not ids:
                return result
            result.relations = self.graph.apply(prepared, self.scope, ids, self.event_at)
        except Exception as exc:
            logger.exception("graph: update failed; the memory was stored")
            result.warnings.append(
                f"graph: the entity graph was not updated ({type(exc).__name__}: {exc}); the memory "
                "itself was stored. `mem0-mcp graph rebuild` re-derives the graph from the memories."
            )
        return result


class GraphMemory:
    """Graph memory of one data dir: the add pipeline (``begin``/``finish``), explicit writes,
    reads for the engine's search and the graph tools, and scope deletes.

    Takes what it needs explicitly: ``embed`` for entity names and queries, ``llm`` to look up the
    extraction backend on each add (it may change at runtime, e.g. MCP sampling).
    """

    def __init__(
        self,
        settings: Settings,
        store: GraphStore,
        *,
        embed: Embed,
        llm: LLMGetter,
        depth: int = 1,
        merge_threshold: float = MERGE_THRESHOLD,
    ) -> None:
        self.settings = settings
        self.store = store
        self._embed = embed
        self._llm = llm
        self.depth = depth
        self.merge_threshold = merge_threshold
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mem0-graph")
        self._extractor: GraphExtractor | None = None
        self._extractor_lock = threading.Lock()

    @classmethod
    def open(
        cls, settings: Settings, *, embed: Embed, llm: LLMGetter, read_only: bool = False
    ) -> GraphMemory:
        """Graph memory on the store of ``settings`` (``read_only``: a data dir that cannot be
        written; graph writes then raise ``StoreError``)."""
        return cls(settings, open_graph_store(settings, read_only=read_only), embed=embed, llm=llm)

    def close(self) -> None:
        """Stop the worker threads (pending graph work is dropped) and close the store."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.store.close()

    def reset(self) -> None:
        """Delete the whole graph (every scope)."""
        self.store.reset()

    def extractor(self) -> GraphExtractor | None:
        """The extractor for the current LLM backend; None when there is none."""
        llm = self._llm()
        if llm is None:
            return None
        with self._extractor_lock:
            if self._extractor is None or self._extractor.llm is not llm:
                self._extractor = GraphExtractor(
                    llm, load_graph_prompts(self.settings.prompts_dir), max_tokens=None
                )
            return self._extractor

    # ------------------------------------------------------------------ add
    def begin(self, msgs: Sequence[Message], scope: Scope, event_at: str | None = None) -> GraphJob | None:
        """Start preparing the graph half of an add whose memories happened at ``event_at`` (the
        add's parsed timestamp; None: when written); None when there is no LLM to extract with."""
        extractor = self.extractor()
        if extractor is None:
            return None
        text = transcript(msgs)
        if not text:
            return None

        def run() -> PreparedAdd:
            return self.prepare(extractor, text, scope)

        # MCP sampling must be called from the request's own worker thread: prepare there, later.
        if extractor.llm.request_bound:
            return GraphJob(self, scope, run=run, event_at=event_at)
        return GraphJob(self, scope, future=self._pool.submit(run), event_at=event_at)

    def prepare(self, extractor: GraphExtractor, text: str, scope: Scope) -> PreparedAdd:
        """Extract from ``text``, resolve the mentions against the stored entities and ask which
        stored relations the new ones contradict; writes nothing. Raises ``LLMError``."""
        extraction = extractor.extract(text, self_name(scope))
        usage = Usage(**extraction.usage.model_dump())
        if not extraction.relations:
            return PreparedAdd(extraction, {}, [], {}, usage)
        with self.store.burst():
            resolved = self._resolve(extraction.entities, scope)
            known = [r.entity.id for r in resolved.values() if r.entity is not None]
            existing = self.store.relations(scope, known, depth=1) if known else []
        existing = [r for r in existing if _same_scope(r, scope)]
        invalidate: dict[str, str] = {}
        new_keys = {self._key(t, resolved) for t in extraction.relations}
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

    @staticmethod
    def _key(t: Triple, resolved: dict[str, Mention]) -> tuple[str | None, str, str | None]:
        s, d = resolved.get(t.source), resolved.get(t.destination)
        return (
            s.entity.id if s and s.entity else None,
            t.relation,
            d.entity.id if d and d.entity else None,
        )

    def _resolve(
        self, entities: dict[str, str], scope: Scope, *, by_embedding: bool = True
    ) -> dict[str, Mention]:
        """Each mention -> a stored entity of exactly this scope (same normalized name or alias,
        else, with ``by_embedding``, an entity whose name embeds above the merge threshold and
        ``may_merge_by_embedding`` allows), or a new one (``entity`` None)."""
        names = list(entities)
        vectors = np.asarray(self._embed(names), dtype=np.float32)
        out = {n: Mention(n, normalize_name(n), entities[n], vectors[i]) for i, n in enumerate(names)}
        by_name = self.store.entities_by_name(scope, [r.norm for r in out.values()])
        for r in out.values():
            if r.norm in by_name:
                r.entity = by_name[r.norm]
                r.merged_by = "name" if normalize_name(r.entity.name) == r.norm else "alias"
                continue
            if not by_embedding:
                continue
            # The nearest few: the nearest may be a name the guard keeps apart ("node 2" for
            # "node 1") while the next is the same thing written otherwise.
            for near in self.store.similar_entities(scope, r.vector, 3, exact=True):
                if (near.score or 0.0) < self.merge_threshold:
                    break
                if may_merge_by_embedding(r.name, near.name):
                    r.entity, r.merged_by = near, "embedding"
                    break
        return out

    def apply(
        self, prepared: PreparedAdd, scope: Scope, memory_ids: Sequence[str], event_at: str | None = None
    ) -> list[GraphRelation]:
        """Write a prepared extraction in one burst, ``memory_ids`` as the relations' sources and
        ``event_at`` (when those memories happened; None: now) as when the new relations began
        and the contradicted ones ended; returns the relations touched, each with its event.
        Raises ``StoreError``."""
        out: list[GraphRelation] = []
        if not prepared.extraction.relations and not prepared.invalidate:
            return out
        now = now_iso()  # the write time: created_at of what is new
        when = event_at or now
        with self.store.burst(write=True):
            ids = self._materialize(prepared.resolved, scope, now)
            for t in prepared.extraction.relations:
                src, dst = ids[t.source], ids[t.destination]
                rel = self._upsert(scope, src, t.relation, dst, memory_ids, now, valid_from=when)
                out.append(
                    with_merges(rel, prepared.resolved.get(t.source), prepared.resolved.get(t.destination))
                )
            by_id = {r.id: r for r in prepared.existing}
            for rel_id, reason in prepared.invalidate.items():
                old = by_id[rel_id]
                if when < old.valid_from:
                    # Backfilled history: a fact from before the relation began cannot end it.
                    logger.info("graph: %s not invalidated by an older fact (%s)", rel_id, when)
                    continue
                self.store.invalidate(rel_id, when, reason)
                out.append(
                    old.model_copy(
                        update={"invalidated_at": when, "invalidated_reason": reason, "event": "INVALIDATE"}
                    )
                )
        return out

    def _materialize(self, resolved: dict[str, Mention], scope: Scope, now: str) -> dict[str, str]:
        """Entity id per mention, creating what is new (re-checked by name under the write lock)."""
        ids: dict[str, str] = {}
        fresh = [r for r in resolved.values() if r.entity is None]
        again = self.store.entities_by_name(scope, [r.norm for r in fresh]) if fresh else {}
        for r in resolved.values():
            entity = r.entity or again.get(r.norm)
            if entity is None:
                entity = self.store.create_entity(scope, r.name, r.norm, r.type, r.vector, now)
                again[r.norm] = entity
            elif r.norm not in entity.aliases:
                self.store.add_alias(entity.id, r.norm)
                entity.aliases.append(r.norm)
            ids[r.name] = entity.id
        return ids

    def _upsert(
        self,
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
        found = self.store.find_relation(src, relation, dst)
        if found is not None:
            self.store.add_sources(found.id, sources)
            merged = list(dict.fromkeys([*found.sources, *sources]))
            return found.model_copy(update={"sources": merged, "event": "NONE"})
        created = self.store.create_relation(scope, src, relation, dst, sources, now, valid_from)
        return created.model_copy(update={"event": "ADD"})

    # ------------------------------------------------------------------ explicit writes (no LLM)
    def relate(
        self,
        source: str,
        relation: str,
        destination: str,
        scope: Scope,
        *,
        source_type: str | None = None,
        destination_type: str | None = None,
    ) -> GraphRelation:
        """Write source -relation-> destination into the scope (no LLM); the relation with event
        ADD (new) or NONE (already there), and ``merged`` when a name was an alias of an entity of
        another name. The caller chose the names: they match a stored entity by normalized name or
        alias only, never by embedding (two names that merely embed close, such as "node 1" and
        "node 2", are two entities). Raises ``InvalidInputError``, ``StoreError``."""
        src, dst = check_name("source", source), check_name("destination", destination)
        rel = normalize_relation(check_str("relation", relation))
        if not rel:
            raise InvalidInputError("relation", "needs at least one letter or digit, e.g. works_at")
        if normalize_name(src) == normalize_name(dst):
            raise InvalidInputError("destination", "must differ from source")
        entities = {src: entity_type(source_type), dst: entity_type(destination_type)}
        now = now_iso()
        with self.store.burst(write=True):
            resolved = self._resolve(entities, scope, by_embedding=False)
            ids = self._materialize(resolved, scope, now)
            made = self._upsert(scope, ids[src], rel, ids[dst], [EXPLICIT_SOURCE], now)
            return with_merges(made, resolved[src], resolved[dst])

    def add_relation(
        self,
        source: str,
        relation: str,
        destination: str,
        scope: Scope,
        *,
        source_type: str | None = None,
        destination_type: str | None = None,
    ) -> Json:
        """``relate`` as the add_relation tool's JSON."""
        return self.relate(
            source, relation, destination, scope, source_type=source_type, destination_type=destination_type
        ).model_dump()

    def delete_relation(self, source: str, relation: str, destination: str, scope: Scope) -> int:
        """Delete the valid relation(s) source -relation-> destination of the scope; the count.
        The names match by normalized name or alias only, never by embedding (as ``relate``).
        Raises ``InvalidInputError``, ``StoreError``."""
        src, dst = check_name("source", source), check_name("destination", destination)
        rel = normalize_relation(check_str("relation", relation))
        deleted = 0
        with self.store.burst(write=True):
            ends = self.store.entities_by_name(scope, [normalize_name(src), normalize_name(dst)])
            s, d = ends.get(normalize_name(src)), ends.get(normalize_name(dst))
            if s is not None and d is not None:
                found = self.store.find_relation(s.id, rel, d.id)
                if found is not None:
                    self.store.delete_relation(found.id)
                    deleted = 1
        return deleted

    # ------------------------------------------------------------------ deletes from the engine
    def forget_memory(self, memory_id: str) -> None:
        """The memory was deleted: drop it as a source (logged, never raised: the graph is derived)."""
        try:
            n = self.store.forget_source(memory_id)
            if n:
                logger.info("graph: %d relation(s) sourced only from memory %s removed", n, memory_id)
        except Exception:
            logger.exception("graph: removing the relations of memory %s failed", memory_id)

    def rederive(self, memory: MemoryItem) -> UpdateResult:
        """The memory's text changed: drop it as a source (as ``forget_memory``) and extract its new
        text again, written with its id as source and its event time as ``valid_from``. Without
        an LLM the graph is left as it is. Failures become warnings on the result, never errors:
        the update is stored."""
        out = UpdateResult.model_validate(memory.model_dump())
        extractor = self.extractor()
        # MCP sampling is bound to an add_memory request: an update has none to ask.
        if extractor is None or extractor.llm.request_bound:
            return out
        scope = Scope(user_id=memory.user_id, agent_id=memory.agent_id, run_id=memory.run_id)
        try:
            self.store.forget_source(memory.id)
            prepared = self.prepare(extractor, memory.memory, scope)
            out.relations = self.apply(prepared, scope, [memory.id], memory.event_at or memory.created_at)
        except Exception as exc:
            logger.exception("graph: re-deriving the relations of memory %s failed", memory.id)
            out.warnings.append(
                f"graph: the relations of this memory were not extracted again ({type(exc).__name__}: "
                f"{exc}); the update was stored. `mem0-mcp graph rebuild` re-derives the graph."
            )
        return out

    def delete_scope(self, scope: Scope) -> None:
        """The scope's memories were deleted: drop its graph (logged, never raised)."""
        try:
            self.store.delete_scope(scope)
        except Exception:
            logger.exception("graph: clearing scope %s failed", scope.as_dict())

    # ------------------------------------------------------------------ reads
    def search(
        self,
        query: str,
        vector: np.ndarray,
        scope: Scope,
        limit: int,
        *,
        depth: int | None = None,
        as_of: str | None = None,
    ) -> list[GraphRelation]:
        """Valid relations around the entities the query names (``vector`` is its embedding),
        ranked against the query, each with its score; with ``as_of`` (stored format), the
        relations that held then instead. Raises ``StoreError``."""
        hops = max(1, min(depth or self.depth, 2))
        with self.store.burst():
            seeds: dict[str, float] = {}
            for e in self.store.similar_entities(scope, vector, SEED_ENTITIES, exact=False):
                if (e.score or 0.0) >= SEED_THRESHOLD:
                    seeds[e.id] = max(seeds.get(e.id, 0.0), float(e.score or 0.0))
            for e in self.store.text_entities(scope, query, SEED_ENTITIES):
                seeds[e.id] = max(seeds.get(e.id, 0.0), float(e.score or 0.0))
            # "my manager", "where do I live": the speaker is the scope's own entity.
            if {w.casefold() for w in _WORD.findall(query)} & FIRST_PERSON:
                for e in self.store.named(scope, normalize_name(self_name(scope))):
                    seeds[e.id] = max(seeds.get(e.id, 0.0), SELF_SEED)
            if not seeds:
                return []
            if as_of is None:
                rels = self.store.relations(scope, list(seeds), depth=hops, limit=50 * limit)
            else:
                rels = relations_at(self.store, scope, list(seeds), as_of, depth=hops, limit=50 * limit)
        words = {w.casefold() for w in _WORD.findall(query)}
        best = max(seeds.values())
        ranked = []
        for r in rels:
            anchor = max(seeds.get(r.source_id, 0.0), seeds.get(r.destination_id, 0.0))
            if anchor == 0.0:
                anchor = 0.5 * best  # a second-hop relation
            text = f"{r.source} {r.relation.replace('_', ' ')} {r.destination}".casefold()
            overlap = len(words & set(_WORD.findall(text))) / max(1, len(words))
            ranked.append((anchor + 0.5 * overlap, r))
        ranked.sort(key=lambda x: x[0], reverse=True)
        return [r.model_copy(update={"score": round(s, 6)}) for s, r in ranked[:limit]]

    def submit_search(
        self, query: str, vector: np.ndarray, scope: Scope, limit: int, *, as_of: str | None = None
    ) -> Future[list[GraphRelation]]:
        """``search`` in the graph's worker thread, to overlap the engine's vector search."""
        return self._pool.submit(self.search, query, vector, scope, limit, as_of=as_of)

    def find_relations(
        self, query: str, scope: Scope, limit: int, *, as_of: str | None = None
    ) -> list[GraphRelation]:
        """``search`` for a query in words (embedded here); ``as_of`` (ISO 8601 date or time):
        what the graph held true then. Raises ``InvalidInputError``."""
        check_str("query", query)
        when = read_as_of(as_of)
        vector = np.asarray(self._embed([query]), dtype=np.float32)[0]
        return self.search(query, vector, scope, limit, as_of=when)

    def search_relations(self, query: str, scope: Scope, limit: int, as_of: str | None = None) -> list[Json]:
        """``find_relations`` as the search_graph tool's JSON."""
        return [r.model_dump() for r in self.find_relations(query, scope, limit, as_of=as_of)]

    def entity(self, name: str, scope: Scope, depth: int = 1, *, as_of: str | None = None) -> EntityView:
        """Every entity of the scope with this name (one per exact scope), its relations within
        ``depth`` hops including invalidated ones (the relation history), newest first; with
        ``as_of`` (ISO 8601 date or time), only the entities and relations known and true then.
        Raises ``InvalidInputError``."""
        norm = normalize_name(check_name("name", name))
        hops = max(1, min(int(depth), 3))
        when = read_as_of(as_of)
        with self.store.burst():
            found = self.store.named(scope, norm)
            if when is None:
                rels = self.store.relations(scope, [e.id for e in found], depth=hops, include_invalid=True)
            else:
                found = [e for e in found if e.created_at <= when]
                rels = relations_at(self.store, scope, [e.id for e in found], when, depth=hops, limit=1000)
        rels.sort(key=lambda r: (r.invalidated_at is None, r.created_at), reverse=True)
        ids = {e.id for e in found}
        neighbours: dict[str, str] = {}
        for r in rels:
            for nid, nname in ((r.source_id, r.source), (r.destination_id, r.destination)):
                if nid not in ids:
                    neighbours[nid] = nname
        return EntityView(entities=found, neighbours=sorted(set(neighbours.values())), relations=rels)

    def get_entity(self, name: str, scope: Scope, depth: int = 1, as_of: str | None = None) -> Json:
        """``entity`` as the get_entity tool's JSON."""
        return self.entity(name, scope, depth, as_of=as_of).model_dump()

    def path(self, source: str, target: str, scope: Scope, max_hops: int = 3) -> GraphPath:
        """The shortest chain of valid relations between two named entities, either direction;
        when none, ``found`` is false with the reason. Raises ``InvalidInputError``."""
        s_norm = normalize_name(check_name("source", source))
        t_norm = normalize_name(check_name("target", target))
        if isinstance(max_hops, bool) or not isinstance(max_hops, int) or not 1 <= max_hops <= MAX_HOPS:
            raise InvalidInputError("max_hops", f"must be an integer from 1 to {MAX_HOPS}")
        with self.store.burst():
            starts = self.store.named(scope, s_norm)
            ends = self.store.named(scope, t_norm)
            for a in starts:
                for b in ends:
                    if a.id == b.id:
                        continue
                    found = self.store.find_path(scope, a.id, b.id, max_hops)
                    if found:
                        return GraphPath(found=True, hops=len(found), relations=found)
        missing = [n for n, hits in ((source, starts), (target, ends)) if not hits]
        why = (
            f"no entity named {', '.join(map(repr, missing))} in this scope"
            if missing
            else (f"no chain of valid relations within {max_hops} hops")
        )
        return GraphPath(found=False, hops=0, relations=[], reason=why)

    def find_path(self, source: str, target: str, scope: Scope, max_hops: int = 3) -> Json:
        """``path`` as the find_path tool's JSON."""
        return self.path(source, target, scope, max_hops).model_dump()

    def export(self, scope: Scope) -> GraphExport:
        """The scope's entities and relations, invalidated ones included."""
        entities, relations = self.store.all_of(scope)
        return GraphExport(scope=scope.as_dict(), nodes=entities, edges=relations)

    def query(
        self, cypher: str, params: Mapping[str, object] | None = None, limit: int = 100
    ) -> list[QueryRow]:
        """Read-only Cypher (every scope is visible: single-user local setups only); at most
        ``limit`` rows, values made JSON. Raises ``InvalidInputError``, ``StoreError``."""
        check_read_only(cypher)
        if params is not None and not isinstance(params, dict):
            raise InvalidInputError("params", "must be an object of query parameters")
        rows = self.store.read_query(cypher, params, max(1, min(limit, _QUERY_LIMIT)))
        return [dict(r) for r in json.loads(json.dumps(rows, default=str))]

    # ------------------------------------------------------------------ retrieval for memory search
    def memory_links(self, query: str, scope: Scope) -> dict[str, float]:
        """``links.memory_links`` on this graph: memory id -> 1.0 for the memories about an entity
        the query names by its role ("my sister", "the user's dog"). Raises ``StoreError``."""
        return memory_links(self.store, scope, query)


def _same_scope(r: GraphRelation, scope: Scope) -> bool:
    return (r.user_id, r.agent_id, r.run_id) == (scope.user_id, scope.agent_id, scope.run_id)
