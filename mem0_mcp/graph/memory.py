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
from typing import TYPE_CHECKING, Any

import numpy as np

from mem0_mcp.clock import now_iso
from mem0_mcp.errors import InvalidInputError
from mem0_mcp.graph.extraction import (
    EXPLICIT_SOURCE,
    Extraction,
    GraphExtractor,
    load_graph_prompts,
    normalize_name,
    normalize_relation,
    self_name,
    transcript,
)
from mem0_mcp.graph.links import memory_links
from mem0_mcp.graph.prepared import (
    Mention,
    PreparedAdd,
    materialize,
    prepare_add,
    resolve_mentions,
    upsert,
    with_merges,
)
from mem0_mcp.graph.queue import GraphQueue, QueuedAdd
from mem0_mcp.graph.reads import entity_view, shortest_path
from mem0_mcp.graph.shared import SharedGraph, relations_body
from mem0_mcp.graph.store import GraphStore, QueryRow, open_graph_store
from mem0_mcp.graph.timeline import read_as_of, relations_at
from mem0_mcp.graph.validation import (
    check_name,
    check_read_only,
    check_str,
    entity_type,
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
)
from mem0_mcp.stores.object_store import remote_store

if TYPE_CHECKING:
    from mem0_mcp.config import Settings

logger = logging.getLogger(__name__)

MERGE_THRESHOLD = 0.9  # cosine of entity-name embeddings above which two mentions are one entity
SEED_THRESHOLD = 0.35  # cosine above which an entity is taken to match a search query
SEED_ENTITIES = 5
FIRST_PERSON = frozenset({"i", "me", "my", "mine", "myself"})
SELF_SEED = 0.5  # how strongly a first-person query matches the scope's own entity
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
    text: str = ""  # what the extraction reads (queued with the work when it runs later)

    def finish_later(self, result: AddResult) -> AddResult:
        """``finish`` after the add returns, queued durably (``graph_pending`` on the result); at
        once when it cannot wait (MCP sampling must run in the request) or there is no queue."""
        ids = tuple(e.id for e in result.results if e.event in ("ADD", "UPDATE", "NONE"))
        if self.future is None or not ids:
            return self.finish(result)
        item = QueuedAdd(self.text, self.scope, ids, self.event_at)
        try:
            queued = self.graph.queue.submit(item, self.future)
        except Exception as exc:
            logger.warning("graph: queuing the add's graph part failed (%s); writing it now", exc)
            queued = False
        if not queued:
            return self.finish(result)
        result.graph_pending = True
        return result

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
        self.queue = GraphQueue(store, self._do_queued)
        # On object storage: the feed other nodes publish their graph changes to (graph/shared).
        self.shared: SharedGraph | None = None

    @classmethod
    def open(
        cls, settings: Settings, *, embed: Embed, llm: LLMGetter, read_only: bool = False
    ) -> GraphMemory:
        """Graph memory on the store of ``settings`` (``read_only``: a data dir that cannot be
        written; graph writes then raise ``StoreError``). In the background it reads the graph in
        and takes over queued work a stopped process left."""
        graph = cls(settings, open_graph_store(settings, read_only=read_only), embed=embed, llm=llm)
        remote = remote_store(settings)
        if remote is not None:
            graph.shared = SharedGraph.open(remote, settings.data_dir, settings.store_refresh_seconds)
        if not read_only:
            graph.warm_up()
            if graph.shared is not None:
                graph.shared.start(graph)
        return graph

    def warm_up(self) -> None:
        """In the background: read the graph in (the first read replays the log, not in a user's
        call), then, now and every ``STALE_AFTER`` seconds, take over queued work a stopped
        process left."""
        self._pool.submit(self._warm_up)

    def _warm_up(self) -> None:
        try:
            self.store.open_jobs()  # the first read replays the log: not in a user's call
        except Exception:
            logger.exception("graph: reading the graph in at start failed; the first call retries")
        self.queue.watch(lambda: self.extractor() is not None)

    def _do_queued(self, item: QueuedAdd, seq: int, started: Future[Any] | None) -> None:
        """The writer thread's work: the extraction (``started`` already, or now), then the graph
        write, marked done in the same transaction. A failure is logged and marked done: the
        memories are stored, and ``mem0-mcp graph rebuild`` re-derives their graph."""
        try:
            if started is not None:
                prepared = started.result()
            else:
                extractor = self.extractor()
                if extractor is None:
                    return  # no LLM in this process: stays queued for one that has it
                prepared = self.prepare(extractor, item.text, item.scope)
            if not isinstance(prepared, PreparedAdd):
                raise TypeError(f"graph: queued work {seq} prepared {type(prepared).__name__}")
            self.apply(prepared, item.scope, list(item.memory_ids), item.event_at, job=seq)
        except Exception as exc:
            logger.exception("graph: the queued graph part of memories %s failed", list(item.memory_ids))
            self.store.finish_job(seq, failed=f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        """Let queued graph work finish (bounded; the rest stays queued), stop the worker threads
        and close the store."""
        self.queue.close()
        if self.shared is not None:
            self.shared.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.store.close()

    def reset(self) -> None:
        """Delete the whole graph (every scope; every node's, on object storage)."""
        self.store.reset()
        if self.shared is not None:
            self.shared.reset()

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
            return GraphJob(self, scope, run=run, event_at=event_at, text=text)
        return GraphJob(self, scope, future=self._pool.submit(run), event_at=event_at, text=text)

    def prepare(self, extractor: GraphExtractor, text: str, scope: Scope) -> PreparedAdd:
        """``prepare_add`` on this graph. Raises ``LLMError``."""
        return prepare_add(self.store, self.resolve, extractor, text, scope)

    def resolve(
        self, entities: dict[str, str], scope: Scope, *, by_embedding: bool = True
    ) -> dict[str, Mention]:
        """The stored entities ``entities`` (name -> type) stand for in the scope (by name or
        alias; by name embedding unless ``by_embedding`` is false), or to be created."""
        names = list(entities)
        vectors = np.asarray(self._embed(names), dtype=np.float32)
        return resolve_mentions(
            self.store,
            entities,
            vectors,
            scope,
            merge_threshold=self.merge_threshold if by_embedding else None,
        )

    def apply(
        self,
        prepared: PreparedAdd,
        scope: Scope,
        memory_ids: Sequence[str],
        event_at: str | None = None,
        *,
        job: int | None = None,
        publish: bool = True,
    ) -> list[GraphRelation]:
        """Write a prepared extraction in one burst, ``memory_ids`` as the relations' sources and
        ``event_at`` (when those memories happened; None: now) as when the new relations began
        and the contradicted ones ended; ``job``: the queued work this is, marked done in the same
        write; ``publish``: tell the other nodes (false: it came from them). Returns the
        relations touched, each with its event. Raises ``StoreError``."""
        out: list[GraphRelation] = []
        if not prepared.extraction.relations and not prepared.invalidate:
            if job is not None:
                self.store.finish_job(job)
            return out
        now = now_iso()  # the write time: created_at of what is new
        when = event_at or now
        with self.store.burst(write=True):
            if job is not None or not publish:
                # Queued or another node's work: a memory deleted meanwhile is not written back.
                gone = self.store.deleted_memories(memory_ids)
                memory_ids = [m for m in memory_ids if m not in gone]
                if not memory_ids:
                    if job is not None:
                        self.store.finish_job(job)
                    return out
            ids = materialize(self.store, prepared.resolved, scope, now)
            for t in prepared.extraction.relations:
                src, dst = ids[t.source], ids[t.destination]
                rel = upsert(self.store, scope, src, t.relation, dst, memory_ids, now, valid_from=when)
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
            if job is not None:
                self.store.finish_job(job)
        if publish:
            self._publish("relations", relations_body(prepared, scope, memory_ids, event_at))
        return out

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
        publish: bool = True,
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
            resolved = self.resolve(entities, scope, by_embedding=False)
            ids = materialize(self.store, resolved, scope, now)
            made = upsert(self.store, scope, ids[src], rel, ids[dst], [EXPLICIT_SOURCE], now)
        if publish:
            ends = {"source": src, "relation": rel, "destination": dst, "scope": scope.as_dict()}
            self._publish("relate", ends | {"source_type": source_type, "destination_type": destination_type})
        return with_merges(made, resolved[src], resolved[dst])

    def write_stated(
        self, extraction: Extraction, scope: Scope, memory_ids: Sequence[str], event_at: str | None
    ) -> list[GraphRelation]:
        """Write relations the caller stated for the memories ``memory_ids`` (``add_memory``'s
        ``relations``, checked by ``stated_extraction``): sourced from those memories, so graph
        links find them; names match stored entities exactly (as ``relate``). Raises
        ``StoreError``."""
        with self.store.burst():
            resolved = self.resolve(extraction.entities, scope, by_embedding=False)
        return self.apply(PreparedAdd(extraction, resolved, [], {}, exact=True), scope, memory_ids, event_at)

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

    def delete_relation(
        self, source: str, relation: str, destination: str, scope: Scope, *, publish: bool = True
    ) -> int:
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
        if deleted and publish:
            names = {"source": src, "relation": rel, "destination": dst}
            self._publish("unrelate", names | {"scope": scope.as_dict()})
        return deleted

    def _publish(self, op: str, body: dict[str, object]) -> None:
        if self.shared is not None:
            self.shared.publish(op, body)

    # ------------------------------------------------------------------ deletes from the engine
    def forget_memory(self, memory_id: str) -> None:
        """The memory was deleted: drop it as a source (logged, never raised: the graph is derived).
        This process's queued graph work goes first, or it would write relations for it after."""
        try:
            self.queue.settle()
            n = self.store.forget_source(memory_id, deleted=True)
            if n:
                logger.info("graph: %d relation(s) sourced only from memory %s removed", n, memory_id)
            self._publish("forget", {"memory_id": memory_id, "deleted": True})
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
            self.queue.settle()  # the add's own queued graph part first, then its replacement
            self.store.forget_source(memory.id)
            self._publish("forget", {"memory_id": memory.id, "deleted": False})
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
            self.queue.settle()
            self.store.delete_scope(scope)
            self._publish("delete_scope", {"scope": scope.as_dict()})
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
        self.queue.settle()  # this process's queued adds first: a read sees them
        return [r.model_dump() for r in self.find_relations(query, scope, limit, as_of=as_of)]

    def entity(self, name: str, scope: Scope, depth: int = 1, *, as_of: str | None = None) -> EntityView:
        """``reads.entity_view`` on this graph. Raises ``InvalidInputError``."""
        return entity_view(self.store, name, scope, depth, as_of=as_of)

    def get_entity(self, name: str, scope: Scope, depth: int = 1, as_of: str | None = None) -> Json:
        """``entity`` as the get_entity tool's JSON."""
        self.queue.settle()  # this process's queued adds first: a read sees them
        return self.entity(name, scope, depth, as_of=as_of).model_dump()

    def path(self, source: str, target: str, scope: Scope, max_hops: int = 3) -> GraphPath:
        """``reads.shortest_path`` on this graph. Raises ``InvalidInputError``."""
        return shortest_path(self.store, source, target, scope, max_hops)

    def find_path(self, source: str, target: str, scope: Scope, max_hops: int = 3) -> Json:
        """``path`` as the find_path tool's JSON."""
        self.queue.settle()  # this process's queued adds first: a read sees them
        return self.path(source, target, scope, max_hops).model_dump()

    def export(self, scope: Scope) -> GraphExport:
        """The scope's entities and relations, invalidated ones included."""
        self.queue.settle()  # this process's queued adds first: a read sees them
        entities, relations = self.store.all_of(scope)
        return GraphExport(scope=scope.as_dict(), nodes=entities, edges=relations)

    def query(
        self, cypher: str, params: Mapping[str, object] | None = None, limit: int = 100
    ) -> list[QueryRow]:
        """Read-only Cypher (every scope is visible: single-user local setups only); at most
        ``limit`` rows, values made JSON. Raises ``InvalidInputError``, ``StoreError``."""
        self.queue.settle()  # this process's queued adds first: a read sees them
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
