"""What the tool modules share: strict tool construction, annotations, common parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp_types import ToolAnnotations
from pydantic import ConfigDict, Field


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


def tool_hints(*, read_only: bool, destructive: bool = False, idempotent: bool = False) -> ToolAnnotations:
    """The annotations of a tool that touches only this server's store (never the open world)."""
    return ToolAnnotations(
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=False,
    )


READ_ONLY = tool_hints(read_only=True, idempotent=True)

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
