"""Reads for a person browsing the store (the local page): which scopes hold memories, which
memories of a scope were deleted (they live on in the history only), and pages of a listing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mem0_mcp.engine.rows import to_item
from mem0_mcp.engine.storage import Storage
from mem0_mcp.models import HistoryEntry, MemoryPage, Scope

_SCOPE_COLUMNS = ("user_id", "agent_id", "run_id")


@dataclass(frozen=True)
class ScopeCount:
    """A scope that holds memories, and how many of them are live (not superseded)."""

    scope: Scope
    memories: int

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.scope.as_dict().items()) or "(no scope)"


def list_scopes(storage: Storage) -> list[ScopeCount]:
    """Every scope with at least one live memory, the most memories first (then by name).

    Takes the engine's Storage (``Memory.storage``); reads three columns of every row, so it
    costs a scan of the table. Raises StoreError when the table cannot be read.
    """
    storage.move_journal()
    rows = storage.vectors.query("superseded_at IS NULL", columns=_SCOPE_COLUMNS)
    counts = Counter(tuple(r.get(c) or None for c in _SCOPE_COLUMNS) for r in rows)
    found = [
        ScopeCount(Scope(user_id=u, agent_id=a, run_id=r), n)
        for (u, a, r), n in counts.items()
        if u or a or r
    ]
    return sorted(found, key=lambda s: (-s.memories, s.label))


def deleted_memories(storage: Storage, scope: Scope, limit: int = 100) -> list[HistoryEntry]:
    """The memories of ``scope`` deleted for good (no row left), newest deletion first: each as
    its DELETE event, whose ``old_memory`` is the text it had. ``Memory.restore`` brings one back.

    Superseded memories keep their row and are not listed here (``get_all`` with
    ``include_superseded`` shows them). Raises StoreError when a store cannot be read.
    """
    entries = storage.history.latest_deletes(scope.as_dict(), limit)
    alive = storage.vectors.existing_ids([e.memory_id for e in entries])
    return [e for e in entries if e.memory_id not in alive]


def page_of(
    keys: list[tuple[str, str]],
    rows_of: Callable[[Sequence[str]], Mapping[str, Mapping[str, Any]]],
    k: int,
    offset: int,
    mark: tuple[str, str] | None,
) -> MemoryPage:
    """The page of ``keys`` ((created_at, id) of every row listed) at ``offset`` after ``mark``."""
    keys.sort(reverse=True)
    rest = keys if mark is None else [key for key in keys if key < mark]
    window = rest[offset : offset + k]
    page_ids = [key[1] for key in window]
    rows = rows_of(page_ids) if page_ids else {}
    items = [to_item(rows[i]) for i in page_ids if i in rows]
    more = offset + k < len(rest)
    last = window[-1] if window else None
    return MemoryPage(
        results=items,
        total=len(keys),
        offset=offset,
        next_offset=offset + k if more and mark is None else None,
        next_after=[last[0], last[1]] if more and last is not None else None,
    )
