"""What every tool and resource call runs with: the settings, the engine, the caller's scope.

The engine opens in a background thread (see ``engine_handle``); a call waits for it here, and
engine errors become tool errors the client can read.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from mem0_mcp.config import Settings
from mem0_mcp.errors import Mem0Error
from mem0_mcp.models import Scope
from mem0_mcp.server.auth import current_principal
from mem0_mcp.server.engine_handle import EngineHandle

if TYPE_CHECKING:
    from mem0_mcp.engine.memory import Memory

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class ServerState:
    """What every tool call needs: settings and the (possibly still opening) engine."""

    settings: Settings
    engine: EngineHandle

    async def memory(self) -> Memory:
        """The open engine, waiting while it opens.

        Raises:
            ToolError: the engine failed to open (the message says why).
        """
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
    """The scope a call runs in: an authenticated caller is pinned to its principal.

    Raises:
        ToolError: ``user_id`` names another user than the caller's token.
    """
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
