"""Undo: put a memory back as it was before its latest change (an UPDATE, a DELETE or supersede,
or a RESTORE), whoever made that change. The undo is itself a change in the history, so it can
be undone too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mem0_mcp.clock import now_iso
from mem0_mcp.engine.rows import (
    ChangeSource,
    EmbedFn,
    EmbedInput,
    MemoryRow,
    embed_inputs,
    history_record,
    in_scope,
    row_metadata,
    text_change,
    to_item,
)
from mem0_mcp.engine.storage import Storage
from mem0_mcp.engine.validation import check_memory_id
from mem0_mcp.errors import InvalidInputError, NotFoundError
from mem0_mcp.models import HistoryEntry, RestoreResult, Scope
from mem0_mcp.stores.columns import ROW_COLUMNS
from mem0_mcp.stores.filters import sql_str


def restore(
    storage: Storage, embed: EmbedFn, memory_id: Any, scope: Scope | None, source: ChangeSource
) -> RestoreResult:
    """Revert the latest change of a memory of ``scope``.

    Raises NotFoundError when the scope has no such memory (live, superseded or deleted),
    InvalidInputError when there is nothing to revert (only its creation) or the history kept no
    copy to revert to (changes made before copies were kept, except soft deletes and updates).
    """
    key = check_memory_id(memory_id)
    with storage.writing():
        storage.move_journal_locked()
        change = storage.history.latest_change(key)
        if change is None:
            if not storage.history.get(key):
                raise NotFoundError(key)
            raise InvalidInputError(
                "memory_id", "nothing to restore: the memory was never changed; delete it to remove it"
            )
        entry, before = change
        if scope is not None and not in_scope(entry.model_dump(), scope):
            raise NotFoundError(key)
        current = storage.vectors.get(key)
        now = now_iso()
        target = before if before is not None else _without_copy(entry, current)
        if target is None:
            # The change undone re-created a deleted memory: undoing it deletes it again.
            assert current is not None
            storage.vectors.delete(f"id = {sql_str(key)}", ids=[key])
            storage.history.add(
                [history_record(current, "RESTORE", current["memory"], None, now, source, before=current)]
            )
            storage.after_write(1)
            return RestoreResult(memory=None, reverted=entry.event, message=f"memory {key} removed again")
        row = _row(target, now)
        vector = embed_inputs([EmbedInput.of_row(row)], embed, storage.settings.context_vectors)
        if current is not None:
            values: dict[str, Any] = {c: v for c, v in dict(row).items() if c != "id"}
            values["vector"] = vector[0]
            storage.vectors.update(key, values)
        else:
            storage.vectors.add([row], vector)
        old = current["memory"] if current is not None else None
        storage.history.add([history_record(row, "RESTORE", old, row["memory"], now, source, before=current)])
    storage.after_write(1)
    return RestoreResult(
        memory=to_item(row), reverted=entry.event, message=f"memory {key}: the {entry.event} was undone"
    )


def _without_copy(entry: HistoryEntry, current: dict[str, Any] | None) -> dict[str, Any] | None:
    """What to revert to when the history kept no copy of the memory before the change."""
    if entry.event == "RESTORE" and current is not None:
        return None  # that restore brought the memory back from nothing
    if entry.event == "UPDATE" and current is not None and entry.old_memory is not None:
        fields, _ = text_change(current, entry.old_memory)
        return {**current, **fields}
    if entry.event == "DELETE" and current is not None:
        return {**current, "superseded_at": None, "superseded_by": None}
    raise InvalidInputError(
        "memory_id",
        f"cannot restore: the history kept no copy of this memory before its {entry.event} "
        "(changes made before this version); add its text again instead",
    )


def _row(target: Mapping[str, Any], now: str) -> MemoryRow:
    """A full row from a kept copy, its metadata as an object, touched now."""
    values = {c: target.get(c) for c in ROW_COLUMNS}
    values["metadata"] = row_metadata(values)
    values["updated_at"] = now
    return MemoryRow(**values)  # type: ignore[typeddict-item]
