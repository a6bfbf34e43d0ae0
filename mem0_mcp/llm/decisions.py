"""The decision call: new facts against the stored memories they resemble, and its parsing.

Stored memories are shown to the model under small integer ids (their index in the listing),
so it never has to copy, or invent, UUIDs; an id outside the listing is dropped with a warning.
The fused call (``single_call``) extracts and decides at once and is parsed here too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from mem0_mcp.llm.base import LLMError
from mem0_mcp.llm.plan import EVENTS, Action, EventName, Neighbour
from mem0_mcp.llm.replies import ReplyLimits, UnusableReplyError, as_int, norm, preview
from mem0_mcp.llm.run import Run

logger = logging.getLogger(__name__)

_BY_NAME: dict[str, EventName] = {e: e for e in EVENTS}


@dataclass(frozen=True)
class Decision:
    """The model's verdict on one new fact.

    ``memory`` is the index of the shown memory it concerns (None for ADD); ``text`` is the
    model's wording of the fact (None: keep the fact as extracted).
    """

    event: EventName
    memory: int | None = None
    text: str | None = None


Decisions = dict[int, list[Decision]]
"""Fact index -> the decisions about that fact, in the model's order."""


@dataclass
class FactPlan:
    """A new fact of the add: settled without the model (``certain``) or awaiting a decision
    against its ``related`` stored memories."""

    index: int
    fact: str
    related: list[Neighbour]
    certain: Action | None = None


@dataclass
class FusedReply:
    """The fused call's answer: the facts found, and the decisions the model took on them."""

    facts: list[str] = field(default_factory=list)
    decisions: Decisions = field(default_factory=dict)


def event_name(value: object) -> EventName | None:
    """The event a model wrote (any case, padded), or None for anything else."""
    return _BY_NAME.get(str(value).strip().upper())


def listing(items: Sequence[str]) -> str:
    """Texts as the model sees them: ``k: "text"``, one a line, ``k`` from 0."""
    return "\n".join(f"{k}: {json.dumps(t, ensure_ascii=False)}" for k, t in enumerate(items))


def ask_decisions(
    run: Run, undecided: Sequence[FactPlan], memories: Sequence[Neighbour], limits: ReplyLimits
) -> Decisions:
    """One call deciding every undecided fact against ``memories`` (keyed by FactPlan.index).

    Raises LLMError when the call fails or the answer has no "decisions" list,
    UnusableReplyError for a decision text past ``limits``.
    """
    system = run.render(
        "update_decision",
        today=run.today_iso(),
        existing_memories=listing([n.memory for n in memories]),
        new_facts=listing([p.fact for p in undecided]),
    )
    data = run.complete_json("update_decision", system, "Decide for every new fact, as JSON.", "decisions")
    return parse_decisions(data.get("decisions"), undecided, len(memories), limits)


def parse_decisions(raw: object, undecided: Sequence[FactPlan], shown: int, limits: ReplyLimits) -> Decisions:
    """The "decisions" list of a decision reply; ``shown`` memories were listed to the model.

    Entries naming no listed fact or memory, or an unknown event, are dropped with a warning.
    Raises LLMError when ``raw`` is not a list, UnusableReplyError for a text past ``limits``.
    """
    if not isinstance(raw, list):
        raise LLMError(f'"decisions" must be a list, got {type(raw).__name__}')
    out: Decisions = {}
    for item in raw:
        if not isinstance(item, dict):
            logger.warning("decision ignored, not an object: %r", item)
            continue
        local = as_int(item.get("fact"))
        if local is None and len(undecided) == 1:
            local = 0
        if local is None or not 0 <= local < len(undecided):
            logger.warning("decision ignored, it names no new fact: %r", item)
            continue
        event = event_name(item.get("event", ""))
        if event is None:
            logger.warning(
                "decision ignored, unknown event %r: %r", str(item.get("event", "")).strip().upper(), item
            )
            continue
        memory: int | None = None
        if event != "ADD":
            memory = as_int(item.get("id"))
            if memory is None or not 0 <= memory < shown:
                logger.warning("decision ignored, the model invented memory id %r: %r", item.get("id"), item)
                continue
        text = item.get("text")
        folded = limits.fact(text, f"decisions[{local}].text") if text is not None else None
        out.setdefault(undecided[local].index, []).append(Decision(event, memory, folded or None))
    return out


def ask_fused(run: Run, messages: str, memories: Sequence[Neighbour], limits: ReplyLimits) -> FusedReply:
    """One call extracting the facts of ``messages`` and deciding each against ``memories``.

    Raises LLMError when the call fails, UnusableReplyError for facts past ``limits``.
    """
    system = run.render(
        "extract_and_decide",
        today=run.today_iso(),
        messages=messages,
        existing_memories=listing([m.memory for m in memories]),
    )
    data = run.complete_json(
        "extract_and_decide", system, "Extract the facts and decide for each, as JSON.", "facts"
    )
    return parse_fused(data.get("facts"), memories, limits)


def parse_fused(raw: object, memories: Sequence[Neighbour], limits: ReplyLimits) -> FusedReply:
    """The "facts" list of a fused reply: each a text, or ``{text, event, id, deletes}``.

    Facts repeated in other words are merged (their decisions pooled); ids outside ``memories``
    and unknown events are dropped with a warning. Raises UnusableReplyError for a reply that is
    not a list of texts and objects, or past ``limits``.
    """
    if not isinstance(raw, list):
        raise UnusableReplyError(f'"facts" must be a list, got {type(raw).__name__}')
    limits.check_count(len(raw))
    reply = FusedReply()
    index: dict[str, int] = {}
    for k, item in enumerate(raw):
        entry = {"text": item} if isinstance(item, str) else item
        if not isinstance(entry, dict):
            raise UnusableReplyError(f"facts[{k}] is {type(item).__name__}, not an object: {preview(item)}")
        written = str(entry.get("event") or "ADD").strip().upper()
        event = _BY_NAME.get(written)
        mid = as_int(entry.get("id"))
        valid = mid is not None and 0 <= mid < len(memories)
        text = entry.get("text")
        if text is not None:
            text = limits.fact(text, f"facts[{k}].text")
        if not text:
            if event == "NONE" and valid and mid is not None:
                text = memories[mid].memory
            else:
                logger.warning("fact ignored, it has no text: %r", item)
                continue
        if norm(text) not in index:
            index[norm(text)] = len(reply.facts)
            reply.facts.append(text)
        decided = reply.decisions.setdefault(index[norm(text)], [])
        if event == "UPDATE" or event == "NONE":
            if valid:
                decided.append(Decision(event, mid, text))
            else:
                logger.warning("decision ignored, the model invented memory id %r: %r", entry.get("id"), item)
        elif event is None:
            logger.warning("decision for %r ignored, unknown event %r", text, written)
        deletes = entry.get("deletes") or ([entry.get("id")] if event == "DELETE" else [])
        for raw_id in deletes if isinstance(deletes, list) else [deletes]:
            d = as_int(raw_id)
            if d is None or not 0 <= d < len(memories):
                logger.warning("delete ignored, the model invented memory id %r: %r", raw_id, item)
                continue
            decided.append(Decision("DELETE", d))
    # A fact with no decision at all is a plain ADD; the caller tells it by its absence.
    reply.decisions = {i: ds for i, ds in reply.decisions.items() if ds}
    return reply
