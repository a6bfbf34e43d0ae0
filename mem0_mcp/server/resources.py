"""Read-only resources: a user's recent memories and the store's statistics, as JSON."""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError

from mem0_mcp.server.auth import current_principal
from mem0_mcp.server.state import ServerState, run_engine

RECENT_LIMIT = 20


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, default=str)


def add_resources(server: MCPServer[ServerState], state: ServerState) -> None:
    """Register the resources on ``server``; over HTTP each caller sees only its own user."""

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
        return dump({"user_id": user_id, "total": page.total, "results": [m.model_dump() for m in items]})

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
        return dump(result)
