"""Graph tools on the MCP server: search, look up, connect, write and delete relations, Cypher.

``create_server`` adds them unless ``graph_enabled=false`` (``query_graph`` also needs
``graph_query_enabled``). With ``auto`` and no LLM they stay listed: the graph then holds only
what add_relation writes (nothing is extracted from memories, and search_memory leaves the graph
out), so an agent can still keep explicit relations.

Scopes resolve exactly as for the memory tools: over authenticated HTTP the caller is pinned to
its principal's user_id. None of these tools needs a server-side LLM: names are embedded with
the engine's embedder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from pydantic import BaseModel, Field

from mem0_mcp.server.auth import current_principal
from mem0_mcp.server.state import ServerState, resolve_scope, run_engine
from mem0_mcp.server.tool_helpers import READ_ONLY, AgentId, RunId, UserId, strict_tool, tool_hints

if TYPE_CHECKING:
    from mem0_mcp.graph.memory import GraphMemory


class GraphRelations(BaseModel):
    relations: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Each {source, relation, destination, ids, types, created_at (recorded), "
        "valid_from (when it began to hold), invalidated_at? (when a contradicting fact happened), "
        "sources (memory ids), score?}.",
    )


class EntityView(BaseModel):
    entities: list[dict[str, Any]] = Field(
        default_factory=list, description="One per scope the name occurs in."
    )
    neighbours: list[str] = Field(default_factory=list)
    relations: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Valid and invalidated relations (the history), newest first; with as_of, those "
        "that held then.",
    )


class GraphPath(BaseModel):
    found: bool
    hops: int
    relations: list[dict[str, Any]] = Field(default_factory=list, description="The chain, in order.")
    reason: str | None = None


class RelationWrite(BaseModel):
    relation: dict[str, Any] = Field(description="The relation; event ADD (new) or NONE (already there).")


class RelationDelete(BaseModel):
    deleted: int
    message: str


class GraphRows(BaseModel):
    rows: list[dict[str, Any]] = Field(default_factory=list)
    truncated: bool = False


Name = Annotated[str, Field(description="An entity's name, e.g. 'Alice' or 'Acme Corp' (case-insensitive).")]
AsOf = Annotated[
    str | None,
    Field(
        description="ISO 8601 date or time, e.g. '2024-03-01' or '2024-03-01T12:00:00Z': answer with "
        "what the graph held true then (relations begun by then, not yet contradicted, already "
        "recorded). Omit for now."
    ),
]


def graph_tools(state: ServerState) -> list[Tool]:
    """The graph tools unless ``graph_enabled=false``; ``query_graph`` only when enabled."""
    settings = state.settings
    if settings.graph_enabled == "false":
        return []
    tools = [
        search_graph_tool(state),
        get_entity_tool(state),
        find_path_tool(state),
        add_relation_tool(state),
        delete_relation_tool(state),
    ]
    if settings.graph_query_enabled:
        tools.append(query_graph_tool(state))
    return tools


async def graph_of(state: ServerState) -> GraphMemory:
    """The engine's graph memory.

    Raises:
        ToolError: the engine runs without a graph.
    """
    memory = await state.memory()
    graph = memory.graph
    if graph is None:
        raise ToolError("graph memory is off on this server (MEM0_MCP_GRAPH_ENABLED=false)")
    return graph


def search_graph_tool(state: ServerState) -> Tool:
    async def search_graph(
        query: Annotated[str, Field(description="What to look for: names, roles, places, in plain words.")],
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        limit: Annotated[int, Field(ge=1, le=100, description="Most relations to return.")] = 10,
        as_of: AsOf = None,
    ) -> GraphRelations:
        scope = resolve_scope(state.settings, user_id, agent_id, run_id)
        graph = await graph_of(state)
        return GraphRelations(relations=await run_engine(graph.search_relations, query, scope, limit, as_of))

    return strict_tool(
        search_graph,
        name="search_graph",
        title="Search the memory graph",
        description="Find relations between people, places, organisations and things that match a "
        "query (entities matched by meaning and by name, then their relations ranked). Only "
        "currently valid relations, or with `as_of` the ones that held at that time.",
        annotations=READ_ONLY,
    )


def get_entity_tool(state: ServerState) -> Tool:
    async def get_entity(
        name: Name,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        depth: Annotated[int, Field(ge=1, le=3, description="Hops of neighbours to include.")] = 1,
        as_of: AsOf = None,
    ) -> EntityView:
        scope = resolve_scope(state.settings, user_id, agent_id, run_id)
        graph = await graph_of(state)
        return EntityView(**await run_engine(graph.get_entity, name, scope, depth, as_of))

    return strict_tool(
        get_entity,
        name="get_entity",
        title="Look up an entity",
        description="Everything the graph knows about one entity: its neighbours and its relations, "
        "including invalidated ones with when they stopped being true; with `as_of`, only the "
        "relations that held at that time.",
        annotations=READ_ONLY,
    )


def find_path_tool(state: ServerState) -> Tool:
    async def find_path(
        source: Name,
        target: Name,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        max_hops: Annotated[int, Field(ge=1, le=6, description="Longest chain to look for.")] = 3,
    ) -> GraphPath:
        scope = resolve_scope(state.settings, user_id, agent_id, run_id)
        graph = await graph_of(state)
        return GraphPath(**await run_engine(graph.find_path, source, target, scope, max_hops))

    return strict_tool(
        find_path,
        name="find_path",
        title="Find how two entities connect",
        description="The shortest chain of valid relations between two entities, e.g. how a person "
        "is connected to a company.",
        annotations=READ_ONLY,
    )


def add_relation_tool(state: ServerState) -> Tool:
    async def add_relation(
        source: Name,
        relation: Annotated[str, Field(description="A short verb phrase: works_at, lives_in, sister_of.")],
        destination: Name,
        source_type: Annotated[str | None, Field(description="e.g. person, organization, city.")] = None,
        destination_type: Annotated[str | None, Field(description="e.g. person, organization, city.")] = None,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
    ) -> RelationWrite:
        scope = resolve_scope(state.settings, user_id, agent_id, run_id)
        graph = await graph_of(state)
        rel = await run_engine(
            graph.add_relation,
            source,
            relation,
            destination,
            scope,
            source_type=source_type,
            destination_type=destination_type,
        )
        return RelationWrite(relation=rel)

    return strict_tool(
        add_relation,
        name="add_relation",
        title="Record a relation",
        description="Write one relation into the graph yourself (no LLM needed), e.g. source 'Alice', "
        "relation 'works_at', destination 'Acme'. Entities are matched by name or created. Without "
        "a server LLM this is how the graph gets relations: none are extracted from memories then.",
        annotations=tool_hints(read_only=False, idempotent=True),
    )


def delete_relation_tool(state: ServerState) -> Tool:
    async def delete_relation(
        source: Name,
        relation: Annotated[str, Field(description="The relation to remove, e.g. works_at.")],
        destination: Name,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
    ) -> RelationDelete:
        scope = resolve_scope(state.settings, user_id, agent_id, run_id)
        graph = await graph_of(state)
        n = await run_engine(graph.delete_relation, source, relation, destination, scope)
        what = f"{source} -{relation}-> {destination}"
        return RelationDelete(deleted=n, message=f"deleted {what}" if n else f"no valid relation {what}")

    return strict_tool(
        delete_relation,
        name="delete_relation",
        title="Remove a relation",
        description="Delete one valid relation source -relation-> destination from the graph.",
        annotations=tool_hints(read_only=False, destructive=True, idempotent=True),
    )


def query_graph_tool(state: ServerState) -> Tool:
    async def query_graph(
        cypher: Annotated[
            str,
            Field(
                description="A read-only Cypher query over the tables Entity(id, name, norm, type, "
                "aliases, user_id, agent_id, run_id, created_at) and RELATES(relation, valid_from, "
                "invalidated_at, sources, ...), e.g. MATCH (a:Entity)-[r:RELATES]->(b:Entity) "
                "RETURN a.name, r.relation, b.name LIMIT 20"
            ),
        ],
        params: Annotated[dict[str, Any] | None, Field(description="Query parameters ($name).")] = None,
        limit: Annotated[int, Field(ge=1, le=500, description="Most rows to return.")] = 100,
    ) -> GraphRows:
        if current_principal() is not None:
            raise ToolError("query_graph is refused over authenticated HTTP: it would see every user's graph")
        graph = await graph_of(state)
        rows = await run_engine(graph.query, cypher, params, limit + 1)
        return GraphRows(rows=rows[:limit], truncated=len(rows) > limit)

    return strict_tool(
        query_graph,
        name="query_graph",
        title="Query the graph (Cypher)",
        description="Run a read-only Cypher query over the whole graph (all scopes): for "
        "single-user local setups. Write clauses and non-read procedures are refused.",
        annotations=READ_ONLY,
    )
