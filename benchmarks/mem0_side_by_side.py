"""Our search beside mem0's on the same LoCoMo turns and questions: recall and latency ratios.

mem0 runs in its own virtual environment (.peer-mem0, see ../shared/bench/mem0_peer.py for the
set-up) so its dependencies never mix with the project's; this script installs nothing and skips
with a message when that environment or ``mem0ai`` in it is missing.

  python -m benchmarks.mem0_side_by_side ../shared/data/locomo_dev.json \
      [--ours benchmarks/results/locomo.json] [--peer-python .peer-mem0/bin/python]

Our figures come from a benchmarks/locomo.py result file (run it first); mem0's rankings are
scored here with the same scorer.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.locomo_data import load
from benchmarks.locomo_scorer import KS, format_table, score, text_token_counter

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PEER_PYTHON = ROOT / ".peer-mem0" / "bin" / "python"
DEFAULT_PEER_SCRIPT = ROOT.parent / "shared" / "bench" / "mem0_peer.py"
DEFAULT_OURS = ROOT / "benchmarks" / "results" / "locomo.json"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "locomo_mem0.json"


def peer_available(python: Path) -> str | None:
    """None when mem0 can run, else why not."""
    if not python.exists():
        return f"{python} not found (create it as ../shared/bench/mem0_peer.py describes)"
    probe = subprocess.run([str(python), "-c", "import mem0"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"mem0ai is not importable with {python}"
    return None


def ratio_rows(ours: dict, theirs: dict, our_latency: dict, their_latency: dict) -> list[tuple]:
    rows = []
    for k in KS:
        for metric in ("frac", "all", "any", "ndcg"):
            key = f"{metric}@{k}"
            a, b = ours["overall"][key], theirs["overall"][key]
            rows.append((key, a, b, a / b if b else float("nan")))
    for key in ("p50_ms", "p95_ms"):
        a, b = our_latency.get(key, float("nan")), their_latency.get(key, float("nan"))
        rows.append((f"search {key}", a, b, a / b if b else float("nan")))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file")
    p.add_argument("--ours", default=str(DEFAULT_OURS), help="a benchmarks/locomo.py result JSON")
    p.add_argument("--system", default="mem0-mcp", help="which system of --ours to compare")
    p.add_argument("--peer-python", default=str(DEFAULT_PEER_PYTHON))
    p.add_argument("--peer-script", default=str(DEFAULT_PEER_SCRIPT))
    p.add_argument("--peer-result", help="reuse a mem0_peer.py output instead of running it")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    args = p.parse_args(argv)

    conversations = load(args.file)
    ours_doc = json.loads(Path(args.ours).read_text())
    ours = ours_doc["systems"][args.system]
    if args.peer_result:
        peer = json.loads(Path(args.peer_result).read_text())
    else:
        why = peer_available(Path(args.peer_python))
        if why:
            print(f"skipping the mem0 side-by-side: {why}")
            return 0
        with tempfile.TemporaryDirectory(prefix="mem0-side-") as tmp:
            out = Path(tmp) / "mem0.json"
            cmd = [args.peer_python, args.peer_script, "locomo", args.file, "--out", str(out), "--k", "20"]
            print("running:", " ".join(cmd), file=sys.stderr, flush=True)
            subprocess.run(cmd, check=True)
            peer = json.loads(out.read_text())
    rankings = peer["rankings"]
    theirs = score(conversations, rankings, context_tokens=text_token_counter(conversations, rankings))
    print(format_table({args.system: ours, f"mem0ai {peer.get('mem0_version', '?')}": theirs}))
    rows = ratio_rows(ours, theirs, ours_doc.get("search_latency", {}), peer.get("search", {}))
    print(f"\n{'metric':<16} {'ours':>8} {'mem0':>8} {'ours/mem0':>10}")
    for name, a, b, r in rows:
        print(f"{name:<16} {a:8.1f} {b:8.1f} {r:10.2f}")
    print(
        f"(mem0 add p50 {peer['add']['p50_ms']:.1f} ms per turn; ours: "
        f"{ours_doc.get('ingest_seconds', 0):.0f} s for {ours_doc.get('turns', '?')} turns, "
        "one add per session)"
    )
    Path(args.out).write_text(
        json.dumps(
            {
                "mem0_version": peer.get("mem0_version"),
                "mem0": {"scores": theirs, "add": peer.get("add"), "search": peer.get("search")},
                "ours": {"system": args.system, "scores": ours, "search": ours_doc.get("search_latency")},
                "ratios": {name: r for name, _, _, r in rows},
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
