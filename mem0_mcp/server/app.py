"""The MCP server: memory tools, resources and a prompt over the engine in ``mem0_mcp.engine.memory``.

Tools are thin: they resolve the caller's scope, run one engine call in a worker thread and
return the engine's pydantic models as structured output. The engine opens in a background
thread (see ``engine_handle``), so ``initialize`` and ``tools/list`` never wait for LanceDB or
the embedding model; a tool call waits until the engine is there.

Nothing here imports LanceDB, torch or the embedders: keep it that way, the handshake budget
is one second from process start.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations
from pydantic import ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mem0_mcp import __version__
from mem0_mcp.config import Settings
from mem0_mcp.errors import ConfigError, Mem0Error
from mem0_mcp.models import AddResult, DeleteResult, MemoryItem, Message, Scope, SearchResult
from mem0_mcp.server.auth import StaticTokenVerifier, auth_settings, current_principal, is_loopback
from mem0_mcp.server.engine_handle import EngineHandle, MemoryFactory
from mem0_mcp.server.sampling import RequestSamplingLLM
from mem0_mcp.server.schema import MemoryHistory, MemoryList, decode_cursor, encode_cursor

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from mem0_mcp.engine.memory import Memory

logger = logging.getLogger(__name__)

SERVER_NAME = "mem0-mcp"
T = TypeVar("T")

INSTRUCTIONS = """\
Long-term memory that persists across conversations.
- Before answering anything that may depend on the user's preferences, history, projects or \
earlier decisions, call search_memory with a short query.
- When the user shares a durable fact (preference, plan, relationship, decision, correction), \
call add_memory with that fact as `text`, or the relevant `messages`.
- When a remembered fact is wrong or outdated, update_memory or delete_memory it by id.
- Memories are scoped by user_id / agent_id / run_id; leave them out to use your own default \
scope. list_memories pages with `next_cursor`; never try to read everything at once.
Do not store secrets (passwords, keys, tokens)."""


# ---------------------------------------------------------------- state and scope


@dataclass
class ServerState:
    """What every tool call needs: settings and the (possibly still opening) engine."""

    settings: Settings
    engine: EngineHandle

    async def memory(self) -> Memory:
        try:
            return await self.engine.get()
        except Mem0Error as exc:
            raise ToolError(f"the memory store is unavailable: {exc}") from exc
        except Exception as exc:
            logger.exception("memory engine failed to open")
            raise ToolError(
                f"the memory store is unavailable: {type(exc).__name__}: {exc}; see the server log"
            ) from exc


class MemoryServer(MCPServer[ServerState]):
    """An MCPServer that keeps its ServerState reachable for the transports."""

    memory_state: ServerState


def resolve_scope(settings: Settings, user_id: str | None, agent_id: str | None, run_id: str | None) -> Scope:
    """The scope a call runs in: an authenticated caller is pinned to its principal."""
    principal = current_principal()
    if principal is not None:
        if user_id is not None and user_id != principal:
            raise ToolError(
                f"user_id: your token is for user_id {principal!r}; it cannot use {user_id!r}. "
                "Leave user_id out to use your own."
            )
        user_id = principal
    elif not (user_id or agent_id or run_id):
        user_id = settings.user_id
    return Scope(user_id=user_id, agent_id=agent_id, run_id=run_id)


def id_scope() -> Scope | None:
    """The scope id-based calls are confined to: the principal's, or none on stdio."""
    principal = current_principal()
    return Scope(user_id=principal) if principal is not None else None


async def run_engine(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a blocking engine call in a worker thread; engine errors become tool errors."""
    try:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
    except Mem0Error as exc:
        raise ToolError(str(exc)) from exc


# ---------------------------------------------------------------- tool construction


def strict_tool(
    fn: Callable[..., Any],
    *,
    name: str,
    title: str,
    description: str,
    annotations: ToolAnnotations,
) -> Tool:
    """A structured-output tool that refuses unknown arguments instead of silently dropping them."""
    tool = Tool.from_function(
        fn,
        name=name,
        title=title,
        description=description,
        annotations=annotations,
        structured_output=True,
    )
    base = tool.fn_metadata.arg_model
    strict: type[ArgModelBase] = type(
        base.__name__,
        (base,),
        {"model_config": ConfigDict(**{**base.model_config, "extra": "forbid"}), "__module__": __name__},
    )
    tool.fn_metadata.arg_model = strict
    tool.parameters = strict.model_json_schema(by_alias=True)
    return tool


def _annotations(*, read_only: bool, destructive: bool = False, idempotent: bool = False) -> ToolAnnotations:
    return ToolAnnotations(
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=False,
    )


UserId = Annotated[
    str | None,
    Field(
        description="Whose memories (a person). Leave out to use the default user of this "
        "connection; over HTTP it is always the user of your token."
    ),
]
AgentId = Annotated[str | None, Field(description="Memories of one agent or assistant persona.")]
RunId = Annotated[str | None, Field(description="Memories of one session, task or conversation.")]
Filters = Annotated[
    dict[str, Any] | None,
    Field(
        description='Metadata filters: {"key": value} for equality, {"key": {"op": value}} with op in '
        "eq, ne, in, nin, gt, gte, lt, lte, contains; combine with "
        '{"AND": [...]}, {"OR": [...]}, {"NOT": {...}}. Keys are metadata keys or '
        "created_at, updated_at, event_at, memory_type, role, actor_id, name."
    ),
]
MemoryId = Annotated[str, Field(description="The id of a memory, from search_memory or list_memories.")]


def build_tools(state: ServerState) -> list[Tool]:
    settings = state.settings

    async def add_memory(
        ctx: Context,
        text: Annotated[
            str | None, Field(description="One fact to remember, in plain words. Give text or messages.")
        ] = None,
        messages: Annotated[
            list[Message] | None,
            Field(
                description="Conversation turns to remember, each {role, content, name?}; "
                "every non-empty message becomes one memory. Give text or messages."
            ),
        ] = None,
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        metadata: Annotated[
            dict[str, Any] | None,
            Field(description='JSON metadata stored with the memory, e.g. {"topic": "travel"}.'),
        ] = None,
        infer: Annotated[
            bool,
            Field(
                description="true: let an LLM extract and reconcile facts (needs a configured LLM); "
                "false: store the text verbatim."
            ),
        ] = False,
        memory_type: Annotated[
            Literal["semantic", "episodic", "procedural"] | None,
            Field(
                description="procedural (with agent_id and infer=true): summarize an agent's run "
                "into one memory of steps and results; omit for ordinary facts."
            ),
        ] = None,
        timestamp: Annotated[
            str | float | None,
            Field(
                description="When the conversation happened (ISO 8601 or epoch seconds), for "
                "importing old chats; default now."
            ),
        ] = None,
    ) -> AddResult:
        if (text is None) == (messages is None):
            raise ToolError("text/messages: give exactly one of text (one fact) or messages (a conversation)")
        scope = resolve_scope(settings, user_id, agent_id, run_id)
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
            )

    async def search_memory(
        query: Annotated[str, Field(description="What to look for, in natural language.")],
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        filters: Filters = None,
        limit: Annotated[
            int | None, Field(ge=1, description="Most results to return (default 10, at most 100).")
        ] = None,
        threshold: Annotated[
            float | None, Field(ge=0.0, le=1.0, description="Drop results scoring below this (0..1).")
        ] = None,
    ) -> SearchResult:
        scope = resolve_scope(settings, user_id, agent_id, run_id)
        memory = await state.memory()
        return await run_engine(
            memory.search, query, **scope.as_dict(), filters=filters, limit=limit, threshold=threshold
        )

    async def get_memory(memory_id: MemoryId) -> MemoryItem:
        memory = await state.memory()
        return await run_engine(memory.get, memory_id, scope=id_scope())

    async def list_memories(
        user_id: UserId = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        filters: Filters = None,
        limit: Annotated[int | None, Field(ge=1, description="Page size (default 10, at most 100).")] = None,
        cursor: Annotated[
            str | None,
            Field(description="next_cursor from the previous page; leave out for the first page."),
        ] = None,
    ) -> MemoryList:
        scope = resolve_scope(settings, user_id, agent_id, run_id)
        query = {"scope": scope.as_dict(), "filters": filters, "limit": limit}
        try:
            offset = decode_cursor(cursor, query) if cursor is not None else 0
        except Mem0Error as exc:
            raise ToolError(str(exc)) from exc
        memory = await state.memory()
        page = await run_engine(
            memory.get_all, **scope.as_dict(), filters=filters, limit=limit, offset=offset
        )
        next_cursor = encode_cursor(page.next_offset, query) if page.next_offset is not None else None
        return MemoryList(results=page.results, total=page.total, next_cursor=next_cursor)

    async def update_memory(
        memory_id: MemoryId,
        text: Annotated[str | None, Field(description="The corrected memory text.")] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Metadata to store on the memory.")
        ] = None,
    ) -> MemoryItem:
        if text is None and metadata is None:
            raise ToolError("text/metadata: give the new text, new metadata, or both")
        memory = await state.memory()
        return await run_engine(memory.update, memory_id, text=text, metadata=metadata, scope=id_scope())

    async def delete_memory(memory_id: MemoryId) -> DeleteResult:
        memory = await state.memory()
        return await run_engine(memory.delete, memory_id, scope=id_scope())

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
        scope = resolve_scope(settings, user_id, agent_id, run_id)
        memory = await state.memory()
        return await run_engine(memory.delete_all, **scope.as_dict())

    async def memory_history(memory_id: MemoryId) -> MemoryHistory:
        memory = await state.memory()
        entries = await run_engine(memory.history, memory_id, scope=id_scope())
        return MemoryHistory(memory_id=memory_id, entries=entries)

    return [
        strict_tool(
            add_memory,
            name="add_memory",
            title="Remember",
            description="Store a durable fact about the user or the task so it can be recalled in later "
            "conversations: preferences, plans, decisions, corrections, relationships. Pass `text` for "
            "one fact or `messages` for conversation turns. Returns the stored memories with their ids "
            "and the event per memory (ADD, or NONE for an exact duplicate). Do not store secrets.",
            annotations=_annotations(read_only=False),
        ),
        strict_tool(
            search_memory,
            name="search_memory",
            title="Search memories",
            description="Find memories relevant to a natural-language query (semantic and keyword search). "
            "Call it before answering anything that may depend on what you learned earlier. Results are "
            "ranked, each with `score` in 0..1 and its id.",
            annotations=_annotations(read_only=True, idempotent=True),
        ),
        strict_tool(
            get_memory,
            name="get_memory",
            title="Get a memory",
            description="Fetch one memory by id, with its scope, metadata and timestamps.",
            annotations=_annotations(read_only=True, idempotent=True),
        ),
        strict_tool(
            list_memories,
            name="list_memories",
            title="List memories",
            description="List memories in a scope, one page at a time. When "
            "`next_cursor` is not null, call again with `cursor` set to it for the next page. Prefer "
            "search_memory when you are looking for something specific.",
            annotations=_annotations(read_only=True, idempotent=True),
        ),
        strict_tool(
            update_memory,
            name="update_memory",
            title="Update a memory",
            description="Correct a memory in place: new text, new metadata, or both. The old version "
            "stays in memory_history.",
            annotations=_annotations(read_only=False, destructive=True, idempotent=True),
        ),
        strict_tool(
            delete_memory,
            name="delete_memory",
            title="Forget a memory",
            description="Delete one memory by id, e.g. when the user asks you to forget it or it is wrong "
            "and cannot be corrected. Its history is kept.",
            annotations=_annotations(read_only=False, destructive=True, idempotent=True),
        ),
        strict_tool(
            delete_all_memories,
            name="delete_all_memories",
            title="Forget all memories in a scope",
            description="Delete every memory of a user, agent or run. Only on the user's explicit request; "
            "at least one of user_id, agent_id, run_id is required.",
            annotations=_annotations(read_only=False, destructive=True, idempotent=True),
        ),
        strict_tool(
            memory_history,
            name="memory_history",
            title="Memory history",
            description="The audit trail of one memory, oldest first: every ADD, UPDATE and DELETE with "
            "the old and new text.",
            annotations=_annotations(read_only=True, idempotent=True),
        ),
    ]


# ---------------------------------------------------------------- graph seam

ToolProvider = Callable[[ServerState], Iterable[Tool]]
GRAPH_TOOL_PROVIDERS: list[ToolProvider] = []
GRAPH_TOOLS_MODULE = "mem0_mcp.server.graph_tools"


def register_graph_tools(provider: ToolProvider) -> ToolProvider:
    """Decorator for the graph issue: ``provider(state)`` returns Tools (built with ``strict_tool``).

    Providers live in ``mem0_mcp/graph_tools.py``, which ``create_server`` imports when it exists
    and ``settings.graph_enabled`` is on.
    """
    if provider not in GRAPH_TOOL_PROVIDERS:
        GRAPH_TOOL_PROVIDERS.append(provider)
    return provider


def graph_tools(state: ServerState) -> list[Tool]:
    if not state.settings.graph_enabled:
        return []
    try:
        importlib.import_module(GRAPH_TOOLS_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != GRAPH_TOOLS_MODULE:
            raise
    return [tool for provider in GRAPH_TOOL_PROVIDERS for tool in provider(state)]


# ---------------------------------------------------------------- resources and prompt

RECENT_LIMIT = 20

MEMORY_GUIDE = """\
You have a long-term memory through the mem0-mcp tools. Use it like a careful assistant would.

When to search (search_memory):
- At the start of a task or conversation, search for the user's preferences and context that \
matter to it.
- Before giving advice, recommendations or answers that depend on who the user is or on \
earlier work.
- Use short, specific queries ("preferred programming language", "trip to Japan dates").

When to add (add_memory):
- The user states a lasting preference, fact about themselves, plan, decision, or correction.
- One fact per memory, written so it makes sense on its own, e.g. "Prefers window seats on \
flights". Pass metadata such as {"topic": "travel"} when it helps filtering.
- Never store passwords, API keys, tokens or other secrets, nor one-off chatter.

When to change:
- A memory is wrong or outdated: update_memory with the corrected text (history is kept).
- The user asks you to forget something: delete_memory. Use delete_all_memories only on an \
explicit request to wipe a whole scope.

Scope: leave user_id out to use your default user; use agent_id for your own working notes and \
run_id for one task. list_memories pages with next_cursor; do not page through everything \
unless asked."""


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, default=str)


def add_resources_and_prompts(server: MCPServer[ServerState], state: ServerState) -> None:
    @server.resource(
        "memory://{user_id}/recent",
        name="recent_memories",
        title="Recent memories",
        description=f"The {RECENT_LIMIT} most recently updated memories of a user, as JSON.",
        mime_type="application/json",
    )
    async def recent(user_id: str) -> str:
        principal = current_principal()
        if principal is not None and user_id != principal:
            raise ResourceNotFoundError(f"memory://{user_id}/recent: your token is for user_id {principal!r}")
        try:
            memory = await state.memory()
            page = await run_engine(memory.get_all, user_id=user_id, limit=state.settings.max_limit)
        except ToolError as exc:
            raise ResourceError(str(exc)) from exc
        items = sorted(page.results, key=lambda m: m.updated_at, reverse=True)[:RECENT_LIMIT]
        return _dump({"user_id": user_id, "total": page.total, "results": [m.model_dump() for m in items]})

    @server.resource(
        "memory://stats",
        name="stats",
        title="Memory store statistics",
        description="Counts, embedding model and readiness of the memory store, as JSON.",
        mime_type="application/json",
    )
    async def stats() -> str:
        try:
            memory = await state.memory()
            result = (await run_engine(memory.stats)).model_dump()
            principal = current_principal()
            if principal is not None:
                # A remote caller sees its own count, never the store's size or where it lives.
                result["memories"] = (await run_engine(memory.get_all, user_id=principal, limit=1)).total
                result.pop("data_dir", None)
        except ToolError as exc:
            raise ResourceError(str(exc)) from exc
        return _dump(result)

    @server.prompt(
        name="memory_guide",
        title="How to use long-term memory",
        description="Tells an agent when to search, add, update and delete memories.",
    )
    def memory_guide() -> str:
        return MEMORY_GUIDE


# ---------------------------------------------------------------- server factory


def http_auth(settings: Settings) -> tuple[StaticTokenVerifier | None, Any]:
    """Token verifier and auth settings for the HTTP transports; refuses an unsafe configuration."""
    tokens = settings.load_tokens()
    if settings.allow_unauthenticated_loopback and not is_loopback(settings.host):
        raise ConfigError(
            f"allow_unauthenticated_loopback: only accepted with a loopback host, not {settings.host!r}; "
            "set MEM0_MCP_AUTH_TOKENS instead"
        )
    if tokens:
        if settings.allow_unauthenticated_loopback:
            logger.warning("auth tokens are configured: allow_unauthenticated_loopback is ignored")
        return StaticTokenVerifier(tokens), auth_settings(settings.host, settings.port)
    if settings.allow_unauthenticated_loopback:
        logger.warning("serving HTTP WITHOUT authentication on %s (loopback only)", settings.host)
        return None, None
    raise ConfigError(
        "auth_tokens: the HTTP transports need bearer tokens; set "
        'MEM0_MCP_AUTH_TOKENS=\'{"<token>": "<user_id>"}\' or MEM0_MCP_AUTH_TOKENS_FILE, '
        "or MEM0_MCP_ALLOW_UNAUTHENTICATED_LOOPBACK=true for a loopback-only test server"
    )


def create_server(
    settings: Settings,
    *,
    memory_factory: MemoryFactory | None = None,
    engine: EngineHandle | None = None,
) -> MemoryServer:
    """Build the server. ``settings.transport`` other than stdio turns on bearer-token auth.

    ``memory_factory`` builds the engine (tests pass one with a fake embedder); ``engine`` lets
    the CLI start opening the engine before this module is even imported.
    """
    state = ServerState(settings, engine or EngineHandle(settings, memory_factory))

    @asynccontextmanager
    async def lifespan(_: MCPServer[ServerState]) -> AsyncIterator[ServerState]:
        # Opening starts here but is not awaited: the handshake must not wait for the engine.
        state.engine.acquire()
        try:
            yield state
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(state.engine.release)

    verifier, auth = (None, None) if settings.transport == "stdio" else http_auth(settings)
    server = MemoryServer(
        SERVER_NAME,
        title="Mem0 memory",
        description="Long-term memory for AI agents (Mem0 design, embedded LanceDB).",
        instructions=INSTRUCTIONS,
        version=__version__,
        token_verifier=verifier,
        auth=auth,
        tools=[*build_tools(state), *graph_tools(state)],
        lifespan=lifespan,
        log_level=settings.log_level,
    )
    server.memory_state = state
    add_resources_and_prompts(server, state)

    @server.custom_route("/health", methods=["GET"])
    async def health(_: Request) -> Response:
        engine = state.engine
        status = "ready" if engine.ready else ("failed" if engine.failed else "opening")
        return JSONResponse(
            {"status": "ok" if status != "failed" else "error", "engine": status, "version": __version__},
            status_code=200 if status != "failed" else 503,
        )

    return server


# ---------------------------------------------------------------- HTTP transports


def transport_security(settings: Settings, allowed_hosts: Sequence[str] = ()) -> TransportSecuritySettings:
    """Host/Origin allow-lists against DNS rebinding: loopback names, the bound host, and extras
    (the ``allowed_hosts`` setting, then ``allowed_hosts`` given here)."""
    hosts = ["127.0.0.1", "localhost", "[::1]"]
    bound = f"[{settings.host}]" if ":" in settings.host else settings.host
    if bound not in ("0.0.0.0", "[::]"):
        hosts.append(bound)
    hosts = list(dict.fromkeys([*hosts, *settings.allowed_hosts, *allowed_hosts]))
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*hosts, *(f"{h}:*" for h in hosts)],
        allowed_origins=[
            f"{scheme}://{h}{port}" for h in hosts for scheme in ("http", "https") for port in ("", ":*")
        ],
    )


def build_http_app(
    server: MemoryServer,
    *,
    transport: str,
    path: str | None = None,
    allowed_hosts: Sequence[str] = (),
) -> Starlette:
    """The Starlette app for ``sse`` or ``http`` (streamable HTTP), holding the engine open for its life.

    Paths: streamable HTTP on ``path`` (default ``settings.http_path``, /mcp); SSE on ``path``
    (default /sse) with messages posted to /messages/.
    """
    settings = server.memory_state.settings
    security = transport_security(settings, allowed_hosts)
    if transport == "sse":
        app = server.sse_app(
            sse_path=path or "/sse",
            message_path="/messages/",
            max_request_body_size=settings.max_request_bytes,
            transport_security=security,
            host=settings.host,
        )
    elif transport == "http":
        app = server.streamable_http_app(
            streamable_http_path=path or settings.http_path,
            max_request_body_size=settings.max_request_bytes,
            transport_security=security,
            host=settings.host,
        )
    else:
        raise ConfigError(f"transport: {transport!r} is not an HTTP transport (sse or http)")

    inner = app.router.lifespan_context
    engine = server.memory_state.engine

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        # SSE enters the server lifespan per connection; this hold keeps one engine for the app's life.
        engine.acquire()
        try:
            async with inner(a) as value:
                yield value
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(engine.release)

    app.router.lifespan_context = lifespan
    return app


async def serve_http(
    server: MemoryServer,
    *,
    transport: str,
    path: str | None = None,
    allowed_hosts: Sequence[str] = (),
) -> None:
    import uvicorn

    settings = server.memory_state.settings
    app = build_http_app(server, transport=transport, path=path, allowed_hosts=allowed_hosts)
    # log_config=None: uvicorn's default config sends access logs to stdout; ours go to stderr.
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=5,
    )
    await uvicorn.Server(config).serve()
