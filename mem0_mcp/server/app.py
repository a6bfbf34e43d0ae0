"""The MCP server: memory (and graph) tools, resources and a prompt over the engine.

``create_server`` assembles it: the tools from ``memory_tools`` and ``graph_tools``, the
resources, the ``memory_guide`` prompt, the lifespan that opens the engine, and bearer-token auth
for the HTTP transports (``http_app`` builds the HTTP app, ``stdio_front`` runs stdio).

The engine opens in a background thread (see ``engine_handle``), so ``initialize`` and
``tools/list`` never wait for LanceDB or the embedding model; a tool call waits until the engine
is there. Nothing here imports LanceDB, torch or the embedders: keep it that way, the handshake
budget is one second from process start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from mcp.server.mcpserver import MCPServer

from mem0_mcp import __version__
from mem0_mcp.config import Settings
from mem0_mcp.server.auth import http_auth
from mem0_mcp.server.engine_handle import EngineHandle, MemoryFactory
from mem0_mcp.server.graph_tools import graph_tools
from mem0_mcp.server.http_app import add_health_route
from mem0_mcp.server.memory_tools import memory_tools
from mem0_mcp.server.prompts import add_prompts
from mem0_mcp.server.resources import add_resources
from mem0_mcp.server.state import MemoryServer, ServerState

SERVER_NAME = "mem0-mcp"

INSTRUCTIONS = """\
Long-term memory that persists across conversations.
- Before answering anything that may depend on the user's preferences, history, projects or \
earlier decisions, call search_memory with a short query.
- When the user shares a durable fact (preference, plan, relationship, decision, correction), \
call add_memory with that fact as `text`, or the relevant `messages`.
- Read the add result: when it lists `related` memories and the new fact replaces one (a job, \
home, partner or preference that changed; a correction), call add_memory next time with \
supersedes=[that id], or update_memory / delete_memory it now. With `inferred: true` the \
server's LLM already reconciled them.
- Without a server LLM, pass `relations` when the fact names someone or something by its \
relation to the user (sister Lena, dog Juno, manager Priya): memory_guide shows how.
- When a remembered fact is wrong or outdated, update_memory or delete_memory it by id.
- Memories are scoped by user_id / agent_id / run_id; leave them out to use your own default \
scope. list_memories pages with `next_cursor`; never try to read everything at once.
Do not store secrets (passwords, keys, tokens)."""


def create_server(
    settings: Settings,
    *,
    memory_factory: MemoryFactory | None = None,
    engine: EngineHandle | None = None,
) -> MemoryServer:
    """Build the server. ``settings.transport`` other than stdio turns on bearer-token auth.

    ``memory_factory`` builds the engine (tests pass one with a fake embedder); ``engine`` lets
    the CLI start opening the engine before this module is even imported.

    Raises:
        ConfigError: an HTTP transport without tokens (or an unsafe opt-out from them).
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
        tools=[*memory_tools(state), *graph_tools(state)],
        lifespan=lifespan,
        log_level=settings.log_level,
    )
    server.memory_state = state
    add_resources(server, state)
    add_prompts(server)
    add_health_route(server)
    return server
