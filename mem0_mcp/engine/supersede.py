"""An add that replaces stored memories: they stay readable (get, history, include_superseded)
but leave default search and listing, and name the memory that superseded them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mem0_mcp.engine.rows import ChangeSource, HistoryRecord, history_record, in_scope
from mem0_mcp.engine.storage import Storage
from mem0_mcp.errors import InvalidInputError
from mem0_mcp.models import Scope

MAX_SUPERSEDES = 20


def check_supersedes(storage: Storage, scope: Scope, ids: Any) -> list[str]:
    """The ids an add supersedes: live memories of ``scope``, each once.

    Raises InvalidInputError naming ``supersedes[i]`` and the fix, before anything is written.
    """
    if ids is None:
        return []
    if isinstance(ids, str) or not isinstance(ids, Sequence):
        raise InvalidInputError("supersedes", 'must be a list of memory ids, e.g. ["<id from related>"]')
    if len(ids) > MAX_SUPERSEDES:
        raise InvalidInputError("supersedes", f"has {len(ids)} ids; at most {MAX_SUPERSEDES} per add")
    out: list[str] = []
    storage.move_journal()  # ids of adds still in the journal are valid targets too
    for i, raw in enumerate(ids):
        field = f"supersedes[{i}]"
        if not isinstance(raw, str) or not raw.strip() or "\x00" in raw or len(raw) > 256:
            raise InvalidInputError(field, "must be a memory id (a non-empty string from add or search)")
        key = raw.strip()
        row = storage.vectors.get(key)
        if row is None or not in_scope(row, scope):
            raise InvalidInputError(
                field, f"no memory with id {key!r} in this scope; take ids from `related` or search"
            )
        if row.get("superseded_at"):
            raise InvalidInputError(
                field, f"memory {key!r} is already superseded by {row.get('superseded_by')!r}; nothing to do"
            )
        if key not in out:
            out.append(key)
    return out


def mark_superseded(
    storage: Storage, scope: Scope, ids: Sequence[str], by: str, now: str, source: ChangeSource
) -> tuple[list[str], list[HistoryRecord]]:
    """Mark ``ids`` superseded by memory ``by``; the caller holds both locks and records the
    returned history. A memory gone or superseded meanwhile is skipped, and so is ``by`` itself."""
    done: list[str] = []
    history: list[HistoryRecord] = []
    for key in ids:
        row = storage.vectors.get(key)
        if key == by or row is None or not in_scope(row, scope) or row.get("superseded_at"):
            continue
        storage.vectors.update(key, {"superseded_at": now, "superseded_by": by, "updated_at": now})
        history.append(history_record(row, "DELETE", row["memory"], None, now, source, before=row))
        done.append(key)
    return done, history
