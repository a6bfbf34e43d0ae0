"""Checks on what callers pass to the engine: each bad value raises InvalidInputError naming its
field and the fix, before anything is read or written."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from mem0_mcp.config import Settings
from mem0_mcp.errors import InvalidInputError, ScopeRequiredError
from mem0_mcp.llm.content import verbatim_text
from mem0_mcp.models import Message, Scope

MAX_ID_LENGTH = 256
MAX_NAME_LENGTH = 200
MEMORY_TYPES = ("semantic", "episodic", "procedural")
# Deepest nesting of objects and lists in one argument (metadata, filters, graph params). Deeper
# values serve no memory and break clients: the MCP SDK's JSON reader stops at 200 levels, so a
# memory stored 200 deep could never be read back.
MAX_NESTING = 32


def check_unicode(field: str, value: str) -> str:
    """``value`` if it can be stored as UTF-8: a lone surrogate (an unpaired ``\\ud800`` escape)
    cannot; NUL is allowed here (callers that refuse it say so)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        raise InvalidInputError(
            field,
            f"contains a lone surrogate (U+{ord(bad):04X} at character {exc.start}), which is not "
            "valid Unicode and cannot be stored; send valid Unicode (pair the surrogates or drop it)",
        ) from None
    return value


def check_json(field: str, value: Any, limit: int = MAX_NESTING) -> None:
    """Every string in ``value`` (keys included) valid Unicode and objects and lists nested at
    most ``limit`` levels; the error names the path, e.g. ``metadata.a[2]``. Iterative: a
    hostile depth cannot exhaust the stack."""
    stack: list[tuple[str, Any, int]] = [(field, value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if isinstance(item, str):
            check_unicode(path, item)
            continue
        if isinstance(item, Mapping):
            children: list[tuple[str, Any]] = []
            for key, child in item.items():
                if isinstance(key, str):
                    check_unicode(f"{path} key", key)
                children.append((f"{path}.{key}", child))
        elif isinstance(item, list | tuple):
            children = [(f"{path}[{i}]", child) for i, child in enumerate(item)]
        else:
            continue
        if depth >= limit and children:
            raise InvalidInputError(
                field, f"nests objects and lists deeper than {limit} levels; flatten it (at most {limit})"
            )
        stack.extend((p, c, depth + 1) for p, c in children)


def check_id(field: str, value: Any) -> str | None:
    """An optional id: stripped, None when empty."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(field, f"must be a string, got {type(value).__name__}")
    value = value.strip()
    if not value:
        return None
    if len(value) > MAX_ID_LENGTH or "\x00" in value:
        raise InvalidInputError(field, f"must be at most {MAX_ID_LENGTH} characters without NUL")
    return check_unicode(field, value)


def check_memory_id(memory_id: Any) -> str:
    """The id of one memory, as add and search return it."""
    if not isinstance(memory_id, str) or not memory_id.strip():
        raise InvalidInputError("memory_id", "must be a non-empty string (the id returned by add/search)")
    if len(memory_id) > MAX_ID_LENGTH or "\x00" in memory_id:
        raise InvalidInputError(
            "memory_id",
            f"must be at most {MAX_ID_LENGTH} characters without NUL (the id returned by add/search)",
        )
    return check_unicode("memory_id", memory_id.strip())


def check_scope(operation: str, user_id: Any, agent_id: Any, run_id: Any) -> Scope:
    """The scope of an operation; raises ScopeRequiredError when no id is given."""
    scope = Scope(
        user_id=check_id("user_id", user_id),
        agent_id=check_id("agent_id", agent_id),
        run_id=check_id("run_id", run_id),
    )
    if scope.is_empty():
        raise ScopeRequiredError(operation)
    return scope


def check_limit(settings: Settings, limit: Any, field: str = "limit") -> int:
    if limit is None:
        return settings.default_limit
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidInputError(field, f"must be an integer, got {type(limit).__name__}")
    if not 1 <= limit <= settings.max_limit:
        raise InvalidInputError(field, f"must be between 1 and {settings.max_limit}, got {limit}")
    return limit


def check_offset(offset: Any) -> int:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInputError("offset", f"must be a non-negative integer, got {offset!r}")
    return offset


def check_threshold(threshold: Any) -> float | None:
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
        raise InvalidInputError("threshold", f"must be a number between 0 and 1, got {threshold!r}")
    return float(threshold)


def check_text(settings: Settings, text: Any, field: str) -> str:
    """A text to store or search for: a non-empty string within max_text_bytes, stripped."""
    if not isinstance(text, str):
        raise InvalidInputError(field, f"must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InvalidInputError(field, "is empty; give the text to remember")
    check_unicode(field, text)
    size = len(text.encode("utf-8"))
    if size > settings.max_text_bytes:
        raise InvalidInputError(
            field,
            f"is {size} bytes, over the limit of {settings.max_text_bytes} "
            "(MEM0_MCP_MAX_TEXT_BYTES); split it into smaller memories",
        )
    return text.strip()


def check_metadata(settings: Settings, metadata: Any, field: str = "metadata") -> dict[str, Any]:
    """A JSON object within max_text_bytes, returned as a plain copy."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidInputError(field, f"must be an object, got {type(metadata).__name__}")
    if not all(isinstance(k, str) for k in metadata):
        raise InvalidInputError(field, "keys must be strings")
    check_json(field, metadata)
    try:
        encoded = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(field, f"must be JSON-serializable: {exc}") from exc
    if len(encoded.encode("utf-8")) > settings.max_text_bytes:
        raise InvalidInputError(field, f"is over {settings.max_text_bytes} bytes as JSON")
    return dict(json.loads(encoded))


def check_memory_type(memory_type: Any, scope: Scope) -> str | None:
    if memory_type is not None and memory_type not in MEMORY_TYPES:
        raise InvalidInputError("memory_type", "must be 'semantic', 'episodic' or 'procedural' (or omitted)")
    if memory_type == "procedural" and not scope.agent_id:
        raise InvalidInputError("agent_id", "procedural memory summarizes an agent's run: give agent_id")
    return memory_type


def check_messages(settings: Settings, messages: Any) -> tuple[list[Message], list[str]]:
    """The messages of an add (a string is one user message) and warnings about skipped parts."""
    warnings: list[str] = []
    if isinstance(messages, str):
        check_text(settings, messages, "messages")
        return [Message(role="user", content=messages)], warnings
    if isinstance(messages, Mapping):
        messages = [messages]
    if not isinstance(messages, Sequence) or not messages:
        raise InvalidInputError(
            "messages", "must be a non-empty string or a list of {'role', 'content'} messages"
        )
    if len(messages) > settings.max_messages:
        raise InvalidInputError(
            "messages", f"has {len(messages)} messages; at most {settings.max_messages} per add"
        )
    out = []
    for i, raw in enumerate(messages):
        field = f"messages[{i}]"
        msg = _message(raw, field)
        if msg.name is not None and (not msg.name.strip() or len(msg.name) > MAX_NAME_LENGTH):
            raise InvalidInputError(f"{field}.name", f"must be 1 to {MAX_NAME_LENGTH} characters")
        if msg.metadata is not None:
            check_metadata(settings, msg.metadata, f"{field}.metadata")
        text = verbatim_text(msg.content, f"{field}.content", warnings)
        if isinstance(msg.content, str) or text:
            check_text(settings, text, f"{field}.content")
        out.append(msg)
    return out, warnings


def _message(raw: Any, field: str) -> Message:
    if isinstance(raw, Message):
        return raw
    if not isinstance(raw, Mapping):
        raise InvalidInputError(field, f"must be an object, got {type(raw).__name__}")
    try:
        return Message.model_validate(raw)
    except Exception as exc:
        raise InvalidInputError(
            field,
            "must be {'role': 'user'|'assistant'|'system'|'tool', 'content': str, "
            f"'name'?: str, 'metadata'?: object}}: {first_error(exc)}",
        ) from exc


def first_error(exc: Exception) -> str:
    """The first of a pydantic ValidationError's errors, as ``loc: msg``."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            loc = ".".join(str(p) for p in first.get("loc", ()))
            return f"{loc}: {first.get('msg')}" if loc else str(first.get("msg"))
        except Exception:
            pass
    return str(exc)
