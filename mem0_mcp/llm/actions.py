"""Turning the facts and the model's decisions into the Plan's actions.

The rules that keep the user's meaning: a stored memory is changed at most once per add, a
text is written at most once, and a contradiction (DELETE) never loses the new truth: the fact
is added and the deleted memory points at it (mem0 issue 4536).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from mem0_mcp.llm.decisions import Decision, Decisions, FactPlan
from mem0_mcp.llm.plan import Action, Neighbour
from mem0_mcp.llm.replies import norm

logger = logging.getLogger(__name__)

Embed = Callable[[Sequence[str]], np.ndarray]


def build_actions(
    facts: list[str],
    vectors: np.ndarray,
    plans: list[FactPlan],
    decisions: Decisions,
    memories: list[Neighbour],
    embed: Embed,
) -> list[Action]:
    """The actions for ``plans`` (facts in order), with a vector on every ADD and UPDATE.

    ``vectors`` are the facts' embeddings; ``decisions`` index into ``memories``. A fact whose
    decisions are all unusable is added. Only texts the model rewrote are embedded again.
    """
    builder = _Builder(facts)
    for plan in plans:
        if plan.certain is None:
            builder.decide(plan, decisions.get(plan.index, []), memories)
        elif plan.certain.event == "ADD":
            builder.add(plan.index, plan.fact)
        else:
            builder.none(plan.certain.memory_id or "", plan.certain.text)
    builder.attach_vectors(vectors, embed)
    return builder.actions


class _Builder:
    def __init__(self, facts: list[str]) -> None:
        self.facts = facts
        self.actions: list[Action] = []
        self.claimed: set[str] = set()  # memories already rewritten or deleted by this plan
        self.added: dict[str, int] = {}  # normalized text -> index of the action that writes it
        self.noned: set[str] = set()
        self.vector_of: dict[int, int] = {}  # action index -> fact index whose vector fits its text

    def add(self, fact_index: int, text: str) -> int:
        if norm(text) in self.added:
            return self.added[norm(text)]
        self.added[norm(text)] = len(self.actions)
        self.actions.append(Action("ADD", text))
        if text == self.facts[fact_index]:
            self.vector_of[len(self.actions) - 1] = fact_index
        return len(self.actions) - 1

    def none(self, target_id: str, text: str) -> None:
        if target_id not in self.noned:
            self.noned.add(target_id)
            self.actions.append(Action("NONE", text, memory_id=target_id))

    def update(self, plan: FactPlan, target: Neighbour, text: str) -> int:
        self.claimed.add(target.id)
        self.actions.append(Action("UPDATE", text, memory_id=target.id, previous=target.memory))
        self.added[norm(text)] = len(self.actions) - 1
        if text == plan.fact:
            self.vector_of[len(self.actions) - 1] = plan.index
        return len(self.actions) - 1

    def decide(self, plan: FactPlan, decided: Sequence[Decision], memories: list[Neighbour]) -> None:
        replacement: int | None = None
        deletes: list[Neighbour] = []
        covered = False
        for d in decided:
            if d.event == "ADD":
                idx = self.add(plan.index, d.text if d.text is not None else plan.fact)
                covered = True
                replacement = idx if replacement is None else replacement
                continue
            if d.memory is None:  # only an ADD names no memory, and parsing guarantees it
                continue
            target = memories[d.memory]
            if d.event == "NONE":
                self.none(target.id, target.memory)
                covered = True
            elif target.id in self.claimed:
                logger.warning("%s of memory %s ignored: this add already changed it", d.event, target.id)
            elif d.event == "UPDATE":
                idx = self.update(plan, target, d.text if d.text is not None else plan.fact)
                covered = True
                replacement = idx if replacement is None else replacement
            else:
                self.claimed.add(target.id)
                deletes.append(target)
        if deletes and replacement is None:
            # A contradiction must not lose the new truth (mem0 issue 4536).
            replacement = self.add(plan.index, plan.fact)
            covered = True
        if not covered:
            logger.info("no usable decision for fact %r; adding it", plan.fact)
            self.add(plan.index, plan.fact)
        for target in deletes:
            self.actions.append(
                Action(
                    "DELETE",
                    target.memory,
                    memory_id=target.id,
                    previous=target.memory,
                    superseded_by=replacement,
                )
            )

    def attach_vectors(self, vectors: np.ndarray, embed: Embed) -> None:
        # Vectors for ADD/UPDATE: reuse the fact's, embed only texts the model rewrote.
        actions = self.actions
        missing = [
            i for i, a in enumerate(actions) if a.event in ("ADD", "UPDATE") and i not in self.vector_of
        ]
        fresh = np.asarray(embed([actions[i].text for i in missing]), dtype=np.float32) if missing else None
        for i, a in enumerate(actions):
            if a.event not in ("ADD", "UPDATE"):
                continue
            if i in self.vector_of:
                a.vector = vectors[self.vector_of[i]]
            elif fresh is not None:
                a.vector = fresh[missing.index(i)]
