"""The memory engine: Mem0's ``Memory`` API over LanceDB (rows, vectors, full text) and SQLite (history).

Knows nothing of MCP. Every method is synchronous and thread-safe; writes are serialized within
the process and across processes that share the data dir. ``AsyncMemory`` runs each call in a
worker thread so an event loop never blocks on a store.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import numpy as np
import pyarrow.compute as pc

from mem0_mcp import __version__
from mem0_mcp.config import Settings
from mem0_mcp.embedding import BackgroundEmbedder, Embedder
from mem0_mcp.engine.ranking import dense_query, fuse, words
from mem0_mcp.engine.write_behind import JournalMover, move_journal
from mem0_mcp.errors import (
    EmbedderMismatchError,
    InvalidInputError,
    NotFoundError,
    ScopeRequiredError,
    StoreError,
)
from mem0_mcp.models import (
    AddEvent,
    AddResult,
    DeleteResult,
    HistoryEntry,
    MemoryItem,
    MemoryPage,
    Message,
    Scope,
    SearchResult,
    Stats,
)
from mem0_mcp.stores.filters import compile_filters, iso_utc, parse_time, scope_clause, sql_str
from mem0_mcp.stores.history import HistoryStore
from mem0_mcp.stores.locks import WriteLock
from mem0_mcp.stores.vectors import VectorStore

logger = logging.getLogger(__name__)

ProgressFn = Callable[[float, float | None, str | None], None]
MAX_ID_LENGTH = 256
MAX_NAME_LENGTH = 200
STORE_META = "store.json"
NAMES_REFRESH_SECONDS = 30.0
# In "mixed" context vectors, a message counts three times as much as each neighbour.
OWN_WEIGHT = 3.0


def now_iso() -> str:
    return iso_utc(datetime.now(UTC))


def text_hash(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def _check_id(field: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(field, f"must be a string, got {type(value).__name__}")
    value = value.strip()
    if not value:
        return None
    if len(value) > MAX_ID_LENGTH or "\x00" in value:
        raise InvalidInputError(field, f"must be at most {MAX_ID_LENGTH} characters without NUL")
    return value


def _text_of(content: str | list[dict[str, Any]], field: str, warnings: list[str]) -> str:
    """The text of a message; image blocks are noted (verbatim mode cannot describe them)."""
    if isinstance(content, str):
        return content
    parts = []
    for i, block in enumerate(content):
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif kind in ("image", "image_url"):
            warnings.append(f"{field}[{i}]: image skipped (describing images needs an LLM with vision)")
        else:
            raise InvalidInputError(
                f"{field}[{i}]",
                "content blocks must be {'type': 'text', 'text': ...} or an image block "
                "({'type': 'image_url', 'image_url': {'url': ...}})",
            )
    return "\n".join(parts)


class Memory:
    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        llm: Any | None = None,
    ) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self._embedder: Embedder = embedder or BackgroundEmbedder.from_settings(settings)
        self._meta_path = settings.data_dir / STORE_META
        self._check_embedder_name()
        self._vectors = VectorStore(
            settings.lance_dir,
            read_consistency_seconds=settings.read_consistency_seconds,
            dense_cache_rows=settings.dense_cache_rows,
            ann_threshold=settings.ann_index_threshold,
            ann_nprobe=settings.ann_nprobe,
        )
        self._history = HistoryStore(settings.history_path)
        # Lock order: write lock, then journal lock. Every write takes both, except a journaled
        # add (the journal lock only: it touches SQLite, not the table) and compaction (the
        # write lock only), so adds go on while a large table is compacted.
        self._lock = WriteLock(settings.data_dir / "write.lock")
        self._journal_lock = WriteLock(settings.data_dir / "journal.lock")
        self._llm = llm if llm is not None else self._default_llm()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mem0-search")
        self._writes_since_optimize = 0
        self._optimizing = threading.Lock()
        self._dimension_checked = False
        # Lowercase words of the speakers' names in the store, and when they were read (see
        # _speaker_names); other processes' adds show up within NAMES_REFRESH_SECONDS.
        self._names: tuple[float, frozenset[str]] | None = None
        self._names_refreshing = threading.Lock()
        self._graph: Any | None = None  # mem0_mcp.graph.memory.GraphMemory, built on first use
        self._graph_init = threading.Lock()
        self._mover = JournalMover(self._move_journal)
        if self._history.has_pending():
            # A process that stopped before moving its journaled adds into the table.
            self._mover.wake()

    def _default_llm(self) -> Any | None:
        try:
            from mem0_mcp.llm import build_llm  # type: ignore[attr-defined]
        except ImportError:
            return None
        return build_llm(self.settings)

    # ------------------------------------------------------------------ identity of the embedder
    def _read_meta(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self._meta_path.read_text()))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise StoreError(f"{self._meta_path} is corrupt: {exc}") from exc

    def _mismatch(self, what: str, stored: Any, configured: Any) -> EmbedderMismatchError:
        return EmbedderMismatchError(
            f"embedder_model: this data dir ({self.settings.data_dir}) was built with {what} {stored!r}, "
            f"but the configured embedder has {configured!r}. Vectors of different models cannot be "
            "mixed: set MEM0_MCP_EMBEDDER_MODEL back, point MEM0_MCP_DATA_DIR elsewhere, or keep the "
            "new model and re-embed every memory with it: run `mem0-mcp reindex` with the same "
            "settings, then restart."
        )

    def _check_embedder_name(self) -> None:
        stored = self._read_meta().get("embedder_model")
        if stored is not None and stored != self._embedder.name:
            raise self._mismatch("embedder_model", stored, self._embedder.name)

    def _check_dimension(self, dimension: int) -> None:
        if self._dimension_checked:
            return
        meta = self._read_meta()
        stored = meta.get("dimension") or self._vectors.dimension
        if stored is not None and int(stored) != dimension:
            raise self._mismatch("vector dimension", int(stored), dimension)
        if not meta:
            # A name of its own per writer: threads and processes may get here at once.
            tmp = self._meta_path.with_suffix(f".{uuid.uuid4().hex}.tmp")
            tmp.write_text(json.dumps({"embedder_model": self._embedder.name, "dimension": dimension}))
            tmp.replace(self._meta_path)
        self._dimension_checked = True

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._embedder.embed(list(texts))
        self._check_dimension(int(vectors.shape[1]))
        return vectors

    # ------------------------------------------------------------------ validation helpers
    def _scope(self, operation: str, user_id: Any, agent_id: Any, run_id: Any) -> Scope:
        scope = Scope(
            user_id=_check_id("user_id", user_id),
            agent_id=_check_id("agent_id", agent_id),
            run_id=_check_id("run_id", run_id),
        )
        if scope.is_empty():
            raise ScopeRequiredError(operation)
        return scope

    def _limit(self, limit: Any, field: str = "limit") -> int:
        if limit is None:
            return self.settings.default_limit
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise InvalidInputError(field, f"must be an integer, got {type(limit).__name__}")
        if not 1 <= limit <= self.settings.max_limit:
            raise InvalidInputError(field, f"must be between 1 and {self.settings.max_limit}, got {limit}")
        return limit

    def _check_text(self, text: Any, field: str) -> str:
        if not isinstance(text, str):
            raise InvalidInputError(field, f"must be a string, got {type(text).__name__}")
        if not text.strip():
            raise InvalidInputError(field, "is empty; give the text to remember")
        size = len(text.encode("utf-8"))
        if size > self.settings.max_text_bytes:
            raise InvalidInputError(
                field,
                f"is {size} bytes, over the limit of {self.settings.max_text_bytes} "
                "(MEM0_MCP_MAX_TEXT_BYTES); split it into smaller memories",
            )
        return text.strip()

    def _check_metadata(self, metadata: Any, field: str = "metadata") -> dict[str, Any]:
        if metadata is None:
            return {}
        if not isinstance(metadata, Mapping):
            raise InvalidInputError(field, f"must be an object, got {type(metadata).__name__}")
        if not all(isinstance(k, str) for k in metadata):
            raise InvalidInputError(field, "keys must be strings")
        try:
            encoded = json.dumps(metadata, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(field, f"must be JSON-serializable: {exc}") from exc
        if len(encoded.encode("utf-8")) > self.settings.max_text_bytes:
            raise InvalidInputError(field, f"is over {self.settings.max_text_bytes} bytes as JSON")
        return dict(json.loads(encoded))

    def _messages(self, messages: Any) -> tuple[list[Message], list[str]]:
        warnings: list[str] = []
        if isinstance(messages, str):
            self._check_text(messages, "messages")
            return [Message(role="user", content=messages)], warnings
        if isinstance(messages, Mapping):
            messages = [messages]
        if not isinstance(messages, Sequence) or not messages:
            raise InvalidInputError(
                "messages", "must be a non-empty string or a list of {'role', 'content'} messages"
            )
        if len(messages) > self.settings.max_messages:
            raise InvalidInputError(
                "messages", f"has {len(messages)} messages; at most {self.settings.max_messages} per add"
            )
        out = []
        for i, raw in enumerate(messages):
            field = f"messages[{i}]"
            if isinstance(raw, Message):
                msg = raw
            elif isinstance(raw, Mapping):
                try:
                    msg = Message.model_validate(raw)
                except Exception as exc:
                    raise InvalidInputError(
                        field,
                        "must be {'role': 'user'|'assistant'|'system'|'tool', 'content': str, "
                        f"'name'?: str, 'metadata'?: object}}: {_first_error(exc)}",
                    ) from exc
            else:
                raise InvalidInputError(field, f"must be an object, got {type(raw).__name__}")
            if msg.name is not None and (not msg.name.strip() or len(msg.name) > MAX_NAME_LENGTH):
                raise InvalidInputError(f"{field}.name", f"must be 1 to {MAX_NAME_LENGTH} characters")
            if msg.metadata is not None:
                self._check_metadata(msg.metadata, f"{field}.metadata")
            text = _text_of(msg.content, f"{field}.content", warnings)
            if isinstance(msg.content, str) or text:
                self._check_text(text, f"{field}.content")
            out.append(msg)
        return out, warnings

    # ------------------------------------------------------------------ rows
    @staticmethod
    def _item(row: Mapping[str, Any], score: float | None = None) -> MemoryItem:
        meta = row.get("metadata")
        if isinstance(meta, str):
            meta = json.loads(meta) if meta else {}
        return MemoryItem(
            id=row["id"],
            memory=row["memory"],
            hash=row["hash"],
            user_id=row.get("user_id"),
            agent_id=row.get("agent_id"),
            run_id=row.get("run_id"),
            actor_id=row.get("actor_id"),
            role=row.get("role"),
            name=row.get("name"),
            memory_type=row.get("memory_type"),
            metadata=meta or {},
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            event_at=row.get("event_at"),
            superseded_at=row.get("superseded_at"),
            superseded_by=row.get("superseded_by"),
            score=None if score is None else round(float(score), 6),
        )

    @staticmethod
    def _in_scope(row: Mapping[str, Any], scope: Scope | None) -> bool:
        if scope is None:
            return True
        return all(row.get(k) == v for k, v in scope.as_dict().items())

    def _row(self, memory_id: Any, scope: Scope | None) -> dict[str, Any]:
        if not isinstance(memory_id, str) or not memory_id.strip():
            raise InvalidInputError("memory_id", "must be a non-empty string (the id returned by add/search)")
        self._move_journal()
        row = self._vectors.get(memory_id.strip())
        if row is None or not self._in_scope(row, scope):
            raise NotFoundError(memory_id)
        return row

    @staticmethod
    def _index_text(text: str, name: str | None) -> str:
        return f"{name}: {text}" if name else text

    @staticmethod
    def _search_text(index_text: str, context: str | None, outer: str | None = None) -> str:
        """Full-text input: the message, its neighbours (``context``), then the next ones out.

        With neighbours, the message's own words are written twice, the usual field boost by
        repetition: BM25 then ranks a message by its own words first, and by its neighbours'
        words after. The wider window (two messages each side) plus the boost took LoCoMo
        frac@10 from 72.9 to 76.0 over one neighbour each side.
        """
        if not context:
            return index_text
        return "\n".join(p for p in (index_text, index_text, context, outer) if p)

    @staticmethod
    def _embed_text(index_text: str, context: str | None) -> str:
        # Only the nearest neighbours: a wider window dilutes a small model's vector (78.5 vs 79.3).
        return f"{index_text}\n{context}" if context else index_text

    @classmethod
    def _outer_context(cls, row: Mapping[str, Any]) -> str | None:
        """The part of a row's full-text input beyond its message and nearest neighbours."""
        head = cls._search_text(cls._index_text(row["memory"], row.get("name")), row.get("context"))
        text = row.get("search_text") or ""
        return (text[len(head) + 1 :] or None) if text.startswith(head + "\n") else None

    @staticmethod
    def _where(
        scope: Scope | None,
        *,
        actor_id: str | None = None,
        filters: Mapping[str, Any] | None = None,
        include_superseded: bool = False,
    ) -> str:
        parts = []
        if scope is not None:
            parts.append(scope_clause(**scope.model_dump()))
        if actor_id:
            parts.append(f"actor_id = {sql_str(actor_id)}")
        if filters:
            parts.append(compile_filters(filters))
        if not include_superseded:
            parts.append("superseded_at IS NULL")
        return " AND ".join(p for p in parts if p)

    def _history_entry(self, row: Mapping[str, Any], event: str, old: str | None, new: str | None) -> dict:
        return {
            "memory_id": row["id"],
            "old_memory": old,
            "new_memory": new,
            "event": event,
            "created_at": now_iso(),
            "actor_id": row.get("actor_id"),
            "role": row.get("role"),
            "user_id": row.get("user_id"),
            "agent_id": row.get("agent_id"),
            "run_id": row.get("run_id"),
            "is_deleted": event == "DELETE",
        }

    def _after_write(self, count: int) -> None:
        self._writes_since_optimize += count
        # Compaction and index merges cost CPU that ingest needs (a fifth of a 10k batched
        # ingest at every 500 writes): a large table is compacted once per tenth it grows.
        every = max(self.settings.optimize_every, self._vectors.rows_at_optimize // 10)
        if self._writes_since_optimize < every:
            return
        if not self._optimizing.acquire(blocking=False):
            return
        self._writes_since_optimize = 0

        def run() -> None:
            try:
                with self._lock.hold():
                    self._vectors.optimize(ann_threshold=self.settings.ann_index_threshold)
            finally:
                self._optimizing.release()

        threading.Thread(target=run, name="mem0-optimize", daemon=True).start()

    def flush(self) -> None:
        """Append journaled adds to the memory table now (for code that reads the table itself)."""
        self._move_journal()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Both locks, for writes that touch the table (in the order every holder takes them)."""
        with self._lock.hold(), self._journal_lock.hold():
            yield

    def _move_journal(self) -> None:
        """Move journaled adds (write-behind, any process's) into the table before it is read."""
        if not self._history.has_pending():
            return
        with self._writing():
            self._move_journal_locked()

    def _move_journal_locked(self) -> None:
        if not self._history.has_pending():
            return
        try:
            move_journal(self._history, self._vectors, on_moved=self._after_write)
        except Exception as exc:
            raise StoreError(
                f"memories saved in the journal of {self.settings.history_path} could not be "
                f"written to the memory table: {exc}. They stay in the journal and are retried "
                "on every call; check the disk space and permissions of the data dir"
            ) from exc

    def optimize(self) -> None:
        """Merge pending rows into the indexes now (the engine also does this every few hundred writes)."""
        with self._lock.hold():
            with self._journal_lock.hold():
                self._move_journal_locked()
            self._vectors.optimize(ann_threshold=self.settings.ann_index_threshold)

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
        infer: bool = False,
        memory_type: str | None = None,
        timestamp: str | int | float | None = None,
        progress: ProgressFn | None = None,
    ) -> AddResult:
        scope = self._scope("add", user_id, agent_id, run_id)
        actor = _check_id("actor_id", actor_id)
        base_meta = self._check_metadata(metadata)
        msgs, warnings = self._messages(messages)
        event_at = parse_time(timestamp, "timestamp") if timestamp is not None else None
        if memory_type is not None and memory_type not in ("semantic", "episodic", "procedural"):
            raise InvalidInputError(
                "memory_type", "must be 'semantic', 'episodic' or 'procedural' (or omitted)"
            )
        if memory_type == "procedural" and not scope.agent_id:
            raise InvalidInputError("agent_id", "procedural memory summarizes an agent's run: give agent_id")
        reason = None
        result: AddResult | None = None
        graph_job = self._graph_begin(msgs, scope)
        if infer:
            result = self._add_inferred(
                msgs,
                scope,
                actor_id=actor,
                metadata=base_meta,
                memory_type=memory_type,
                event_at=event_at,
                warnings=warnings,
                progress=progress,
            )
            if result is not None and result.inferred:
                return self._graph_finish(graph_job, result)
            reason = (
                result.reason
                if result is not None and result.reason
                else "no LLM backend is configured (llm_provider=none): stored verbatim; set "
                "ANTHROPIC_API_KEY or MEM0_MCP_LLM_PROVIDER to extract facts"
            )
            if result is not None:
                warnings = result.warnings
        out = self._add_verbatim(
            msgs,
            scope,
            actor_id=actor,
            metadata=base_meta,
            memory_type=memory_type,
            event_at=event_at,
            near_duplicates=infer,
            progress=progress,
        )
        out.reason = reason
        out.warnings = warnings
        if infer and result is not None:
            out.usage = result.usage  # calls spent before falling back still cost tokens
        return self._graph_finish(graph_job, out)

    def _add_inferred(
        self,
        msgs: list[Message],
        scope: Scope,
        *,
        actor_id: str | None,
        metadata: dict[str, Any],
        memory_type: str | None,
        event_at: str | None,
        warnings: list[str],
        progress: ProgressFn | None,
    ) -> AddResult | None:
        """The LLM pipeline (extract facts, decide ADD/UPDATE/DELETE/NONE). None: store verbatim.

        Planning (LLM calls, embedding, neighbour lookups) runs outside the write lock: it takes
        seconds and must not block other writers. Applying re-reads every targeted row under the
        lock, so a memory changed meanwhile by someone else is not clobbered.
        """
        if self._llm is None:
            return None
        from mem0_mcp.llm.pipeline import MemoryPipeline, Neighbour
        from mem0_mcp.llm.prompts import PromptSet

        pipeline = getattr(self, "_llm_pipeline", None)
        if pipeline is None or pipeline.llm is not self._llm:
            pipeline = MemoryPipeline(
                self._llm,
                PromptSet.load(self.settings.prompts_dir),
                dedup_threshold=self.settings.dedup_threshold,
                single_call=self.settings.llm_single_call,
                max_facts=self.settings.max_facts_per_add,
                max_fact_bytes=self.settings.max_text_bytes,
            )
            self._llm_pipeline = pipeline

        def neighbours(vectors: np.ndarray) -> list[list[Neighbour]]:
            found = []
            for vector in vectors:
                hits = self._nearest(scope, vector, 5)
                found.append(
                    [Neighbour(str(h["id"]), str(h["memory"]), 1.0 - float(h["_distance"])) for h in hits]
                )
            return found

        if progress:
            progress(0.0, None, "extracting facts")
        # The planner compares facts with stored memories: adds still in the journal count too.
        self._move_journal()
        plan = pipeline.plan(
            msgs,
            agent_mode=bool(scope.agent_id),
            memory_type=memory_type,
            embed=self._embed,
            neighbours=neighbours,
        )
        # The message check warns about every image block, since verbatim storage cannot use
        # them; the pipeline knows whether they were described, so its word wins when inferred.
        if not plan.inferred:
            extra = [w for w in plan.warnings if "image" not in w and w not in warnings]
            return AddResult(
                inferred=False, reason=plan.reason, usage=plan.usage, warnings=[*warnings, *extra]
            )
        all_warnings = [w for w in warnings if "image skipped" not in w]
        all_warnings += [w for w in plan.warnings if w not in all_warnings]
        if not plan.actions:
            all_warnings.append(
                "the LLM found nothing worth remembering in these messages; nothing was stored"
            )
        if progress:
            progress(0.0, float(len(plan.actions)), "applying")

        agent_facts = bool(scope.agent_id) and any(m.role == "assistant" for m in msgs)
        meta = dict(metadata)
        for m in msgs:
            meta.update(m.metadata or {})
        speaker_role = "assistant" if agent_facts else "user"
        names = {m.name.strip() for m in msgs if m.name and m.role == speaker_role}
        now = now_iso()
        events: list[AddEvent | None] = [None] * len(plan.actions)
        ids: list[str | None] = [None] * len(plan.actions)  # memory id each action wrote
        new_rows: list[dict[str, Any]] = []
        new_vectors: list[np.ndarray] = []
        history: list[dict[str, Any]] = []
        writes = 0

        def new_row(text: str) -> dict[str, Any]:
            return {
                "id": str(uuid.uuid4()),
                "memory": text,
                "hash": text_hash(text),
                "search_text": text,
                "context": None,
                **scope.model_dump(),
                "actor_id": actor_id or (next(iter(names)) if len(names) == 1 else None),
                "role": speaker_role,
                "name": None,
                "memory_type": memory_type,
                "metadata": meta,
                "created_at": now,
                "updated_at": now,
                "event_at": event_at,
                "superseded_at": None,
                "superseded_by": None,
            }

        def vector_of(action: Any) -> np.ndarray:
            return action.vector if action.vector is not None else self._embed([action.text])[0]

        with self._writing():
            self._move_journal_locked()
            live: dict[str, dict[str, Any] | None] = {}

            def current(memory_id: str) -> dict[str, Any] | None:
                if memory_id not in live:
                    row = self._vectors.get(memory_id)
                    ok = row is not None and self._in_scope(row, scope) and not row.get("superseded_at")
                    live[memory_id] = row if ok else None
                return live[memory_id]

            # ADD and UPDATE first: a DELETE names the memory that superseded it.
            for i, action in enumerate(plan.actions):
                if action.event == "UPDATE" and action.memory_id and (row := current(action.memory_id)):
                    if action.text == row["memory"]:
                        ids[i] = row["id"]
                        events[i] = AddEvent(id=row["id"], memory=row["memory"], event="NONE")
                        continue
                    self._vectors.update(
                        row["id"],
                        {
                            "memory": action.text,
                            "hash": text_hash(action.text),
                            # The vector is the plain fact's: keep the indexed text the same.
                            "search_text": action.text,
                            "context": None,
                            "vector": vector_of(action),
                            "updated_at": now,
                        },
                    )
                    history.append(self._history_entry(row, "UPDATE", row["memory"], action.text))
                    ids[i] = row["id"]
                    events[i] = AddEvent(
                        id=row["id"], memory=action.text, event="UPDATE", previous_memory=row["memory"]
                    )
                    writes += 1
                elif action.event in ("ADD", "UPDATE"):
                    # An UPDATE whose target vanished meanwhile still keeps the new fact.
                    row = new_row(action.text)
                    new_rows.append(row)
                    new_vectors.append(vector_of(action))
                    ids[i] = row["id"]
                    events[i] = AddEvent(id=row["id"], memory=action.text, event="ADD")
            if new_rows:
                self._vectors.add(new_rows, np.stack(new_vectors))
                history.extend(self._history_entry(r, "ADD", None, r["memory"]) for r in new_rows)
                writes += len(new_rows)
            for i, action in enumerate(plan.actions):
                if action.event == "NONE" and action.memory_id:
                    events[i] = AddEvent(id=action.memory_id, memory=action.text, event="NONE")
                elif action.event == "DELETE" and action.memory_id and (row := current(action.memory_id)):
                    by = ids[action.superseded_by] if action.superseded_by is not None else None
                    if self.settings.hard_delete:
                        self._vectors.delete(f"id = {sql_str(row['id'])}", ids=[row["id"]])
                    else:
                        # Soft: out of default search, still readable through get/history.
                        self._vectors.update(
                            row["id"], {"superseded_at": now, "superseded_by": by, "updated_at": now}
                        )
                    history.append(self._history_entry(row, "DELETE", row["memory"], None))
                    events[i] = AddEvent(id=row["id"], memory=row["memory"], event="DELETE")
                    writes += 1
            if history:
                self._history.add(history)
        if progress:
            progress(float(len(plan.actions)), float(len(plan.actions)), "stored")
        self._after_write(writes)
        return AddResult(
            results=[e for e in events if e is not None],
            inferred=True,
            reason=None,
            usage=plan.usage,
            warnings=all_warnings,
        )

    def _add_verbatim(
        self,
        msgs: list[Message],
        scope: Scope,
        *,
        actor_id: str | None,
        metadata: dict[str, Any],
        memory_type: str | None,
        event_at: str | None,
        near_duplicates: bool,
        progress: ProgressFn | None,
    ) -> AddResult:
        kept = [m for m in msgs if m.role != "system"]
        texts = [_text_of(m.content, "messages", []).strip() for m in kept]
        entries = [(m, t) for m, t in zip(kept, texts, strict=True) if t]
        if not entries:
            raise InvalidInputError("messages", "no user, assistant or tool message with text to remember")
        index_texts = [self._index_text(t, m.name) for m, t in entries]
        rows: list[dict[str, Any]] = []
        created = now_iso()
        for i, (msg, text) in enumerate(entries):
            # Neighbouring messages of the same add give a short turn its meaning
            # ("Yes, since 2019" answers the question before it).
            context = "\n".join(index_texts[j] for j in (i - 1, i + 1) if 0 <= j < len(entries)) or None
            outer = "\n".join(index_texts[j] for j in (i - 2, i + 2) if 0 <= j < len(entries)) or None
            rows.append(
                {
                    "id": str(uuid.uuid4()),
                    "memory": text,
                    "hash": text_hash(text),
                    "search_text": self._search_text(index_texts[i], context, outer),
                    "context": context,
                    **scope.model_dump(),
                    "actor_id": actor_id or (msg.name.strip() if msg.name else None),
                    "role": msg.role,
                    "name": msg.name.strip() if msg.name else None,
                    "memory_type": memory_type,
                    "metadata": {**metadata, **(msg.metadata or {})},
                    "created_at": created,
                    "updated_at": created,
                    "event_at": event_at,
                    "superseded_at": None,
                    "superseded_by": None,
                }
            )
        total = float(len(rows))
        if progress:
            progress(0.0, total, "embedding")
        if self.settings.context_vectors == "joint":
            vectors = self._embed(
                [self._embed_text(t, r["context"]) for t, r in zip(index_texts, rows, strict=True)]
            )
        else:
            vectors = mix_neighbours(self._embed(index_texts))
        events: list[AddEvent] = []
        journaled = False
        fast = self.settings.write_behind and not near_duplicates
        with self._journal_lock.hold() if fast else self._writing():
            if near_duplicates:
                # The nearest-neighbour check reads the table: journaled adds must be in it.
                self._move_journal_locked()
            hashes = [r["hash"] for r in rows]
            existing = self._vectors.existing_hashes(hashes, scope.model_dump(), event_at)
            existing.update(self._journaled_hashes(hashes, scope, event_at))
            keep: list[int] = []
            for i, row in enumerate(rows):
                dup_id = existing.get(row["hash"])
                if dup_id is None and near_duplicates:
                    dup_id = self._near_duplicate(scope, vectors[i])
                if dup_id is not None:
                    events.append(AddEvent(id=dup_id, memory=row["memory"], event="NONE"))
                    continue
                existing[row["hash"]] = row["id"]
                keep.append(i)
                events.append(AddEvent(id=row["id"], memory=row["memory"], event="ADD"))
            if keep:
                new_rows = [rows[i] for i in keep]
                added = [self._history_entry(r, "ADD", None, r["memory"]) for r in new_rows]
                if fast:
                    # Durable once this commits; the table gets the rows in the background.
                    self._history.add(
                        added, pending=list(zip(new_rows, vectors[keep], strict=True)), now=created
                    )
                    journaled = True
                else:
                    self._vectors.add(new_rows, vectors[keep])
                    self._history.add(added)
                self._note_names(new_rows)
        if progress:
            progress(total, total, "stored")
        if journaled:
            self._mover.wake()
        else:
            self._after_write(len(keep))
        return AddResult(results=events, inferred=False)

    def _journaled_hashes(self, hashes: Sequence[str], scope: Scope, event_at: str | None) -> dict[str, str]:
        """hash -> id of journaled (not yet in the table) rows with the same text, scope and time."""
        values = scope.model_dump()
        return {
            row["hash"]: row["id"]
            for row in self._history.pending_with_hashes(hashes)
            if all(row.get(k) == v for k, v in values.items())
            and row.get("event_at") == event_at
            and not row.get("superseded_at")
        }

    def _nearest(self, scope: Scope, vector: np.ndarray, k: int) -> list[dict[str, Any]]:
        """The k nearest live memories of a scope (the in-process copy when it can serve)."""
        hits = self._vectors.dense_search(vector, k, scope.model_dump(), include_superseded=False)
        return hits if hits is not None else self._vectors.vector_search(vector, self._where(scope), k)

    def _near_duplicate(self, scope: Scope, vector: np.ndarray) -> str | None:
        hits = self._nearest(scope, vector, 1)
        if hits and 1.0 - float(hits[0]["_distance"]) >= self.settings.dedup_threshold:
            return str(hits[0]["id"])
        return None

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
    ) -> SearchResult:
        scope = self._scope("search", user_id, agent_id, run_id)
        query = self._check_text(query, "query")
        k = self._limit(limit)
        if threshold is not None and (
            isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1
        ):
            raise InvalidInputError("threshold", f"must be a number between 0 and 1, got {threshold!r}")
        where = self._where(
            scope,
            actor_id=_check_id("actor_id", actor_id),
            filters=filters,
            include_superseded=include_superseded,
        )
        self._move_journal()
        if self._vectors.table is None:
            return SearchResult()
        n = max(self.settings.search_candidates, k)
        # Full text goes twice as deep as dense, so that dense candidates also carry their BM25
        # share instead of 0 (LoCoMo frac@10 79.5 -> 79.6).
        plain = not filters and not actor_id
        scope_values = scope.model_dump()
        # A plain scope search is served from the in-process copy: BM25 and dense scores in
        # well under a millisecond each. Anything else asks LanceDB, full text running while
        # the query is embedded.
        # Candidates from the copy carry only what ranking reads; the winners get full rows after.
        light = ("id", "name", "event_at")
        text = (
            self._vectors.cached_text_search(
                query, 2 * n, scope_values, include_superseded=include_superseded, columns=light
            )
            if plain
            else None
        )
        text_future = (
            self._pool.submit(self._vectors.text_search, query, where, 2 * n) if text is None else None
        )
        try:
            semantic = dense_query(query, self._speaker_names())
            if semantic != query and self.graph is not None:
                # The graph matches entities by name: it keeps the vector of the query as asked.
                vector, graph_vector = self._embed([semantic, query])
            else:
                vector = graph_vector = self._embed([semantic])[0]
            graph_future = self._graph_search(query, graph_vector, scope, k)
            dense = (
                self._vectors.dense_search(
                    vector, n, scope_values, include_superseded=include_superseded, columns=light
                )
                if text_future is None
                else None
            )
            from_copy = dense is not None
            if dense is None:
                dense = self._vectors.vector_search(vector, where, n)
                if text_future is None:  # the copy stopped serving between the two reads
                    text = self._vectors.text_search(query, where, 2 * n)
            if text_future is not None:
                text = text_future.result()
        except Exception as exc:
            if text_future is not None:
                text_future.cancel()
            raise _store_error(exc, filters) from exc
        assert text is not None
        ranked = fuse(dense, text, vector_weight=self.settings.vector_weight, query=query)
        if threshold is not None:
            ranked = [c for c in ranked if c.score >= threshold]
        top = ranked[:k]
        if from_copy:
            full = self._vectors.cached_rows([c.row["id"] for c in top])
            # A row deleted since the candidates were read is left out, as a later search would.
            top = [c for c in top if c.row["id"] in full]
            for c in top:
                c.row = {**full[c.row["id"]], **c.row}
        return SearchResult(
            results=[self._item(c.row, c.score) for c in top],
            relations=self._graph_relations(graph_future),
        )

    def get(self, memory_id: str, *, scope: Scope | None = None) -> MemoryItem:
        return self._item(self._row(memory_id, scope))

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
    ) -> MemoryPage:
        scope = self._scope("get_all", user_id, agent_id, run_id)
        k = self._limit(limit)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidInputError("offset", f"must be a non-negative integer, got {offset!r}")
        where = self._where(
            scope,
            actor_id=_check_id("actor_id", actor_id),
            filters=filters,
            include_superseded=include_superseded,
        )
        self._move_journal()
        try:
            keys = self._vectors.query(where, columns=("id", "created_at"))
        except Exception as exc:
            raise _store_error(exc, filters) from exc
        # Newest first; id breaks ties so pages are stable.
        keys.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
        page_ids = [r["id"] for r in keys[offset : offset + k]]
        rows = {}
        if page_ids:
            in_list = ", ".join(sql_str(i) for i in page_ids)
            rows = {r["id"]: r for r in self._vectors.query(f"id IN ({in_list})")}
        items = [self._item(rows[i]) for i in page_ids if i in rows]
        nxt = offset + k if offset + k < len(keys) else None
        return MemoryPage(results=items, total=len(keys), offset=offset, next_offset=nxt)

    def history(self, memory_id: str, *, scope: Scope | None = None) -> list[HistoryEntry]:
        if not isinstance(memory_id, str) or not memory_id.strip():
            raise InvalidInputError("memory_id", "must be a non-empty string")
        entries = self._history.get(memory_id.strip())
        # A deleted memory has no row: its history rows carry the scope instead.
        if not entries or (scope is not None and not self._in_scope(entries[0].model_dump(), scope)):
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
    ) -> MemoryItem:
        if text is None and metadata is None:
            raise InvalidInputError("text", "give the new text, new metadata, or both")
        new_text = self._check_text(text, "text") if text is not None else None
        new_meta = self._check_metadata(metadata) if metadata is not None else None
        vector = None
        if new_text is not None:
            row = self._row(memory_id, scope)  # fail before embedding when the id is wrong
            index_text = self._index_text(new_text, row.get("name"))
            vector = self._embed([self._embed_text(index_text, row.get("context"))])[0]
        with self._writing():
            self._move_journal_locked()
            row = self._row(memory_id, scope)
            values: dict[str, Any] = {"updated_at": now_iso()}
            if new_meta is not None:
                values["metadata"] = new_meta
            changed_text = new_text is not None and new_text != row["memory"]
            if changed_text and new_text is not None:
                values["memory"] = new_text
                values["hash"] = text_hash(new_text)
                values["search_text"] = self._search_text(
                    self._index_text(new_text, row.get("name")), row.get("context"), self._outer_context(row)
                )
                values["vector"] = vector
            if not changed_text and new_meta is None:
                return self._item(row)
            self._vectors.update(row["id"], values)
            self._history.add(
                [
                    self._history_entry(
                        row, "UPDATE", row["memory"], new_text if changed_text else row["memory"]
                    )
                ]
            )
        self._after_write(1)
        return self.get(row["id"])

    def delete(self, memory_id: str, *, scope: Scope | None = None) -> DeleteResult:
        with self._writing():
            self._move_journal_locked()
            row = self._row(memory_id, scope)
            self._vectors.delete(f"id = {sql_str(row['id'])}", ids=[row["id"]])
            self._history.add([self._history_entry(row, "DELETE", row["memory"], None)])
        if self.graph is not None:
            self.graph.forget_memory(row["id"])
        return DeleteResult(deleted=1, message=f"memory {row['id']} deleted")

    def delete_all(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None
    ) -> DeleteResult:
        scope = self._scope("delete_all", user_id, agent_id, run_id)
        where = scope_clause(**scope.model_dump())
        with self._writing():
            self._move_journal_locked()
            rows = self._vectors.query(
                where, columns=("id", "memory", "actor_id", "role", "user_id", "agent_id", "run_id")
            )
            if rows:
                self._vectors.delete(where, ids=[r["id"] for r in rows])
                self._history.add(self._history_entry(r, "DELETE", r["memory"], None) for r in rows)
        if self.graph is not None:
            self.graph.delete_scope(scope)
        desc = ", ".join(f"{k}={v!r}" for k, v in scope.as_dict().items())
        return DeleteResult(deleted=len(rows), message=f"deleted {len(rows)} memories of {desc}")

    def reset(self) -> None:
        """Forget everything in this data dir: memories, history and the embedder identity."""
        with self._writing():
            self._vectors.drop()
            self._history.reset()
            self._meta_path.unlink(missing_ok=True)
            self._dimension_checked = False
            self._names = None
            if self.graph is not None:
                self.graph.reset()

    # ------------------------------------------------------------------ graph (derived data)
    @property
    def graph(self) -> Any | None:
        """The entity graph (``mem0_mcp.graph.memory.GraphMemory``) when graph_enabled, else None."""
        if not self.settings.graph_enabled:
            return None
        with self._graph_init:
            if self._graph is None:
                from mem0_mcp.graph.memory import GraphMemory

                self._graph = GraphMemory.open(self.settings, embed=self._embed, llm=lambda: self.llm)
        return self._graph

    def _graph_begin(self, msgs: list[Message], scope: Scope) -> Any | None:
        # Extraction starts now, in a thread: it overlaps the vector work of the same add.
        return self.graph.begin(msgs, scope) if self.graph is not None else None

    def _graph_finish(self, job: Any | None, result: AddResult) -> AddResult:
        # The graph is derived: its failures become warnings, never a failed add.
        return job.finish(result) if job is not None else result

    def _speaker_names(self) -> frozenset[str]:
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

            self._pool.submit(refresh)
        return cached[1]

    def _read_names(self) -> frozenset[str]:
        tbl = self._vectors.table
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

    def _note_names(self, rows: Sequence[Mapping[str, Any]]) -> None:
        new = {w for r in rows if r.get("name") for w in words(str(r["name"]))}
        cached = self._names
        if cached is not None and not new <= cached[1]:
            self._names = (cached[0], cached[1] | new)

    def _graph_search(self, query: str, vector: np.ndarray, scope: Scope, k: int) -> Any | None:
        graph = self.graph
        return graph.submit_search(query, vector, scope, k) if graph is not None else None

    @staticmethod
    def _graph_relations(future: Any | None) -> list[dict[str, Any]]:
        if future is None:
            return []
        try:
            return list(future.result())
        except Exception:
            logger.exception("graph: search failed; returning memories without relations")
            return []

    # ------------------------------------------------------------------ misc
    @property
    def embedder(self) -> Embedder:
        return self._embedder

    @property
    def llm(self) -> Any | None:
        return self._llm

    def stats(self) -> Stats:
        emb = self._embedder
        ready = getattr(emb, "ready", True)
        dim = getattr(emb, "declared_dimension", None) if not ready else emb.dimension
        self._move_journal()
        return Stats(
            memories=self._vectors.count(),
            data_dir=str(self.settings.data_dir),
            embedder=f"{emb.name} ({getattr(emb, 'backend', type(emb).__name__)})",
            embedder_ready=bool(ready),
            dimension=dim,
            llm_provider=getattr(self._llm, "name", "none") if self._llm is not None else "none",
            graph_enabled=self.settings.graph_enabled,
            ann_index=self._vectors.has_vector_index(),
            version=__version__,
        )

    def close(self) -> None:
        self._mover.close()
        try:
            self._move_journal()
        except StoreError as exc:
            # Still durable in the journal: the next process to open the data dir moves them.
            logger.warning("%s", exc)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._history.close()
        if self._graph is not None:
            self._graph.close()


def mix_neighbours(own: np.ndarray, own_weight: float = OWN_WEIGHT) -> np.ndarray:
    """Each message's vector plus its neighbours' (one each side), renormalized.

    An approximation of embedding the message together with its neighbours (the 'joint' mode)
    that embeds every message once instead of inside three windows. LoCoMo frac@10 with the
    message at 1x / 2x / 3x its neighbours' weight: 79.6 / 80.9 / 81.7; joint: 81.0.
    """
    mixed = own * own_weight
    mixed[1:] += own[:-1]
    mixed[:-1] += own[1:]
    norms = np.linalg.norm(mixed, axis=1, keepdims=True)
    return (mixed / np.maximum(norms, 1e-12)).astype(np.float32)


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            loc = ".".join(str(p) for p in first.get("loc", ()))
            return f"{loc}: {first.get('msg')}" if loc else str(first.get("msg"))
        except Exception:
            pass
    return str(exc)


def _store_error(exc: Exception, filters: Mapping[str, Any] | None) -> Exception:
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


P = ParamSpec("P")
R = TypeVar("R")


def _threaded(method: Callable[..., R]) -> Callable[..., Any]:
    name = method.__name__

    @functools.wraps(method)
    async def call(self: AsyncMemory, *args: Any, **kwargs: Any) -> Any:
        import anyio.to_thread

        fn = getattr(self.memory, name)
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    return call


class AsyncMemory:
    """The same API, each call run in a worker thread (stores block; the event loop must not)."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory

    add = _threaded(Memory.add)
    search = _threaded(Memory.search)
    get = _threaded(Memory.get)
    get_all = _threaded(Memory.get_all)
    update = _threaded(Memory.update)
    delete = _threaded(Memory.delete)
    delete_all = _threaded(Memory.delete_all)
    history = _threaded(Memory.history)
    reset = _threaded(Memory.reset)
    stats = _threaded(Memory.stats)
    optimize = _threaded(Memory.optimize)
    close = _threaded(Memory.close)
