"""The memory engine: Mem0's ``Memory`` API over LanceDB (rows, vectors, full text) and SQLite
(history, write-behind journal).

Knows nothing of MCP. Every method is synchronous and thread-safe; writes are serialized within
the process and across processes that share the data dir. ``AsyncMemory`` (engine/async_memory)
runs each call in a worker thread so an event loop never blocks on a store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import numpy as np

from mem0_mcp import __version__
from mem0_mcp.clock import now_iso, parse_time
from mem0_mcp.config import Settings
from mem0_mcp.embedding import BackgroundEmbedder, Embedder
from mem0_mcp.engine import validation as check
from mem0_mcp.engine.browse import page_of
from mem0_mcp.engine.changes import Change, ChangeGroups
from mem0_mcp.engine.gate import ScopeGates
from mem0_mcp.engine.identity import EmbedderIdentity
from mem0_mcp.engine.inferred import add_inferred
from mem0_mcp.engine.restore import restore
from mem0_mcp.engine.rows import ChangeSource, embed_inputs, history_record, in_scope, text_change, to_item
from mem0_mcp.engine.search import Searcher, SearchRequest, store_error
from mem0_mcp.engine.storage import Storage, where
from mem0_mcp.engine.supersede import check_supersedes, mark_superseded
from mem0_mcp.engine.verbatim import add_verbatim
from mem0_mcp.errors import InvalidInputError, NotFoundError, StoreError
from mem0_mcp.graph.extraction import Extraction, self_name
from mem0_mcp.graph.validation import stated_extraction
from mem0_mcp.llm import LLM, build_llm
from mem0_mcp.llm.pipeline import MemoryPipeline
from mem0_mcp.llm.prompts import PromptSet
from mem0_mcp.models import (
    AddResult,
    DeleteResult,
    GraphRelation,
    HistoryEntry,
    MemoryItem,
    MemoryPage,
    Message,
    RestoreResult,
    Scope,
    SearchResult,
    StatedRelation,
    Stats,
    UpdateResult,
)
from mem0_mcp.stores.filters import scope_clause, sql_str

if TYPE_CHECKING:
    from mem0_mcp.graph.memory import GraphJob, GraphMemory

logger = logging.getLogger(__name__)

ProgressFn = Callable[[float, float | None, str | None], None]
NO_LLM_REASON = (
    "no LLM backend is configured (llm_provider=none): stored verbatim; set ANTHROPIC_API_KEY or "
    "MEM0_MCP_LLM_PROVIDER to extract facts"
)


class Memory:
    """Long-term memory of one data dir: add, search, read, change and forget memories by scope.

    Takes the settings, and optionally an embedder and an LLM (default: the configured ones;
    the embedder loads in the background, the first call that needs it waits). Raises
    EmbedderMismatchError when the data dir was built with another embedding model.
    """

    def __init__(
        self, settings: Settings, *, embedder: Embedder | None = None, llm: LLM | None = None
    ) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self._embedder: Embedder = embedder or BackgroundEmbedder.from_settings(settings)
        self._identity = EmbedderIdentity(
            settings,
            self._embedder.name,
            lambda: self.storage.vectors.dimension,
            writable=lambda: self.storage.read_only is None,
        )
        self._identity.check_name()  # before the stores open: a mismatch writes nothing
        # The stores and their locks: public for diagnostics, benchmarks and tests that inspect them.
        self.storage = Storage(settings)
        self._llm = llm if llm is not None else build_llm(settings)
        self._pipeline: MemoryPipeline | None = None
        self._searcher = Searcher(self.storage, self._embed)
        self.gates = ScopeGates(self.storage, self._embed)  # public: benchmarks read null scores
        self._changes = ChangeGroups(self.storage)
        self._graph: GraphMemory | None = None  # built on first use
        self._graph_init = threading.Lock()

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._embedder.embed(list(texts))
        self._identity.check_dimension(int(vectors.shape[1]))
        return vectors

    # ------------------------------------------------------------------ add
    def add(
        self,
        messages: str | Sequence[Mapping[str, Any] | Message],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        actor_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        infer: bool | None = None,
        memory_type: str | None = None,
        timestamp: str | int | float | None = None,
        progress: ProgressFn | None = None,
        supersedes: Sequence[str] | None = None,
        source: ChangeSource = "api",
        use_graph: bool | None = None,
        relations: Sequence[StatedRelation] | None = None,
    ) -> AddResult:
        """Remember a text or a conversation in a scope.

        Takes a string (one user message) or messages ``{"role", "content", "name"?,
        "metadata"?}``, at least one of user_id / agent_id / run_id, an optional actor and
        metadata, ``timestamp`` (when it happened: ISO 8601 or epoch seconds) and ``infer``: let
        the LLM extract facts and decide ADD / UPDATE / DELETE / NONE against the nearest stored
        memories (None: ``default_infer()``). Without an LLM, or when the LLM fails, the text is
        stored verbatim and ``reason`` says why: once accepted, the user's text is never lost.
        ``supersedes``: ids of live memories of the scope the new text replaces; they are marked
        superseded by it (out of default search, kept for history). ``source`` says in the
        history who made the change (the memory manager's own changes say "llm"). ``use_graph``:
        extract the add's relations into the graph (None: ``graph_on()``). ``relations``: ones the
        caller read in the text (an agent with no server LLM is the extractor), written to the
        graph with the add's memory as their source.

        Returns an AddResult: one event per memory touched (ADD, UPDATE, DELETE, or NONE with the
        id already stored), LLM usage, warnings; a verbatim add also lists ``related`` stored
        memories it may duplicate, refine or contradict. Raises ScopeRequiredError,
        InvalidInputError (naming the field) before anything is written, StoreError when a store
        fails.
        """
        self.storage.refuse_writes()  # before the LLM and the graph are asked anything
        scope = check.check_scope("add", user_id, agent_id, run_id)
        actor = check.check_id("actor_id", actor_id)
        base_meta = check.check_metadata(self.settings, metadata)
        msgs, warnings = check.check_messages(self.settings, messages)
        event_at = parse_time(timestamp, "timestamp") if timestamp is not None else None
        memory_type = check.check_memory_type(memory_type, scope)
        replaced = check_supersedes(self.storage, scope, supersedes)
        stated = self._check_stated(relations, scope)
        infer = self.default_infer() if infer is None else bool(infer)
        # Graph extraction starts now, in a thread: it overlaps the vector work of the same add.
        graph = self.graph if (self.graph_on() if use_graph is None else use_graph) else None
        graph_job = graph.begin(msgs, scope, event_at) if graph is not None else None
        reason = None
        result: AddResult | None = None
        if infer:
            result = self._add_inferred(
                msgs, scope, actor, base_meta, memory_type, event_at, warnings, progress
            )
            if result.inferred:
                if replaced and result.results:
                    result.superseded = self._supersede(scope, replaced, result.results[0].id, source)
                return self._finish_graph(graph_job, self._write_stated(stated, scope, event_at, result))
            reason, warnings = result.reason, result.warnings
        out = add_verbatim(
            self.storage,
            self._embed,
            msgs,
            scope,
            actor_id=actor,
            metadata=base_meta,
            memory_type=memory_type,
            event_at=event_at,
            near_duplicates=infer,
            progress=progress,
            on_stored=self._searcher.note_names,
            supersedes=replaced,
            source=source,
        )
        out.reason = reason
        out.warnings = warnings
        if result is not None:
            out.usage = result.usage  # calls spent before falling back still cost tokens
        # The graph is derived: its failures become warnings, never a failed add.
        return self._finish_graph(graph_job, self._write_stated(stated, scope, event_at, out))

    def _check_stated(self, relations: Sequence[StatedRelation] | None, scope: Scope) -> Extraction | None:
        if not relations:
            return None
        if self.settings.graph_enabled == "false":
            raise InvalidInputError(
                "relations",
                "the graph is off (graph_enabled=false): leave relations out, or set "
                "MEM0_MCP_GRAPH_ENABLED=auto",
            )
        return stated_extraction(relations, self_name(scope))

    def _write_stated(
        self, stated: Extraction | None, scope: Scope, event_at: str | None, result: AddResult
    ) -> AddResult:
        """The caller's relations, sourced from the memories the add stored or found stored."""
        ids = [e.id for e in result.results if e.event != "DELETE"]
        if stated is None or not ids or self.graph is None:
            return result
        try:
            result.relations.extend(self.graph.write_stated(stated, scope, ids, event_at))
        except StoreError as exc:
            logger.exception("graph: the stated relations of memory %s were not written", ids[0])
            result.warnings.append(f"graph: the relations were not written ({exc}); the memory was stored")
        return result

    def _finish_graph(self, job: GraphJob | None, result: AddResult) -> AddResult:
        if job is None:
            return result
        return job.finish_later(result) if self.settings.graph_background else job.finish(result)

    def has_llm(self, *, sampling_client: bool = False) -> bool:
        """Whether an LLM can work for a call, the one rule of every 'auto' setting: a server-side
        backend, or MCP sampling when ``sampling_client`` (the server's word that the caller's
        client declared sampling: only the server can know)."""
        return self._llm is not None and (not self._llm.request_bound or sampling_client)

    def default_infer(self, *, sampling_client: bool = False) -> bool:
        """Whether an add that does not say runs the LLM memory manager (``infer_default``)."""
        mode = self.settings.infer_default
        return self.has_llm(sampling_client=sampling_client) if mode == "auto" else mode == "true"

    def graph_reads(self, *, sampling_client: bool = False) -> bool:
        """Whether search reads the graph: ``graph_on``, or 'auto' without an LLM once relations
        were written to it (add_relation, add's ``relations``: the agent built it)."""
        written = self.settings.graph_enabled == "auto" and (
            self._graph is not None or self.settings.graph_may_exist
        )
        return self.graph_on(sampling_client=sampling_client) or written

    def graph_on(self, *, sampling_client: bool = False) -> bool:
        """Whether adds extract relations and search reads the graph (``graph_enabled``); the
        graph tools work whenever ``graph`` is not None."""
        mode = self.settings.graph_enabled
        return self.has_llm(sampling_client=sampling_client) if mode == "auto" else mode == "true"

    def _supersede(self, scope: Scope, ids: list[str], by: str, source: ChangeSource) -> list[str]:
        with self.storage.writing():
            self.storage.move_journal_locked()
            done, records = mark_superseded(self.storage, scope, ids, by, now_iso(), source)
            self.storage.history.add(records)
        self.storage.after_write(len(done))
        return done

    def _add_inferred(
        self,
        msgs: list[Message],
        scope: Scope,
        actor_id: str | None,
        metadata: dict[str, Any],
        memory_type: str | None,
        event_at: str | None,
        warnings: list[str],
        progress: ProgressFn | None,
    ) -> AddResult:
        """``add_inferred`` with this engine's pipeline (made again when the LLM changed)."""
        if self._llm is None:
            return AddResult(inferred=False, reason=NO_LLM_REASON, warnings=warnings)
        if self._pipeline is None or self._pipeline.llm is not self._llm:
            self._pipeline = MemoryPipeline(
                self._llm,
                PromptSet.load(self.settings.prompts_dir),
                dedup_threshold=self.settings.dedup_threshold,
                related_threshold=self.settings.related_threshold,
                single_call=self.settings.llm_single_call,
                max_facts=self.settings.max_facts_per_add,
                max_fact_bytes=self.settings.max_text_bytes,
            )
        return add_inferred(
            self._pipeline,
            self.storage,
            self._embed,
            msgs,
            scope,
            actor_id=actor_id,
            metadata=metadata,
            memory_type=memory_type,
            event_at=event_at,
            warnings=warnings,
            progress=progress,
            on_stored=self._searcher.note_names,
        )

    # ------------------------------------------------------------------ search and reads
    def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        actor_id: str | None = None,
        filters: Mapping[str, Any] | None = None,
        limit: int | None = None,
        threshold: float | None = None,
        include_superseded: bool = False,
        as_of: str | int | float | None = None,
        use_graph: bool | None = None,
    ) -> SearchResult:
        """The memories of a scope that best match ``query`` (hybrid: vectors and BM25, fused).

        Takes the query, the scope, an optional actor, metadata ``filters``, ``limit`` (default
        settings.default_limit, at most max_limit), a score ``threshold`` in [0, 1] (results
        under it are dropped; without one, nothing is returned when even the best result scores
        under the scope's gate, engine/gate.py) and whether superseded memories count. ``as_of``
        (ISO 8601 or epoch seconds): as things stood then (Searcher.visible). ``use_graph``: the
        graph's relations and memory links (None: ``graph_reads()``). Returns a SearchResult, best
        first, each with its score (ranking.relevance, the same scale for every query), and the
        graph's relations. Raises ScopeRequiredError, InvalidInputError, StoreError.
        """
        scope = check.check_scope("search", user_id, agent_id, run_id)
        text = check.check_text(self.settings, query, "query")
        actor = check.check_id("actor_id", actor_id)
        when = parse_time(as_of, "as_of") if as_of is not None else None
        req = SearchRequest(
            query=text,
            scope=scope,
            where=where(
                scope, actor_id=actor, filters=filters, include_superseded=include_superseded or bool(when)
            ),
            limit=check.check_limit(self.settings, limit),
            threshold=check.check_threshold(threshold),
            gate=(lambda: self.gates.gate(scope)) if threshold is None else 0.0,
            plain=not filters and not actor,
            include_superseded=include_superseded,
            filters=filters,
            as_of=when,
            where_all=where(scope, actor_id=actor, filters=filters, include_superseded=True),
        )
        graph = self.graph if (self.graph_reads() if use_graph is None else use_graph) else None
        if graph is None:
            return self._searcher.search(req, None)
        pool = self._searcher.pool

        def relations(query: str, vector: np.ndarray, sc: Scope, k: int) -> Future[list[GraphRelation]]:
            return graph.submit_search(query, vector, sc, k, as_of=when)  # as things stood then, too

        return self._searcher.search(req, relations, lambda q, sc: pool.submit(graph.memory_links, q, sc))

    def get(self, memory_id: str, *, scope: Scope | None = None) -> MemoryItem:
        """One memory by id. Raises NotFoundError when it does not exist in ``scope`` (None: any)."""
        # Journaled or in the table, without moving the journal (a journaled row is as added:
        # an update or delete moves it first).
        row = self.storage.peek_row(memory_id, scope)
        if row is None:
            raise NotFoundError(memory_id)
        return to_item(row)

    def get_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        actor_id: str | None = None,
        filters: Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int = 0,
        include_superseded: bool = False,
        after: Sequence[str] | None = None,
    ) -> MemoryPage:
        """A page of a scope's memories, newest first (ties broken by id).

        ``after`` (a page's ``next_after``) continues after that memory: pages keep their place
        when memories are added or deleted in between; ``offset`` counts from the start instead.
        Returns a MemoryPage with the total and where the next page starts (None on the last
        page). Raises ScopeRequiredError, InvalidInputError, StoreError.
        """
        scope = check.check_scope("get_all", user_id, agent_id, run_id)
        k = check.check_limit(self.settings, limit)
        offset = check.check_offset(offset)
        actor = check.check_id("actor_id", actor_id)
        mark = None
        if after is not None:
            if isinstance(after, str) or len(after) != 2 or not all(isinstance(a, str) for a in after):
                raise InvalidInputError("after", "must be the next_after of a page: [created_at, id]")
            mark = (after[0], after[1])
        # A plain listing served by the in-process copy sees journaled adds there (see search).
        ticket = self.storage.copy_with_journal() if not filters and not actor else None
        if ticket is not None:
            page = page_of(
                ticket.copy.listing(scope.model_dump(), include_superseded), ticket.copy.rows, k, offset, mark
            )
            if self.storage.copy_unchanged(ticket):
                return page
        predicate = where(scope, actor_id=actor, filters=filters, include_superseded=include_superseded)
        vectors = self.storage.vectors
        self.storage.move_journal()
        try:
            keys = [
                (r["created_at"], r["id"]) for r in vectors.query(predicate, columns=("id", "created_at"))
            ]
        except Exception as exc:
            raise store_error(exc, filters) from exc

        def rows_of(ids: Sequence[str]) -> dict[str, dict[str, Any]]:
            return {r["id"]: r for r in vectors.query(f"id IN ({', '.join(sql_str(i) for i in ids)})")}

        return page_of(keys, rows_of, k, offset, mark)

    def history(self, memory_id: str, *, scope: Scope | None = None) -> list[HistoryEntry]:
        """Every ADD / UPDATE / DELETE of a memory, oldest first (also after it was deleted).

        Raises InvalidInputError for an empty id, NotFoundError when ``scope`` has no such memory.
        """
        key = check.check_memory_id(memory_id)
        entries = self.storage.history.get(key)
        if not entries:
            row = self.storage.vectors.get(key)
            if row is not None and in_scope(row, scope):
                raise StoreError(
                    f"memory_id: memory {key} exists but has no history: "
                    f"the history of {self.settings.store_shown} lost it after it was stored; "
                    "changes from now on are recorded"
                )
        # A deleted memory has no row: its history rows carry the scope instead.
        if not entries or (scope is not None and not in_scope(entries[0].model_dump(), scope)):
            raise NotFoundError(memory_id)
        return entries

    # ------------------------------------------------------------------ update and delete
    def update(
        self,
        memory_id: str,
        *,
        text: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        scope: Scope | None = None,
        source: ChangeSource = "api",
    ) -> UpdateResult:
        """Give a memory new text and/or metadata (metadata is replaced); history keeps the old text.

        The new text is indexed and embedded by the same rule as an add, with the neighbours the
        memory was stored with; with the graph on, its relations are extracted again from it.
        Returns the memory as stored, with the relations re-derived and the graph's warnings.
        Raises InvalidInputError (nothing to change, or a bad value), NotFoundError, StoreError.
        """
        if text is None and metadata is None:
            raise InvalidInputError("text", "give the new text, new metadata, or both")
        new_text = check.check_text(self.settings, text, "text") if text is not None else None
        new_meta = check.check_metadata(self.settings, metadata) if metadata is not None else None
        vector, old_text = None, None
        # Read without moving the journal (that waits for the write lock): a wrong id fails
        # before embedding, and the write below checks it is still the row under the locks.
        seen = self.storage.peek_row(memory_id, scope)
        if new_text is not None:
            before = seen or self.storage.row(memory_id, scope)
            old_text, (_, inputs) = before["memory"], text_change(before, new_text)
            vector = embed_inputs([inputs], self._embed, self.settings.context_vectors)[0]
        # Written with the other changes waiting for the write lock, in one commit (see changes).
        change = Change(memory_id, scope, seen, source, text=new_text, metadata=new_meta, vector=vector)
        item = to_item(self._changes.commit(change))
        if self.graph is None or new_text is None or new_text == old_text:
            return UpdateResult.model_validate(item.model_dump())
        return self.graph.rederive(item)  # the graph is derived: failures are warnings on the result

    def delete(
        self, memory_id: str, *, scope: Scope | None = None, source: ChangeSource = "api"
    ) -> DeleteResult:
        """Delete one memory (its history stays).

        Idempotent: a memory of ``scope`` whose latest event is a DELETE answers ``deleted=0``
        ("already deleted"). Raises NotFoundError for an id never stored in ``scope``, StoreError.
        """
        seen = self.storage.peek_row(memory_id, scope)  # read before the locks: see update
        try:
            row = self._changes.commit(Change(memory_id, scope, seen, source, delete=True))
        except NotFoundError:
            entries = self.storage.history.get(check.check_memory_id(memory_id))
            if entries and entries[-1].event == "DELETE" and in_scope(entries[-1].model_dump(), scope):
                return DeleteResult(deleted=0, message=f"memory {entries[-1].memory_id} was already deleted")
            raise
        if (kept := self._graph_kept()) is not None:
            kept.forget_memory(row["id"])
        return DeleteResult(deleted=1, message=f"memory {row['id']} deleted")

    def restore(
        self, memory_id: str, *, scope: Scope | None = None, source: ChangeSource = "api"
    ) -> RestoreResult:
        """Undo the latest change of a memory: an UPDATE goes back to the previous text (and
        metadata, and vector), a DELETE or supersede makes it live again, a RESTORE is undone.

        Works on the memory manager's decisions too: no decision is final. The undo is its own
        RESTORE event in the history. Raises NotFoundError, InvalidInputError (nothing to undo),
        StoreError.
        """
        return restore(self.storage, self._embed, memory_id, scope, source)

    def delete_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        source: ChangeSource = "api",
    ) -> DeleteResult:
        """Delete every memory of a scope (never all scopes: one id at least). Raises
        ScopeRequiredError, StoreError."""
        scope = check.check_scope("delete_all", user_id, agent_id, run_id)
        predicate = scope_clause(**scope.model_dump())
        with self.storage.writing():
            self.storage.move_journal_locked()
            rows = self.storage.vectors.query(predicate)
            if rows:
                self.storage.vectors.delete(predicate, ids=[r["id"] for r in rows])
                now = now_iso()
                self.storage.history.add(
                    history_record(r, "DELETE", r["memory"], None, now, source, before=r) for r in rows
                )
        if (kept := self._graph_kept()) is not None:
            kept.delete_scope(scope)
        desc = ", ".join(f"{k}={v!r}" for k, v in scope.as_dict().items())
        return DeleteResult(deleted=len(rows), message=f"deleted {len(rows)} memories of {desc}")

    def reset(self) -> None:
        """Forget everything in this data dir: memories, history, graph and the embedder identity."""
        with self.storage.writing():
            self.storage.vectors.drop()
            self.storage.history.reset()
            self._identity.forget()
            self._searcher.forget_names()
            if (kept := self._graph_kept()) is not None:
                kept.reset()

    # ------------------------------------------------------------------ graph (derived data)
    @property
    def graph(self) -> GraphMemory | None:
        """The entity graph unless graph_enabled=false (built on first use): with 'auto' and no
        LLM it holds what is written explicitly (add_relation, import); see ``graph_on``."""
        if self.settings.graph_enabled == "false":
            return None
        with self._graph_init:
            if self._graph is None:
                from mem0_mcp.graph.memory import GraphMemory

                self._graph = GraphMemory.open(
                    self.settings,
                    embed=self._embed,
                    llm=lambda: self.llm,
                    read_only=self.storage.read_only is not None,
                )
        return self._graph

    def _graph_kept(self) -> GraphMemory | None:
        """``graph`` for deletes to clean, unless 'auto' without an LLM never wrote one to disk."""
        on = self.graph_on() or self._graph is not None or self.settings.graph_may_exist
        return self.graph if on else None

    # ------------------------------------------------------------------ misc
    @property
    def embedder(self) -> Embedder:
        return self._embedder

    @property
    def llm(self) -> LLM | None:
        return self._llm

    def flush(self) -> None:
        """Append journaled adds to the memory table now (for code that reads the table itself)."""
        self.storage.move_journal()

    def optimize(self) -> None:
        """Merge pending rows into the indexes now (the engine also does this every few hundred writes)."""
        self.storage.optimize()

    def stats(self) -> Stats:
        """Counts and identity of this engine: memories, embedder, LLM, graph, version."""
        emb = self._embedder
        ready = getattr(emb, "ready", True)
        dim = getattr(emb, "declared_dimension", None) if not ready else emb.dimension
        self.storage.move_journal()
        return Stats(
            memories=self.storage.vectors.count(),
            data_dir=str(self.settings.data_dir),
            embedder=f"{emb.name} ({getattr(emb, 'backend', type(emb).__name__)})",
            embedder_ready=bool(ready),
            dimension=dim,
            llm_provider=self._llm.name if self._llm is not None else "none",
            graph_enabled=self.graph_on(),
            ann_index=self.storage.vectors.has_vector_index(),
            version=__version__,
        )

    def close(self) -> None:
        """Finish background work, move the journal and release the stores."""
        self.storage.close()
        self._searcher.close()
        self.gates.close()
        if self._graph is not None:
            self._graph.close()
