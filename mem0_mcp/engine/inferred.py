"""Adds through the LLM memory manager: plan (extract facts, decide ADD / UPDATE / DELETE / NONE)
outside any lock, then apply the plan under the write lock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mem0_mcp.clock import now_iso
from mem0_mcp.engine.rows import (
    EmbedFn,
    EmbedInput,
    HistoryRecord,
    MemoryRow,
    embed_inputs,
    history_record,
    in_scope,
    new_row,
    standalone_text,
)
from mem0_mcp.engine.storage import Storage
from mem0_mcp.llm.pipeline import Action, MemoryPipeline, Neighbour, Plan
from mem0_mcp.models import AddEvent, AddResult, Message, Scope
from mem0_mcp.stores.filters import sql_str

ProgressFn = Callable[[float, float | None, str | None], None]


def plan_add(
    pipeline: MemoryPipeline,
    storage: Storage,
    embed: EmbedFn,
    msgs: list[Message],
    scope: Scope,
    memory_type: str | None,
) -> Plan:
    """The pipeline's plan for an add; never raises for the model's faults (the plan then says
    ``inferred=False`` with the reason, and the caller stores verbatim)."""

    def neighbours(vectors: np.ndarray) -> list[list[Neighbour]]:
        return [
            [
                Neighbour(str(h["id"]), str(h["memory"]), 1.0 - float(h["_distance"]))
                for h in storage.nearest(scope, vector, 5)
            ]
            for vector in vectors
        ]

    # The planner compares facts with stored memories: adds still in the journal count too.
    storage.move_journal()
    return pipeline.plan(
        msgs, agent_mode=bool(scope.agent_id), memory_type=memory_type, embed=embed, neighbours=neighbours
    )


@dataclass
class _Apply:
    """The state of applying one plan: what each action wrote, and what to record."""

    storage: Storage
    embed: EmbedFn
    scope: Scope
    now: str
    events: list[AddEvent | None]
    ids: list[str | None]  # memory id each action wrote
    history: list[HistoryRecord] = field(default_factory=list)
    live: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    writes: int = 0

    def current(self, memory_id: str) -> dict[str, Any] | None:
        """A targeted memory as it is now: None when gone, someone else's or superseded."""
        if memory_id not in self.live:
            row = self.storage.vectors.get(memory_id)
            ok = row is not None and in_scope(row, self.scope) and not row.get("superseded_at")
            self.live[memory_id] = row if ok else None
        return self.live[memory_id]

    def vector(self, action: Action, inputs: EmbedInput) -> np.ndarray:
        # The planner's vector is the plain fact's: usable when the index text is the fact alone.
        if action.vector is not None and inputs.own == action.text and not inputs.neighbours:
            return action.vector
        mode = self.storage.settings.context_vectors
        return embed_inputs([inputs], self.embed, mode)[0]

    def update(self, i: int, action: Action, row: dict[str, Any]) -> None:
        if action.text == row["memory"]:
            self.ids[i] = row["id"]
            self.events[i] = AddEvent(id=row["id"], memory=row["memory"], event="NONE")
            return
        values, inputs = standalone_text(row, action.text)
        self.storage.vectors.update(
            row["id"], {**values, "vector": self.vector(action, inputs), "updated_at": self.now}
        )
        self.history.append(
            history_record(row, "UPDATE", row["memory"], action.text, self.now, "llm", before=row)
        )
        self.ids[i] = row["id"]
        self.events[i] = AddEvent(
            id=row["id"], memory=action.text, event="UPDATE", previous_memory=row["memory"]
        )
        self.writes += 1

    def delete(self, i: int, action: Action, row: dict[str, Any], by: str | None, hard: bool) -> None:
        if hard:
            self.storage.vectors.delete(f"id = {sql_str(row['id'])}", ids=[row["id"]])
        else:
            # Soft: out of default search, still readable through get/history.
            self.storage.vectors.update(
                row["id"], {"superseded_at": self.now, "superseded_by": by, "updated_at": self.now}
            )
        self.history.append(history_record(row, "DELETE", row["memory"], None, self.now, "llm", before=row))
        self.events[i] = AddEvent(id=row["id"], memory=row["memory"], event="DELETE")
        self.writes += 1


def apply_plan(
    plan: Plan,
    storage: Storage,
    embed: EmbedFn,
    msgs: list[Message],
    scope: Scope,
    *,
    actor_id: str | None,
    metadata: dict[str, Any],
    memory_type: str | None,
    event_at: str | None,
    on_stored: Callable[[list[MemoryRow]], None],
) -> list[AddEvent]:
    """Write the plan's actions and their history in one locked step; the events, in plan order.

    Every targeted row is read again under the lock, so a memory changed meanwhile by someone
    else is not clobbered: an UPDATE whose target vanished still keeps the new fact as an ADD.
    """
    agent_facts = bool(scope.agent_id) and any(m.role == "assistant" for m in msgs)
    meta = dict(metadata)
    for m in msgs:
        meta.update(m.metadata or {})
    speaker_role = "assistant" if agent_facts else "user"
    names = {m.name.strip() for m in msgs if m.name and m.role == speaker_role}
    actor = actor_id or (next(iter(names)) if len(names) == 1 else None)
    n = len(plan.actions)
    with storage.writing():
        storage.move_journal_locked()
        state = _Apply(storage, embed, scope, now_iso(), [None] * n, [None] * n)
        new_rows: list[MemoryRow] = []
        new_vectors: list[np.ndarray] = []
        # ADD and UPDATE first: a DELETE names the memory that superseded it.
        for i, action in enumerate(plan.actions):
            if action.event == "UPDATE" and action.memory_id and (row := state.current(action.memory_id)):
                state.update(i, action, row)
            elif action.event in ("ADD", "UPDATE"):
                added = new_row(
                    action.text,
                    scope,
                    now=state.now,
                    actor_id=actor,
                    role=speaker_role,
                    name=None,
                    memory_type=memory_type,
                    metadata=meta,
                    event_at=event_at,
                )
                new_rows.append(added)
                new_vectors.append(state.vector(action, EmbedInput(added["memory"])))
                state.ids[i] = added["id"]
                state.events[i] = AddEvent(id=added["id"], memory=action.text, event="ADD")
        if new_rows:
            storage.vectors.add(new_rows, np.stack(new_vectors))
            state.history.extend(
                history_record(r, "ADD", None, r["memory"], state.now, "llm") for r in new_rows
            )
            state.writes += len(new_rows)
            on_stored(new_rows)
        for i, action in enumerate(plan.actions):
            if action.event == "NONE" and action.memory_id:
                state.events[i] = AddEvent(id=action.memory_id, memory=action.text, event="NONE")
            elif action.event == "DELETE" and action.memory_id and (row := state.current(action.memory_id)):
                by = state.ids[action.superseded_by] if action.superseded_by is not None else None
                state.delete(i, action, row, by, storage.settings.hard_delete)
        if state.history:
            storage.history.add(state.history)
    storage.after_write(state.writes)
    return [e for e in state.events if e is not None]


def inferred_result(plan: Plan, events: list[AddEvent], warnings: list[str]) -> AddResult:
    """The result of an applied plan, with the pipeline's warnings after the caller's."""
    # The message check warns about every image block, since verbatim storage cannot use
    # them; the pipeline knows whether they were described, so its word wins when inferred.
    all_warnings = [w for w in warnings if "image skipped" not in w]
    all_warnings += [w for w in plan.warnings if w not in all_warnings]
    if not plan.actions:
        all_warnings.append("the LLM found nothing worth remembering in these messages; nothing was stored")
    return AddResult(results=events, inferred=True, reason=None, usage=plan.usage, warnings=all_warnings)


def add_inferred(
    pipeline: MemoryPipeline,
    storage: Storage,
    embed: EmbedFn,
    msgs: list[Message],
    scope: Scope,
    *,
    actor_id: str | None,
    metadata: dict[str, Any],
    memory_type: str | None,
    event_at: str | None,
    warnings: list[str],
    progress: ProgressFn | None,
    on_stored: Callable[[list[MemoryRow]], None],
) -> AddResult:
    """An add through the LLM pipeline: plan, then apply. A result with ``inferred=False`` and a
    reason means: store verbatim. Planning (LLM calls, embedding, neighbour lookups) runs outside
    the write lock: it takes seconds and must not block other writers."""
    if progress:
        progress(0.0, None, "extracting facts")
    plan = plan_add(pipeline, storage, embed, msgs, scope, memory_type)
    if not plan.inferred:
        extra = [w for w in plan.warnings if "image" not in w and w not in warnings]
        return AddResult(inferred=False, reason=plan.reason, usage=plan.usage, warnings=[*warnings, *extra])
    if progress:
        progress(0.0, float(len(plan.actions)), "applying")
    events = apply_plan(
        plan,
        storage,
        embed,
        msgs,
        scope,
        actor_id=actor_id,
        metadata=metadata,
        memory_type=memory_type,
        event_at=event_at,
        on_stored=on_stored,
    )
    if progress:
        progress(float(len(plan.actions)), float(len(plan.actions)), "stored")
    return inferred_result(plan, events, warnings)
