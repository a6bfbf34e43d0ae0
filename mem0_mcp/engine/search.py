"""Hybrid search: dense and BM25 candidates, fused, served from the in-process copy when it can."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.compute as pc

from mem0_mcp.engine.current import asks_present, current_first
from mem0_mcp.engine.ranking import dense_query, fuse, pass_to_successors, words
from mem0_mcp.engine.rows import EmbedFn, in_scope, to_item
from mem0_mcp.engine.storage import CopyTicket, Storage
from mem0_mcp.errors import EmbedderMismatchError, InvalidInputError, StoreError
from mem0_mcp.models import MemoryItem, Scope, SearchResult
from mem0_mcp.stores.filters import sql_str
from mem0_mcp.stores.vectors import VectorStore

logger = logging.getLogger(__name__)

NAMES_REFRESH_SECONDS = 30.0
# Candidates from the copy carry only what ranking reads; the winners get full rows after.
LIGHT_COLUMNS = ("id", "name", "event_at")
# What ``as_of`` reads of a candidate besides: when it was added and whether it was superseded.
AS_OF_COLUMNS = (*LIGHT_COLUMNS, "created_at", "superseded_at", "superseded_by")
# Whether a candidate was superseded, and by what: a default search passes a superseded
# memory's evidence to its replacement (ranking.pass_to_successors). The in-process copy reads
# them only when the scope holds a superseded row (a candidate without them is current).
SUCCESSION = ("superseded_at", "superseded_by")
# Longest chain of replacements followed (A superseded by B superseded by C ...).
MAX_CHAIN = 16

# (query as asked, its vector, scope, k) -> a future of the graph's relations, or None
GraphSearch = Callable[[str, np.ndarray, Scope, int], "Future[list[Any]] | None"]
# (query, scope) -> a future of memory id -> graph score (GraphMemory.memory_links), or None
GraphLinks = Callable[[str, Scope], "Future[dict[str, float]] | None"]


@dataclass(frozen=True)
class SearchRequest:
    """A checked search: what to look for, where, and how many."""

    query: str
    scope: Scope
    where: str
    limit: int
    threshold: float | None  # results scoring below it are dropped
    # Nothing is returned when the best result scores below it; a callable is asked after the
    # retrieval (a scope's measured gate: the copy is current by then, see engine/gate.py).
    gate: float | Callable[[], float]
    plain: bool  # no filters and no actor: the in-process copy can serve it
    include_superseded: bool
    filters: Mapping[str, Any] | None
    as_of: str | None = None  # stored time format: memories as they stood then
    # ``where`` with superseded rows too: a default search reads them for their replacements
    # (ranking.pass_to_successors); None: only the in-process copy reads them.
    where_all: str | None = None

    @property
    def with_superseded(self) -> bool:
        """Whether retrieval reads superseded rows: asked for, or ``as_of`` may show them."""
        return self.include_superseded or self.as_of is not None


class Searcher:
    """Runs searches over one Storage; keeps the speakers' names that ranking reads."""

    def __init__(self, storage: Storage, embed: EmbedFn) -> None:
        self.storage = storage
        self.embed = embed
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mem0-search")
        # Lowercase words of the speakers' names in the store, and when they were read (see
        # speaker_names); other processes' adds show up within NAMES_REFRESH_SECONDS.
        self._names: tuple[float, frozenset[str]] | None = None
        self._names_refreshing = threading.Lock()

    def search(
        self, req: SearchRequest, graph_search: GraphSearch | None, graph_links: GraphLinks | None = None
    ) -> SearchResult:
        """The best ``req.limit`` memories and, with a graph, the relations the query names;
        ``graph_links`` adds the graph as a retriever (see ranking.GRAPH_WEIGHT).

        Raises InvalidInputError for filters the stored values cannot satisfy, StoreError when
        a store fails.
        """
        # A plain search served by the in-process copy sees journaled adds there: no journal
        # move, so no wait for the write lock behind updates, deletes and moves.
        ticket = self.storage.copy_with_journal() if req.plain else None
        if ticket is None:
            self.storage.move_journal()
        found = self._search(req, graph_search, graph_links, ticket)
        if found is None:
            # The copy stopped serving, or was reloaded, during the read: journaled rows may be
            # missing from it. Read again as every other read does.
            self.storage.move_journal()
            found = self._search(req, graph_search, graph_links, None)
        assert found is not None
        return found

    def _search(
        self,
        req: SearchRequest,
        graph_search: GraphSearch | None,
        graph_links: GraphLinks | None,
        ticket: CopyTicket | None,
    ) -> SearchResult | None:
        """The search; None when ``ticket``'s copy did not serve all of it."""
        vectors = self.storage.vectors
        if vectors.table is None:
            return SearchResult()
        settings = self.storage.settings
        n = max(settings.search_candidates, req.limit)
        scope_values = req.scope.model_dump()
        columns = AS_OF_COLUMNS if req.as_of is not None else LIGHT_COLUMNS
        succession = () if req.as_of is not None else SUCCESSION
        # Superseded rows are always read: shown when asked for, else for their replacements.
        where = req.where_all or req.where
        # Needs no vector: starts first, to run beside the embedding and the vector search.
        links_future = submit_links(graph_links, req)
        # A plain scope search is served from the in-process copy: BM25 and dense scores in well
        # under a millisecond each. Anything else asks LanceDB, full text running while the query
        # is embedded. Full text goes twice as deep as dense, so that dense candidates also carry
        # their BM25 share instead of 0 (LoCoMo frac@10 79.5 -> 79.6).
        text = (
            vectors.cached_text_search(
                req.query,
                2 * n,
                scope_values,
                include_superseded=True,
                columns=columns,
                succession=succession,
            )
            if req.plain
            else None
        )
        text_future = self.pool.submit(vectors.text_search, req.query, where, 2 * n) if text is None else None
        graph_future = None
        try:
            semantic = dense_query(req.query, self.speaker_names())
            if semantic != req.query and graph_search is not None:
                # The graph matches entities by name: it keeps the vector of the query as asked.
                vector, graph_vector = self.embed([semantic, req.query])
            else:
                vector = graph_vector = self.embed([semantic])[0]
            if graph_search is not None:
                graph_future = graph_search(req.query, graph_vector, req.scope, req.limit)
            dense = (
                vectors.dense_search(
                    vector,
                    n,
                    scope_values,
                    include_superseded=True,
                    columns=columns,
                    succession=succession,
                )
                if text_future is None
                else None
            )
            from_copy = dense is not None
            if dense is None:
                dense = vectors.vector_search(vector, where, n)
                if text_future is None:  # the copy stopped serving between the two reads
                    text = vectors.text_search(req.query, where, 2 * n)
            if text_future is not None:
                text = text_future.result()
        except Exception as exc:
            if text_future is not None:
                text_future.cancel()
            raise store_error(exc, req.filters) from exc
        assert text is not None
        if ticket is not None and not (from_copy and self.storage.copy_unchanged(ticket)):
            return None
        linked = graph_links_of(links_future)
        extra = self._linked_rows(req, linked, [*dense, *text])
        fill_evidence(vectors, req, vector, dense, [*text, *extra], from_copy)
        if req.as_of is not None:
            dense, text, extra = (self.visible(rows, req) for rows in (dense, text, extra))
        ranked = fuse(
            dense,
            text,
            vector_weight=settings.vector_weight,
            query=req.query,
            linked=linked,
            linked_rows=extra,
            live_frame=not req.with_superseded,
        )
        if not req.with_superseded:
            ranked = pass_to_successors(ranked, self._successors(ranked, req, from_copy))
        if req.threshold:
            ranked = [c for c in ranked if c.relevance >= req.threshold]
        gate = 0.0 if not ranked else req.gate() if callable(req.gate) else req.gate
        if gate and max((c.relevance for c in ranked), default=0.0) < gate:
            ranked = []
        top = ranked[: req.limit]
        if from_copy:
            full = vectors.cached_rows([c.row["id"] for c in top])
            # A row deleted since the candidates were read is left out, as a later search would.
            top = [c for c in top if c.row["id"] in full]
            for c in top:
                c.row = {**full[c.row["id"]], **c.row}
        items = [to_item(c.row, c.relevance) for c in top]
        if len(top) > 1 and asks_present(req.query):
            items = self._current_first(top)
        return SearchResult(results=items, relations=graph_relations(graph_future))

    def _linked_rows(
        self, req: SearchRequest, linked: Mapping[str, float], found: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """Rows of the scope the graph links that neither retriever found (a large scope), or none
        when they cannot be read: the graph never fails a search."""
        if not linked:
            return []
        seen = {str(r["id"]) for r in found}
        missing = [m for m in linked if m not in seen]
        if not missing:
            return []
        in_list = ", ".join(sql_str(m) for m in missing)
        try:
            rows = self.storage.vectors.query(f"({req.where}) AND id IN ({in_list})")
        except Exception as exc:
            logger.warning("graph: reading the memories it links failed, ranked without them: %s", exc)
            return []
        return rows

    def _successors(
        self, ranked: Sequence[Any], req: SearchRequest, from_copy: bool
    ) -> dict[str, dict[str, Any]]:
        """Superseded candidate id -> the row of the live memory its chain of replacements ends
        at; a chain ending at a deleted memory or outside the scope is left out."""
        pending = {str(c.row["id"]): c.row.get("superseded_by") for c in ranked if c.row.get("superseded_at")}
        out: dict[str, dict[str, Any]] = {}
        if not pending:
            return out
        rows: dict[str, Mapping[str, Any]] = {str(c.row["id"]): c.row for c in ranked}
        for _ in range(MAX_CHAIN):
            missing = sorted({str(p) for p in pending.values() if p and str(p) not in rows})
            if missing:
                rows.update(self._rows_of(missing, req, from_copy))
            ahead = {}
            for old, by in pending.items():
                row = rows.get(str(by)) if by else None
                if row is None:
                    continue
                if row.get("superseded_at"):
                    ahead[old] = row.get("superseded_by")
                else:
                    out[old] = dict(row)
            pending = ahead
            if not pending:
                break
        return out

    def _rows_of(self, ids: Sequence[str], req: SearchRequest, from_copy: bool) -> dict[str, dict[str, Any]]:
        """Rows of the scope by id, superseded or not (none when they cannot be read: a search
        then ranks without the replacements, never fails for them)."""
        vectors = self.storage.vectors
        if from_copy:
            return {k: r for k, r in vectors.cached_rows(ids).items() if in_scope(r, req.scope)}
        in_list = ", ".join(sql_str(i) for i in ids)
        try:
            rows = vectors.query(f"({req.where_all or req.where}) AND id IN ({in_list})")
        except Exception as exc:
            logger.warning("reading the memories that replaced the candidates failed: %s", exc)
            return {}
        return {str(r["id"]): r for r in rows}

    def visible(self, rows: Sequence[dict[str, Any]], req: SearchRequest) -> list[dict[str, Any]]:
        """The rows as they stood at ``req.as_of``: none whose event (or, without one, whose add)
        came after it; a superseded row only while the memory that superseded it had not yet
        happened (that memory's event time, else when the supersede was written), unless
        superseded rows were asked for."""
        as_of = req.as_of
        assert as_of is not None
        shown = [r for r in rows if str(r.get("event_at") or r.get("created_at") or "") <= as_of]
        by = {str(r["superseded_by"]) for r in shown if r.get("superseded_at") and r.get("superseded_by")}
        when = self._event_times(sorted(by)) if by and not req.include_superseded else {}
        out = []
        for r in shown:
            if r.get("superseded_at") and not req.include_superseded:
                ended = when.get(str(r.get("superseded_by")), str(r["superseded_at"]))
                if ended <= as_of:
                    continue
            out.append(r)
        return out

    def _event_times(self, ids: Sequence[str]) -> dict[str, str]:
        """id -> event time (else add time) of the memories ``ids`` that the table holds."""
        in_list = ", ".join(sql_str(i) for i in ids)
        rows = self.storage.vectors.query(f"id IN ({in_list})", columns=("id", "event_at", "created_at"))
        return {str(r["id"]): str(r.get("event_at") or r["created_at"]) for r in rows}

    def _current_first(self, top: list[Any]) -> list[MemoryItem]:
        rows = [c.row for c in top]
        score = {str(c.row["id"]): c.relevance for c in top}
        in_list = ", ".join(sql_str(str(r["id"])) for r in rows)
        # Facts only: a turn of a conversation (stored with its neighbours) tells what was said
        # then, not how things are; those keep their rank.
        found = self.storage.vectors.query(f"id IN ({in_list})", columns=("id", "context", "vector"))
        vectors = {
            str(r["id"]): np.asarray(r["vector"], dtype=np.float32) for r in found if not r.get("context")
        }
        # Rows still journaled (a search served by the in-process copy does not move them).
        missing = [str(r["id"]) for r in rows if str(r["id"]) not in {str(f["id"]) for f in found}]
        for pending in self.storage.history.pending_of(missing) if missing else []:
            if not pending.row.get("context"):
                vectors[str(pending.row["id"])] = pending.vector
        items = []
        for row, newer in current_first(rows, vectors, self.storage.settings.related_threshold):
            item = to_item(row, score[str(row["id"])])
            item.possibly_outdated_by = newer
            items.append(item)
        return items

    # ------------------------------------------------------------------ speakers' names
    def speaker_names(self) -> frozenset[str]:
        """Name words of the store's speakers, for ranking.dense_query.

        Read once synchronously, then refreshed in the background when older than
        NAMES_REFRESH_SECONDS so a search never waits on the scan; adds of this process update
        it at once.
        """
        cached = self._names
        if cached is None:
            return self._read_names()
        if time.monotonic() - cached[0] > NAMES_REFRESH_SECONDS and self._names_refreshing.acquire(False):

            def refresh() -> None:
                try:
                    self._read_names()
                finally:
                    self._names_refreshing.release()

            self.pool.submit(refresh)
        return cached[1]

    def _read_names(self) -> frozenset[str]:
        tbl = self.storage.vectors.table
        found: set[str] = set()
        if tbl is not None:
            try:
                col = tbl.search().where("name IS NOT NULL").select(["name"]).limit(None).to_arrow()
                found = {w for name in pc.unique(col["name"]).to_pylist() if name for w in words(name)}
            except Exception as exc:  # ranking degrades gracefully; the search itself must not fail
                logger.debug("reading speaker names failed: %s", exc)
        names = frozenset(found)
        self._names = (time.monotonic(), names)
        return names

    def note_names(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Take in the speakers of rows this process just stored."""
        new = {w for r in rows if r.get("name") for w in words(str(r["name"]))}
        cached = self._names
        if cached is not None and not new <= cached[1]:
            self._names = (cached[0], cached[1] | new)

    def forget_names(self) -> None:
        self._names = None

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def fill_evidence(
    vectors: VectorStore,
    req: SearchRequest,
    vector: np.ndarray,
    dense: Sequence[dict[str, Any]],
    others: Sequence[dict[str, Any]],
    from_copy: bool,
) -> None:
    """Adds to the hits the evidence their retriever did not give (ranking.relevance): the
    cosine (``_cosine``) of a memory the nearest vectors did not include, and, when LanceDB
    answered (it gives BM25 scores without the query's ceiling), each full-text hit's share of
    the query's words (``_coverage``). Read from the in-process copy, so that a memory's score
    for a query does not depend on which path found it; without a copy they stay out (scored
    0 on that side, a lower bound)."""
    near = {h["id"] for h in dense}
    cosine = [h["id"] for h in others if h["id"] not in near]
    coverage = [] if from_copy else [h["id"] for h in others if "_score" in h]
    if not cosine and not coverage:
        return
    # A search the copy served has checked it is current: no second look at the table's version.
    copy = vectors.copy if from_copy else vectors.current_copy()
    if copy is None:
        return
    cosines = copy.cosines(cosine, vector) if cosine else {}
    # Superseded rows counted, as a search reads them.
    shares = copy.coverage(req.query, coverage, req.scope.model_dump(), True) if coverage else {}
    for hit in others:
        if hit["id"] in cosines:
            hit["_cosine"] = cosines[hit["id"]]
        if hit["id"] in shares:
            hit["_coverage"] = shares[hit["id"]]


def submit_links(graph_links: GraphLinks | None, req: SearchRequest) -> Future[dict[str, float]] | None:
    """The graph retriever started, or None: no graph, or it failed to start (logged)."""
    if graph_links is None:
        return None
    try:
        return graph_links(req.query, req.scope)
    except Exception as exc:
        logger.warning("graph: the graph retriever did not start, ranked without it: %s", exc)
        return None


def graph_links_of(future: Future[dict[str, float]] | None) -> dict[str, float]:
    """The graph retriever's answer, or none when it failed: a warning, never a failed search."""
    if future is None:
        return {}
    try:
        return dict(future.result())
    except Exception as exc:
        logger.warning("graph: the graph retriever failed, ranked without it: %s", exc)
        return {}


def graph_relations(future: Future[list[Any]] | None) -> list[Any]:
    """The graph's answer, or none when it failed: the memories are returned regardless."""
    if future is None:
        return []
    try:
        return list(future.result())
    except Exception:
        logger.exception("graph: search failed; returning memories without relations")
        return []


def store_error(exc: Exception, filters: Mapping[str, Any] | None) -> Exception:
    """The error a caller should see for a failed read."""
    if isinstance(exc, InvalidInputError | EmbedderMismatchError | StoreError):
        return exc
    text = str(exc)
    if filters and ("InvalidCast" in text or "Failed to convert" in text or "coerce" in text):
        return InvalidInputError(
            "filters",
            "a metadata key compared with a number or boolean holds values of another type in "
            "this scope; compare with a string instead, or filter on a key of one type",
        )
    return StoreError(f"search failed: {text}")
