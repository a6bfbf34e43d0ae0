"""Export and import a data dir as JSON Lines: what ``mem0-mcp export`` / ``import`` run.

The format (``mem0-mcp-export``, version 1; README "Export format" documents it field by field):
a header line, then one line per live memory (``kind: memory``, sorted by created_at and id),
one per deleted memory (``kind: deleted``: deleted memories exist only in the history, so their
line carries the history alone; restore works on them after an import), then the graph's
entities and relations (``kind: entity`` / ``relation``) when the graph is on. Every memory line
carries its history, oldest first, with the row as it was before each change (``snapshot``,
what restore puts back).

Vectors are not exported: an import recomputes them by the row rule (engine/rows.py) from the
row's text, speaker and neighbours (``index``), in batches, so the same model gives the same
vectors. Export -> import into an empty data dir -> export gives the same file but for the
header's ``exported_at``. Import is idempotent: memories whose id the store already knows (live,
or deleted in its history) are skipped, and so are entities and relations already there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TextIO

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mem0_mcp.clock import now_iso
from mem0_mcp.config import Settings
from mem0_mcp.embedding import BackgroundEmbedder, Embedder
from mem0_mcp.engine.rows import EmbedInput, MemoryRow, embed_inputs, in_scope, row_metadata, text_hash
from mem0_mcp.engine.storage import where
from mem0_mcp.engine.store_meta import read_meta, write_meta
from mem0_mcp.errors import EmbedderMismatchError, InvalidInputError
from mem0_mcp.models import GraphEntity, GraphRelation, HistoryEntry, Scope

if TYPE_CHECKING:
    from mem0_mcp.engine.memory import Memory

FORMAT = "mem0-mcp-export"
VERSION = 1

# (done, total, what): called as lines are written or memories imported.
Progress = Callable[[int, int, str], None]


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Header(_Line):
    """The first line: what wrote the file and how many lines of each kind follow."""

    format: Literal["mem0-mcp-export"]
    version: int = Field(ge=1, le=VERSION)
    exported_at: str
    embedder: str
    dimension: int | None = None
    memories: int = 0
    deleted: int = 0
    entities: int = 0
    relations: int = 0


class OwnerScope(BaseModel):
    """Whose memory: the scope ids and the actor (who said it)."""

    model_config = ConfigDict(extra="forbid")

    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    actor_id: str | None = None


class IndexInput(BaseModel):
    """What decides a memory's vector and full-text entry besides its text and speaker."""

    model_config = ConfigDict(extra="forbid")

    search_text: str
    context: str | None = None
    neighbours: list[str] | None = None


class Event(BaseModel):
    """One history event (ADD, UPDATE, DELETE, RESTORE, SUPERSEDE ...), as the store keeps it."""

    model_config = ConfigDict(extra="forbid")

    event: str = Field(min_length=1)
    old_memory: str | None = None
    new_memory: str | None = None
    created_at: str
    actor_id: str | None = None
    role: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    is_deleted: bool = False
    source: str | None = None
    snapshot: dict[str, Any] | None = None


class MemoryLine(_Line):
    kind: Literal["memory"]
    id: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1)
    scope: OwnerScope
    role: str | None = None
    name: str | None = None
    memory_type: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    event_at: str | None = None
    created_at: str
    updated_at: str
    superseded_at: str | None = None
    superseded_by: str | None = None
    index: IndexInput
    history: list[Event] = Field(default_factory=list)


class DeletedLine(_Line):
    kind: Literal["deleted"]
    id: str = Field(min_length=1, max_length=200)
    history: list[Event] = Field(min_length=1)


class EntityLine(_Line):
    kind: Literal["entity"]
    scope: OwnerScope
    name: str = Field(min_length=1)
    type: str = "entity"
    aliases: list[str] = Field(default_factory=list)
    created_at: str


class RelationLine(_Line):
    kind: Literal["relation"]
    scope: OwnerScope
    source: str = Field(min_length=1)
    relation: str = Field(min_length=1)
    destination: str = Field(min_length=1)
    created_at: str
    valid_from: str
    invalidated_at: str | None = None
    invalidated_reason: str | None = None
    sources: list[str] = Field(default_factory=list)


Body = MemoryLine | DeletedLine | EntityLine | RelationLine
_KINDS: dict[str, type[_Line]] = {
    "memory": MemoryLine,
    "deleted": DeletedLine,
    "entity": EntityLine,
    "relation": RelationLine,
}


def lazy_embedder(settings: Settings) -> Embedder:
    """The configured embedder, loaded on its first ``embed``: an export (or a list) in a
    short-lived process then never loads a model it does not need."""
    return BackgroundEmbedder.from_settings(settings, start=False)


def dump_line(line: _Line) -> str:
    """One line of the file: compact JSON, keys in the models' order, no ASCII escaping."""
    return json.dumps(line.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------------------------------- export
@dataclass
class ExportCounts:
    memories: int = 0
    deleted: int = 0
    entities: int = 0
    relations: int = 0


def _event(entry: HistoryEntry, snapshot: dict[str, Any] | None) -> Event:
    values = entry.model_dump(exclude={"id", "memory_id"})
    return Event(**values, snapshot=snapshot)


def _memory_line(row: dict[str, Any], history: list[Event]) -> MemoryLine:
    meta = row_metadata(row)
    return MemoryLine(
        kind="memory",
        id=row["id"],
        text=row["memory"],
        scope=OwnerScope(**{k: row.get(k) for k in ("user_id", "agent_id", "run_id", "actor_id")}),
        role=row.get("role"),
        name=row.get("name"),
        memory_type=row.get("memory_type"),
        metadata=meta,
        event_at=row.get("event_at"),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        superseded_at=row.get("superseded_at"),
        superseded_by=row.get("superseded_by"),
        index=IndexInput(
            search_text=row.get("search_text") or row["memory"],
            context=row.get("context"),
            neighbours=list(row["neighbours"]) if row.get("neighbours") is not None else None,
        ),
        history=history,
    )


def _graph_lines(memory: Memory, scope: Scope | None) -> tuple[list[EntityLine], list[RelationLine]]:
    graph = memory.graph
    if graph is None or not memory.settings.graph_on_disk:
        return [], []
    found = graph.export(scope or Scope())
    entities = [e for e in found.nodes if in_scope(e.model_dump(), scope)]
    names = {e.id: e.name for e in entities}
    ent_lines = sorted(
        (
            EntityLine(kind="entity", scope=_owner(e), name=e.name, type=e.type, aliases=e.aliases,
                       created_at=e.created_at)
            for e in entities
        ),
        key=lambda e: (_scope_key(e.scope), e.created_at, e.name),
    )  # fmt: skip
    rel_lines = sorted(
        (_relation_line(r) for r in found.edges if r.source_id in names and r.destination_id in names),
        key=lambda r: (_scope_key(r.scope), r.created_at, r.source, r.relation, r.destination),
    )
    return ent_lines, rel_lines


def _owner(item: GraphEntity | GraphRelation) -> OwnerScope:
    return OwnerScope(user_id=item.user_id, agent_id=item.agent_id, run_id=item.run_id)


def _scope_key(scope: OwnerScope) -> tuple[str, str, str]:
    return (scope.user_id or "", scope.agent_id or "", scope.run_id or "")


def _relation_line(r: GraphRelation) -> RelationLine:
    return RelationLine(
        kind="relation",
        scope=_owner(r),
        source=r.source,
        relation=r.relation,
        destination=r.destination,
        created_at=r.created_at,
        valid_from=r.valid_from,
        invalidated_at=r.invalidated_at,
        invalidated_reason=r.invalidated_reason or None,
        sources=r.sources,
    )


def export_memories(
    memory: Memory, out: TextIO, *, scope: Scope | None = None, progress: Progress | None = None
) -> ExportCounts:
    """Write the data dir (or one ``scope`` of it: every memory whose scope includes its ids) to
    ``out`` as JSON Lines.

    Takes an open ``Memory``. Returns the counts written. Raises StoreError when a store fails.
    """
    storage = memory.storage
    storage.move_journal()
    rows = storage.vectors.query(where(scope, include_superseded=True) if scope is not None else "")
    rows.sort(key=lambda r: (r["created_at"], r["id"]))
    events: dict[str, list[Event]] = {}
    first: dict[str, HistoryEntry] = {}
    for entry, snapshot in storage.history.events():
        events.setdefault(entry.memory_id, []).append(_event(entry, snapshot))
        first.setdefault(entry.memory_id, entry)
    live = {r["id"] for r in rows}
    everyone = {r["id"] for r in storage.vectors.query("", columns=("id",))} if scope is not None else live
    gone = sorted(
        (m for m in events if m not in everyone and in_scope(first[m].model_dump(), scope)),
        key=lambda m: (first[m].created_at, m),
    )
    entities, relations = _graph_lines(memory, scope)
    counts = ExportCounts(len(rows), len(gone), len(entities), len(relations))
    header = Header(
        format=FORMAT,
        version=VERSION,
        exported_at=now_iso(),
        embedder=memory.embedder.name,
        dimension=read_meta(memory.settings).get("dimension") or storage.vectors.dimension,
        memories=counts.memories,
        deleted=counts.deleted,
        entities=counts.entities,
        relations=counts.relations,
    )
    out.write(dump_line(header) + "\n")
    total = len(rows) + len(gone) + len(entities) + len(relations)
    lines: Iterator[_Line] = _chain(
        (_memory_line(r, events.get(r["id"], [])) for r in rows),
        (DeletedLine(kind="deleted", id=m, history=events[m]) for m in gone),
        entities,
        relations,
    )
    for done, line in enumerate(lines, start=1):
        out.write(dump_line(line) + "\n")
        if progress is not None and (done % 200 == 0 or done == total):
            progress(done, total, "exported")
    return counts


def _chain(*parts: Iterable[_Line]) -> Iterator[_Line]:
    for part in parts:
        yield from part


# ---------------------------------------------------------------------------------------- import
@dataclass(frozen=True)
class BadLine:
    """A line the import could not take, and why (line numbers count from 1)."""

    line: int
    message: str


@dataclass
class ImportReport:
    imported: int = 0
    deleted: int = 0
    skipped: int = 0
    entities: int = 0
    relations: int = 0
    graph_skipped: int = 0
    inactive: int = 0  # --from mem0: deleted / archived memories left out
    bad: list[BadLine] = field(default_factory=list)


def read_lines(lines: Iterable[str]) -> tuple[Header | None, list[tuple[int, Body]], list[BadLine]]:
    """Parse an export: its header, its good lines with their numbers, and the bad ones."""
    header: Header | None = None
    good: list[tuple[int, Body]] = []
    bad: list[BadLine] = []
    seen: dict[tuple[str, str], int] = {}
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            bad.append(BadLine(number, f"not JSON: {exc.msg} at column {exc.colno}"))
            continue
        if not isinstance(value, dict):
            bad.append(BadLine(number, "not a JSON object"))
            continue
        if number == 1 or "format" in value:
            try:
                header = Header.model_validate(value)
            except ValidationError as exc:
                bad.append(BadLine(number, f"header: {_first_error(exc)}"))
                if number == 1:
                    return None, [], bad
            continue
        kind = value.get("kind")
        model = _KINDS.get(kind) if isinstance(kind, str) else None
        if model is None:
            bad.append(BadLine(number, f"kind: {kind!r} is none of {', '.join(_KINDS)}"))
            continue
        try:
            line: Any = model.model_validate(value)
        except ValidationError as exc:
            bad.append(BadLine(number, _first_error(exc)))
            continue
        if isinstance(line, MemoryLine | DeletedLine):
            earlier = seen.setdefault(("id", line.id), number)
            if earlier != number:
                bad.append(BadLine(number, f"id: {line.id} is already on line {earlier}"))
                continue
        if isinstance(line, MemoryLine) and not (
            line.scope.user_id or line.scope.agent_id or line.scope.run_id
        ):
            bad.append(BadLine(number, "scope: give at least one of user_id, agent_id, run_id"))
            continue
        good.append((number, line))
    return header, good, bad


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where_ = ".".join(str(p) for p in err["loc"]) or "line"
    return f"{where_}: {err['msg']}" + (f" ({len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else "")


def _embedder(memory: Memory) -> Callable[[Sequence[str]], np.ndarray]:
    """The engine's embedder, with the data dir's dimension checked (and recorded when new)."""
    settings = memory.settings
    data_dir = settings.store_shown

    def embed(texts: Sequence[str]) -> np.ndarray:
        vectors = np.asarray(memory.embedder.embed(list(texts)), dtype=np.float32)
        meta = read_meta(settings)
        stored = meta.get("dimension") or memory.storage.vectors.dimension
        if stored is not None and int(stored) != vectors.shape[1]:
            raise EmbedderMismatchError(
                f"embedder_model: {data_dir} holds {stored}-d vectors, the configured embedder makes "
                f"{vectors.shape[1]}-d ones: import into another MEM0_MCP_DATA_DIR or configure its model"
            )
        if not meta:
            write_meta(settings, {"embedder_model": memory.embedder.name, "dimension": int(vectors.shape[1])})
        return vectors

    return embed


def _row(line: MemoryLine) -> MemoryRow:
    return MemoryRow(
        id=line.id,
        memory=line.text,
        hash=text_hash(line.text),
        search_text=line.index.search_text,
        context=line.index.context,
        neighbours=line.index.neighbours,
        user_id=line.scope.user_id,
        agent_id=line.scope.agent_id,
        run_id=line.scope.run_id,
        actor_id=line.scope.actor_id,
        role=line.role,
        name=line.name,
        memory_type=line.memory_type,
        metadata=line.metadata,
        created_at=line.created_at,
        updated_at=line.updated_at,
        event_at=line.event_at,
        superseded_at=line.superseded_at,
        superseded_by=line.superseded_by,
    )


def _records(memory_id: str, events: list[Event]) -> list[dict[str, Any]]:
    """History rows as the store takes them (HistoryRecord's keys; ``source`` may be None for
    events recorded before sources were)."""
    return [{"memory_id": memory_id, **e.model_dump()} for e in events]


def import_memories(
    memory: Memory,
    lines: Iterable[str],
    *,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import an export into the data dir of an open ``Memory``.

    Every line is checked first; bad ones are reported (``ImportReport.bad``, with their
    numbers) and the good ones imported. Memories whose id the store already knows are skipped,
    so importing the same file twice changes nothing. Memories are embedded ``batch_size`` at a
    time (default settings.embedding_batch_size) and written a batch per locked write. Raises
    InvalidInputError when the file is no export (no header line), EmbedderMismatchError,
    StoreError.
    """
    storage = memory.storage
    storage.refuse_writes()
    header, good, bad = read_lines(lines)
    if header is None:
        first = bad[0].message if bad else "the file is empty"
        raise InvalidInputError(
            "file", f"line 1 is not a {FORMAT} header ({first}); was it written by `mem0-mcp export`?"
        )
    report = ImportReport(bad=bad)
    storage.move_journal()
    ids = [line.id for _, line in good if isinstance(line, MemoryLine | DeletedLine)]
    known = set(storage.vectors.existing_ids(ids)) | (
        set(ids) - set(storage.history.ids_without_history(ids))
    )
    fresh = [line for _, line in good if isinstance(line, MemoryLine) and line.id not in known]
    gone = [line for _, line in good if isinstance(line, DeletedLine) and line.id not in known]
    report.skipped = len(ids) - len(fresh) - len(gone)
    embed = _embedder(memory)
    size = batch_size or memory.settings.embedding_batch_size
    for start in range(0, len(fresh), size):
        batch = fresh[start : start + size]
        rows = [_row(line) for line in batch]
        vectors = embed_inputs([EmbedInput.of_row(r) for r in rows], embed, memory.settings.context_vectors)
        with storage.writing():
            storage.vectors.add(rows, vectors)
            storage.history.add(r for line in batch for r in _records(line.id, line.history))
        storage.after_write(len(rows))
        report.imported += len(rows)
        if progress is not None:
            progress(report.imported, len(fresh), "imported")
    if gone:
        storage.history.add(r for line in gone for r in _records(line.id, line.history))
        report.deleted = len(gone)
    graph_lines = [line for _, line in good if isinstance(line, EntityLine | RelationLine)]
    if graph_lines:
        _import_graph(memory, graph_lines, embed, report)
    return report


def _import_graph(
    memory: Memory,
    lines: list[EntityLine | RelationLine],
    embed: Callable[[Sequence[str]], np.ndarray],
    report: ImportReport,
) -> None:
    from mem0_mcp.graph.extraction import normalize_name

    graph = memory.graph
    if graph is None:
        report.graph_skipped = len(lines)
        return
    store = graph.store
    there = graph.export(Scope()).edges
    known = {(_scope_key(_owner(r)), r.source, r.relation, r.destination, r.valid_from) for r in there}
    entities = [e for e in lines if isinstance(e, EntityLine)]
    vectors = embed([e.name for e in entities]) if entities else np.zeros((0, 0), dtype=np.float32)
    ids: dict[tuple[tuple[str, str, str], str], str] = {}
    with store.burst(write=True):
        for e, vector in zip(entities, vectors, strict=True):
            scope = Scope(user_id=e.scope.user_id, agent_id=e.scope.agent_id, run_id=e.scope.run_id)
            norm = normalize_name(e.name)
            found = store.entities_by_name(scope, [norm]).get(norm)
            if found is None:
                found = store.create_entity(scope, e.name, norm, e.type, vector, e.created_at)
                for alias in e.aliases:
                    if alias not in found.aliases:
                        store.add_alias(found.id, alias)
                report.entities += 1
            ids[(_scope_key(e.scope), e.name)] = found.id
        for r in (r for r in lines if isinstance(r, RelationLine)):
            key = _scope_key(r.scope)
            src, dst = ids.get((key, r.source)), ids.get((key, r.destination))
            if (
                src is None
                or dst is None
                or (key, r.source, r.relation, r.destination, r.valid_from) in known
            ):
                continue
            if r.invalidated_at is None and store.find_relation(src, r.relation, dst) is not None:
                continue
            scope = Scope(user_id=r.scope.user_id, agent_id=r.scope.agent_id, run_id=r.scope.run_id)
            made = store.create_relation(scope, src, r.relation, dst, r.sources, r.created_at, r.valid_from)
            if r.invalidated_at:
                store.invalidate(made.id, r.invalidated_at, r.invalidated_reason)
            report.relations += 1
