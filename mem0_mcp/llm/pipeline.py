"""The planner behind ``add(..., infer=True)``: conversation in, a list of memory actions out.

It knows no storage. The engine hands it two callables (embed texts, find the nearest stored
memories of the same scope per vector) and applies the returned Plan. Every place where the
answer is certain skips the LLM: a near-exact duplicate is NONE, and facts with no related
memory at all are ADDed without the decision call. What remains goes to ONE decision call
over all those facts at once, with stored memories shown under small integer ids so the model
never has to copy (or invent) UUIDs.

``single_call=True`` (opt-in) fuses extraction and decision into one call whenever the scope
already holds memories; on LoCoMo replayed as adds that is 43% fewer calls than the plain
extract-then-decide pipeline, against 3% for the shortcuts alone (benchmarks/llm_cost.py), at
the price of a harder prompt for the model.

The stages live in their own modules: content (messages to a transcript), extraction (facts),
decisions (the decision and fused calls), actions (decisions to the Plan's actions).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date

import numpy as np

from mem0_mcp.llm.actions import build_actions
from mem0_mcp.llm.base import LLM, ImageBlock, LLMError
from mem0_mcp.llm.chunks import DEFAULT_TOKEN_BUDGET, chunk_lines, estimate_tokens
from mem0_mcp.llm.content import transcript
from mem0_mcp.llm.decisions import Decisions, FactPlan, ask_decisions, ask_fused
from mem0_mcp.llm.extraction import describe_image, extract_facts, procedural_summary
from mem0_mcp.llm.plan import Action, EventName, Neighbour, Plan
from mem0_mcp.llm.prompts import PromptError, PromptSet
from mem0_mcp.llm.replies import (
    DEFAULT_MAX_FACT_BYTES,
    DEFAULT_MAX_FACTS,
    ReplyLimits,
    UnusableReplyError,
    preview,
)
from mem0_mcp.llm.run import Run
from mem0_mcp.models import Message, Usage

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MAX_FACTS",
    "DEFAULT_MAX_FACT_BYTES",
    "DEFAULT_TOKEN_BUDGET",
    "Action",
    "EventName",
    "MemoryPipeline",
    "Neighbour",
    "Plan",
    "UnusableReplyError",
    "estimate_tokens",
]

Embed = Callable[[Sequence[str]], np.ndarray]
FindNeighbours = Callable[[np.ndarray], list[list[Neighbour]]]
"""Per vector, the nearest stored memories of the add's scope."""


class MemoryPipeline:
    """Plans the memory actions of one add with the model; see the module docstring."""

    def __init__(
        self,
        llm: LLM | None,
        prompts: PromptSet,
        *,
        dedup_threshold: float = 0.97,
        related_threshold: float = 0.35,
        token_budget: int = DEFAULT_TOKEN_BUDGET,
        max_tokens: int | None = None,
        today: Callable[[], date] | None = None,
        always_decide: bool = False,
        single_call: bool = False,
        max_shown_memories: int = 30,
        max_facts: int = DEFAULT_MAX_FACTS,
        max_fact_bytes: int = DEFAULT_MAX_FACT_BYTES,
    ) -> None:
        """Raises ValueError for a ``token_budget`` under 64."""
        if token_budget < 64:
            raise ValueError("token_budget must be at least 64")
        self.llm = llm
        self.prompts = prompts
        self.dedup_threshold = dedup_threshold
        # Below this cosine a stored memory is unrelated to a fact: it cannot make the fact a
        # repeat, an update or a contradiction, so it is not worth a decision call.
        self.related_threshold = related_threshold
        self.token_budget = token_budget
        self.max_tokens = max_tokens
        self.today = today or date.today
        # The plain two-call pipeline (extract, then always decide over the top 5): only for
        # measuring what the shortcuts save (benchmarks/llm_cost.py).
        self.always_decide = always_decide
        # Extraction and decision fused into one call whenever the scope holds memories related
        # to the conversation (found by embedding the messages): one call per add instead of two.
        self.single_call = single_call
        self.max_shown_memories = max_shown_memories
        # A hostile or broken model must not turn one add into thousands of memories or store
        # megabytes the user never wrote: past these bounds the add falls back to verbatim.
        self.max_facts = max_facts
        self.max_fact_bytes = max_fact_bytes

    def plan(
        self,
        messages: list[Message],
        *,
        agent_mode: bool,
        memory_type: str | None,
        embed: Embed,
        neighbours: FindNeighbours,
    ) -> Plan:
        """The actions for an add of ``messages``.

        ``agent_mode`` extracts the assistant's facts when it spoke; ``memory_type`` "procedural"
        summarises the run instead. Never raises: whatever fails (no LLM, a broken prompt, the
        model, a reply past the bounds) gives ``Plan(inferred=False, reason=...)`` so the engine
        stores the messages verbatim.
        """
        if self.llm is None:
            return Plan(
                [],
                Usage(),
                inferred=False,
                reason="no LLM is configured (llm_provider is none and no API key was found); "
                "stored verbatim with near-duplicate detection",
            )
        llm = self.llm
        run = Run(llm, self.prompts, self.today, self.max_tokens)
        try:
            actions = self._actions(run, messages, agent_mode, memory_type, embed, neighbours)
        except PromptError as exc:
            # A broken custom prompt must not lose the user's text: store verbatim, say why.
            logger.error("prompt error, the engine stores verbatim: %s", exc)
            reason = f"{exc}; stored verbatim instead"
        except LLMError as exc:
            logger.warning("inference failed, the engine stores verbatim: %s", exc)
            reason = f"the LLM ({llm.name}) failed: {exc}; stored verbatim instead"
        except Exception as exc:
            # Whatever else breaks while planning (a reply shaped in a way nobody foresaw), the
            # user's text was accepted and must be kept: verbatim, with the reason.
            logger.exception("the memory manager failed, the engine stores verbatim")
            reason = (
                f"the memory manager failed ({type(exc).__name__}: {preview(exc)}); stored verbatim instead"
            )
        else:
            return Plan(actions, run.usage, inferred=True, warnings=run.warnings)
        return Plan([], run.usage, inferred=False, reason=reason, warnings=run.warnings)

    # ---------------------------------------------------------------- stages

    def _limits(self) -> ReplyLimits:
        return ReplyLimits(self.max_facts, self.max_fact_bytes)

    def _actions(
        self,
        run: Run,
        messages: list[Message],
        agent_mode: bool,
        memory_type: str | None,
        embed: Embed,
        neighbours: FindNeighbours,
    ) -> list[Action]:
        def describe(image: ImageBlock, context: str) -> str | None:
            return describe_image(run, image, context)

        lines = transcript(messages, describe, run.warn)
        if not lines:
            return []
        if memory_type == "procedural":
            summary = procedural_summary(run, lines, self._limits(), self.token_budget)
            return [Action("ADD", summary, vector=np.asarray(embed([summary]))[0])]
        agent_facts = agent_mode and any(m.role == "assistant" for m in messages)
        if self.single_call and not agent_facts:
            fused = self._single_call(run, lines, embed, neighbours)
            if fused is not None:
                return fused
        prompt = "agent_fact_extraction" if agent_facts else "fact_extraction"
        facts = extract_facts(run, prompt, lines, self._limits(), self.token_budget)
        return self._decide(run, facts, embed, neighbours) if facts else []

    def _decide(self, run: Run, facts: list[str], embed: Embed, neighbours: FindNeighbours) -> list[Action]:
        vectors = np.asarray(embed(facts), dtype=np.float32)
        found = neighbours(vectors) if len(vectors) else []
        if len(found) != len(facts):
            raise ValueError(f"neighbours() returned {len(found)} lists for {len(facts)} facts")

        plans: list[FactPlan] = []
        kept: list[int] = []
        for i, fact in enumerate(facts):
            # Two facts of the same add that say the same thing: keep the first.
            if kept and float(np.max(vectors[kept] @ vectors[i])) >= self.dedup_threshold:
                logger.debug("fact %r repeats an earlier fact of this add; skipped", fact)
                continue
            kept.append(i)
            near = sorted(found[i], key=lambda n: n.similarity, reverse=True)
            if self.always_decide:
                plans.append(FactPlan(i, fact, near))
                continue
            best = near[0] if near else None
            if best is not None and best.similarity >= self.dedup_threshold:
                plans.append(FactPlan(i, fact, [], certain=Action("NONE", best.memory, memory_id=best.id)))
                continue
            related = [n for n in near if n.similarity >= self.related_threshold]
            if not related:
                plans.append(FactPlan(i, fact, [], certain=Action("ADD", fact)))
                continue
            plans.append(FactPlan(i, fact, related))

        undecided = [p for p in plans if p.certain is None]
        decisions: Decisions = {}
        memories: list[Neighbour] = []
        if undecided:
            seen: set[str] = set()
            for p in undecided:
                for n in p.related:
                    if n.id not in seen:
                        seen.add(n.id)
                        memories.append(n)
            try:
                decisions = ask_decisions(run, undecided, memories, self._limits())
            except LLMError as exc:
                run.warn(
                    f"the update decision failed ({exc}); {len(undecided)} fact(s) were added "
                    "without comparing them to related memories"
                )
                decisions = {}
        return build_actions(facts, vectors, plans, decisions, memories, embed)

    def _single_call(
        self, run: Run, lines: list[str], embed: Embed, neighbours: FindNeighbours
    ) -> list[Action] | None:
        """Extract and decide in one call; None when the two-call path is the right one.

        That is when the scope holds no memory yet (extraction alone is cheaper and every fact is
        an ADD) or when the conversation needs more than one chunk.
        """
        overhead = estimate_tokens(
            run.render("extract_and_decide", today=run.today_iso(), messages="", existing_memories="")
        )
        chunks = chunk_lines(lines, self.token_budget, overhead + self.max_shown_memories * 20)
        if len(chunks) != 1:
            return None
        texts = [line.split(": ", 1)[-1] for line in lines]
        memories = self._shown_memories(neighbours(np.asarray(embed(texts), dtype=np.float32)))
        if not memories:
            return None
        reply = ask_fused(run, chunks[0], memories, self._limits())
        facts, decisions = reply.facts, reply.decisions
        if not facts:
            return []

        vectors = np.asarray(embed(facts), dtype=np.float32)
        near_facts = neighbours(vectors)
        plans: list[FactPlan] = []
        kept: list[int] = []
        for i, fact in enumerate(facts):
            if kept and float(np.max(vectors[kept] @ vectors[i])) >= self.dedup_threshold:
                continue
            kept.append(i)
            best = max(near_facts[i], key=lambda n: n.similarity, default=None)
            only_add = all(d.event == "ADD" for d in decisions.get(i, []))
            if best is not None and best.similarity >= self.dedup_threshold and only_add:
                # Certain even if the model missed it: the fact is already stored.
                plans.append(FactPlan(i, fact, [], certain=Action("NONE", best.memory, memory_id=best.id)))
            elif i in decisions:
                plans.append(FactPlan(i, fact, []))
            else:
                plans.append(FactPlan(i, fact, [], certain=Action("ADD", fact)))
        return build_actions(facts, vectors, plans, decisions, memories, embed)

    def _shown_memories(self, found: list[list[Neighbour]]) -> list[Neighbour]:
        """The stored memories shown to the fused call: round-robin over the messages, so every
        message gets its closest memories shown, at most ``max_shown_memories``."""
        memories: list[Neighbour] = []
        seen: set[str] = set()
        ordered = [sorted(near, key=lambda n: n.similarity, reverse=True) for near in found]
        for rank in range(max((len(f) for f in found), default=0)):
            for near in ordered:
                # No similarity floor here: the fused call costs one call either way, and
                # embeddings miss contradictions ("works at Google" vs "works at Siemens").
                if rank < len(near) and near[rank].id not in seen:
                    seen.add(near[rank].id)
                    memories.append(near[rank])
        return memories[: self.max_shown_memories]
