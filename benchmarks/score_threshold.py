"""Chooses the default relevance gate (`search_threshold`) and shows the trade-off it makes.

A search's `score` is the retrievers' own evidence added up (engine/ranking.py `relevance`: the
cosine, the share of the query's words the memory carries, and the time cue), the same scale for
every query. A gate on it then means "nothing relevant": a search whose best result is under it
returns nothing. Two sides are measured with the bundled model:

- recall: LoCoMo dev (`../shared/data/locomo_dev.json`), every question searched in its
  conversation's scope; frac@10 with the gate against frac@10 without it;
- rejection: off-topic questions of our own (`benchmarks/data/off_topic.json`), asked in every
  LoCoMo scope and in a small store of one person's facts: the share that returns nothing. A
  question counts in a scope only when no memory of the scope matches its `topic` (a
  conversation that talks about pizza has an answer to "Favourite pizza topping?"). The same
  questions are also asked naming one of the conversation's speakers instead of "the user"
  ("What is Caroline's blood type?"), since every LoCoMo question names one.

Also shown: cutting each result under a threshold instead of gating the list (costs far more
recall for the same rejection). The default gate is chosen by leave-one-conversation-out: for
each LoCoMo conversation, the highest gate whose frac@10 on the other four stays within one
point of no gate, then scored on the held-out conversation (its frac@10 drop, and the rejection
in its scope and the personal store). The default is the lowest of the five choices (the safest
for recall); the held-out mean and worst fold are reported.

    python benchmarks/score_threshold.py [../shared/data/locomo_dev.json] [--out JSON]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.locomo import session_messages  # noqa: E402
from benchmarks.locomo_data import Conversation, load  # noqa: E402
from benchmarks.locomo_scorer import question_scores  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "off_topic.json"
GRID = [round(0.01 * i, 2) for i in range(0, 61)]  # 0.00 .. 0.60
MAX_DROP = 1.0  # frac@10 points a gate may cost
MIN_OFF_TOPIC = 50  # off-topic questions every scope must keep after the topic check
PERSONAL = "personal"
Hits = list[tuple[str | None, float]]  # (dia_id, score) in rank order
Questions = list[tuple[tuple[str, ...], Hits]]


def ingest(memory: Any, conversations: Sequence[Conversation], facts: Sequence[str]) -> None:
    for conv in conversations:
        for session in conv.sessions:
            stamp = session.date.isoformat() if session.date else None
            memory.add(session_messages(session), user_id=conv.sample_id, timestamp=stamp, infer=False)
    for fact in facts:
        memory.add(fact, user_id=PERSONAL, infer=False)
    memory.optimize()


def search(memory: Any, query: str, user_id: str, limit: int) -> Hits:
    results = memory.search(query, user_id=user_id, limit=limit, threshold=0.0).results
    return [((r.metadata or {}).get("dia_id"), float(r.score or 0.0)) for r in results]


def off_topic_in(scope_texts: Sequence[str], questions: Sequence[dict[str, str]]) -> list[str]:
    """The questions whose topic no text of the scope mentions."""
    return [
        q["q"] for q in questions if not any(re.search(q["topic"], t, re.IGNORECASE) for t in scope_texts)
    ]


def naming(question: str, name: str) -> str:
    """The question about ``name`` instead of the user."""
    out = re.sub(r"\bthe user's\b", f"{name}'s", question)
    out = re.sub(r"\bthe user\b", name, out)
    out = re.sub(r"\b[Mm]y\b", f"{name}'s", out)
    out = re.sub(r"\b(do|does) we\b", f"does {name}", out)
    return re.sub(r"\bwe\b", name, out)


def frac10(questions: Questions, threshold: float, gate: bool = False) -> float:
    """frac@10 with results under ``threshold`` dropped (``gate``: the whole list dropped when
    its best result is under it, kept whole otherwise; the scope's own gate, see ``gated``)."""
    if not questions:
        return float("nan")
    total = 0.0
    for evidence, hits in questions:
        if gate:
            best = max((s for _, s in hits), default=0.0)
            kept = [] if gated(best, threshold) else [dia for dia, _ in hits]
        else:
            kept = [dia for dia, score in hits if score >= threshold]
        total += question_scores(evidence, kept, 10)["frac"]
    return 100.0 * total / len(questions)


def gated(best: float, threshold: float) -> bool:
    """Whether the search returns nothing (what engine/search.py decides)."""
    return best < threshold


Scores = dict[str, list[float]]  # scope -> the best score of each off-topic question


def rejected(off: Scores, threshold: float, scopes: Sequence[str] | None = None) -> float:
    """Share of the off-topic questions (of ``scopes``, default all) that return nothing."""
    outcomes = [
        gated(b, threshold)
        for scope, bests in off.items()
        if scopes is None or scope in scopes
        for b in bests
    ]
    return 100.0 * sum(outcomes) / len(outcomes) if outcomes else float("nan")


def choose(per_conv: dict[str, Questions], off: Scores) -> dict[str, Any]:
    """Leave-one-conversation-out choice of the setting (see the module docstring)."""
    folds = []
    for held in sorted(per_conv):
        train = [q for c, qs in per_conv.items() if c != held for q in qs]
        base = frac10(train, 0.0)
        pick = max(t for t in GRID if frac10(train, t, gate=True) >= base - MAX_DROP)
        test = per_conv[held]
        folds.append(
            {
                "held_out": held,
                "questions": len(test),
                "threshold": pick,
                "frac10_drop": frac10(test, 0.0) - frac10(test, pick, gate=True),
                "off_topic_rejected": rejected(off, pick, (held, PERSONAL)),
            }
        )
    total = sum(f["questions"] for f in folds)
    return {
        "folds": folds,
        "default": min(f["threshold"] for f in folds),
        "mean_drop": sum(f["frac10_drop"] * f["questions"] for f in folds) / total,
        "worst_drop": max(f["frac10_drop"] for f in folds),
        "mean_rejected": sum(f["off_topic_rejected"] for f in folds) / len(folds),
        "worst_rejected": min(f["off_topic_rejected"] for f in folds),
    }


def best_score(memory: Any, query: str, user: str) -> float:
    return max((s for _, s in search(memory, query, user, 100)), default=0.0)


def measure(memory: Any, conversations: Sequence[Conversation], data: dict[str, Any]) -> dict[str, Any]:
    """Every LoCoMo question's ranked hits; every off-topic question's best score per scope."""
    texts = {c.sample_id: [t.natural_text for t in c.turns()] for c in conversations}
    texts[PERSONAL] = list(data["personal_facts"])
    rows = {scope: memory.storage.vectors.count(f"user_id = '{scope}'") for scope in texts}
    per_conv: dict[str, Questions] = {
        c.sample_id: [(q.evidence, search(memory, q.question, c.sample_id, 20)) for q in c.questions]
        for c in conversations
    }
    asked = {scope: off_topic_in(scope_texts, data["off_topic"]) for scope, scope_texts in texts.items()}
    short = {scope: len(qs) for scope, qs in asked.items() if len(qs) < MIN_OFF_TOPIC}
    if short:
        raise SystemExit(f"too few off-topic questions left after the topic check: {short}")
    off = {scope: [best_score(memory, q, scope) for q in qs] for scope, qs in asked.items()}
    speakers = {c.sample_id: c.speakers for c in conversations}
    named = {
        scope: [best_score(memory, naming(q, speakers[scope][i % 2]), scope) for i, q in enumerate(qs)]
        for scope, qs in asked.items()
        if scope != PERSONAL
    }
    named[PERSONAL] = off[PERSONAL]
    return {"per_conv": per_conv, "off": off, "named": named, "asked": asked, "rows": rows}


def report(table: list[dict[str, Any]], chosen: dict[str, Any]) -> None:
    print(
        f"{'setting':>7} {'frac@10 gated':>14} {'(cut per result)':>17} {'off-topic empty':>16} "
        f"{'(naming a speaker)':>19} {'(personal store)':>17}"
    )
    for row in table:
        if round(row["threshold"] * 100) % 5 and row["threshold"] != chosen["default"]:
            continue
        print(
            f"{row['threshold']:>7.2f} {row['frac10_gate']:>14.1f} {row['frac10']:>17.1f} "
            f"{row['off_topic_rejected']:>15.0f}% {row['named_rejected']:>18.0f}% "
            f"{row['personal_rejected']:>16.0f}%"
        )
    print("leave-one-conversation-out:")
    for f in chosen["folds"]:
        print(
            f"  held out {f['held_out']}: setting {f['threshold']:.2f}, frac@10 drop "
            f"{f['frac10_drop']:.1f}, off-topic empty {f['off_topic_rejected']:.0f}%"
        )
    at = next(r for r in table if r["threshold"] == chosen["default"])
    print(
        f"default {chosen['default']:.2f}: LoCoMo dev frac@10 {at['frac10_gate']:.1f} vs "
        f"{table[0]['frac10_gate']:.1f} ungated, off-topic empty {at['off_topic_rejected']:.0f}% "
        f"(naming a speaker {at['named_rejected']:.0f}%, personal store {at['personal_rejected']:.0f}%); "
        f"held-out frac@10 drop mean {chosen['mean_drop']:.1f} worst {chosen['worst_drop']:.1f}; "
        f"held-out off-topic empty mean {chosen['mean_rejected']:.0f}% worst {chosen['worst_rejected']:.0f}%"
    )


def main(argv: Sequence[str] | None = None, *, embedder: Any = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", nargs="?", default=str(ROOT.parent / "shared" / "data" / "locomo_dev.json"))
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "score_threshold.json")
    args = parser.parse_args(argv)
    from mem0_mcp.config import Settings
    from mem0_mcp.embedding import BackgroundEmbedder
    from mem0_mcp.engine.memory import Memory

    conversations = load(args.file)
    data = json.loads(Path(args.data).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", llm_provider="none")
        memory = Memory(settings, embedder=embedder or BackgroundEmbedder.from_settings(settings))
        try:
            ingest(memory, conversations, data["personal_facts"])
            found = measure(memory, conversations, data)
        finally:
            memory.close()
    per_conv, off, named = found["per_conv"], found["off"], found["named"]
    everything = [q for qs in per_conv.values() for q in qs]
    table = [
        {
            "threshold": t,
            "frac10": frac10(everything, t),
            "frac10_gate": frac10(everything, t, gate=True),
            "off_topic_rejected": rejected(off, t),
            "named_rejected": rejected(named, t),
            "personal_rejected": rejected(off, t, (PERSONAL,)),
        }
        for t in GRID
    ]
    chosen = choose(per_conv, off)
    pairs = sum(len(qs) for qs in found["asked"].values())
    left_out = len(data["off_topic"]) * len(found["asked"]) - pairs
    print(
        f"{len(everything)} LoCoMo questions; {pairs} off-topic (question, scope) pairs in "
        f"{len(found['asked'])} scopes ({left_out} left out: the scope talks about the topic); "
        f"memories per scope: {found['rows']}"
    )
    report(table, chosen)
    result = {
        "questions": len(everything),
        "off_topic_queries": len(data["off_topic"]),
        "off_topic_pairs": pairs,
        "off_topic_left_out": left_out,
        "scopes": found["rows"],
        "table": table,
        "loco": chosen,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
