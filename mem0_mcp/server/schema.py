"""Shapes the MCP tools return (structured output) and the opaque list cursor.

Only pydantic and the engine models: importing this stays cheap.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from pydantic import BaseModel, Field

from mem0_mcp.errors import InvalidInputError
from mem0_mcp.models import HistoryEntry, MemoryItem


class MemoryList(BaseModel):
    """One page of memories."""

    results: list[MemoryItem] = Field(default_factory=list)
    total: int = Field(description="How many memories match, over all pages.")
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` to list_memories for the next page; null on the last page."
    )


class MemoryHistory(BaseModel):
    """Every change of one memory, oldest first."""

    memory_id: str
    entries: list[HistoryEntry] = Field(default_factory=list)


def _fingerprint(query: dict[str, Any]) -> str:
    blob = json.dumps(query, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def encode_cursor(after: list[str], query: dict[str, Any]) -> str:
    """Opaque to clients: where the next page starts (the last memory listed, so additions and
    deletions in between neither repeat nor skip), bound to the query so it cannot be replayed
    on another one."""
    raw = json.dumps({"a": after, "q": _fingerprint(query)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, query: dict[str, Any]) -> list[str]:
    bad = InvalidInputError(
        "cursor", "not a cursor returned by list_memories; omit it to start from the first page"
    )
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after = data["a"]
        fingerprint = data["q"]
    except (ValueError, binascii.Error, KeyError, TypeError):
        raise bad from None
    if not isinstance(after, list) or len(after) != 2 or not all(isinstance(a, str) for a in after):
        raise bad
    if fingerprint != _fingerprint(query):
        raise InvalidInputError(
            "cursor",
            "this cursor belongs to a list_memories call with other scope, filters or limit; "
            "repeat the same arguments with the cursor, or omit it to start over",
        )
    return after
