"""The memory tools: add, search, get, list, update, delete, delete all, history.

Each tool is thin: resolve the caller's scope, run one engine call in a worker thread, return
the engine's pydantic models as structured output. One factory per tool keeps a tool's
parameters, checks and description together.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio.from_thread
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from pydantic import Field

from mem0_mcp.config import Settings
from mem0_mcp.engine.validation import check_text
from mem0_mcp.errors import Mem0Error
from mem0_mcp.models import (
    AddResult,
    DeleteResult,
    MemoryItem,
    Message,
    RestoreResult,
    SearchResult,
    StatedRelation,
    UpdateResult,
)
from mem0_mcp.server.sampling import RequestSamplingLLM, client_supports_sampling
from mem0_mcp.server.schema import MemoryHistory, MemoryList, decode_cursor, encode_cursor
from mem0_mcp.server.state import ServerState, id_scope, resolve_scope, run_engine
from mem0_mcp.server.tool_helpers import (
    READ_ONLY,
    AgentId,
    Filters,
    MemoryId,
    RunId,
    UserId,
    strict_tool,
    tool_hints,
)

if TYPE_CHECKING:
    from mem0_mcp.engine.memory import Memory

logger = logging.getLogger(__name__)

Text = Annotated[
    str | None, Field(description="One fact to remember, in plain words. Give text or messages.")
]
Messages = Annotated[
    list[Message] | None,
    Field(
        description="Conversation turns to remember, each {role, content, name?}; "
        "every non-empty message becomes one memory. Give text or messages."
    ),
]
Metadata = Annotated[
    dict[str, Any] | None,
    Field(description='JSON metadata stored with the memory, e.g. {"topic": "travel"}.'),
]
Infer = Annotated[
    bool | None,
    Field(
        description="true: let an LLM extract facts and reconcile them with stored memories; "
        "false: store the text verbatim. Leave out: the server decides (it infers when it has "
        "an LLM; the result's `inferred` and `reason` say what happened)."
    ),
]
Relations = Annotated[
    list[StatedRelation] | None,
    Field(
        max_length=20,
        description='Relations you read in this fact, e.g. [{"source": "user", "relationship": '
        '"has_sister", "destination": "Lena"}] for "Has a sister named Lena": written to the '
        'graph with this memory as their source, so a question naming Lena by her role ("my '
        'sister") finds it. Pass them when the server has no LLM (without `inferred: true` '
        'nobody else extracts them). "user" stands for the user.',
    ),
]
Supersedes = Annotated[
    list[str] | None,
    Field(
        max_length=20,
        description="Ids of stored memories this one replaces (a change, correction or "
        "contradiction, e.g. from the `related` of an earlier add or from search): they are "
        "marked superseded by the new memory and leave default search; history keeps them.",
    ),
]
IncludeSuperseded = Annotated[
    bool,
    Field(description="Also return memories superseded by newer ones (marked by superseded_by)."),
]
MemoryType = Annotated[
    Literal["semantic", "episodic", "procedural"] | None,
    Field(
        description="procedural (with agent_id and infer=true): summarize an agent's run "
        "into one memory of steps and results; omit for ordinary facts."
    ),
]
Timestamp = Annotated[
    str | float | None,
    Field(
        description="When the conversation happened (ISO 8601 or epoch seconds), for "
        "importing old chats; default now."
    ),
]

AsOf = Annotated[
    str | None,
    Field(
        description="ISO 8601 date or date-time, e.g. '2023-06-01': search the memories as they "
        "stood then: leaves out memories whose event came later and shows those replaced only "
        "later. Default: now."
    ),
]

# Replaced on each tool by bounded_limit(settings): its maximum is the max_limit setting.
Limit = Annotated[int | None, Field(ge=1)]


def bounded_limit(settings: Settings, what: str) -> Any:
    """The ``limit`` parameter with the setting's maximum in the schema.

    Set on the tool function after it is defined: annotations here are strings evaluated in
    module scope, where the settings are not.
    """
    return Annotated[
        int | None,
        Field(
            ge=1,
            le=settings.max_limit,
            description=f"{what} (default {settings.default_limit}, at most {settings.max_limit}).",
        ),
    ]


def sampling_client(memory: Memory, ctx: Context) -> bool:
    """Whether this call's client can lend the engine its model (llm_provider=sampling): the
    server's half of the engine's one 'is there an LLM' rule (Memory.has_llm)."""
    return isinstance(memory.llm, RequestSamplingLLM) and client_supports_sampling(ctx.session)


def memory_tools(state: ServerState) -> list[Tool]:
    """The memory tools over ``state``'s engine, in the order clients list them."""
    return [
        add_memory_tool(state),
        search_memory_tool(state),
        get_memory_tool(state),
        list_memories_tool(state),
        update_memory_tool(state),
        delete_memory_tool(state),
        delete_all_memories_tool(state),
        memory_history_tool(state),
        restore_memory_tool(state),
    ]


def add_memory_tool(state: ServerState) -> Tool:
    async def add_memory(
        ctx: Context,
        text: Text = None,
        messages: Messages = None,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        metadata: Metadata = None,
        infer: Infer = None,
        memory_type: MemoryType = None,
        timestamp: Timestamp = None,
        supersedes: Supersedes = None,
        relations: Relations = None,
    ) -> AddResult:
        if (text is None) == (messages is None):
            raise ToolError("text/messages: give exactly one of text (one fact) or messages (a conversation)")
        if text is not None:
            try:  # checked here so that the error names `text`, the argument the agent gave
                check_text(state.settings, text, "text")
            except Mem0Error as exc:
                raise ToolError(str(exc)) from exc
        scope = resolve_scope(state.settings, user_id, agent_id, run_id)
        memory = await state.memory()
        payload: str | list[Message] = text if text is not None else list(messages or [])
        progress = None
        if isinstance(payload, list) and len(payload) > 1:

            def progress(done: float, total: float | None, message: str | None) -> None:
                try:
                    anyio.from_thread.run(ctx.report_progress, done, total, message)
                except Exception:  # a gone client must not fail the write
                    logger.debug("progress notification dropped", exc_info=True)

        llm = memory.llm
        sampling = sampling_client(memory, ctx)
        if infer is None:
            infer = memory.default_infer(sampling_client=sampling)
        binding = (
            llm.bind(ctx.session, ctx.request_id)
            if isinstance(llm, RequestSamplingLLM)
            else contextlib.nullcontext()
        )
        with binding:  # a context variable: the worker thread running the add inherits it
            return await run_engine(
                memory.add,
                payload,
                **scope.as_dict(),
                metadata=metadata,
                infer=infer,
                memory_type=memory_type,
                timestamp=timestamp,
                progress=progress,
                supersedes=supersedes,
                relations=relations,
                source="agent",
                use_graph=memory.graph_on(sampling_client=sampling),
            )

    return strict_tool(
        add_memory,
        name="add_memory",
        title="Remember",
        description="Store a durable fact about the user or the task so it can be recalled in later "
        "conversations: preferences, plans, decisions, corrections, relationships. Pass `text` for "
        "one fact or `messages` for conversation turns. With a server LLM the facts are extracted "
        "and reconciled with stored ones (ADD / UPDATE / DELETE / NONE); without one the text is "
        "stored verbatim and `related` lists stored memories it may duplicate, refine or "
        "contradict: if it replaces one, pass that id in `supersedes` (or update/delete it); "
        "pass `relations` for the people, pets and places it names by their relation to the user. "
        "Returns the event per memory with its id (NONE: already stored). Do not store secrets.",
        annotations=tool_hints(read_only=False),
    )


def search_memory_tool(state: ServerState) -> Tool:
    async def search_memory(
        ctx: Context,
        query: Annotated[str, Field(description="What to look for, in natural language.")],
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        filters: Filters = None,
        limit: Limit = None,
        threshold: Annotated[
            float | None,
            Field(
                ge=0.0,
                le=1.0,
                description="Drop results scoring below this (0..1). Given, it replaces the scope's "
                "relevance gate (0: the ranked list, whatever it scores).",
            ),
        ] = None,
        include_superseded: IncludeSuperseded = False,
        as_of: AsOf = None,
    ) -> SearchResult:
        scope = resolve_scope(state.settings, user_id, agent_id, run_id)
        memory = await state.memory()
        return await run_engine(
            memory.search,
            query,
            **scope.as_dict(),
            filters=filters,
            limit=limit,
            threshold=threshold,
            include_superseded=include_superseded,
            as_of=as_of,
            use_graph=memory.graph_reads(sampling_client=sampling_client(memory, ctx)),
        )

    search_memory.__annotations__["limit"] = bounded_limit(state.settings, "Most results to return")
    return strict_tool(
        search_memory,
        name="search_memory",
        title="Search memories",
        description="Find memories relevant to a natural-language query (semantic and keyword search). "
        "Call it before answering anything that may depend on what you learned earlier. Results are "
        "ranked, each with `score` in 0..1 and its id; none means nothing stored is relevant (the "
        "best scored under the scope's relevance gate). `as_of` answers as things stood at that time "
        "(memories added later left out, ones replaced later shown). With the graph on (a server "
        "LLM), memories about an entity the query names by its role ('my sister', 'the user's "
        "dog') are ranked up too, and `relations` lists the graph's.",
        annotations=READ_ONLY,
    )


def get_memory_tool(state: ServerState) -> Tool:
    async def get_memory(memory_id: MemoryId) -> MemoryItem:
        memory = await state.memory()
        return await run_engine(memory.get, memory_id, scope=id_scope())

    return strict_tool(
        get_memory,
        name="get_memory",
        title="Get a memory",
        description="Fetch one memory by id, with its scope, metadata and timestamps.",
        annotations=READ_ONLY,
    )


def list_memories_tool(state: ServerState) -> Tool:
    async def list_memories(
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        filters: Filters = None,
        limit: Limit = None,
        cursor: Annotated[
            str | None,
            Field(description="next_cursor from the previous page; leave out for the first page."),
        ] = None,
        include_superseded: IncludeSuperseded = False,
    ) -> MemoryList:
        scope = resolve_scope(state.settings, user_id, agent_id, run_id)
        query = {
            "scope": scope.as_dict(),
            "filters": filters,
            "limit": limit,
            "superseded": include_superseded,
        }
        try:
            after = decode_cursor(cursor, query) if cursor is not None else None
        except Mem0Error as exc:
            raise ToolError(str(exc)) from exc
        memory = await state.memory()
        page = await run_engine(
            memory.get_all,
            **scope.as_dict(),
            filters=filters,
            limit=limit,
            after=after,
            include_superseded=include_superseded,
        )
        next_cursor = encode_cursor(page.next_after, query) if page.next_after is not None else None
        return MemoryList(results=page.results, total=page.total, next_cursor=next_cursor)

    list_memories.__annotations__["limit"] = bounded_limit(state.settings, "Page size")
    return strict_tool(
        list_memories,
        name="list_memories",
        title="List memories",
        description="List memories in a scope, one page at a time. When "
        "`next_cursor` is not null, call again with `cursor` set to it for the next page. Prefer "
        "search_memory when you are looking for something specific.",
        annotations=READ_ONLY,
    )


def update_memory_tool(state: ServerState) -> Tool:
    async def update_memory(
        memory_id: MemoryId,
        text: Annotated[str | None, Field(description="The corrected memory text.")] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Metadata to store on the memory.")
        ] = None,
    ) -> UpdateResult:
        if text is None and metadata is None:
            raise ToolError("text/metadata: give the new text, new metadata, or both")
        memory = await state.memory()
        return await run_engine(
            memory.update, memory_id, text=text, metadata=metadata, scope=id_scope(), source="agent"
        )

    return strict_tool(
        update_memory,
        name="update_memory",
        title="Update a memory",
        description="Correct a memory in place: new text, new metadata, or both. The old version "
        "stays in memory_history. With the graph on, new text re-derives the memory's relations "
        "(`relations`; a failure there is a warning, the update is kept).",
        annotations=tool_hints(read_only=False, destructive=True, idempotent=True),
    )


def delete_memory_tool(state: ServerState) -> Tool:
    async def delete_memory(memory_id: MemoryId) -> DeleteResult:
        memory = await state.memory()
        return await run_engine(memory.delete, memory_id, scope=id_scope(), source="agent")

    return strict_tool(
        delete_memory,
        name="delete_memory",
        title="Forget a memory",
        description="Delete one memory by id, e.g. when the user asks you to forget it or it is wrong "
        "and cannot be corrected. Its history is kept. Safe to repeat: deleting a memory that is "
        'already deleted answers `deleted: 0` ("already deleted"); an id never stored in your '
        "scope is an error.",
        annotations=tool_hints(read_only=False, destructive=True, idempotent=True),
    )


def delete_all_memories_tool(state: ServerState) -> Tool:
    async def delete_all_memories(
        user_id: Annotated[str | None, Field(description="Delete this user's memories.")] = None,
        agent_id: Annotated[str | None, Field(description="Delete this agent's memories.")] = None,
        run_id: Annotated[str | None, Field(description="Delete this run's memories.")] = None,
    ) -> DeleteResult:
        if not (user_id or agent_id or run_id):
            raise ToolError(
                "user_id/agent_id/run_id: name at least one scope to delete; "
                "an empty scope would mean every memory and is refused"
            )
        scope = resolve_scope(state.settings, user_id, agent_id, run_id)
        memory = await state.memory()
        return await run_engine(memory.delete_all, **scope.as_dict(), source="agent")

    return strict_tool(
        delete_all_memories,
        name="delete_all_memories",
        title="Forget all memories in a scope",
        description="Delete every memory of a user, agent or run. Only on the user's explicit request; "
        "at least one of user_id, agent_id, run_id is required.",
        annotations=tool_hints(read_only=False, destructive=True, idempotent=True),
    )


def restore_memory_tool(state: ServerState) -> Tool:
    async def restore_memory(memory_id: MemoryId) -> RestoreResult:
        memory = await state.memory()
        return await run_engine(memory.restore, memory_id, scope=id_scope(), source="agent")

    return strict_tool(
        restore_memory,
        name="restore_memory",
        title="Undo the latest change of a memory",
        description="Revert the latest change of a memory: an update goes back to the previous text, "
        "a delete or supersede makes it live again, a restore is undone. Works on changes the "
        "server's LLM made too. Use memory_history first to see what the latest change was.",
        annotations=tool_hints(read_only=False),
    )


def memory_history_tool(state: ServerState) -> Tool:
    async def memory_history(memory_id: MemoryId) -> MemoryHistory:
        memory = await state.memory()
        entries = await run_engine(memory.history, memory_id, scope=id_scope())
        return MemoryHistory(memory_id=memory_id, entries=entries)

    return strict_tool(
        memory_history,
        name="memory_history",
        title="Memory history",
        description="The audit trail of one memory, oldest first: every ADD, UPDATE and DELETE with "
        "the old and new text.",
        annotations=READ_ONLY,
    )
