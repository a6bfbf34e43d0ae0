"""Graph memory: entities and their relations, derived from the memories the engine stores.

The LanceDB rows and the SQLite history are the source of truth; the graph is derived from them
and can be rebuilt (``rebuild_graph``). So a graph failure never fails or loses a memory write:
it is logged and reported as a warning on the add result.

An add runs in two halves. ``begin`` starts, in a worker thread and concurrently with the
engine's vector work, everything that does not need the new memory ids: the extraction call,
embedding the entity names, resolving them against the stored entities and the contradiction
call. ``finish`` then writes the graph in one short burst (one open of the database), with the
memory ids as the relations' sources.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape as xml_escape

import numpy as np

from mem0_mcp.errors import InvalidInputError, StoreError
from mem0_mcp.graph.extraction import (
    Extraction,
    GraphExtractor,
    Triple,
    clean_name,
    load_graph_prompts,
    normalize_name,
    normalize_relation,
)
from mem0_mcp.graph.kuzu_store import GraphEntity, GraphRelation, GraphStore, KuzuGraphStore
from mem0_mcp.models import AddResult, Message, Scope, Usage
from mem0_mcp.stores.filters import iso_utc

if TYPE_CHECKING:
    from mem0_mcp.config import Settings
    from mem0_mcp.engine.memory import Memory

logger = logging.getLogger(__name__)

EXPLICIT_SOURCE = "explicit"  # relations written through add_relation, not derived from a memory
MERGE_THRESHOLD = 0.9  # cosine of entity-name embeddings above which two mentions are one entity
SEED_THRESHOLD = 0.35  # cosine above which an entity is taken to match a search query
SEED_ENTITIES = 5
FIRST_PERSON = frozenset({"i", "me", "my", "mine", "myself"})
SELF_SEED = 0.5  # how strongly a first-person query matches the scope's own entity
MAX_HOPS = 6
_WORD = re.compile(r"\w+", re.UNICODE)
_QUERY_LIMIT = 500

Embed = Callable[[Sequence[str]], np.ndarray]


def now_iso() -> str:
    return iso_utc(datetime.now(UTC))


def transcript(msgs: Sequence[Message]) -> str:
    lines = []
    for m in msgs:
        if m.role == "system":
            continue
        if isinstance(m.content, str):
            text = m.content
        else:
            text = " ".join(str(b.get("text", "")) for b in m.content if isinstance(b, dict))
        text = " ".join(text.split())
        if text:
            lines.append(f"{m.name} ({m.role}): {text}" if m.name else f"{m.role}: {text}")
    return "\n".join(lines)


def self_name(scope: Scope) -> str:
    return scope.user_id or scope.agent_id or scope.run_id or "user"


def _relation_dict(rel: GraphRelation, event: str | None = None) -> dict[str, Any]:
    out = rel.model_dump(exclude_none=True)
    if event is not None:
        out["event"] = event
    return out


@dataclass
class _Resolved:
    """A mention resolved to a stored entity, or to be created."""

    name: str
    norm: str
    type: str
    vector: np.ndarray
    entity: GraphEntity | None = None
    merged_by: str | None = None  # "name" or "embedding" when merged into a stored entity


@dataclass
class GraphJob:
    """The prepared half of a graph add; ``finish`` writes it."""

    graph: GraphMemory
    scope: Scope
    future: Future[_Prepared] | None = None
    run: Callable[[], _Prepared] | None = None

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
            result.relations = self.graph.apply(prepared, self.scope, ids)
        except Exception as exc:
            logger.exception("graph: update failed; the memory was stored")
            result.warnings.append(
                f"graph: the entity graph was not updated ({type(exc).__name__}: {exc}); the memory "
                "itself was stored. `mem0-mcp graph rebuild` re-derives the graph from the memories."
            )
        return result


@dataclass
class _Prepared:
    extraction: Extraction
    resolved: dict[str, _Resolved]
    existing: list[GraphRelation]
    invalidate: dict[str, str]  # relation id -> reason
    usage: Usage = field(default_factory=Usage)


class GraphMemory:
    def __init__(
        self,
        settings: Settings,
        store: GraphStore,
        *,
        embed: Embed,
        llm: Callable[[], Any | None],
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
    def for_engine(cls, memory: Memory) -> GraphMemory:
        settings = memory.settings
        store = KuzuGraphStore(settings.graph_dir, lock_path=settings.data_dir / "graph.lock")
        return cls(settings, store, embed=memory._embed, llm=lambda: memory.llm)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def reset(self) -> None:
        self.store.reset()

    def extractor(self) -> GraphExtractor | None:
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
    def begin(self, msgs: Sequence[Message], scope: Scope) -> GraphJob | None:
        """Start preparing the graph half of an add; None when there is no LLM to extract with."""
        extractor = self.extractor()
        if extractor is None:
            return None
        text = transcript(msgs)
        if not text:
            return None

        def run() -> _Prepared:
            return self.prepare(extractor, text, scope)

        # MCP sampling must be called from the request's own worker thread: prepare there, later.
        if getattr(extractor.llm, "name", "") == "sampling":
            return GraphJob(self, scope, run=run)
        return GraphJob(self, scope, future=self._pool.submit(run))

    def prepare(self, extractor: GraphExtractor, text: str, scope: Scope) -> _Prepared:
        extraction = extractor.extract(text, self_name(scope))
        usage = Usage(**extraction.usage.model_dump())
        if not extraction.relations:
            return _Prepared(extraction, {}, [], {}, usage)
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
        return _Prepared(extraction, resolved, existing, invalidate, usage)

    @staticmethod
    def _key(t: Triple, resolved: dict[str, _Resolved]) -> tuple[str | None, str, str | None]:
        s, d = resolved.get(t.source), resolved.get(t.destination)
        return (
            s.entity.id if s and s.entity else None,
            t.relation,
            d.entity.id if d and d.entity else None,
        )

    def _resolve(self, entities: dict[str, str], scope: Scope) -> dict[str, _Resolved]:
        """Each mention -> a stored entity of exactly this scope (same normalized name or alias,
        else an entity whose name embeds above the merge threshold), or a new one."""
        names = list(entities)
        vectors = np.asarray(self._embed(names), dtype=np.float32)
        out = {n: _Resolved(n, normalize_name(n), entities[n], vectors[i]) for i, n in enumerate(names)}
        by_name = self.store.entities_by_name(scope, [r.norm for r in out.values()])
        for r in out.values():
            if r.norm in by_name:
                r.entity, r.merged_by = by_name[r.norm], "name"
                continue
            near = self.store.similar_entities(scope, r.vector, 1, exact=True)
            if near and (near[0].score or 0.0) >= self.merge_threshold:
                r.entity, r.merged_by = near[0], "embedding"
        return out

    def apply(self, prepared: _Prepared, scope: Scope, memory_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Write a prepared extraction in one burst; returns the relations touched, with events."""
        out: list[dict[str, Any]] = []
        if not prepared.extraction.relations and not prepared.invalidate:
            return out
        now = now_iso()
        with self.store.burst(write=True):
            ids = self._materialize(prepared.resolved, scope, now)
            for t in prepared.extraction.relations:
                rel, event = self._upsert(
                    scope, ids[t.source], t.relation, ids[t.destination], memory_ids, now
                )
                out.append(_relation_dict(rel, event))
            by_id = {r.id: r for r in prepared.existing}
            for rel_id, reason in prepared.invalidate.items():
                self.store.invalidate(rel_id, now, reason)
                old = by_id[rel_id].model_copy(update={"invalidated_at": now, "invalidated_reason": reason})
                out.append(_relation_dict(old, "INVALIDATE"))
        return out

    def _materialize(self, resolved: dict[str, _Resolved], scope: Scope, now: str) -> dict[str, str]:
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
        self, scope: Scope, src: str, relation: str, dst: str, sources: Sequence[str], now: str
    ) -> tuple[GraphRelation, str]:
        found = self.store.find_relation(src, relation, dst)
        if found is not None:
            self.store.add_sources(found.id, sources)
            merged = list(dict.fromkeys([*found.sources, *sources]))
            return found.model_copy(update={"sources": merged}), "NONE"
        return self.store.create_relation(scope, src, relation, dst, sources, now), "ADD"

    # ------------------------------------------------------------------ explicit writes (no LLM)
    def add_relation(
        self,
        source: str,
        relation: str,
        destination: str,
        scope: Scope,
        *,
        source_type: str | None = None,
        destination_type: str | None = None,
    ) -> dict[str, Any]:
        src, dst = _check_name("source", source), _check_name("destination", destination)
        rel = normalize_relation(_check_str("relation", relation))
        if not rel:
            raise InvalidInputError("relation", "needs at least one letter or digit, e.g. works_at")
        if normalize_name(src) == normalize_name(dst):
            raise InvalidInputError("destination", "must differ from source")
        entities = {src: _type(source_type), dst: _type(destination_type)}
        now = now_iso()
        with self.store.burst(write=True):
            resolved = self._resolve(entities, scope)
            ids = self._materialize(resolved, scope, now)
            found, event = self._upsert(scope, ids[src], rel, ids[dst], [EXPLICIT_SOURCE], now)
        return _relation_dict(found, event)

    def delete_relation(self, source: str, relation: str, destination: str, scope: Scope) -> int:
        """Delete the valid relation(s) source -relation-> destination of the scope; the count."""
        src, dst = _check_name("source", source), _check_name("destination", destination)
        rel = normalize_relation(_check_str("relation", relation))
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
        try:
            n = self.store.forget_source(memory_id)
            if n:
                logger.info("graph: %d relation(s) sourced only from memory %s removed", n, memory_id)
        except Exception:
            logger.exception("graph: removing the relations of memory %s failed", memory_id)

    def delete_scope(self, scope: Scope) -> None:
        try:
            self.store.delete_scope(scope)
        except Exception:
            logger.exception("graph: clearing scope %s failed", scope.as_dict())

    # ------------------------------------------------------------------ reads
    def search(
        self, query: str, vector: np.ndarray, scope: Scope, limit: int, *, depth: int | None = None
    ) -> list[dict[str, Any]]:
        """Valid relations around the entities the query names, ranked against the query."""
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
            rels = self.store.relations(scope, list(seeds), depth=hops, limit=50 * limit)
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
        return [_relation_dict(r.model_copy(update={"score": round(s, 6)})) for s, r in ranked[:limit]]

    def submit_search(
        self, query: str, vector: np.ndarray, scope: Scope, limit: int
    ) -> Future[list[dict[str, Any]]]:
        """``search`` in the graph's worker thread, to overlap the engine's vector search."""
        return self._pool.submit(self.search, query, vector, scope, limit)

    def search_relations(self, query: str, scope: Scope, limit: int) -> list[dict[str, Any]]:
        _check_str("query", query)
        return self.search(query, np.asarray(self._embed([query]), dtype=np.float32)[0], scope, limit)

    def get_entity(self, name: str, scope: Scope, depth: int = 1) -> dict[str, Any]:
        """Every entity of the scope with this name (one per exact scope), its relations within
        ``depth`` hops including invalidated ones (the relation history), newest first."""
        norm = normalize_name(_check_name("name", name))
        hops = max(1, min(int(depth), 3))
        with self.store.burst():
            found = self.store.named(scope, norm)
            rels = self.store.relations(scope, [e.id for e in found], depth=hops, include_invalid=True)
        entities = found
        rels.sort(key=lambda r: (r.invalidated_at is None, r.created_at), reverse=True)
        ids = {e.id for e in entities}
        neighbours: dict[str, str] = {}
        for r in rels:
            for nid, nname in ((r.source_id, r.source), (r.destination_id, r.destination)):
                if nid not in ids:
                    neighbours[nid] = nname
        return {
            "entities": [e.model_dump(exclude_none=True) for e in entities],
            "neighbours": sorted(set(neighbours.values())),
            "relations": [_relation_dict(r) for r in rels],
        }

    def find_path(self, source: str, target: str, scope: Scope, max_hops: int = 3) -> dict[str, Any]:
        s_norm = normalize_name(_check_name("source", source))
        t_norm = normalize_name(_check_name("target", target))
        if isinstance(max_hops, bool) or not isinstance(max_hops, int) or not 1 <= max_hops <= MAX_HOPS:
            raise InvalidInputError("max_hops", f"must be an integer from 1 to {MAX_HOPS}")
        with self.store.burst():
            starts = self.store.named(scope, s_norm)
            ends = self.store.named(scope, t_norm)
            for a in starts:
                for b in ends:
                    if a.id == b.id:
                        continue
                    path = self.store.find_path(scope, a.id, b.id, max_hops)
                    if path:
                        return {
                            "found": True,
                            "hops": len(path),
                            "relations": [_relation_dict(r) for r in path],
                        }
        missing = [n for n, hits in ((source, starts), (target, ends)) if not hits]
        why = (
            f"no entity named {', '.join(map(repr, missing))} in this scope"
            if missing
            else (f"no chain of valid relations within {max_hops} hops")
        )
        return {"found": False, "hops": 0, "relations": [], "reason": why}

    def export(self, scope: Scope) -> dict[str, Any]:
        entities, relations = self.store.all_of(scope)
        return {
            "scope": scope.as_dict(),
            "nodes": [e.model_dump(exclude_none=True) for e in entities],
            "edges": [_relation_dict(r) for r in relations],
        }

    def query(
        self, cypher: str, params: dict[str, Any] | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Read-only Cypher (every scope is visible: single-user local setups only)."""
        check_read_only(cypher)
        if params is not None and not isinstance(params, dict):
            raise InvalidInputError("params", "must be an object of query parameters")
        rows = self.store.read_query(cypher, params, max(1, min(limit, _QUERY_LIMIT)))
        return json.loads(json.dumps(rows, default=str))


def _same_scope(r: GraphRelation, scope: Scope) -> bool:
    return (r.user_id, r.agent_id, r.run_id) == (scope.user_id, scope.agent_id, scope.run_id)


def _check_str(field_name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(field_name, "must be a non-empty string")
    return value


def _check_name(field_name: str, value: Any) -> str:
    name = clean_name(_check_str(field_name, value))
    if not name:
        raise InvalidInputError(field_name, "needs a name with letters or digits")
    return name


def _type(value: str | None) -> str:
    if value is None or not str(value).strip():
        return "entity"
    return " ".join(str(value).casefold().split())[:40]


# ---------------------------------------------------------------------- read-only Cypher

_WRITE_WORDS = frozenset(
    {
        "CREATE", "MERGE", "SET", "DELETE", "DETACH", "REMOVE", "DROP", "ALTER", "COPY", "LOAD",
        "INSTALL", "UNINSTALL", "ATTACH", "USE", "EXPORT", "IMPORT", "BEGIN", "COMMIT",
        "ROLLBACK", "CHECKPOINT", "TRANSACTION", "FOREACH",
    }
)  # fmt: skip
_READ_PROCEDURES = frozenset(
    {"SHOW_TABLES", "TABLE_INFO", "SHOW_CONNECTION", "SHOW_INDEXES", "QUERY_FTS_INDEX", "CURRENT_SETTING"}
)
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`", re.DOTALL)
_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)


def check_read_only(cypher: Any) -> str:
    """Refuse anything but a single read query. Keywords are looked for outside string literals and
    comments; the query then runs on a read-only open of the database as a second wall."""
    if not isinstance(cypher, str) or not cypher.strip():
        raise InvalidInputError("cypher", "must be a non-empty Cypher query")
    if len(cypher) > 10_000:
        raise InvalidInputError("cypher", "is over 10000 characters")
    bare = _STRINGS.sub("''", _COMMENTS.sub(" ", cypher))
    if ";" in bare.strip().rstrip(";"):
        raise InvalidInputError("cypher", "one statement only")
    words = [w.upper() for w in _WORD.findall(bare)]
    bad = sorted({w for w in words if w in _WRITE_WORDS})
    if bad:
        raise InvalidInputError("cypher", f"read-only queries only; {', '.join(bad)} is not allowed")
    for i, w in enumerate(words):
        if w == "CALL":
            proc = words[i + 1] if i + 1 < len(words) else ""
            if proc not in _READ_PROCEDURES:
                raise InvalidInputError(
                    "cypher",
                    f"CALL {proc or '?'} is not allowed; allowed: {', '.join(sorted(_READ_PROCEDURES))}",
                )
    if not any(w in ("MATCH", "RETURN", "UNWIND", "WITH", "CALL") for w in words):
        raise InvalidInputError("cypher", "expected a MATCH ... RETURN query")
    return cypher


# ---------------------------------------------------------------------- export formats


def to_graphml(graph: dict[str, Any]) -> str:
    keys = [("name", "node"), ("type", "node"), ("relation", "edge"), ("valid_from", "edge"),
            ("invalidated_at", "edge"), ("sources", "edge")]  # fmt: skip
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">',
        *(f'  <key id="{k}" for="{kind}" attr.name="{k}" attr.type="string"/>' for k, kind in keys),
        '  <graph id="G" edgedefault="directed">',
    ]
    for n in graph["nodes"]:
        lines.append(f'    <node id="{xml_escape(n["id"], {chr(34): "&quot;"})}">')
        lines.append(f'      <data key="name">{xml_escape(n["name"])}</data>')
        lines.append(f'      <data key="type">{xml_escape(n.get("type", ""))}</data>')
        lines.append("    </node>")
    for e in graph["edges"]:
        q = {chr(34): "&quot;"}
        lines.append(
            f'    <edge id="{xml_escape(e["id"], q)}" source="{xml_escape(e["source_id"], q)}" '
            f'target="{xml_escape(e["destination_id"], q)}">'
        )
        for k in ("relation", "valid_from", "invalidated_at"):
            if e.get(k):
                lines.append(f'      <data key="{k}">{xml_escape(str(e[k]))}</data>')
        lines.append(f'      <data key="sources">{xml_escape(",".join(e.get("sources", [])))}</data>')
        lines.append("    </edge>")
    lines += ["  </graph>", "</graphml>", ""]
    return "\n".join(lines)


def to_dot(graph: dict[str, Any]) -> str:
    def q(text: str) -> str:
        return json.dumps(str(text), ensure_ascii=False)  # a JSON string is a valid DOT ID

    lines = ["digraph memory {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    for n in graph["nodes"]:
        lines.append(f"  {q(n['id'])} [label={q(n['name'] + ' (' + n.get('type', '') + ')')}];")
    for e in graph["edges"]:
        style = ", style=dashed, color=gray" if e.get("invalidated_at") else ""
        lines.append(f"  {q(e['source_id'])} -> {q(e['destination_id'])} [label={q(e['relation'])}{style}];")
    lines += ["}", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------- rebuild


def rebuild_graph(
    memory: Memory, scope: Scope, *, progress: Callable[[int, int], None] | None = None
) -> dict[str, int]:
    """Clear the scope's graph and derive it again from every stored memory of the scope."""
    graph: GraphMemory | None = memory.graph
    if graph is None:
        raise InvalidInputError("graph_enabled", "graph memory is off; set MEM0_MCP_GRAPH_ENABLED=true")
    extractor = graph.extractor()
    if extractor is None:
        raise InvalidInputError(
            "llm_provider", "rebuilding the graph needs an LLM backend to extract relations"
        )
    # Relations derived from memories go; those an agent wrote itself (add_relation) stay.
    _, old = graph.store.all_of(scope)
    with graph.store.burst(write=True):
        for source in sorted({s for r in old for s in r.sources} - {EXPLICIT_SOURCE}):
            graph.store.forget_source(source)
    done = relations = failed = 0
    offset: int | None = 0
    total = 0
    while offset is not None:
        page = memory.get_all(
            user_id=scope.user_id,
            agent_id=scope.agent_id,
            run_id=scope.run_id,
            limit=memory.settings.max_limit,
            offset=offset,
        )
        total = page.total
        for item in page.results:
            item_scope = Scope(user_id=item.user_id, agent_id=item.agent_id, run_id=item.run_id)
            try:
                prepared = graph.prepare(extractor, item.memory, item_scope)
                relations += len(graph.apply(prepared, item_scope, [item.id]))
            except Exception as exc:
                failed += 1
                logger.warning("graph rebuild: memory %s skipped: %s", item.id, exc)
            done += 1
            if progress:
                progress(done, total)
        offset = page.next_offset
    return {"memories": done, "relations": relations, "failed": failed}


__all__ = [
    "GraphJob",
    "GraphMemory",
    "StoreError",
    "check_read_only",
    "rebuild_graph",
    "to_dot",
    "to_graphml",
]
