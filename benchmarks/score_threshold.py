"""Chooses the default search threshold (`search_threshold`) and shows the trade-off it makes.

A search's `score` is the result's cosine to the query, the same scale for every query. A
threshold then means "nothing relevant" when nothing clears it. Two sides are measured with the
bundled model:

- recall: LoCoMo dev (`../shared/data/locomo_dev.json`), every question searched in its
  conversation's scope; frac@10 with results below the threshold dropped, against frac@10 with
  no threshold;
- rejection: off-topic questions of our own (`benchmarks/data/off_topic.json`), asked in every
  LoCoMo scope and in a small store of one person's facts: the share that returns nothing.

Two ways to use a threshold are shown: cutting each result under it, and as a gate (a search
whose best result is under it returns nothing, any other returns its whole list). The gate keeps
far more recall for the same rejection, so the default setting is a gate, chosen by
leave-one-conversation-out: for each LoCoMo conversation, the highest gate whose frac@10 on the
other four stays within one point of no gate; that gate is then scored on the held-out
conversation. The default is the lowest of the five choices (the safest for recall); mean and
worst fold are reported.

    python benchmarks/score_threshold.py [../shared/data/locomo_dev.json] [--out JSON]
"""

from __future__ import annotations

import argparse
import json
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
GRID = [round(0.05 * i, 2) for i in range(0, 13)]  # 0.00 .. 0.60
MAX_DROP = 1.0  # frac@10 points a threshold may cost
Hits = list[tuple[str | None, float]]  # (dia_id, score) in rank order


def ingest(memory: Any, conversations: Sequence[Conversation], facts: Sequence[str]) -> None:
    for conv in conversations:
        for session in conv.sessions:
            stamp = session.date.isoformat() if session.date else None
            memory.add(session_messages(session), user_id=conv.sample_id, timestamp=stamp, infer=False)
    for fact in facts:
        memory.add(fact, user_id="personal", infer=False)
    memory.optimize()


def search(memory: Any, query: str, user_id: str, limit: int) -> Hits:
    results = memory.search(query, user_id=user_id, limit=limit, threshold=0.0).results
    return [((r.metadata or {}).get("dia_id"), float(r.score or 0.0)) for r in results]


def frac10(questions: list[tuple[tuple[str, ...], Hits]], threshold: float, gate: bool = False) -> float:
    """frac@10 with results under ``threshold`` dropped (``gate``: the whole list dropped when
    its best result is under it, kept whole otherwise)."""
    if not questions:
        return float("nan")
    total = 0.0
    for evidence, hits in questions:
        if gate:
            kept = [dia for dia, _ in hits] if max((s for _, s in hits), default=0.0) >= threshold else []
        else:
            kept = [dia for dia, score in hits if score >= threshold]
        total += question_scores(evidence, kept, 10)["frac"]
    return 100.0 * total / len(questions)


def rejected(best: list[float], threshold: float) -> float:
    return 100.0 * sum(1 for b in best if b < threshold) / len(best) if best else float("nan")


def choose(per_conv: dict[str, list], off: dict[str, list[float]], personal: list[float]) -> dict[str, Any]:
    folds = []
    for held in sorted(per_conv):
        train = [q for c, qs in per_conv.items() if c != held for q in qs]
        base = frac10(train, 0.0)
        pick = max(t for t in GRID if frac10(train, t, gate=True) >= base - MAX_DROP)
        test = per_conv[held]
        folds.append(
            {
                "held_out": held,
                "threshold": pick,
                "frac10_drop": frac10(test, 0.0) - frac10(test, pick, gate=True),
                "off_topic_rejected": rejected(off[held] + personal, pick),
            }
        )
    default = min(f["threshold"] for f in folds)
    return {
        "folds": folds,
        "default": default,
        "mean_drop": sum(f["frac10_drop"] for f in folds) / len(folds),
        "worst_drop": max(f["frac10_drop"] for f in folds),
        "mean_rejected": sum(f["off_topic_rejected"] for f in folds) / len(folds),
        "worst_rejected": min(f["off_topic_rejected"] for f in folds),
    }


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
            per_conv = {
                c.sample_id: [(q.evidence, search(memory, q.question, c.sample_id, 20)) for q in c.questions]
                for c in conversations
            }

            def best(user: str) -> list[float]:
                return [
                    max((s for _, s in search(memory, q, user, 100)), default=0.0) for q in data["off_topic"]
                ]

            off = {c.sample_id: best(c.sample_id) for c in conversations}
            personal = best("personal")
        finally:
            memory.close()
    everything = [q for qs in per_conv.values() for q in qs]
    all_off = [b for bs in off.values() for b in bs] + personal
    table = [
        {
            "threshold": t,
            "frac10": frac10(everything, t),
            "off_topic_rejected": rejected(all_off, t),
            "personal_rejected": rejected(personal, t),
            "frac10_gate": frac10(everything, t, gate=True),
        }
        for t in GRID
    ]
    chosen = choose(per_conv, off, personal)
    print(
        f"{'threshold':>9} {'frac@10':>8} {'as a gate':>10} {'off-topic empty':>16} {'(personal store)':>17}"
    )
    for row in table:
        print(
            f"{row['threshold']:>9.2f} {row['frac10']:>8.1f} {row['frac10_gate']:>10.1f} "
            f"{row['off_topic_rejected']:>15.0f}% {row['personal_rejected']:>16.0f}%"
        )
    print("leave-one-conversation-out:")
    for f in chosen["folds"]:
        print(
            f"  held out {f['held_out']}: threshold {f['threshold']:.2f}, frac@10 drop "
            f"{f['frac10_drop']:.1f}, off-topic empty {f['off_topic_rejected']:.0f}%"
        )
    print(
        f"default {chosen['default']:.2f}; frac@10 drop mean {chosen['mean_drop']:.1f} worst "
        f"{chosen['worst_drop']:.1f}; off-topic empty mean {chosen['mean_rejected']:.0f}% worst "
        f"{chosen['worst_rejected']:.0f}%"
    )
    result = {
        "questions": len(everything),
        "off_topic_queries": len(data["off_topic"]),
        "scopes": len(conversations) + 1,
        "table": table,
        "loco": chosen,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
