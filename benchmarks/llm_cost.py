"""LLM cost of ``add(infer=True)``: our planner against a plain two-call pipeline.

The LoCoMo dev conversations are replayed as adds (two consecutive turns per add, both speakers
as named users, one scope per conversation) through ``MemoryPipeline`` twice, with the same
deterministic scripted LLM and a small in-memory store:

* **ours**: the shipped planner (near-exact duplicates are NONE without a call, facts with no
  related memory are ADDed without the decision call, one decision call for the rest);
* **two-call**: extract, then always one decision call over every fact and its top 5 neighbours
  (``always_decide=True``), which is what Mem0 does.

The scripted LLM extracts one fact per turn (the turn's first sentence, if it has at least four
words) and decides like a careful model would, by rule: NONE for a stored memory at cosine >=
the dedup threshold, UPDATE of a stored memory at cosine >= 0.85, else ADD; hand-written cases
add DELETE and UPDATE rules between specific texts. Tokens are estimated at four characters per
token for both pipelines alike. The resulting memory states of both runs are compared.

    .venv/bin/python benchmarks/llm_cost.py [--data PATH] [--embedder minilm|bow] [--limit N]

Prints a table and writes benchmarks/results/llm_cost.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mem0_mcp.llm.base import LLMResponse  # noqa: E402
from mem0_mcp.llm.pipeline import MemoryPipeline, Neighbour, Plan  # noqa: E402
from mem0_mcp.llm.prompts import PromptSet  # noqa: E402
from mem0_mcp.models import Message  # noqa: E402

DATA = Path("/work/shared/data/locomo_dev.json")
RESULTS = ROOT / "benchmarks" / "results" / "llm_cost.json"
UPDATE_COSINE = 0.85
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_LINE = re.compile(r"^(?P<speaker>[^:\n]+?) \((?:user|assistant|system|tool)\): (?P<text>.*)$")


# --------------------------------------------------------------------------- embedders


class CachedEmbedder:
    """Each distinct text embedded once across both runs (the LLM is scripted, embeddings are not)."""

    def __init__(self, embed: Any, name: str) -> None:
        self._embed = embed
        self.name = name
        self.cache: dict[str, np.ndarray] = {}

    def warm(self, texts: Sequence[str]) -> None:
        todo = sorted({t for t in texts if t not in self.cache})
        for start in range(0, len(todo), 256):
            batch = todo[start : start + 256]
            for t, v in zip(batch, self._embed(batch), strict=True):
                self.cache[t] = np.asarray(v, dtype=np.float32)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.warm(texts)
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        return np.stack([self.cache[t] for t in texts])


def bow_embed(texts: Sequence[str], dim: int = 256) -> np.ndarray:
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, text in enumerate(texts):
        for w in re.findall(r"[a-z0-9]+", text.lower()):
            out[i, int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little") % dim] += 1
        if not out[i].any():
            out[i, 0] = 1
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def make_embedder(kind: str) -> CachedEmbedder:
    if kind == "minilm":
        try:
            from mem0_mcp.config import DEFAULT_EMBEDDER_MODEL
            from mem0_mcp.embedding.sentence_transformers import SentenceTransformerEmbedder

            model = SentenceTransformerEmbedder(DEFAULT_EMBEDDER_MODEL)
            return CachedEmbedder(model.embed, "all-MiniLM-L6-v2")
        except Exception as exc:  # no model installed: the benchmark still runs
            print(f"MiniLM unavailable ({exc}); using the bag-of-words embedder", file=sys.stderr)
    return CachedEmbedder(bow_embed, "bag-of-words")


# --------------------------------------------------------------------------- scripted LLM


def first_sentence(text: str) -> str | None:
    sentence = _SENTENCE.split(text.strip(), maxsplit=1)[0].strip()
    return sentence if len(sentence.split()) >= 4 else None


def transcript_facts(transcript: str) -> list[str]:
    out = []
    for line in transcript.splitlines():
        m = _LINE.match(line)
        if m and (fact := first_sentence(m.group("text"))):
            out.append(fact)
    return out


def _block(system: str, start: str, end: str) -> list[tuple[int, str]]:
    body = system.split(start, 1)[1].split(end, 1)[0]
    items = []
    for line in body.strip().splitlines():
        k, _, rest = line.partition(": ")
        items.append((int(k), json.loads(rest)))
    return items


@dataclass
class ScriptedLLM:
    """Deterministic stand-in for the model: what it returns depends only on what it is shown."""

    embed: CachedEmbedder
    dedup_threshold: float
    rules: dict[tuple[str, str], str] = field(default_factory=dict)  # (fact, memory) -> event
    name: str = "scripted"
    supports_vision: bool = False
    request_bound: bool = False
    calls: dict[str, int] = field(default_factory=lambda: {"extract": 0, "decide": 0, "fused": 0})

    def complete(
        self,
        system: str,
        messages: list[dict[str, Any]],
        *,
        json_output: bool = True,
        max_tokens: int | None = None,
        prompt: str | None = None,
    ) -> LLMResponse:
        if "New facts (number: text):" in system:
            self.calls["decide"] += 1
            reply = self._decide(system)
        elif "Stored memories (id: text):" in system and "The conversation:" in system:
            self.calls["fused"] += 1
            reply = self._fused(system)
        elif "The conversation:" in system:
            self.calls["extract"] += 1
            reply = {"facts": transcript_facts(system.split("The conversation:", 1)[1])}
        else:
            raise AssertionError("unexpected prompt")
        text = json.dumps(reply, ensure_ascii=False)
        shown = len(system) + sum(len(str(m["content"])) for m in messages)
        return LLMResponse(text, shown // 4, len(text) // 4)

    def _decide(self, system: str) -> dict[str, Any]:
        memories = _block(system, "Stored memories (id: text):", "New facts (number: text):")
        new = _block(system, "New facts (number: text):", "Answer with a JSON object")
        decisions: list[dict[str, Any]] = []
        for k, fact in new:
            decisions += [{"fact": k, **d} for d in self._judge(fact, memories)]
        return {"decisions": decisions}

    def _fused(self, system: str) -> dict[str, Any]:
        memories = _block(system, "Stored memories (id: text):", "Answer with a JSON object")
        out = []
        for fact in transcript_facts(system.split("The conversation:", 1)[1]):
            judged = self._judge(fact, memories)
            entry: dict[str, Any] = {"text": fact, "event": "ADD"}
            for d in judged:
                if d["event"] in ("UPDATE", "NONE"):
                    entry.update(event=d["event"], id=d["id"])
                elif d["event"] == "DELETE":
                    entry.setdefault("deletes", []).append(d["id"])
            out.append(entry)
        return {"facts": out}

    def _judge(self, fact: str, memories: list[tuple[int, str]]) -> list[dict[str, Any]]:
        """One fact against the memories shown: rules first, then cosine (NONE, UPDATE, else ADD)."""
        ruled = [(mid, self.rules[(fact, mem)]) for mid, mem in memories if (fact, mem) in self.rules]
        if ruled:
            out: list[dict[str, Any]] = []
            for mid, event in ruled:
                out.append({"event": event, "id": mid, **({"text": fact} if event == "UPDATE" else {})})
            if all(e != "UPDATE" for _, e in ruled):
                out.append({"event": "ADD", "text": fact})
            return out
        if memories:
            sims = self.embed([m for _, m in memories]) @ self.embed([fact])[0]
            j = int(np.argmax(sims))
            best, best_sim = memories[j][0], float(sims[j])
            if best_sim >= self.dedup_threshold:
                return [{"event": "NONE", "id": best}]
            if best_sim >= UPDATE_COSINE:
                return [{"event": "UPDATE", "id": best, "text": fact}]
        return [{"event": "ADD", "text": fact}]


# --------------------------------------------------------------------------- in-memory store


@dataclass
class Row:
    id: str
    scope: str
    text: str
    vector: np.ndarray
    superseded_by: str | None = None


class Store:
    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    def neighbours(self, scope: str, k: int = 5) -> Any:
        def find(vectors: np.ndarray) -> list[list[Neighbour]]:
            live = [r for r in self.rows.values() if r.scope == scope and r.superseded_by is None]
            if not live:
                return [[] for _ in vectors]
            matrix = np.stack([r.vector for r in live])
            out = []
            for v in vectors:
                sims = matrix @ v
                top = np.argsort(-sims)[:k]
                out.append([Neighbour(live[i].id, live[i].text, float(sims[i])) for i in top])
            return out

        return find

    def apply(self, scope: str, plan: Plan) -> None:
        ids: list[str | None] = [None] * len(plan.actions)
        for i, a in enumerate(plan.actions):
            if a.event == "ADD":
                row = Row(str(uuid.uuid4()), scope, a.text, a.vector)  # type: ignore[arg-type]
                self.rows[row.id] = row
                ids[i] = row.id
            elif a.event == "UPDATE" and a.memory_id in self.rows:
                self.rows[a.memory_id].text = a.text
                self.rows[a.memory_id].vector = a.vector  # type: ignore[assignment]
                ids[i] = a.memory_id
        for a in plan.actions:
            if a.event == "DELETE" and a.memory_id in self.rows:
                by = ids[a.superseded_by] if a.superseded_by is not None else None
                self.rows[a.memory_id].superseded_by = by or "?"

    def state(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for r in self.rows.values():
            if r.superseded_by is None:
                out.setdefault(r.scope, []).append(r.text)
        return {k: sorted(v) for k, v in sorted(out.items())}


# --------------------------------------------------------------------------- replay


def locomo_adds(path: Path, limit: int | None = None) -> list[tuple[str, list[Message]]]:
    data = json.loads(path.read_text())
    adds: list[tuple[str, list[Message]]] = []
    for conv in data:
        c = conv["conversation"]
        sessions = sorted(
            (int(k.split("_")[1]), v)
            for k, v in c.items()
            if re.fullmatch(r"session_\d+", k) and isinstance(v, list)
        )
        for _, turns in sessions:
            msgs = []
            for t in turns:
                text = t["text"] + (
                    f" [shared a photo: {t['blip_caption']}]" if t.get("blip_caption") else ""
                )
                msgs.append(Message(role="user", content=text, name=t["speaker"]))
            for i in range(0, len(msgs), 2):
                adds.append((conv["sample_id"], msgs[i : i + 2]))
    return adds[:limit] if limit else adds


@dataclass
class Tally:
    adds: int = 0
    calls: int = 0
    extract_calls: int = 0
    decide_calls: int = 0
    fused_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    events: dict[str, int] = field(default_factory=lambda: {"ADD": 0, "UPDATE": 0, "DELETE": 0, "NONE": 0})
    seconds: float = 0.0


def replay(
    adds: list[tuple[str, list[Message]]], pipeline: MemoryPipeline, llm: ScriptedLLM, embed: CachedEmbedder
) -> tuple[Tally, Store]:
    store = Store()
    tally = Tally()
    llm.calls = {"extract": 0, "decide": 0, "fused": 0}
    start = time.perf_counter()
    for scope, msgs in adds:
        plan = pipeline.plan(
            msgs, agent_mode=False, memory_type=None, embed=embed, neighbours=store.neighbours(scope)
        )
        if not plan.inferred:
            raise RuntimeError(f"inference failed: {plan.reason}")
        store.apply(scope, plan)
        tally.adds += 1
        tally.calls += plan.usage.llm_calls
        tally.input_tokens += plan.usage.input_tokens
        tally.output_tokens += plan.usage.output_tokens
        for a in plan.actions:
            tally.events[a.event] += 1
    tally.extract_calls, tally.decide_calls = llm.calls["extract"], llm.calls["decide"]
    tally.fused_calls = llm.calls["fused"]
    tally.seconds = round(time.perf_counter() - start, 2)
    return tally, store


# --------------------------------------------------------------------------- hand-written cases

SCRIPTED_CASES: list[dict[str, Any]] = [
    {
        "name": "move: contradiction supersedes, new fact kept",
        "turns": ["I live in Berlin with my partner.", "Last month I moved to Munich for a new job."],
        "rules": {
            ("Last month I moved to Munich for a new job.", "I live in Berlin with my partner."): "DELETE"
        },
    },
    {
        "name": "repeat: exact repeat is NONE",
        "turns": [
            "My favourite food is spicy ramen.",
            "My favourite food is spicy ramen.",
            "My favourite food is spicy ramen.",
        ],
        "rules": {},
    },
    {
        "name": "refine: UPDATE merges a more precise fact",
        "turns": ["I work as a nurse in a hospital.", "I work as a night-shift nurse at Charite hospital."],
        "rules": {
            (
                "I work as a night-shift nurse at Charite hospital.",
                "I work as a nurse in a hospital.",
            ): "UPDATE"
        },
    },
    {
        "name": "unrelated facts: ADD without decision",
        "turns": [
            "I play the cello every Sunday.",
            "My sister Anna lives in Lisbon.",
            "I am allergic to shellfish and peanuts.",
        ],
        "rules": {},
    },
    {
        "name": "diet change: DELETE + ADD, then a repeat",
        "turns": [
            "I have been vegetarian for ten years.",
            "I started eating fish again this spring.",
            "I started eating fish again this spring.",
        ],
        "rules": {
            ("I started eating fish again this spring.", "I have been vegetarian for ten years."): "DELETE"
        },
    },
    {
        "name": "German: language kept, update",
        "turns": ["Ich wohne seit 2019 in Leipzig.", "Ich wohne seit 2019 in Leipzig-Connewitz."],
        "rules": {("Ich wohne seit 2019 in Leipzig-Connewitz.", "Ich wohne seit 2019 in Leipzig."): "UPDATE"},
    },
]


MODES = {
    "two_call": {"always_decide": True},
    "ours": {},
    "ours_single_call": {"single_call": True},
}


def make_pipeline(
    llm: ScriptedLLM, prompts: PromptSet, mode: str, related: float, dedup: float
) -> MemoryPipeline:
    return MemoryPipeline(
        llm,
        prompts,
        dedup_threshold=dedup,
        related_threshold=related,
        today=lambda: date(2026, 1, 1),
        **MODES[mode],  # type: ignore[arg-type]
    )


def scripted_cases(embed: CachedEmbedder, prompts: PromptSet, related: float, dedup: float) -> list[dict]:
    out = []
    for case in SCRIPTED_CASES:
        adds = [(case["name"], [Message(role="user", content=t, name="Sam")]) for t in case["turns"]]
        results = {}
        for mode in MODES:
            llm = ScriptedLLM(embed, dedup, rules=case["rules"])
            tally, store = replay(adds, make_pipeline(llm, prompts, mode, related, dedup), llm, embed)
            results[mode] = (tally.calls, store.state().get(case["name"], []))
        out.append(
            {
                "case": case["name"],
                **{f"calls_{mode}": results[mode][0] for mode in MODES},
                "same_state_ours": results["ours"][1] == results["two_call"][1],
                "same_state_single_call": results["ours_single_call"][1] == results["two_call"][1],
                "state_two_call": results["two_call"][1],
            }
        )
    return out


# --------------------------------------------------------------------------- main


def pct(ours: float, base: float) -> float:
    return round(100.0 * (1 - ours / base), 1) if base else 0.0


def state_diff(a: dict[str, list[str]], b: dict[str, list[str]]) -> int:
    """Memories in one final state and not the other (both directions)."""
    diff = 0
    for scope in set(a) | set(b):
        x, y = a.get(scope, []), b.get(scope, [])
        diff += sum((Counter(x) - Counter(y)).values()) + sum((Counter(y) - Counter(x)).values())
    return diff


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--embedder", choices=("minilm", "bow"), default="minilm")
    ap.add_argument("--limit", type=int, default=None, help="only the first N adds")
    ap.add_argument(
        "--related",
        type=float,
        nargs="*",
        default=[0.5, 0.6],
        help="related_threshold values to report besides the shipped one",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--embed-cache",
        type=Path,
        default=None,
        help="an .npz to keep embeddings between runs (keep it outside the repository)",
    )
    args = ap.parse_args(argv)

    prompts = PromptSet.load()
    from mem0_mcp.config import Settings

    default_single_call = bool(Settings.model_fields["llm_single_call"].default)
    shipped = MemoryPipeline(None, prompts)
    dedup, shipped_related = shipped.dedup_threshold, shipped.related_threshold
    embed = make_embedder(args.embedder)
    adds = locomo_adds(args.data, args.limit)
    if args.embed_cache and args.embed_cache.exists():
        cached = np.load(args.embed_cache, allow_pickle=False)
        if str(cached["name"]) == embed.name:
            embed.cache.update(zip(cached["texts"].tolist(), cached["vectors"], strict=True))
    t0 = time.perf_counter()
    embed.warm([m.content for _, msgs in adds for m in msgs if isinstance(m.content, str)])
    embed.warm(
        [
            f
            for _, msgs in adds
            for m in msgs
            if isinstance(m.content, str)
            for f in [first_sentence(m.content)]
            if f
        ]
    )
    embed_seconds = round(time.perf_counter() - t0, 1)
    if args.embed_cache:
        texts = list(embed.cache)
        np.savez(
            args.embed_cache,
            name=embed.name,
            texts=np.array(texts),
            vectors=np.stack([embed.cache[t] for t in texts]),
        )

    def run(mode: str, related: float) -> tuple[Tally, Store]:
        llm = ScriptedLLM(embed, dedup)
        return replay(adds, make_pipeline(llm, prompts, mode, related, dedup), llm, embed)

    base, base_store = run("two_call", shipped_related)
    rows = []
    for mode in ("ours", "ours_single_call"):
        # The single-call path shows the nearest memories whatever their similarity: one run.
        relateds = sorted(set(args.related) | {shipped_related}) if mode == "ours" else [shipped_related]
        for related in relateds:
            tally, store = run(mode, related)
            rows.append(
                {
                    "pipeline": mode,
                    "related_threshold": related,
                    # The default mode follows the llm_single_call setting's default.
                    "shipped_default": related == shipped_related
                    and (mode == "ours_single_call") == default_single_call,
                    "tally": tally.__dict__,
                    "calls_saved_pct": pct(tally.calls, base.calls),
                    "input_tokens_saved_pct": pct(tally.input_tokens, base.input_tokens),
                    "output_tokens_saved_pct": pct(tally.output_tokens, base.output_tokens),
                    "memories": sum(len(v) for v in store.state().values()),
                    "memories_differing_from_two_call": state_diff(store.state(), base_store.state()),
                }
            )
    cases = scripted_cases(embed, prompts, shipped_related, dedup)

    print(
        f"LoCoMo dev replayed as {base.adds} adds (2 turns each), embedder {embed.name}, "
        f"dedup {dedup}, scripted LLM; embedding took {embed_seconds}s\n"
    )
    head = (
        f"{'pipeline':<30}{'calls':>7}{'extr':>6}{'dec':>6}{'fused':>6}{'in tok':>10}{'out tok':>9}"
        f"{'calls/add':>10}{'calls':>7}{'in tok':>7}{'state':>7}"
    )
    print(head)
    print(f"{'':<30}{'':>7}{'':>6}{'':>6}{'':>6}{'':>10}{'':>9}{'':>10}{'saved':>7}{'saved':>7}{'diff':>7}")
    print(
        f"{'two-call (extract+decide)':<30}{base.calls:>7}{base.extract_calls:>6}{base.decide_calls:>6}"
        f"{base.fused_calls:>6}{base.input_tokens:>10}{base.output_tokens:>9}{base.calls / base.adds:>10.2f}"
        f"{'-':>7}{'-':>7}{'-':>7}"
    )
    for r in rows:
        t = r["tally"]
        label = f"ours, rel>={r['related_threshold']}" if r["pipeline"] == "ours" else "ours, single call"
        label += " *" if r["shipped_default"] else ""
        print(
            f"{label:<30}{t['calls']:>7}{t['extract_calls']:>6}{t['decide_calls']:>6}{t['fused_calls']:>6}"
            f"{t['input_tokens']:>10}{t['output_tokens']:>9}{t['calls'] / t['adds']:>10.2f}"
            f"{r['calls_saved_pct']:>6}%{r['input_tokens_saved_pct']:>6}%"
            f"{r['memories_differing_from_two_call']:>7}"
        )
    total = sum(len(v) for v in base_store.state().values())
    print(f"* shipped default; two-call final state: {total} memories\n")
    print(f"{'scripted case':<48}{'2-call':>7}{'ours':>6}{'same':>6}{'single':>8}{'same':>6}")
    for c in cases:
        print(
            f"{c['case']:<48}{c['calls_two_call']:>7}{c['calls_ours']:>6}"
            f"{'yes' if c['same_state_ours'] else 'NO':>6}{c['calls_ours_single_call']:>8}"
            f"{'yes' if c['same_state_single_call'] else 'NO':>6}"
        )

    result = {
        "data": str(args.data),
        "adds": base.adds,
        "turns_per_add": 2,
        "embedder": embed.name,
        "dedup_threshold": dedup,
        "update_cosine_of_scripted_llm": UPDATE_COSINE,
        "two_call": base.__dict__,
        "variants": rows,
        "scripted_cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
