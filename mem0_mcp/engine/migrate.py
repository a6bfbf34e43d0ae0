"""Memories from elsewhere: the reference MCP memory server's file, a Mem0 / OpenMemory export,
and a chat transcript.

The memory server (modelcontextprotocol/servers, ``memory``) keeps a knowledge graph in a JSON
Lines file: ``{"type": "entity", "name", "entityType", "observations": [...]}`` and
``{"type": "relation", "from", "to", "relationType"}`` lines (older versions: one JSON object
``{"entities": [...], "relations": [...]}``). Each observation becomes one memory
"<entity name>: <observation>" in the given scope, with metadata naming the entity; with the
graph on, each relation becomes a graph relation. Adds are verbatim, so importing the same file
again stores nothing new (the same text in the same scope is answered with the stored id).

Mem0 and OpenMemory (``mem0ai/mem0``) memories come in these forms, all read by ``from_mem0``:
- ``Memory.get_all()`` / ``MemoryClient.get_all()`` output saved as JSON: ``{"results": [...]}``
  (the platform adds ``count``/``next``/``previous``), or the bare list of mem0 < 1.0 (API
  v1.0); each entry ``{id, memory, hash, metadata, created_at, updated_at, user_id, agent_id,
  run_id, actor_id, role, categories ...}``;
- OpenMemory's backup (``POST /api/v1/backup/export``): a zip holding ``memories.json``
  (``{"memories": [{id, content, metadata, state, created_at, updated_at, category_ids ...}],
  "categories": [{id, name ...}] ...}``) and ``memories.jsonl.gz`` (one ``{id, content,
  metadata, created_at, updated_at, state, app, categories}`` per line); either file alone, the
  zip, or the JSON Lines plain or gzipped.
Each entry becomes a memory of the scope given, with its created/updated times kept and the
original id in ``metadata.mem0_id``; it goes through the same import as a mem0-mcp export (its
id is derived from the scope and the mem0 id), so importing the same file again adds nothing.
Entries in state ``deleted`` or ``archived`` are left out unless asked for.
"""

from __future__ import annotations

import gzip
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mem0_mcp.clock import now_iso, parse_time
from mem0_mcp.engine.transfer import (
    FORMAT,
    VERSION,
    BadLine,
    Event,
    Header,
    ImportReport,
    IndexInput,
    MemoryLine,
    OwnerScope,
    Progress,
    dump_line,
    import_memories,
)
from mem0_mcp.errors import InvalidInputError
from mem0_mcp.models import Message, Scope

if TYPE_CHECKING:
    from mem0_mcp.engine.memory import Memory


class ServerEntity(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    name: str = Field(min_length=1)
    entity_type: str = Field("entity", alias="entityType")
    observations: list[str] = Field(default_factory=list)


class ServerRelation(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    source: str = Field(min_length=1, alias="from")
    destination: str = Field(min_length=1, alias="to")
    relation: str = Field(min_length=1, alias="relationType")


def _error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc']) or 'line'}: {err['msg']}"


def read_memory_server(text: str) -> tuple[list[ServerEntity], list[ServerRelation], list[BadLine]]:
    """The entities and relations of a memory server file (either form), and its bad lines."""
    items: list[tuple[int, Any]] = []
    bad: list[BadLine] = []
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict) and ("entities" in whole or "relations" in whole):
        items += [
            (1, {"type": "entity", **e}) if isinstance(e, dict) else (1, e) for e in whole.get("entities", [])
        ]
        items += [
            (1, {"type": "relation", **r}) if isinstance(r, dict) else (1, r)
            for r in whole.get("relations", [])
        ]
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                bad.append(BadLine(number, f"not JSON: {exc.msg} at column {exc.colno}"))
    entities: list[ServerEntity] = []
    relations: list[ServerRelation] = []
    for number, item in items:
        kind = item.get("type") if isinstance(item, dict) else None
        try:
            if kind == "entity":
                entities.append(ServerEntity.model_validate(item))
            elif kind == "relation":
                relations.append(ServerRelation.model_validate(item))
            else:
                bad.append(BadLine(number, f"type: {kind!r} is neither 'entity' nor 'relation'"))
        except ValidationError as exc:
            bad.append(BadLine(number, _error(exc)))
    return entities, relations, bad


def from_memory_server(memory: Memory, text: str, scope: Scope) -> ImportReport:
    """Import a memory server file into ``scope``. Returns what was imported (``skipped``: texts
    already stored). Raises ScopeRequiredError, StoreError."""
    entities, relations, bad = read_memory_server(text)
    report = ImportReport(bad=bad)
    for entity in entities:
        meta = {"entity": entity.name, "entity_type": entity.entity_type, "imported_from": "memory-server"}
        for observation in entity.observations:
            if not observation.strip():
                continue
            result = memory.add(
                f"{entity.name}: {observation}",
                **scope.model_dump(),
                metadata=meta,
                infer=False,
                source="person",
            )
            added = sum(e.event == "ADD" for e in result.results)
            report.imported += added
            report.skipped += len(result.results) - added
    graph = memory.graph
    if graph is None:
        report.graph_skipped = len(relations)
        return report
    types = {e.name: e.entity_type for e in entities}
    for rel in relations:
        try:
            made = graph.relate(
                rel.source, rel.relation, rel.destination, scope,
                source_type=types.get(rel.source), destination_type=types.get(rel.destination),
            )  # fmt: skip
        except InvalidInputError as exc:
            report.bad.append(BadLine(0, f"relation {rel.source} -{rel.relation}-> {rel.destination}: {exc}"))
            continue
        report.relations += made.event == "ADD"
    return report


def from_chat(memory: Memory, text: str, scope: Scope, *, infer: bool = False) -> ImportReport:
    """Add a JSON list of ``{role, content}`` messages as one conversation of ``scope``: verbatim,
    or through the LLM memory manager with ``infer``. Bad messages are reported by their number
    (from 1) and left out. Raises InvalidInputError when the text is no JSON list, StoreError."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError("file", f"not JSON: {exc.msg} at line {exc.lineno}") from None
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if not isinstance(value, list):
        raise InvalidInputError("file", "must be a JSON list of {role, content} messages")
    msgs: list[Message] = []
    report = ImportReport()
    for number, item in enumerate(value, start=1):
        try:
            msgs.append(Message.model_validate(item))
        except ValidationError as exc:
            report.bad.append(BadLine(number, f"message {number}: {_error(exc)}"))
    if not msgs:
        return report
    result = memory.add(msgs, **scope.model_dump(), infer=infer, source="person")
    added = sum(e.event in ("ADD", "UPDATE") for e in result.results)
    report.imported = added
    report.skipped = len(result.results) - added
    return report


# ------------------------------------------------------------------------------ mem0, openmemory
class Mem0Entry(BaseModel):
    """One memory of a Mem0 ``get_all()`` answer or of an OpenMemory backup (fields of both)."""

    model_config = ConfigDict(extra="ignore")

    id: str | int | None = None
    memory: str | None = None  # mem0
    content: str | None = None  # openmemory
    metadata: dict[str, Any] | None = None
    categories: list[str] | None = None
    category_ids: list[str] | None = None
    created_at: str | int | float | None = None
    updated_at: str | int | float | None = None
    state: str | None = None
    app: str | None = None
    actor_id: str | None = None
    role: str | None = None

    @property
    def text(self) -> str:
        return (self.memory if self.memory is not None else self.content or "").strip()


# States that are not live memories (OpenMemory's MemoryState: active, paused, archived, deleted).
INACTIVE = ("deleted", "archived")
# Mem0's id namespace: derived ids stay the same from run to run (idempotent imports).
_NAMESPACE = uuid.UUID("5b0d7c1e-2f45-4c4e-9a55-6d6f656d3030")


def _unzip(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        for wanted in ("memories.json", "memories.jsonl.gz", "memories.jsonl"):
            found = [n for n in names if n == wanted or n.endswith("/" + wanted)]
            if found:
                return zf.read(found[0])
    raise InvalidInputError(
        "file", f"the zip holds no memories.json or memories.jsonl.gz (it has {', '.join(names[:5])})"
    )


def read_mem0(data: bytes) -> tuple[str, list[tuple[int, Any]], list[BadLine]]:
    """A Mem0 / OpenMemory export's raw entries with their numbers (from 1), where they came from
    ('mem0' or 'openmemory'), and the lines that are no JSON. Raises InvalidInputError when the
    file is none of the forms (module docstring)."""
    if data[:2] == b"PK":
        data = _unzip(data)
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError("file", f"not UTF-8 text, a zip or a gzip file ({exc.reason})") from None
    try:
        whole: Any = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict) and isinstance(whole.get("memories"), list):
        names = {c.get("id"): c.get("name") for c in whole.get("categories") or [] if isinstance(c, dict)}
        entries = [_named_categories(e, names) for e in whole["memories"]]
        return "openmemory", list(enumerate(entries, start=1)), []
    if isinstance(whole, dict) and isinstance(whole.get("results"), list):
        return "mem0", list(enumerate(whole["results"], start=1)), []
    if isinstance(whole, list):
        return "mem0", list(enumerate(whole, start=1)), []
    if isinstance(whole, dict):
        keys = ", ".join(sorted(whole)[:6])
        raise InvalidInputError(
            "file", f"a JSON object without 'results' or 'memories' (it has {keys}); is it a Mem0 export?"
        )
    items: list[tuple[int, Any]] = []
    bad: list[BadLine] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                items.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                bad.append(BadLine(number, f"not JSON: {exc.msg} at column {exc.colno}"))
    if not items and bad:
        raise InvalidInputError("file", f"neither JSON nor JSON Lines ({bad[0].message} on line 1)")
    source = "openmemory" if any(isinstance(v, dict) and "content" in v for _, v in items) else "mem0"
    return source, items, bad


def _named_categories(entry: Any, names: dict[Any, Any]) -> Any:
    if isinstance(entry, dict) and entry.get("category_ids") and not entry.get("categories"):
        return {**entry, "categories": [str(names.get(c, c)) for c in entry["category_ids"]]}
    return entry


def _mem0_lines(
    entries: list[tuple[int, Any]], scope: Scope, source: str, include_inactive: bool, report: ImportReport
) -> Iterator[MemoryLine]:
    """Each good entry as a line of a mem0-mcp export; bad ones go to ``report.bad``."""
    scope_key = [scope.user_id, scope.agent_id, scope.run_id]
    seen: dict[str, int] = {}
    for number, raw in entries:
        where = f"memory {number}"
        try:
            entry = Mem0Entry.model_validate(raw)
            if not entry.text:
                raise InvalidInputError("memory", "empty (no 'memory' or 'content' text)")
            if entry.state in INACTIVE and not include_inactive:
                report.inactive += 1
                continue
            created = parse_time(entry.created_at, "created_at") if entry.created_at else now_iso()
            updated = parse_time(entry.updated_at, "updated_at") if entry.updated_at else created
        except ValidationError as exc:
            report.bad.append(BadLine(number, f"{where}: {_error(exc)}"))
            continue
        except InvalidInputError as exc:
            report.bad.append(BadLine(number, f"{where}: {exc}"))
            continue
        original = str(entry.id) if entry.id is not None else None
        key = json.dumps([*scope_key, original if original is not None else [entry.text, created]])
        mem_id = str(uuid.uuid5(_NAMESPACE, key))
        if mem_id in seen:
            report.bad.append(BadLine(number, f"{where}: id {original!r} repeats memory {seen[mem_id]}"))
            continue
        seen[mem_id] = number
        meta: dict[str, Any] = {**(entry.metadata or {}), "imported_from": source}
        if original is not None:
            meta["mem0_id"] = original
        if entry.categories:
            meta.setdefault("categories", entry.categories)
        if entry.app:
            meta.setdefault("app", entry.app)
        if entry.state and entry.state != "active":
            meta["mem0_state"] = entry.state
        owner = OwnerScope(**scope.model_dump(), actor_id=entry.actor_id)
        add = Event(event="ADD", new_memory=entry.text, created_at=created, actor_id=entry.actor_id,
                    role=entry.role, **scope.model_dump(), source="person")  # fmt: skip
        yield MemoryLine(
            kind="memory", id=mem_id, text=entry.text, scope=owner, role=entry.role, metadata=meta,
            created_at=created, updated_at=max(created, updated),
            index=IndexInput(search_text=entry.text), history=[add],
        )  # fmt: skip


def from_mem0(
    memory: Memory,
    data: bytes,
    scope: Scope,
    *,
    include_inactive: bool = False,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a Mem0 ``get_all()`` answer or an OpenMemory backup (module docstring) into
    ``scope``, through the import of mem0-mcp exports: created/updated times and the mem0 id
    (``metadata.mem0_id``) kept, deleted/archived entries left out unless ``include_inactive``
    (``report.inactive`` counts them), bad entries reported by number (from 1; line number in a
    JSON Lines file) with the good ones imported, entries already imported skipped. Raises
    InvalidInputError when the file is none of the forms, EmbedderMismatchError, StoreError."""
    source, entries, bad = read_mem0(data)
    report = ImportReport(bad=bad)
    lines = list(_mem0_lines(entries, scope, source, include_inactive, report))
    header = Header(format=FORMAT, version=VERSION, exported_at=now_iso(), embedder=memory.embedder.name,
                    memories=len(lines))  # fmt: skip
    text = [dump_line(header), *(dump_line(line) for line in lines)]
    done = import_memories(memory, text, batch_size=batch_size, progress=progress)
    # Every line was checked as it was built, so the import finds none bad.
    report.imported, report.skipped = done.imported, done.skipped
    report.bad += done.bad
    report.bad.sort(key=lambda b: b.line)
    return report
