"""The shapes the engine takes and returns (Mem0's, as pydantic models)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

Event = Literal["ADD", "UPDATE", "DELETE", "NONE"]
RelationEvent = Literal["ADD", "NONE", "INVALIDATE"]


class Message(BaseModel):
    """One chat message. ``content`` is text, or a list of content blocks (text / image)."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant", "system", "tool"] = "user"
    content: str | list[dict[str, Any]]
    name: str | None = Field(None, description="Who spoke (a person's or agent's name).")
    metadata: dict[str, Any] | None = Field(
        None, description="Per-message metadata, merged over the add's metadata."
    )


class Scope(BaseModel):
    """Whose memories: an AND of the ids given."""

    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None

    def is_empty(self) -> bool:
        return not (self.user_id or self.agent_id or self.run_id)

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v}


class MemoryItem(BaseModel):
    id: str
    memory: str
    hash: str
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    actor_id: str | None = None
    role: str | None = None
    name: str | None = None
    memory_type: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: str
    updated_at: str
    event_at: str | None = Field(None, description="When the remembered event happened, if known.")
    superseded_at: str | None = None
    superseded_by: str | None = None
    score: float | None = Field(None, description="Relevance in [0, 1] (search only).")
    possibly_outdated_by: str | None = Field(
        None,
        description="Search only, for a question about the present: the id of a newer result about "
        "the same thing, ranked above this one.",
    )


class AddEvent(BaseModel):
    id: str
    memory: str
    event: Event
    previous_memory: str | None = None


class Usage(BaseModel):
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def record(self, input_tokens: int | None, output_tokens: int | None) -> None:
        """Count one LLM call and its tokens (None: the backend did not say)."""
        self.llm_calls += 1
        self.input_tokens += int(input_tokens or 0)
        self.output_tokens += int(output_tokens or 0)

    def merge(self, other: Usage) -> None:
        """Add another tally to this one."""
        self.llm_calls += other.llm_calls
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens


class SparseModel(BaseModel):
    """A model whose dumps leave out the fields that are None: absent, not null, on the wire."""

    @model_serializer(mode="wrap")
    def _omit_none(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}


class GraphEntity(SparseModel):
    """A node of the entity graph: one person, place, organisation or thing in one scope."""

    id: str
    name: str
    type: str = "entity"
    aliases: list[str] = Field(default_factory=list)
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    created_at: str
    score: float | None = Field(None, description="Match to the query (search only).")


class EntityMerge(BaseModel):
    """A name a write used that was resolved to a stored entity of another name."""

    mention: str = Field(description="The name as the write gave it.")
    into: str = Field(description="The stored entity's name it now stands for.")
    by: Literal["alias", "embedding"] = Field(
        description="alias: the name is a known alias of that entity; embedding: the names embed "
        "within the merge threshold (only for extracted names, never for add_relation)."
    )


class GraphRelation(SparseModel):
    """An edge of the entity graph: source -relation-> destination, with its provenance."""

    id: str
    source: str
    relation: str
    destination: str
    source_id: str
    destination_id: str
    source_type: str = "entity"
    destination_type: str = "entity"
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    created_at: str
    valid_from: str
    invalidated_at: str | None = Field(None, description="When a later fact contradicted it.")
    invalidated_reason: str | None = None
    sources: list[str] = Field(default_factory=list, description="Ids of the memories it came from.")
    score: float | None = None
    event: RelationEvent | None = Field(
        None, description="What an add did to it: ADD (new), NONE (already there), INVALIDATE."
    )
    merged: list[EntityMerge] | None = Field(
        None, description="Names of this write that stand for a stored entity of another name (writes only)."
    )


class EntityView(BaseModel):
    """Everything the graph knows about one name."""

    entities: list[GraphEntity] = Field(default_factory=list, description="One per scope the name occurs in.")
    neighbours: list[str] = Field(default_factory=list)
    relations: list[GraphRelation] = Field(
        default_factory=list, description="Valid and invalidated relations (the history), newest first."
    )


class GraphPath(SparseModel):
    """The shortest chain of valid relations between two entities, or why there is none."""

    found: bool
    hops: int
    relations: list[GraphRelation] = Field(default_factory=list, description="The chain, in order.")
    reason: str | None = None


class GraphExport(BaseModel):
    """A scope's whole graph, invalidated relations included."""

    scope: dict[str, str]
    nodes: list[GraphEntity] = Field(default_factory=list)
    edges: list[GraphRelation] = Field(default_factory=list)


class RelatedMemory(BaseModel):
    """A stored memory the new text may duplicate, refine or contradict."""

    id: str
    memory: str
    score: float = Field(description="Cosine similarity to the new text, 0 to 1.")
    event_at: str | None = None
    created_at: str | None = None


class StatedRelation(BaseModel):
    """A relation the caller read in the text it adds (the host agent as extractor): written to
    the graph with the added memory as its source, so a later question that names one end by its
    role ("my sister's husband") finds the memory."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(description='One end: a name, or "user" for the user ("I", "me" also work).')
    relationship: str = Field(description="How source relates to destination, e.g. has_sister, works_at.")
    destination: str = Field(description="The other end: a name.")
    source_type: str | None = Field(None, description="What source is: person, dog, city, organization ...")
    destination_type: str | None = Field(None, description="What destination is.")


class AddResult(BaseModel):
    results: list[AddEvent] = Field(default_factory=list)
    relations: list[GraphRelation] = Field(default_factory=list)
    inferred: bool = False
    reason: str | None = Field(None, description="Why the add was verbatim when inference was asked.")
    usage: Usage = Field(default_factory=Usage)
    warnings: list[str] = Field(default_factory=list)
    related: list[RelatedMemory] = Field(
        default_factory=list,
        description="Stored memories of the scope close to what was added (verbatim adds): decide "
        "whether the new text supersedes one of them.",
    )
    superseded: list[str] = Field(default_factory=list, description="Ids this add marked superseded.")
    hint: str | None = Field(None, description="What to do with `related`, in one line.")
    graph_pending: bool = Field(
        False,
        description="The add's relations are being extracted and written after it returned (queued "
        "durably); search_graph and get_entity see them once written.",
    )


class UpdateResult(MemoryItem):
    """A memory as an update stored it, and what the update did to the graph."""

    relations: list[GraphRelation] = Field(
        default_factory=list, description="Relations extracted again from the new text (graph on)."
    )
    warnings: list[str] = Field(default_factory=list)


class SearchResult(BaseModel):
    results: list[MemoryItem] = Field(default_factory=list)
    relations: list[GraphRelation] = Field(default_factory=list)


class MemoryPage(BaseModel):
    results: list[MemoryItem] = Field(default_factory=list)
    total: int
    offset: int
    next_offset: int | None = Field(None, description="Offset of the next page; null on the last page.")
    next_after: list[str] | None = Field(
        None,
        description="Pass as `after` for the next page: (created_at, id) of this page's last "
        "memory, so memories added or deleted in between neither repeat nor skip; null on the "
        "last page.",
    )


class HistoryEntry(BaseModel):
    id: int
    memory_id: str
    old_memory: str | None = None
    new_memory: str | None = None
    event: str
    created_at: str
    actor_id: str | None = None
    role: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    is_deleted: bool = False
    source: str | None = Field(
        None, description="Who made the change: llm, agent (a tool call), person (the CLI), api."
    )


class DeleteResult(BaseModel):
    deleted: int
    message: str


class RestoreResult(BaseModel):
    """What restore_memory undid, and the memory as it is now (None when the undo removed it)."""

    memory: MemoryItem | None = None
    reverted: str = Field(description="The event undone: UPDATE, DELETE or RESTORE.")
    message: str


class Stats(BaseModel):
    memories: int
    data_dir: str
    embedder: str
    embedder_ready: bool
    dimension: int | None
    llm_provider: str
    graph_enabled: bool
    ann_index: bool
    version: str
