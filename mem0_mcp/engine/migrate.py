"""Memories from elsewhere: the reference MCP memory server's file, and a chat transcript.

The memory server (modelcontextprotocol/servers, ``memory``) keeps a knowledge graph in a JSON
Lines file: ``{"type": "entity", "name", "entityType", "observations": [...]}`` and
``{"type": "relation", "from", "to", "relationType"}`` lines (older versions: one JSON object
``{"entities": [...], "relations": [...]}``). Each observation becomes one memory
"<entity name>: <observation>" in the given scope, with metadata naming the entity; with the
graph on, each relation becomes a graph relation. Adds are verbatim, so importing the same file
again stores nothing new (the same text in the same scope is answered with the stored id).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mem0_mcp.engine.transfer import BadLine, ImportReport
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
