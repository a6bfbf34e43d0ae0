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
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import numpy as np

from mem0_mcp.llm.base import LLM, LLMError, LLMResponse
from mem0_mcp.llm.jsonparse import complete_json
from mem0_mcp.llm.prompts import PromptError, PromptSet
from mem0_mcp.models import Message, Usage

logger = logging.getLogger(__name__)

EventName = Literal["ADD", "UPDATE", "DELETE", "NONE"]
_EVENTS = ("ADD", "UPDATE", "DELETE", "NONE")
CHARS_PER_TOKEN = 4
DEFAULT_TOKEN_BUDGET = 6000
DEFAULT_MAX_FACTS = 200
DEFAULT_MAX_FACT_BYTES = 64 * 1024


class UnusableReplyError(LLMError):
    """The model answered, but with facts that cannot be stored as they are (wrong type, too many,
    too long). The add then keeps the user's own text verbatim instead."""


@dataclass
class Neighbour:
    id: str
    memory: str
    similarity: float


@dataclass
class Action:
    event: EventName
    text: str
    memory_id: str | None = None
    previous: str | None = None
    vector: np.ndarray | None = None
    superseded_by: int | None = None


@dataclass
class Plan:
    actions: list[Action]
    usage: Usage
    inferred: bool
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN) if text else 0


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


# --------------------------------------------------------------------------- content blocks


def _image_block(block: dict[str, Any]) -> dict[str, Any] | None:
    """The neutral image form of an OpenAI, Anthropic or MCP image block; None if not an image."""
    kind = block.get("type")
    if kind == "image_url":
        ref = block.get("image_url")
        url = ref.get("url") if isinstance(ref, dict) else ref
        return _from_url(url) if isinstance(url, str) else None
    if kind == "image":
        source = block.get("source")
        if isinstance(source, dict):
            if source.get("type") == "base64" and isinstance(source.get("data"), str):
                return {
                    "type": "image",
                    "media_type": source.get("media_type") or "image/png",
                    "data": source["data"],
                }
            if isinstance(source.get("url"), str):
                return _from_url(source["url"])
        if isinstance(block.get("data"), str):  # MCP ImageContent
            return {
                "type": "image",
                "media_type": block.get("mimeType") or block.get("media_type") or "image/png",
                "data": block["data"],
            }
        if isinstance(block.get("url"), str):
            return _from_url(block["url"])
    return None


_DATA_URI = re.compile(r"^data:(?P<mt>[\w/+.-]+)?(?:;[\w=-]+)*;base64,(?P<data>.*)$", re.DOTALL)


def _from_url(url: str) -> dict[str, Any] | None:
    m = _DATA_URI.match(url)
    if m:
        data = m.group("data").strip()
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return None
        return {"type": "image", "media_type": m.group("mt") or "image/png", "data": data}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "url": url}
    return None


# --------------------------------------------------------------------------- the planner


class MemoryPipeline:
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

    # ---------------------------------------------------------------- public

    def plan(
        self,
        messages: list[Message],
        *,
        agent_mode: bool,
        memory_type: str | None,
        embed: Callable[[Sequence[str]], np.ndarray],
        neighbours: Callable[[np.ndarray], list[list[Neighbour]]],
    ) -> Plan:
        run = _Run()
        if self.llm is None:
            return Plan(
                [],
                run.usage,
                inferred=False,
                reason="no LLM is configured (llm_provider is none and no API key was found); "
                "stored verbatim with near-duplicate detection",
            )
        llm = self.llm
        try:
            lines = self._transcript(llm, messages, run)
            if not lines:
                return Plan([], run.usage, inferred=True, warnings=run.warnings)
            if memory_type == "procedural":
                return self._procedural(llm, lines, embed, run)
            has_assistant = any(m.role == "assistant" for m in messages)
            agent_facts = agent_mode and has_assistant
            if self.single_call and not agent_facts:
                fused = self._single_call(llm, lines, embed, neighbours, run)
                if fused is not None:
                    return Plan(fused, run.usage, inferred=True, warnings=run.warnings)
            prompt = "agent_fact_extraction" if agent_facts else "fact_extraction"
            facts = self._extract(llm, prompt, lines, run)
            actions = self._decide(llm, facts, embed, neighbours, run) if facts else []
        except PromptError as exc:
            # A broken custom prompt must not lose the user's text: store verbatim, say why.
            logger.error("prompt error, the engine stores verbatim: %s", exc)
            return Plan(
                [], run.usage, inferred=False, reason=f"{exc}; stored verbatim instead", warnings=run.warnings
            )
        except LLMError as exc:
            logger.warning("inference failed, the engine stores verbatim: %s", exc)
            return Plan(
                [],
                run.usage,
                inferred=False,
                reason=f"the LLM ({llm.name}) failed: {exc}; stored verbatim instead",
                warnings=run.warnings,
            )
        except Exception as exc:
            # Whatever else breaks while planning (a reply shaped in a way nobody foresaw), the
            # user's text was accepted and must be kept: verbatim, with the reason.
            logger.exception("the memory manager failed, the engine stores verbatim")
            return Plan(
                [],
                run.usage,
                inferred=False,
                reason=f"the memory manager failed ({type(exc).__name__}: {_preview(exc)}); "
                "stored verbatim instead",
                warnings=run.warnings,
            )
        return Plan(actions, run.usage, inferred=True, warnings=run.warnings)

    # ---------------------------------------------------------------- bounds on the model's answer

    def _fact(self, value: Any, where: str) -> str | None:
        """The text of one fact from the model, whitespace folded; None for an empty string.

        Raises UnusableReplyError for anything but a string, or a text over ``max_fact_bytes``.
        """
        if not isinstance(value, str):
            raise UnusableReplyError(f"{where} is {type(value).__name__}, not text: {_preview(value)}")
        text = " ".join(value.split())
        self._check_size(text, where)
        return text or None

    def _check_size(self, text: str, where: str) -> None:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self.max_fact_bytes:
            raise UnusableReplyError(
                f"{where} has {size:,} bytes, over the limit of {self.max_fact_bytes:,} (max_text_bytes)"
            )

    def _check_count(self, count: int) -> None:
        if count > self.max_facts:
            raise UnusableReplyError(
                f"the model returned {count:,} facts, over the limit of {self.max_facts:,} per add "
                "(max_facts_per_add)"
            )

    # ---------------------------------------------------------------- stages

    def _call(
        self,
        llm: LLM,
        run: _Run,
        prompt: str,
        system: str,
        messages: list[dict[str, Any]],
        *,
        json_output: bool,
    ) -> LLMResponse:
        response = llm.complete(
            system, messages, json_output=json_output, max_tokens=self.max_tokens, prompt=prompt
        )
        run.usage.record(response.input_tokens, response.output_tokens)
        return response

    def _json_call(
        self, llm: LLM, run: _Run, prompt: str, system: str, user: str, key: str
    ) -> dict[str, Any]:
        return complete_json(
            llm,
            system,
            [{"role": "user", "content": user}],
            prompt=prompt,
            usage=run.usage,
            max_tokens=self.max_tokens,
            expect_key=key,
        )

    def _transcript(self, llm: LLM, messages: list[Message], run: _Run) -> list[str]:
        """One line per message, images replaced by their description (or dropped)."""
        lines: list[str] = []
        for message in messages:
            speaker = f"{message.name} ({message.role})" if message.name else message.role
            if isinstance(message.content, str):
                text = message.content.strip()
            else:
                parts: list[str] = []
                texts = [
                    str(b.get("text", ""))
                    for b in message.content
                    if isinstance(b, dict) and b.get("type") == "text"
                ]
                for block in message.content:
                    if not isinstance(block, dict):
                        continue
                    if block.get("type") == "text":
                        parts.append(str(block.get("text", "")).strip())
                        continue
                    image = _image_block(block)
                    if image is None:
                        run.warn(
                            f"a content block of type {block.get('type')!r} was not understood and skipped"
                        )
                        continue
                    described = self._describe(llm, image, " ".join(texts), run)
                    if described:
                        parts.append(f"[shared an image: {described}]")
                text = " ".join(p for p in parts if p)
            if text:
                lines.append(f"{speaker}: {text}")
        return lines

    def _describe(self, llm: LLM, image: dict[str, Any], context: str, run: _Run) -> str | None:
        if not llm.supports_vision:
            run.warn(f"an image was skipped: the LLM backend {llm.name!r} cannot see images")
            return None
        ctx = f"The person wrote alongside it: {context.strip()}" if context.strip() else ""
        system = self.prompts.render("image_description", context=ctx)
        try:
            response = self._call(
                llm,
                run,
                "image_description",
                system,
                [{"role": "user", "content": [image, {"type": "text", "text": "Describe this image."}]}],
                json_output=False,
            )
        except LLMError as exc:
            run.warn(f"an image was skipped: describing it failed: {exc}")
            return None
        return " ".join(response.text.split()) or None

    def _chunks(self, lines: list[str], overhead: int) -> list[str]:
        """Consecutive message lines packed under the token budget; over-long lines are split."""
        budget = max(64, self.token_budget - overhead)
        pieces: list[str] = []
        for line in lines:
            if estimate_tokens(line) <= budget:
                pieces.append(line)
                continue
            # Every piece keeps the speaker, so a later chunk still knows who said it.
            speaker, sep, rest = line.partition(": ")
            prefix = f"{speaker}{sep}" if sep and len(speaker) < 200 else ""
            rest = rest if prefix else line
            width = max(CHARS_PER_TOKEN * 16, budget * CHARS_PER_TOKEN - len(prefix) - 16)
            first = True
            while rest:
                cut = rest.rfind(" ", 0, width) if len(rest) > width else len(rest)
                cut = cut if cut > width // 2 else min(width, len(rest))
                pieces.append(prefix + ("" if first else "(continued) ") + rest[:cut].strip())
                rest = rest[cut:].strip()
                first = False
        chunks: list[str] = []
        current: list[str] = []
        used = 0
        for piece in pieces:
            cost = estimate_tokens(piece) + 1
            if current and used + cost > budget:
                chunks.append("\n".join(current))
                current, used = [], 0
            current.append(piece)
            used += cost
        if current:
            chunks.append("\n".join(current))
        return chunks

    def _extract(self, llm: LLM, prompt: str, lines: list[str], run: _Run) -> list[str]:
        today = self.today().isoformat()
        overhead = estimate_tokens(self.prompts.render(prompt, today=today, messages=""))
        facts: list[str] = []
        seen: set[str] = set()
        chunks = self._chunks(lines, overhead)
        for chunk in chunks:
            system = self.prompts.render(prompt, today=today, messages=chunk)
            data = self._json_call(
                llm, run, prompt, system, "Extract the facts from the conversation above as JSON.", "facts"
            )
            raw = data.get("facts")
            if not isinstance(raw, list):
                raise UnusableReplyError(f'"facts" must be a list, got {type(raw).__name__}')
            self._check_count(len(facts) + len(raw))
            for k, item in enumerate(raw):
                value = item.get("text") if isinstance(item, dict) else item
                fact = self._fact(value, f"facts[{k}]" + (".text" if isinstance(item, dict) else ""))
                if fact is None:
                    continue
                if _norm(fact) not in seen:
                    seen.add(_norm(fact))
                    facts.append(fact)
        if len(chunks) > 1:
            logger.info("extraction over %d chunks gave %d facts", len(chunks), len(facts))
        return facts

    def _procedural(
        self, llm: LLM, lines: list[str], embed: Callable[[Sequence[str]], np.ndarray], run: _Run
    ) -> Plan:
        today = self.today().isoformat()
        overhead = estimate_tokens(self.prompts.render("procedural_summary", today=today, messages=""))
        parts: list[str] = []
        for chunk in self._chunks(lines, overhead):
            system = self.prompts.render("procedural_summary", today=today, messages=chunk)
            response = self._call(
                llm,
                run,
                "procedural_summary",
                system,
                [{"role": "user", "content": "Write the record of the run above."}],
                json_output=False,
            )
            if response.text.strip():
                parts.append(response.text.strip())
        if not parts:
            raise LLMError("the procedural summary came back empty")
        summary = "\n\n".join(parts)
        self._check_size(summary, "the procedural summary")
        vector = np.asarray(embed([summary]))[0]
        return Plan([Action("ADD", summary, vector=vector)], run.usage, inferred=True, warnings=run.warnings)

    def _decide(
        self,
        llm: LLM,
        facts: list[str],
        embed: Callable[[Sequence[str]], np.ndarray],
        neighbours: Callable[[np.ndarray], list[list[Neighbour]]],
        run: _Run,
    ) -> list[Action]:
        vectors = np.asarray(embed(facts), dtype=np.float32)
        found = neighbours(vectors) if len(vectors) else []
        if len(found) != len(facts):
            raise ValueError(f"neighbours() returned {len(found)} lists for {len(facts)} facts")

        plans: list[_FactPlan] = []
        kept: list[int] = []
        for i, fact in enumerate(facts):
            # Two facts of the same add that say the same thing: keep the first.
            if kept:
                sims = vectors[kept] @ vectors[i]
                if float(np.max(sims)) >= self.dedup_threshold:
                    logger.debug("fact %r repeats an earlier fact of this add; skipped", fact)
                    continue
            kept.append(i)
            near = sorted(found[i], key=lambda n: n.similarity, reverse=True)
            if self.always_decide:
                plans.append(_FactPlan(i, fact, near))
                continue
            best = near[0] if near else None
            if best is not None and best.similarity >= self.dedup_threshold:
                plans.append(_FactPlan(i, fact, [], certain=Action("NONE", best.memory, memory_id=best.id)))
                continue
            related = [n for n in near if n.similarity >= self.related_threshold]
            if not related:
                plans.append(_FactPlan(i, fact, [], certain=Action("ADD", fact)))
                continue
            plans.append(_FactPlan(i, fact, related))

        undecided = [p for p in plans if p.certain is None]
        decisions: dict[int, list[dict[str, Any]]] = {}
        memories: list[Neighbour] = []
        if undecided:
            by_id: dict[str, int] = {}
            for p in undecided:
                for n in p.related:
                    if n.id not in by_id:
                        by_id[n.id] = len(memories)
                        memories.append(n)
            try:
                decisions = self._decision_call(llm, undecided, memories, run)
            except LLMError as exc:
                run.warn(
                    f"the update decision failed ({exc}); {len(undecided)} fact(s) were added "
                    "without comparing them to related memories"
                )
                decisions = {}
        return self._actions(facts, vectors, plans, decisions, memories, embed)

    def _single_call(
        self,
        llm: LLM,
        lines: list[str],
        embed: Callable[[Sequence[str]], np.ndarray],
        neighbours: Callable[[np.ndarray], list[list[Neighbour]]],
        run: _Run,
    ) -> list[Action] | None:
        """Extract and decide in one call; None when the two-call path is the right one.

        That is when the scope holds no memory yet (extraction alone is cheaper and every fact is
        an ADD) or when the conversation needs more than one chunk.
        """
        today = self.today().isoformat()
        overhead = estimate_tokens(
            self.prompts.render("extract_and_decide", today=today, messages="", existing_memories="")
        )
        chunks = self._chunks(lines, overhead + self.max_shown_memories * 20)
        if len(chunks) != 1:
            return None
        texts = [line.split(": ", 1)[-1] for line in lines]
        found = neighbours(np.asarray(embed(texts), dtype=np.float32))
        memories: list[Neighbour] = []
        seen: set[str] = set()
        # Round-robin over the messages so every message gets its closest memories shown.
        for rank in range(max((len(f) for f in found), default=0)):
            for near in found:
                ordered = sorted(near, key=lambda n: n.similarity, reverse=True)
                if rank < len(ordered):
                    n = ordered[rank]
                    # No similarity floor here: the fused call costs one call either way, and
                    # embeddings miss contradictions ("works at Google" vs "works at Siemens").
                    if n.id not in seen:
                        seen.add(n.id)
                        memories.append(n)
        memories = memories[: self.max_shown_memories]
        if not memories:
            return None

        def listing(items: Sequence[str]) -> str:
            return "\n".join(f"{k}: {json.dumps(t, ensure_ascii=False)}" for k, t in enumerate(items))

        system = self.prompts.render(
            "extract_and_decide",
            today=today,
            messages=chunks[0],
            existing_memories=listing([m.memory for m in memories]),
        )
        data = self._json_call(
            llm, run, "extract_and_decide", system, "Extract the facts and decide for each, as JSON.", "facts"
        )
        raw = data.get("facts")
        if not isinstance(raw, list):
            raise UnusableReplyError(f'"facts" must be a list, got {type(raw).__name__}')
        self._check_count(len(raw))

        facts: list[str] = []
        index: dict[str, int] = {}
        decisions: dict[int, list[dict[str, Any]]] = {}
        for k, item in enumerate(raw):
            entry = {"text": item} if isinstance(item, str) else item
            if not isinstance(entry, dict):
                raise UnusableReplyError(
                    f"facts[{k}] is {type(item).__name__}, not an object: {_preview(item)}"
                )
            event = str(entry.get("event") or "ADD").strip().upper()
            mid = _as_int(entry.get("id"))
            valid = mid is not None and 0 <= mid < len(memories)
            text = entry.get("text")
            if text is not None:
                text = self._fact(text, f"facts[{k}].text")
            if not text:
                if event == "NONE" and valid and mid is not None:
                    text = memories[mid].memory
                else:
                    logger.warning("fact ignored, it has no text: %r", item)
                    continue
            if _norm(text) not in index:
                index[_norm(text)] = len(facts)
                facts.append(text)
            i = index[_norm(text)]
            if event in ("UPDATE", "NONE"):
                if valid:
                    decisions.setdefault(i, []).append({"event": event, "memory": mid, "text": text})
                else:
                    logger.warning(
                        "decision ignored, the model invented memory id %r: %r", entry.get("id"), item
                    )
            elif event not in ("ADD", "DELETE"):
                logger.warning("decision for %r ignored, unknown event %r", text, event)
            deletes = entry.get("deletes") or ([entry.get("id")] if event == "DELETE" else [])
            for raw_id in deletes if isinstance(deletes, list) else [deletes]:
                d = _as_int(raw_id)
                if d is None or not 0 <= d < len(memories):
                    logger.warning("delete ignored, the model invented memory id %r: %r", raw_id, item)
                    continue
                decisions.setdefault(i, []).append({"event": "DELETE", "memory": d})
        if not facts:
            return []

        vectors = np.asarray(embed(facts), dtype=np.float32)
        near_facts = neighbours(vectors)
        plans: list[_FactPlan] = []
        kept: list[int] = []
        for i, fact in enumerate(facts):
            if kept and float(np.max(vectors[kept] @ vectors[i])) >= self.dedup_threshold:
                continue
            kept.append(i)
            best = max(near_facts[i], key=lambda n: n.similarity, default=None)
            only_add = all(d["event"] == "ADD" for d in decisions.get(i, []))
            if best is not None and best.similarity >= self.dedup_threshold and only_add:
                # Certain even if the model missed it: the fact is already stored.
                plans.append(_FactPlan(i, fact, [], certain=Action("NONE", best.memory, memory_id=best.id)))
            elif i in decisions:
                plans.append(_FactPlan(i, fact, []))
            else:
                plans.append(_FactPlan(i, fact, [], certain=Action("ADD", fact)))
        return self._actions(facts, vectors, plans, decisions, memories, embed)

    def _decision_call(
        self, llm: LLM, undecided: list[_FactPlan], memories: list[Neighbour], run: _Run
    ) -> dict[int, list[dict[str, Any]]]:
        def listing(texts: Sequence[str]) -> str:
            return "\n".join(f"{k}: {json.dumps(t, ensure_ascii=False)}" for k, t in enumerate(texts))

        existing = listing([n.memory for n in memories])
        new_facts = listing([p.fact for p in undecided])
        system = self.prompts.render(
            "update_decision",
            today=self.today().isoformat(),
            existing_memories=existing,
            new_facts=new_facts,
        )
        data = self._json_call(
            llm, run, "update_decision", system, "Decide for every new fact, as JSON.", "decisions"
        )
        raw = data.get("decisions")
        if not isinstance(raw, list):
            raise LLMError(f'"decisions" must be a list, got {type(raw).__name__}')
        out: dict[int, list[dict[str, Any]]] = {}
        for item in raw:
            if not isinstance(item, dict):
                logger.warning("decision ignored, not an object: %r", item)
                continue
            local = _as_int(item.get("fact"))
            if local is None and len(undecided) == 1:
                local = 0
            if local is None or not 0 <= local < len(undecided):
                logger.warning("decision ignored, it names no new fact: %r", item)
                continue
            event = str(item.get("event", "")).strip().upper()
            if event not in _EVENTS:
                logger.warning("decision ignored, unknown event %r: %r", event, item)
                continue
            decision: dict[str, Any] = {"event": event}
            if event != "ADD":
                mid = _as_int(item.get("id"))
                if mid is None or not 0 <= mid < len(memories):
                    logger.warning(
                        "decision ignored, the model invented memory id %r: %r", item.get("id"), item
                    )
                    continue
                decision["memory"] = mid
            text = item.get("text")
            if text is not None and (folded := self._fact(text, f"decisions[{local}].text")):
                decision["text"] = folded
            out.setdefault(undecided[local].index, []).append(decision)
        return out

    def _actions(
        self,
        facts: list[str],
        vectors: np.ndarray,
        plans: list[_FactPlan],
        decisions: dict[int, list[dict[str, Any]]],
        memories: list[Neighbour],
        embed: Callable[[Sequence[str]], np.ndarray],
    ) -> list[Action]:
        actions: list[Action] = []
        claimed: set[str] = set()  # memories already rewritten or deleted by this plan
        added: dict[str, int] = {}  # normalized text -> index of the action that writes it
        noned: set[str] = set()
        vector_of: dict[int, int] = {}  # action index -> fact index whose vector fits its text

        def add(fact_index: int, text: str) -> int:
            if _norm(text) in added:
                return added[_norm(text)]
            added[_norm(text)] = len(actions)
            actions.append(Action("ADD", text))
            if text == facts[fact_index]:
                vector_of[len(actions) - 1] = fact_index
            return len(actions) - 1

        def none(target_id: str, text: str) -> None:
            if target_id not in noned:
                noned.add(target_id)
                actions.append(Action("NONE", text, memory_id=target_id))

        for p in plans:
            if p.certain is not None:
                if p.certain.event == "ADD":
                    add(p.index, p.fact)
                else:
                    none(p.certain.memory_id or "", p.certain.text)
                continue
            replacement: int | None = None
            deletes: list[Neighbour] = []
            covered = False
            for d in decisions.get(p.index, []):
                event = d["event"]
                if event == "ADD":
                    idx = add(p.index, d.get("text", p.fact))
                    covered = True
                    replacement = idx if replacement is None else replacement
                    continue
                target = memories[d["memory"]]
                if event == "NONE":
                    none(target.id, target.memory)
                    covered = True
                elif target.id in claimed:
                    logger.warning("%s of memory %s ignored: this add already changed it", event, target.id)
                elif event == "UPDATE":
                    claimed.add(target.id)
                    text = d.get("text", p.fact)
                    actions.append(Action("UPDATE", text, memory_id=target.id, previous=target.memory))
                    added[_norm(text)] = len(actions) - 1
                    if text == p.fact:
                        vector_of[len(actions) - 1] = p.index
                    covered = True
                    replacement = len(actions) - 1 if replacement is None else replacement
                else:
                    claimed.add(target.id)
                    deletes.append(target)
            if deletes and replacement is None:
                # A contradiction must not lose the new truth (mem0 issue 4536).
                replacement = add(p.index, p.fact)
                covered = True
            if not covered:
                logger.info("no usable decision for fact %r; adding it", p.fact)
                add(p.index, p.fact)
            for target in deletes:
                actions.append(
                    Action(
                        "DELETE",
                        target.memory,
                        memory_id=target.id,
                        previous=target.memory,
                        superseded_by=replacement,
                    )
                )

        # Vectors for ADD/UPDATE: reuse the fact's, embed only texts the model rewrote.
        missing = [i for i, a in enumerate(actions) if a.event in ("ADD", "UPDATE") and i not in vector_of]
        fresh = np.asarray(embed([actions[i].text for i in missing]), dtype=np.float32) if missing else None
        for i, a in enumerate(actions):
            if a.event not in ("ADD", "UPDATE"):
                continue
            if i in vector_of:
                a.vector = vectors[vector_of[i]]
            elif fresh is not None:
                a.vector = fresh[missing.index(i)]
        return actions


def _preview(value: Any, width: int = 120) -> str:
    text = repr(value) if not isinstance(value, BaseException) else str(value)
    return text if len(text) <= width else text[:width] + "..."


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


@dataclass
class _FactPlan:
    index: int
    fact: str
    related: list[Neighbour]
    certain: Action | None = None


@dataclass
class _Run:
    usage: Usage = field(default_factory=Usage)
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        logger.warning(message)
        if message not in self.warnings:
            self.warnings.append(message)
