"""Errors the engine raises. Each message names the field at fault and how to fix it.

They are plain exceptions (no MCP import): the server turns them into tool errors.
"""

from __future__ import annotations


class Mem0Error(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(Mem0Error):
    """A setting is invalid; raised at start."""


class InvalidInputError(Mem0Error, ValueError):
    """The caller passed something malformed. ``field`` names the argument at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class ScopeRequiredError(InvalidInputError):
    def __init__(self, operation: str) -> None:
        super().__init__(
            "user_id/agent_id/run_id",
            f"{operation} needs at least one of user_id, agent_id or run_id to say whose memories these are",
        )


class NotFoundError(Mem0Error, LookupError):
    def __init__(self, memory_id: str) -> None:
        self.memory_id = memory_id
        super().__init__(
            f"memory_id: no memory with id {memory_id!r} in your scope; "
            "use search_memory or list_memories to find valid ids"
        )


class EmbedderMismatchError(Mem0Error):
    """The configured embedding model differs from the one the store was built with."""


class StoreError(Mem0Error):
    """A storage backend failed in a way the caller cannot fix by changing the input."""
