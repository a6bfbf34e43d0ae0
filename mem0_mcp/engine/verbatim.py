"""Adds stored as given: one memory per message, with exact and (optionally) near duplicates
answered by the id already stored."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from mem0_mcp.clock import now_iso
from mem0_mcp.engine.related import HINT, pick, related_candidates
from mem0_mcp.engine.rows import (
    ChangeSource,
    EmbedFn,
    MemoryRow,
    conversation_inputs,
    embed_inputs,
    history_record,
    index_text,
    new_row,
    outer_of,
)
from mem0_mcp.engine.storage import Storage
from mem0_mcp.engine.supersede import mark_superseded
from mem0_mcp.errors import InvalidInputError
from mem0_mcp.llm.content import verbatim_text
from mem0_mcp.models import AddEvent, AddResult, Message, Scope
from mem0_mcp.stores.filters import sql_str

logger = logging.getLogger(__name__)

ProgressFn = Callable[[float, float | None, str | None], None]


def add_verbatim(
    storage: Storage,
    embed: EmbedFn,
    msgs: list[Message],
    scope: Scope,
    *,
    actor_id: str | None,
    metadata: dict[str, Any],
    memory_type: str | None,
    event_at: str | None,
    near_duplicates: bool,
    progress: ProgressFn | None,
    on_stored: Callable[[Sequence[MemoryRow]], None],
    supersedes: Sequence[str] = (),
    source: ChangeSource = "api",
) -> AddResult:
    """Store each user, assistant or tool message with text as one memory of ``scope``.

    With write-behind on and no near-duplicate check, the rows are committed to the journal
    (SQLite, with their history) and moved to the table in the background. ``supersedes`` (ids
    checked by the caller) are marked superseded by the add's first memory in the same locked
    write. The result's ``related`` lists stored memories close to the new ones. Raises
    InvalidInputError when no message has text, StoreError when a store fails.
    """
    settings = storage.settings
    kept = [m for m in msgs if m.role != "system"]
    texts = [verbatim_text(m.content, "messages", []).strip() for m in kept]
    entries = [(m, t) for m, t in zip(kept, texts, strict=True) if t]
    if not entries:
        raise InvalidInputError("messages", "no user, assistant or tool message with text to remember")
    index_texts = [index_text(t, m.name.strip() if m.name else None) for m, t in entries]
    inputs = conversation_inputs(index_texts)
    created = now_iso()
    rows = [
        new_row(
            text,
            scope,
            now=created,
            inputs=inputs[i],
            outer=outer_of(index_texts, i),
            actor_id=actor_id or (msg.name.strip() if msg.name else None),
            role=msg.role,
            name=msg.name.strip() if msg.name else None,
            memory_type=memory_type,
            metadata={**metadata, **(msg.metadata or {})},
            event_at=event_at,
        )
        for i, (msg, text) in enumerate(entries)
    ]
    total = float(len(rows))
    if progress:
        progress(0.0, total, "embedding")
    vectors = embed_inputs(inputs, embed, settings.context_vectors)
    events: list[AddEvent] = []
    journaled = False
    fast = settings.write_behind and not near_duplicates and not supersedes
    superseded: list[str] = []
    with storage.journal_lock.hold() if fast else storage.writing():
        if near_duplicates or supersedes:
            # The nearest-neighbour check reads the table: journaled adds must be in it.
            storage.move_journal_locked()
        # Under the journal lock nobody else journals: a copy holding every entry now holds them
        # after this add stages its own, so one journal read serves the duplicate check and the
        # related lookup (one read of SQLite fewer per add).
        ticket = storage.copy_with_journal() if fast else None
        hashes = [r["hash"] for r in rows]
        # A fact told again later is the same fact; a turn of a conversation ("Yes.", "Thanks!")
        # said again in another session is another turn.
        any_time = len(rows) == 1
        existing = storage.known_hashes(hashes, scope, event_at, any_time=any_time, ticket=ticket)
        keep: list[int] = []
        for i, row in enumerate(rows):
            dup_id = existing.get(row["hash"])
            if dup_id is None and near_duplicates:
                dup_id = storage.near_duplicate(scope, vectors[i])
            if dup_id is not None:
                events.append(AddEvent(id=dup_id, memory=row["memory"], event="NONE"))
                continue
            existing[row["hash"]] = row["id"]
            keep.append(i)
            events.append(AddEvent(id=row["id"], memory=row["memory"], event="ADD"))
        if keep:
            new_rows = [rows[i] for i in keep]
            added = [history_record(r, "ADD", None, r["memory"], created, source) for r in new_rows]
            if fast:
                # Durable once this commits; the table gets the rows in the background.
                seqs = storage.history.add(
                    added, pending=list(zip(new_rows, vectors[keep], strict=True)), now=created
                )
                journaled = True
                storage.stage(new_rows, vectors[keep], seqs)
            else:
                version = storage.vectors.add(new_rows, vectors[keep])
                new_rows = _drop_lost_races(storage, new_rows, version, scope, event_at, any_time, events)
                stayed = {r["id"] for r in new_rows}
                storage.history.add([h for h in added if h["memory_id"] in stayed])
            on_stored(new_rows)
        if supersedes:
            superseded, records = mark_superseded(storage, scope, supersedes, events[0].id, created, source)
            storage.history.add(records)
    if progress:
        progress(total, total, "stored")
    if not journaled:
        storage.after_write(len(keep) + len(superseded))
    # Looked up after the write: the own rows are then journaled, and pick() leaves them out.
    # (Run on a pool beside the write it cost more: the write is ~0.5 ms, the scan memory-bound.)
    spare = len(rows) + len(supersedes)
    if not fast:
        ticket = storage.copy_with_journal()
    try:
        candidates = related_candidates(storage, scope, vectors, settings.related_threshold, spare, ticket)
    finally:
        if journaled:
            # Woken after the lookup, not before: the move takes the other core and the GIL for
            # milliseconds, and the lookup beside it was the slower for it.
            storage.mover.wake()
    related = pick(candidates, {e.id for e in events} | set(superseded))
    return AddResult(
        results=events, inferred=False, related=related, superseded=superseded, hint=HINT if related else None
    )


def _drop_lost_races(
    storage: Storage,
    rows: list[MemoryRow],
    version: int,
    scope: Scope,
    event_at: str | None,
    any_time: bool,
    events: list[AddEvent],
) -> list[MemoryRow]:
    """On object storage: the rows (just committed as ``version``) that stay. A row whose text
    another node committed first in the scope is deleted again, and its event becomes NONE with
    the earlier memory's id (engine/cross_node.py says why exactly one row survives)."""
    earlier = storage.earlier
    if earlier is None:
        return rows
    try:
        winners = earlier.winners(rows, version, scope, event_at, any_time=any_time)
        if winners:
            storage.vectors.delete(f"id IN ({', '.join(sql_str(i) for i in winners)})", ids=list(winners))
    except Exception as exc:
        # The rows stay (and get their history): at worst a duplicate, which
        # `mem0-mcp doctor --repair` merges.
        logger.warning("cannot check the add against other nodes' adds (a duplicate may remain): %s", exc)
        return rows
    if not winners:
        return rows
    for i, event in enumerate(events):
        if event.id in winners:
            events[i] = AddEvent(id=winners[event.id], memory=event.memory, event="NONE")
    logger.info(
        "%d memories were added by another node at the same moment: answered with theirs", len(winners)
    )
    return [r for r in rows if r["id"] not in winners]
