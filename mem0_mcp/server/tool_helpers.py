"""What the tool modules share: strict tool construction, annotations, common parameters."""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from mem0_mcp.engine.validation import check_json
from mem0_mcp.errors import InvalidInputError


class TextKeepingMetadata(FuncMetadata):
    """The SDK's argument handling, except that a string sent for a parameter that takes strings
    stays a string.

    The SDK reads a string argument as JSON when the parameter is not exactly ``str`` (a habit of
    some clients is to send objects as JSON text): for ``text: str | None`` the text ``"null"``
    became None (no text given) and ``"[1]"`` a list (refused), so such texts could not be stored.
    """

    def pre_parse_json(self, data: dict[str, Any]) -> dict[str, Any]:
        fields = self.arg_model.model_fields
        keep = {
            k: v
            for k, v in data.items()
            if isinstance(v, str) and k in fields and _takes_str(fields[k].annotation)
        }
        parsed = super().pre_parse_json({k: v for k, v in data.items() if k not in keep})
        return {k: keep[k] if k in keep else parsed[k] for k in data}


def _takes_str(annotation: Any) -> bool:
    if annotation is str:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return any(_takes_str(arg) for arg in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _takes_str(typing.get_args(annotation)[0])
    return False


def guard_arguments(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` behind the checks every argument of every tool passes, before the tool runs: each
    string valid Unicode (a lone surrogate cannot be stored) and nesting at most
    ``MAX_NESTING`` levels. The error names the argument."""

    @functools.wraps(fn)
    async def guarded(**kwargs: Any) -> Any:
        for name, value in kwargs.items():
            if isinstance(value, Context):
                continue
            if isinstance(value, list):  # messages: each model's fields, read without dumping it
                value = [dict(v) if isinstance(v, BaseModel) else v for v in value]
            try:
                check_json(name, value)
            except InvalidInputError as exc:
                raise ToolError(str(exc)) from None
        return await fn(**kwargs)

    return guarded


def strict_tool(
    fn: Callable[..., Any],
    *,
    name: str,
    title: str,
    description: str,
    annotations: ToolAnnotations,
) -> Tool:
    """A structured-output tool that refuses unknown arguments instead of silently dropping them,
    keeps string arguments strings and checks every argument (see ``guard_arguments``)."""
    tool = Tool.from_function(
        fn,
        name=name,
        title=title,
        description=description,
        annotations=annotations,
        structured_output=True,
    )
    meta = tool.fn_metadata
    base = meta.arg_model
    strict: type[ArgModelBase] = type(
        base.__name__,
        (base,),
        {"model_config": ConfigDict(**{**base.model_config, "extra": "forbid"}), "__module__": __name__},
    )
    tool.fn_metadata = TextKeepingMetadata(
        arg_model=strict,
        output_schema=meta.output_schema,
        output_model=meta.output_model,
        wrap_output=meta.wrap_output,
    )
    tool.fn = guard_arguments(tool.fn)
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
