"""What an add found near it: the stored memories of the scope that the new text may duplicate,
refine or contradict, so that an agent acting as memory manager can decide (supersede, update,
delete) without a search of its own."""

from __future__ import annotations

from collections.abc import Iterable

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


def related_candidates(
    storage: Storage,
    scope: Scope,
    vectors: np.ndarray,
    floor: float,
    spare: int,
    ticket: CopyTicket | None,
) -> list[RelatedMemory]:
    """Live memories of ``scope`` whose cosine to any of ``vectors`` is at least ``floor``, best
    first: MAX_RELATED + ``spare`` of them at most, so that ``pick`` can leave out the add's own
    ids. Nothing for more than MAX_SOURCES vectors.

    ``ticket``: the in-process copy as ``Storage.copy_with_journal`` found it holding every
    journal entry at the add's write (None: it did not). The memories are those stored as of
    that write: an entry another process journals after it is not looked for. Reads the copy
    (LanceDB when it cannot serve) and the journal, without moving the journal.
    """
    if len(vectors) > MAX_SOURCES:
        return []
    best: dict[str, RelatedMemory] = {}

    def consider(row_id: str, memory: str, score: float, event_at: str | None, created: str | None) -> None:
        if score < floor:
            return
        if row_id not in best or best[row_id].score < score:
            best[row_id] = RelatedMemory(
                id=row_id, memory=memory, score=round(score, 4), event_at=event_at, created_at=created
            )

    k = MAX_RELATED + spare
    values = scope.model_dump()
    # A copy holding every journal entry (this process staged its own adds there) serves the
    # journaled rows too: reading them back from SQLite cost ~0.5 ms of a ~1.7 ms add at 10k.
    # Every row while the int8 rows make that cheap (to 8x the ANN threshold): the IVF lists a
    # search reads miss the neighbour an agent must see here. At 100k facts, 32 lists listed 11
    # of 18 same-thing pairs (a job change, a move) in 1.0 ms, every row 18 in 2.4 ms
    # (benchmarks/related_ann.py).
    for vector in vectors:
        # The ticket's copy was found current just now: no second freshness check (a stat).
        hits = (
            ticket.copy.search(vector, k, values, False, COLUMNS, exact=None)
            if ticket is not None
            else storage.vectors.dense_search(
                vector, k, values, include_superseded=False, columns=COLUMNS, exact=None
            )
        )
        if hits is None:
            hits = storage.nearest(scope, vector, k)
        for hit in hits:
            consider(
                str(hit["id"]),
                str(hit["memory"]),
                1.0 - float(hit["_distance"]),
                hit.get("event_at"),
                hit.get("created_at"),
            )
    served = ticket is not None and storage.copy_unchanged(ticket)
    if not served and storage.history.has_pending():
        # Adds of the last moments, still on their way to the table.
        for pending in storage.history.pending(1000, changes=False):
            row = pending.row
            if not in_scope(row, scope) or row.get("superseded_at"):
                continue
            score = float(np.max(vectors @ pending.vector))
            consider(str(row["id"]), str(row["memory"]), score, row.get("event_at"), row.get("created_at"))
    return sorted(best.values(), key=lambda r: r.score, reverse=True)[:k]


def pick(candidates: list[RelatedMemory], exclude: Iterable[str]) -> list[RelatedMemory]:
    """The best MAX_RELATED candidates that are not ``exclude`` (the add's own memories)."""
    skip = set(exclude)
    return [c for c in candidates if c.id not in skip][:MAX_RELATED]
