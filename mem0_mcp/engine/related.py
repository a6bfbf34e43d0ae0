"""What an add found near it: the stored memories of the scope that the new text may duplicate,
refine or contradict, so that an agent acting as memory manager can decide (supersede, update,
delete) without a search of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from mem0_mcp.engine.rows import in_scope
from mem0_mcp.engine.storage import CopyTicket, Storage
from mem0_mcp.models import RelatedMemory, Scope

MAX_RELATED = 3
# An add of more messages than this is an import of a conversation, not a fact an agent is
# deciding about: it lists no related memories, and batched ingest pays nothing for them.
MAX_SOURCES = 16
COLUMNS = ("id", "memory", "event_at", "created_at")
HINT = (
    "related: stored memories close to this one. If the new memory replaces one (a change, a "
    "correction, a contradiction), pass its id in supersedes=[...] next time, or call "
    "update_memory / delete_memory on it now; a refinement or an unrelated memory needs nothing."
)


# The copy's searches of a lookup started before an add's write run here, beside the write: the
# int8 product (~0.3 ms at 10k, without the GIL or the copy's lock) overlaps the journal commit.
_BESIDE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mem0-related")


def start_related(
    storage: Storage, scope: Scope, vectors: np.ndarray, floor: float, spare: int, *, beside: bool = False
) -> Callable[[], list[RelatedMemory]]:
    """Start looking up the live memories of ``scope`` whose cosine to any of ``vectors`` is at
    least ``floor``; the function returned finishes it and returns them, best first:
    MAX_RELATED + ``spare`` at most, so that ``pick`` can leave out the add's own ids. Nothing
    for more than MAX_SOURCES vectors.

    Reads the in-process copy (LanceDB when it cannot serve) and the journal, without moving
    it. ``beside``: the copy's searches start now on a worker thread, and what is written before
    the finish (the add's own rows, which ``pick`` leaves out) may or may not be seen.
    Raises StoreError (at the finish) when a store fails.
    """
    if len(vectors) > MAX_SOURCES:
        return lambda: []
    k = MAX_RELATED + spare
    values = scope.model_dump()
    # A copy holding every journal entry (this process staged its own adds there) serves the
    # journaled rows too: reading them back from SQLite cost ~0.5 ms of a ~1.7 ms add at 10k.
    # Taken before a write starts: the journal then holds nothing the copy lacks.
    ticket = storage.copy_with_journal() if beside else None
    if ticket is None:
        return lambda: related_found(storage, scope, vectors, floor, k, storage.copy_with_journal())
    copy = ticket.copy
    searches = _BESIDE.submit(lambda: [copy.search(v, k, values, False, COLUMNS) for v in vectors])

    def finish() -> list[RelatedMemory]:
        hits = searches.result()
        if not storage.copy_unchanged(ticket):  # reloaded meanwhile: staged rows were dropped
            return related_found(storage, scope, vectors, floor, k, storage.copy_with_journal())
        return best_of(hits, floor, k)

    return finish


def related_found(
    storage: Storage, scope: Scope, vectors: np.ndarray, floor: float, k: int, ticket: CopyTicket | None
) -> list[RelatedMemory]:
    """The lookup of ``start_related``, here and now (``ticket``: the copy, when it holds the
    journal)."""
    values = scope.model_dump()
    hits: list[list[dict[str, Any]]] = []
    for vector in vectors:
        # The ticket's copy was found current just now: no second freshness check (a stat).
        found = (
            ticket.copy.search(vector, k, values, False, COLUMNS)
            if ticket is not None
            else storage.vectors.dense_search(vector, k, values, include_superseded=False, columns=COLUMNS)
        )
        hits.append(found if found is not None else storage.nearest(scope, vector, k))
    served = ticket is not None and storage.copy_unchanged(ticket)
    if not served and storage.history.has_pending():
        # Adds of the last moments, still on their way to the table.
        for pending in storage.history.pending(1000, changes=False):
            row = pending.row
            if in_scope(row, scope) and not row.get("superseded_at"):
                hits.append([{**row, "_distance": 1.0 - float(np.max(vectors @ pending.vector))}])
    return best_of(hits, floor, k)


def best_of(hits: Iterable[Iterable[Mapping[str, Any]]], floor: float, k: int) -> list[RelatedMemory]:
    """The best ``k`` distinct rows of ``hits`` (each with ``_distance``) at cosine ``floor`` or
    more, a row by its best score."""
    best: dict[str, RelatedMemory] = {}
    for hit in (h for found in hits for h in found):
        score = 1.0 - float(hit["_distance"])
        row_id = str(hit["id"])
        if score >= floor and (row_id not in best or best[row_id].score < score):
            best[row_id] = RelatedMemory(
                id=row_id,
                memory=str(hit["memory"]),
                score=round(score, 4),
                event_at=hit.get("event_at"),
                created_at=hit.get("created_at"),
            )
    return sorted(best.values(), key=lambda r: r.score, reverse=True)[:k]


def pick(candidates: list[RelatedMemory], exclude: Iterable[str]) -> list[RelatedMemory]:
    """The best MAX_RELATED candidates that are not ``exclude`` (the add's own memories)."""
    skip = set(exclude)
    return [c for c in candidates if c.id not in skip][:MAX_RELATED]
