"""Leave-one-conversation-out check of the ranking settings on LoCoMo dev.

The ranking's settings were tuned on all five dev conversations; the held-out conversations score
below dev. This script asks whether a setting generalizes: for each conversation, the value that
scores best on the other four is scored on the held-out one, and the mean and worst held-out
frac@10 are printed beside the all-dev figure. A value only one fold likes shows up as a fold
whose choice differs from the rest.

Swept: `vector_weight` (the dense share of fusion) and `search_candidates` (how deep each
retriever goes), both settings read at search time, so one ingest serves every value.

    python benchmarks/loco_ranking.py [../shared/data/locomo_dev.json] [--out JSON]
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
from benchmarks.locomo_data import load  # noqa: E402
from benchmarks.locomo_scorer import question_scores  # noqa: E402

SWEEPS: dict[str, list[Any]] = {
    "vector_weight": [0.2, 0.3, 0.4, 0.5, 0.6],
    "search_candidates": [40, 80, 160],
}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", nargs="?", default=str(ROOT.parent / "shared" / "data" / "locomo_dev.json"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "loco_ranking.json")
    args = parser.parse_args(argv)
    from mem0_mcp.config import Settings
    from mem0_mcp.embedding import BackgroundEmbedder
    from mem0_mcp.engine.memory import Memory

    conversations = load(args.file)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", llm_provider="none", search_threshold=0.0)
        memory = Memory(settings, embedder=BackgroundEmbedder.from_settings(settings))
        try:
            for conv in conversations:
                for session in conv.sessions:
                    stamp = session.date.isoformat() if session.date else None
                    memory.add(
                        session_messages(session), user_id=conv.sample_id, timestamp=stamp, infer=False
                    )
            memory.optimize()
            defaults = {name: getattr(settings, name) for name in SWEEPS}
            for name, values in SWEEPS.items():
                # frac@10 per conversation per value
                table: dict[Any, dict[str, float]] = {}
                for value in values:
                    for other, default in defaults.items():
                        setattr(settings, other, default)
                    setattr(settings, name, value)
                    per_conv: dict[str, float] = {}
                    for conv in conversations:
                        total = 0.0
                        for q in conv.questions:
                            hits = memory.search(q.question, user_id=conv.sample_id, limit=10).results
                            ranking = [(h.metadata or {}).get("dia_id") for h in hits]
                            total += question_scores(q.evidence, ranking, 10)["frac"]
                        per_conv[conv.sample_id] = (total, len(conv.questions))  # type: ignore[assignment]
                    table[value] = per_conv  # type: ignore[assignment]
                out[name] = folds(name, table, defaults[name])
            for other, default in defaults.items():
                setattr(settings, other, default)
        finally:
            memory.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    return out


def folds(name: str, table: dict[Any, dict[str, Any]], default: Any) -> dict[str, Any]:
    def frac(value: Any, convs: Sequence[str]) -> float:
        found = sum(table[value][c][0] for c in convs)
        asked = sum(table[value][c][1] for c in convs)
        return 100.0 * found / asked

    convs = sorted(next(iter(table.values())))
    rows = []
    for held in convs:
        train = [c for c in convs if c != held]
        pick = max(table, key=lambda v: (round(frac(v, train), 6), v == default))
        rows.append(
            {
                "held_out": held,
                "choice": pick,
                "held_out_frac10": frac(pick, [held]),
                "default_frac10": frac(default, [held]),
            }
        )
    dev = {str(v): frac(v, convs) for v in table}
    result = {
        "default": default,
        "all_dev_frac10": dev,
        "folds": rows,
        "mean_held_out": sum(r["held_out_frac10"] for r in rows) / len(rows),
        "worst_held_out": min(r["held_out_frac10"] for r in rows),
        "mean_default_held_out": sum(r["default_frac10"] for r in rows) / len(rows),
        "worst_default_held_out": min(r["default_frac10"] for r in rows),
    }
    print(f"{name}: all-dev frac@10 " + ", ".join(f"{v}: {f:.1f}" for v, f in dev.items()))
    for r in rows:
        print(
            f"  held out {r['held_out']}: chose {r['choice']}, held-out frac@10 {r['held_out_frac10']:.1f} "
            f"(default {default}: {r['default_frac10']:.1f})"
        )
    print(
        f"  chosen by the other four: mean {result['mean_held_out']:.1f}, "
        f"worst {result['worst_held_out']:.1f}; the default: mean "
        f"{result['mean_default_held_out']:.1f}, worst {result['worst_default_held_out']:.1f}"
    )
    return result


if __name__ == "__main__":
    main()
