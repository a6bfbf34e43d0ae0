"""Scenario benchmark of the memory manager, through the real MCP tools (issue #13 item 8).

Each scenario of benchmarks/data/scenarios.json (our own writing) is a user's sequence of adds
with event times: facts, changes and corrections of an earlier add (``replaces``), duplicates and
paraphrases of one (``same_as``), refinements that replace nothing; then questions with the
expected current answer (a substring of the memory that should rank first) and the stale answers
that must not rank above it, or no answer at all (off-topic: nothing stored is relevant).

Three modes (issue #13's two, agent and llm, and llm without the graph), each on its own server
(``create_server``) and an in-memory MCP client:

- ``agent``: no server LLM. A scripted agent follows ``memory_guide``: it adds each text with
  ``add_memory`` (and its ``timestamp``), passing the add's ``relations`` (the same the scripted
  graph extraction answers in llm mode: the agent is the extractor) and reads ``related``; when
  the scenario says the add replaces an earlier one and that memory's id is in ``related`` (the
  agent acts only on what the tool showed it), it adds the same text again with
  ``supersedes=[id]``: the repeat is answered NONE with the new memory's id, and the old one is
  marked superseded by it. A replaced memory
  missing from ``related`` is a miss of the product.
- ``llm``: the server's LLM memory manager in its default configuration with an LLM: adds infer
  by default (infer_default=auto) and the graph is on (graph_enabled=auto turns it on whenever an
  LLM is configured). A scripted LLM answers: extraction returns the add's text as the one fact;
  the decision answers DELETE (a change) or UPDATE (a correction) for the stored memory the add
  replaces, NONE for the one it repeats, else ADD. It acts only on memories the pipeline showed
  it; a replaced memory not shown is a miss. The scripted graph extraction answers each add's
  ``relations`` (our own writing, "I" for the user), the contradiction call retires nothing, and
  search_memory fuses the graph retriever.
- ``llm-no-graph``: ``llm`` with the graph off (graph_enabled=false), for comparison: ``llm`` and
  ``llm-no-graph`` in one run give the graph retriever's effect.

Per mode: top-1 current-answer accuracy, share of questions with a stale answer above the current
one, repeats stored as new memories, off-topic rejection (no result, at the server's default
threshold unless --threshold), replaced memories not offered (agent: not in ``related``; llm: not
shown to the model). Targets (issue #13): >= 90% top-1, <= 5% stale-above-current.

    python -m benchmarks.scenarios [--embedder bundled|fake] [--mode agent|llm|llm-no-graph ...]
        [--scenario ID ...] [--limit N] [--threshold T] [--out benchmarks/results/scenarios.json]

MEM0_MCP_MODEL_CACHE_DIR may point at a ready ONNX export of the bundled model (else ~40 s).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import sys
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mem0_mcp.llm.base import ChatMessage, LLMError, LLMResponse

DATA = Path(__file__).resolve().parent / "data" / "scenarios.json"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "scenarios.json"
MODES = ("agent", "llm", "llm-no-graph")
KINDS = ("fact", "change", "correction", "refinement", "duplicate", "paraphrase")
REPLACING = ("change", "correction")
REPEATING = ("duplicate", "paraphrase")
NOT_SEARCH_THRESHOLDS = ("related_threshold", "dedup_threshold", "ann_index_threshold")
TARGETS = {"top1": 0.90, "stale_above_current": 0.05}


# ---------------------------------------------------------------------------- the data


@dataclass(frozen=True)
class Add:
    text: str
    at: str
    kind: str = "fact"
    replaces: int | None = None
    same_as: int | None = None
    refines: int | None = None
    relations: tuple[tuple[str, str, str], ...] = ()  # what graph extraction finds in it
    types: tuple[tuple[str, str], ...] = ()  # entity name -> type, for graph extraction


@dataclass(frozen=True)
class Question:
    q: str
    current: str | None
    stale: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    id: str
    user_id: str
    tags: tuple[str, ...]
    adds: tuple[Add, ...]
    questions: tuple[Question, ...]

    def stored_index(self, k: int) -> int:
        """The add whose memory holds add ``k``'s content: a repeat lives in the one it repeats."""
        while self.adds[k].same_as is not None:
            k = self.adds[k].same_as  # type: ignore[assignment]
        return k


def fold(text: str) -> str:
    """Text as compared: one Unicode form, case and runs of whitespace ignored."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def contains(memory: str, answer: str) -> bool:
    return fold(answer) in fold(memory)


def load(path: Path = DATA) -> list[Scenario]:
    """The scenarios of ``path``. Raises ValueError naming the scenario for data that cannot be
    scored: a bad index or kind, a current answer also found in a replaced add, a stale answer
    also found in a live one."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    out: list[Scenario] = []
    for s in raw["scenarios"]:
        adds = tuple(
            Add(
                **{
                    **a,
                    "relations": tuple((r[0], r[1], r[2]) for r in a.get("relations") or ()),
                    "types": tuple(sorted((a.get("types") or {}).items())),
                }
            )
            for a in s["adds"]
        )
        questions = tuple(
            Question(q["q"], q.get("current"), tuple(q.get("stale") or ())) for q in s["questions"]
        )
        scen = Scenario(s["id"], s["user_id"], tuple(s.get("tags") or ()), adds, questions)
        check(scen)
        out.append(scen)
    ids = [s.id for s in out]
    if len(set(ids)) != len(ids) or len({s.user_id for s in out}) != len(out):
        raise ValueError("scenario ids and user ids must be unique")
    return out


def check(scen: Scenario) -> None:
    def bad(why: str) -> ValueError:
        return ValueError(f"scenario {scen.id}: {why}")

    for k, add in enumerate(scen.adds):
        if add.kind not in KINDS:
            raise bad(f"adds[{k}].kind {add.kind!r} is not one of {KINDS}")
        link = {"replaces": add.replaces, "same_as": add.same_as, "refines": add.refines}
        wanted = "replaces" if add.kind in REPLACING else "same_as" if add.kind in REPEATING else "refines"
        for name, value in link.items():
            if value is not None and (name != wanted or not 0 <= value < k):
                raise bad(f"adds[{k}].{name}={value} does not fit kind {add.kind!r} at index {k}")
        if add.kind in REPLACING + REPEATING and link[wanted] is None:
            raise bad(f"adds[{k}] of kind {add.kind!r} needs {wanted}")
        if add.replaces is not None and scen.adds[add.replaces].kind in REPEATING:
            raise bad(f"adds[{k}] replaces a repeat; point it at the add that stored the memory")
    replaced = {a.replaces for a in scen.adds if a.replaces is not None}
    stale_texts = [a.text for k, a in enumerate(scen.adds) if k in replaced]
    live_texts = [a.text for k, a in enumerate(scen.adds) if k not in replaced]
    for q in scen.questions:
        if q.current is None:
            if q.stale:
                raise bad(f"off-topic question {q.q!r} has stale answers")
            continue
        if not any(contains(t, q.current) for t in live_texts):
            raise bad(f"current answer {q.current!r} is in no live add")
        if any(contains(t, q.current) for t in stale_texts):
            raise bad(f"current answer {q.current!r} is also in a replaced add")
        for stale in q.stale:
            if not any(contains(t, stale) for t in stale_texts):
                raise bad(f"stale answer {stale!r} is in no replaced add")
            if any(contains(t, stale) for t in live_texts):
                raise bad(f"stale answer {stale!r} is also in a live add")


# ---------------------------------------------------------------------------- the scripted LLM

LISTING = re.compile(r'^(\d+): (".*")$')


def first_listing(system: str) -> dict[int, str]:
    """The first ``k: "text"`` block of a rendered prompt: the stored memories, in both the
    update_decision and the extract_and_decide templates."""
    shown: dict[int, str] = {}
    for line in system.splitlines():
        m = LISTING.match(line)
        if m:
            shown[int(m.group(1))] = json.loads(m.group(2))
        elif shown:
            break
    return shown


@dataclass
class Expectation:
    """What a careful model would decide for the add in flight."""

    text: str
    event: str  # ADD, DELETE (a change), UPDATE (a correction), NONE (a repeat)
    target: str | None = None  # the stored text the decision is about
    relations: tuple[tuple[str, str, str], ...] = ()
    types: tuple[tuple[str, str], ...] = ()

    def graph(self) -> dict[str, Any]:
        """The graph extraction's answer: the add's relations and their entities."""
        types = dict(self.types)
        names = sorted({n for r in self.relations for n in (r[0], r[2])})
        return {
            "entities": [{"name": n, "type": types.get(n, "entity")} for n in names],
            "relations": [{"source": a, "relation": r, "destination": b} for a, r, b in self.relations],
        }


@dataclass
class ScriptedLLM:
    """The LLM protocol of mem0_mcp/llm/base.py, answering by ``prompt`` name for one add at a time."""

    name: str = "scripted"
    supports_vision: bool = False
    request_bound: bool = False
    expected: Expectation | None = None
    offered: bool | None = None  # whether the last decision call showed the target memory
    calls: Counter[str] = field(default_factory=Counter)

    def expect(self, expectation: Expectation) -> None:
        self.expected, self.offered = expectation, None

    def complete(
        self,
        system: str,
        messages: list[ChatMessage],
        *,
        json_output: bool = True,
        max_tokens: int | None = None,
        prompt: str | None = None,
    ) -> LLMResponse:
        """One scripted answer; raises LLMError for a prompt the scenarios never need."""
        self.calls[prompt or "?"] += 1
        exp = self.expected
        if exp is None:
            raise LLMError("scripted LLM: no add in flight")
        if prompt in ("fact_extraction", "agent_fact_extraction"):
            reply: dict[str, Any] = {"facts": [exp.text]}
        elif prompt == "extract_and_decide":
            reply = {"facts": [self._decide(system, fused=True)]}
        elif prompt == "update_decision":
            reply = {"decisions": self._decide(system, fused=False)}
        elif prompt == "graph_extraction":
            reply = exp.graph()
        elif prompt == "graph_contradiction":
            reply = {"invalidate": []}
        else:
            raise LLMError(f"scripted LLM: no script for prompt {prompt!r}")
        text = json.dumps(reply, ensure_ascii=False)
        return LLMResponse(text, len(system) // 4, len(text) // 4)

    def _decide(self, system: str, *, fused: bool) -> Any:
        exp = self.expected
        assert exp is not None
        shown = first_listing(system)
        target = None
        if exp.target is not None:
            target = next((k for k, t in shown.items() if fold(t) == fold(exp.target)), None)
            self.offered = target is not None
        add = {"text": exp.text, "event": "ADD"}
        if target is None or exp.event == "ADD":
            return add if fused else [{"fact": 0, **add}]
        if exp.event == "DELETE":
            return (
                {**add, "deletes": [target]}
                if fused
                else [
                    {"fact": 0, "event": "DELETE", "id": target},
                    {"fact": 0, **add},
                ]
            )
        decision = {"text": exp.text, "event": exp.event, "id": target}
        return decision if fused else [{"fact": 0, **decision}]


def expectation(scen: Scenario, k: int) -> Expectation:
    add = scen.adds[k]
    graph = {"relations": add.relations, "types": add.types}
    if add.replaces is not None:
        event = "DELETE" if add.kind == "change" else "UPDATE"
        # The memory of the replaced add holds its text (an UPDATE rewrote it to exactly that).
        return Expectation(add.text, event, scen.adds[scen.stored_index(add.replaces)].text, **graph)
    if add.same_as is not None:
        return Expectation(add.text, "NONE", scen.adds[scen.stored_index(add.same_as)].text, **graph)
    return Expectation(add.text, "ADD", **graph)


# ---------------------------------------------------------------------------- running


@dataclass
class Tally:
    """What one mode scored, with the details behind every miss."""

    mode: str
    questions: int = 0
    top1: int = 0
    stale_questions: int = 0
    stale_above: int = 0
    off_topic: int = 0
    off_topic_rejected: int = 0
    duplicate_adds: int = 0
    duplicates_stored: int = 0
    paraphrase_adds: int = 0
    paraphrases_stored: int = 0
    replacements: int = 0
    replaced_not_offered: int = 0
    replaced_not_applied: int = 0
    llm_calls: int | None = None
    by_tag: dict[str, list[int]] = field(default_factory=dict)  # tag -> [questions, top-1]
    answer_scores: list[float] = field(default_factory=list)
    off_topic_scores: list[float] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)  # questions with an answer
    off_topic_hits: list[dict[str, Any]] = field(default_factory=list)
    misses: list[dict[str, Any]] = field(default_factory=list)
    repeats_stored: list[dict[str, Any]] = field(default_factory=list)


class Tools:
    """The MCP tool calls the benchmark makes, structured results out, tool errors raised."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def call(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        result = await self.client.call_tool(tool, args)
        if result.is_error:
            text = " ".join(getattr(b, "text", "") for b in result.content)
            raise RuntimeError(f"{tool}({args}) failed: {text}")
        return dict(result.structured_content or {})


async def agent_add(tools: Tools, scen: Scenario, k: int, ids: dict[int, str], tally: Tally) -> dict:
    """One add by the scripted agent; returns the first add_memory result."""
    add = scen.adds[k]
    args = {"text": add.text, "user_id": scen.user_id, "timestamp": add.at}
    # memory_guide step 4: the relations the agent reads in the text (the same ones the scripted
    # graph extraction answers in llm mode), "user" for the user.
    types = dict(add.types)
    stated = [
        {"source": "user" if a == "I" else a, "relationship": r, "destination": "user" if b == "I" else b}
        | ({"source_type": types[a]} if a in types else {})
        | ({"destination_type": types[b]} if b in types else {})
        for a, r, b in add.relations
    ]
    res = await tools.call("add_memory", {**args, "relations": stated} if stated else args)
    ids[k] = res["results"][0]["id"]
    if add.kind == "paraphrase" and add.same_as is not None:
        # memory_guide: the same fact in other words, stored twice, supersedes the older wording.
        earlier = ids[scen.stored_index(add.same_as)]
        if res["results"][0]["event"] == "ADD" and earlier in {r["id"] for r in res.get("related") or []}:
            again = await tools.call("add_memory", {**args, "supersedes": [earlier]})
            res = {**res, "superseded": again.get("superseded", [])}
        return res
    if add.replaces is None:
        return res
    tally.replacements += 1
    target = ids[scen.stored_index(add.replaces)]
    related = res.get("related") or []
    if target not in {r["id"] for r in related}:
        tally.replaced_not_offered += 1
        shown = [{"memory": r["memory"], "score": r["score"]} for r in related]
        replaced = scen.adds[add.replaces].text
        tally.misses.append(dict(scenario=scen.id, add=add.text, replaces=replaced, related=shown))
        return res
    again = await tools.call("add_memory", {**args, "supersedes": [target]})
    if target not in again.get("superseded", []):
        tally.replaced_not_applied += 1
    return res


async def llm_add(tools: Tools, llm: ScriptedLLM, scen: Scenario, k: int, tally: Tally) -> dict:
    """One add through the server's LLM memory manager; returns the add_memory result."""
    add = scen.adds[k]
    exp = expectation(scen, k)
    llm.expect(exp)
    res = await tools.call("add_memory", {"text": add.text, "user_id": scen.user_id, "timestamp": add.at})
    if not res.get("inferred"):
        raise RuntimeError(f"{scen.id} adds[{k}] was not inferred: {res.get('reason')}")
    if add.replaces is None:
        return res
    tally.replacements += 1
    if not llm.offered:
        tally.replaced_not_offered += 1
        tally.misses.append(
            {"scenario": scen.id, "add": add.text, "replaces": exp.target, "related": "not shown to the LLM"}
        )
    elif not any(e["event"] == exp.event for e in res["results"]):
        tally.replaced_not_applied += 1
    return res


async def ask(tools: Tools, scen: Scenario, q: Question, threshold: float | None, tally: Tally) -> None:
    args: dict[str, Any] = {"query": q.q, "user_id": scen.user_id}
    if threshold is not None:
        args["threshold"] = threshold
    hits = (await tools.call("search_memory", args))["results"]
    texts = [h["memory"] for h in hits]
    top = [{"memory": h["memory"], "score": h.get("score")} for h in hits[:3]]
    if q.current is None:
        tally.off_topic += 1
        tally.off_topic_rejected += not hits
        if hits:
            tally.off_topic_scores.append(float(hits[0].get("score") or 0.0))
            tally.off_topic_hits.append({"scenario": scen.id, "question": q.q, "top": top[:1]})
        return
    tally.questions += 1
    current = next((i for i, t in enumerate(texts) if contains(t, q.current)), None)
    stale = next((i for i, t in enumerate(texts) if any(contains(t, s) for s in q.stale)), None)
    right = current == 0
    tally.top1 += right
    if current is not None:
        tally.answer_scores.append(float(hits[current].get("score") or 0.0))
    above = stale is not None and (current is None or stale < current)
    if q.stale:
        tally.stale_questions += 1
        tally.stale_above += above
    for tag in scen.tags:
        counts = tally.by_tag.setdefault(tag, [0, 0])
        counts[0] += 1
        counts[1] += right
    if not right or above:
        failure = dict(scenario=scen.id, question=q.q, expected=q.current, stale_above=above)
        tally.failures.append({**failure, "current_rank": current, "top": top})


async def run_mode(
    mode: str,
    scenarios: Sequence[Scenario],
    embedder: Any,
    data_dir: Path,
    threshold: float | None,
    two_call: bool = False,
) -> Tally:
    """Every scenario through a fresh server of ``mode`` on ``data_dir``; ``two_call`` turns the
    server's fused extract-and-decide call off (llm_single_call=false)."""
    from mcp.client import Client

    from mem0_mcp.config import Settings
    from mem0_mcp.engine.memory import Memory
    from mem0_mcp.server.app import create_server

    llm = ScriptedLLM() if mode in ("llm", "llm-no-graph") else None
    settings = Settings(  # type: ignore[call-arg]
        data_dir=data_dir,
        llm_provider="none",
        user_id="scenarios",
        llm_single_call=not two_call,
        # llm: the server's default with an LLM (graph_enabled=auto, so the graph is on).
        graph_enabled="false" if mode == "llm-no-graph" else "auto",
    )
    opened: list[Memory] = []

    def open_memory(s: Settings) -> Memory:
        opened.append(Memory(s, embedder=embedder, llm=llm))
        return opened[-1]

    server = create_server(settings, memory_factory=open_memory)
    tally = Tally(mode)
    async with Client(server) as client:
        tools = Tools(client)
        for scen in scenarios:
            ids: dict[int, str] = {}
            for k, add in enumerate(scen.adds):
                if llm is not None:
                    res = await llm_add(tools, llm, scen, k, tally)
                else:
                    res = await agent_add(tools, scen, k, ids, tally)
                if add.kind in REPEATING:
                    # Stored twice: a new memory beside the earlier one, still live.
                    stored = any(e["event"] == "ADD" for e in res["results"]) and not res.get("superseded")
                    if add.kind == "duplicate":
                        tally.duplicate_adds += 1
                        tally.duplicates_stored += stored
                    else:
                        tally.paraphrase_adds += 1
                        tally.paraphrases_stored += stored
                    if stored:
                        tally.repeats_stored.append({"scenario": scen.id, "kind": add.kind, "add": add.text})
            # The graph part of an add is written after the add returns (graph_background): the
            # questions come once it is written, as a later conversation would.
            for mem in opened:
                if mem.graph is not None:
                    mem.graph.queue.settle()
            for q in scen.questions:
                await ask(tools, scen, q, threshold, tally)
    if llm is not None:
        tally.llm_calls = sum(llm.calls.values())
    return tally


# ---------------------------------------------------------------------------- reporting


def ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def spread(values: list[float]) -> dict[str, float] | None:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)} if values else None


def summary(t: Tally) -> dict[str, Any]:
    """The JSON figures of one mode."""
    out: dict[str, Any] = {
        "top1": ratio(t.top1, t.questions),
        "top1_correct": t.top1,
        "questions": t.questions,
        "stale_above_current": ratio(t.stale_above, t.stale_questions),
        "stale_above": t.stale_above,
        "stale_questions": t.stale_questions,
        "duplicates_stored": t.duplicates_stored,
        "duplicate_adds": t.duplicate_adds,
        "paraphrases_stored": t.paraphrases_stored,
        "paraphrase_adds": t.paraphrase_adds,
        "off_topic_rejection": ratio(t.off_topic_rejected, t.off_topic),
        "off_topic_rejected": t.off_topic_rejected,
        "off_topic_questions": t.off_topic,
        "replacements": t.replacements,
        "replaced_not_offered": t.replaced_not_offered,
        "replaced_not_applied": t.replaced_not_applied,
        "top1_by_tag": {tag: ratio(c[1], c[0]) for tag, c in sorted(t.by_tag.items())},
        "scores": {"current_answer": spread(t.answer_scores), "off_topic_top": spread(t.off_topic_scores)},
        "meets_targets": bool(
            t.questions
            and t.top1 / t.questions >= TARGETS["top1"]
            and (not t.stale_questions or t.stale_above / t.stale_questions <= TARGETS["stale_above_current"])
        ),
        "failures": t.failures,
        "off_topic_answered": t.off_topic_hits,
        "replaced_not_offered_details": t.misses,
        "repeats_stored": t.repeats_stored,
    }
    if t.llm_calls is not None:
        out["llm_calls"] = t.llm_calls
    return out


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def table(modes: dict[str, dict[str, Any]]) -> str:
    head = (
        f"{'mode':<12} {'top-1':>12} {'stale>cur':>10} {'dups stored':>12} {'paraphr. stored':>16} "
        f"{'off-topic rejected':>19} {'replaced not offered':>21}"
    )
    lines = [head, "-" * len(head)]
    for mode, m in modes.items():
        lines.append(
            f"{mode:<12} {m['top1_correct']:>3}/{m['questions']:<3} {pct(m['top1']):>4} "
            f"{m['stale_above']:>2}/{m['stale_questions']:<2} {pct(m['stale_above_current']):>4} "
            f"{m['duplicates_stored']:>5}/{m['duplicate_adds']:<6} "
            f"{m['paraphrases_stored']:>8}/{m['paraphrase_adds']:<7} "
            f"{m['off_topic_rejected']:>7}/{m['off_topic_questions']:<3} {pct(m['off_topic_rejection']):>5} "
            f"{m['replaced_not_offered']:>12}/{m['replacements']:<8}"
        )
    return "\n".join(lines)


def default_threshold() -> str:
    """What search applies when the caller gives no threshold: the setting, if the server has one."""
    from mem0_mcp.config import Settings

    names = [
        n
        for n in Settings.model_fields
        if ("threshold" in n or "gate" in n) and n not in NOT_SEARCH_THRESHOLDS
    ]
    if not names:
        return "none: search_memory has no default threshold setting; off-topic questions ran unfiltered"
    defaults = {n: Settings.model_fields[n].default for n in names}
    return f"server default {defaults}"


def build_embedder(kind: str, root: Path) -> Any:
    if kind == "fake":
        from tests.support.engine import FakeEmbedder

        return FakeEmbedder()
    from mem0_mcp.config import Settings
    from mem0_mcp.embedding import build_embedder as build

    return build(Settings(data_dir=root / "embedder"))  # type: ignore[call-arg]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--embedder", choices=("bundled", "fake"), default="bundled")
    parser.add_argument(
        "--mode", action="append", choices=MODES, help="repeat for several (default all three)"
    )
    parser.add_argument("--scenario", action="append", help="only these scenario ids (repeatable)")
    parser.add_argument("--limit", type=int, help="only the first N scenarios")
    parser.add_argument(
        "--llm-two-call",
        action="store_true",
        help="llm mode: extraction then a decision call (llm_single_call=false) instead of the fused call",
    )
    parser.add_argument(
        "--threshold", type=float, help="pass this search threshold (default: the server's own)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, write the JSON; returns what it wrote."""
    import anyio

    args = parse_args(argv)
    logging.getLogger("mem0_mcp").setLevel(logging.WARNING)  # the engine's open/close notes
    scenarios = load(args.data)
    if args.scenario:
        unknown = set(args.scenario) - {s.id for s in scenarios}
        if unknown:
            raise SystemExit(f"unknown scenario ids: {sorted(unknown)}")
        scenarios = [s for s in scenarios if s.id in set(args.scenario)]
    if args.limit:
        scenarios = scenarios[: args.limit]
    modes = list(dict.fromkeys(args.mode or MODES))
    with tempfile.TemporaryDirectory(prefix="mem0-scenarios-") as tmp:
        root = Path(tmp)
        embedder = build_embedder(args.embedder, root)

        async def go() -> dict[str, Tally]:
            return {
                m: await run_mode(m, scenarios, embedder, root / m, args.threshold, args.llm_two_call)
                for m in modes
            }

        tallies = anyio.run(go)
    results = {m: summary(t) for m, t in tallies.items()}
    report = {
        "embedder": getattr(embedder, "name", args.embedder),
        "data": str(args.data.name),
        "scenarios": len(scenarios),
        "questions": sum(len(s.questions) for s in scenarios),
        "threshold": args.threshold if args.threshold is not None else default_threshold(),
        "llm_call": "extraction, then a decision call" if args.llm_two_call else "server default",
        "targets": TARGETS,
        "agent_policy": "add with the text's relations; if the replaced memory is in `related`, "
        "add the same text again with supersedes=[its id] "
        "(answered NONE, the old one superseded); repeats and refinements: nothing",
        "modes": results,
    }
    print(table(results))
    print(f"threshold: {report['threshold']}")
    for mode, m in results.items():
        for f in m["failures"]:
            print(f"  [{mode}] {f['scenario']}: {f['question']!r} expected {f['expected']!r}, top {f['top']}")
        for miss in m["replaced_not_offered_details"]:
            print(f"  [{mode}] not offered: {miss['add']!r} replaces {miss['replaces']!r}; {miss['related']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
