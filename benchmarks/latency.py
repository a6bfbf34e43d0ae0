#!/usr/bin/env python3
"""Add and search latency of the engine at growing store sizes, with the real embedder.

For each size N (memories in one user's scope): batched ingest (memories/s), one-at-a-time
verbatim adds (p50/p95), searches (p50/p95, query embedding included), peak RSS. With
`--peer`, runs ../shared/bench/mem0_peer.py (mem0ai in its own venv) on the same workload and
prints our/mem0 ratios from the same run.

    python benchmarks/latency.py [--sizes 1000,10000] [--peer .peer-mem0/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "locomo_dev.json"
PEER = ROOT.parent / "shared" / "bench" / "mem0_peer.py"
RESULTS = ROOT / "benchmarks" / "results"
MODEL_CACHE = ROOT / ".cache" / "models"
_SESSION = re.compile(r"^session_(\d+)$")


def corpus(path: Path) -> tuple[list[str], list[str]]:
    """Turn texts and questions of the LoCoMo file (the same texts the peer script uses)."""
    data = json.loads(path.read_text())
    texts, questions = [], []
    for sample in data:
        conv = sample["conversation"]
        for n in sorted(int(m.group(1)) for k in conv for m in [_SESSION.match(k)] if m):
            for turn in conv[f"session_{n}"]:
                text = f'{turn["speaker"]} said, "{turn.get("text", "")}"'
                if turn.get("blip_caption"):
                    text += f" and shared {turn['blip_caption']}"
                texts.append(text)
        questions += [qa["question"] for qa in sample["qa"]]
    return texts, questions


def summary(lat: list[float]) -> dict[str, float]:
    lat = sorted(lat)
    return {
        "n": len(lat),
        "p50_ms": statistics.median(lat) * 1000,
        "p95_ms": lat[min(len(lat) - 1, int(0.95 * len(lat)))] * 1000,
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(n: int, texts: list[str], questions: list[str], *, singles: int, searches: int) -> dict:
    from mem0_mcp.config import Settings
    from mem0_mcp.memory import Memory

    workdir = Path(tempfile.mkdtemp(prefix="mem0mcp-bench-"))
    try:
        # The one-time model conversion is shared between runs: it is not part of any figure.
        settings = Settings(data_dir=workdir, llm_provider="none", model_cache_dir=MODEL_CACHE)  # type: ignore[call-arg]
        mem = Memory(settings)
        mem.embedder.embed(["warm up"])  # the model load is not an add's cost
        # Numbered so that repeated LoCoMo turns stay distinct memories, as in the peer run.
        pool = [f"{texts[i % len(texts)]} (#{i})" for i in range(n + singles)]
        batch = 500
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            msgs = [{"role": "user", "content": t} for t in pool[start : min(n, start + batch)]]
            mem.add(msgs, user_id="u")
        ingest_s = time.perf_counter() - t0
        mem.optimize()
        add_lat = []
        for text in pool[n : n + singles]:
            t = time.perf_counter()
            mem.add(text, user_id="u")
            add_lat.append(time.perf_counter() - t)
        mem.optimize()
        for q in questions[:20]:  # warm caches
            mem.search(q, user_id="u", limit=10)
        search_lat = []
        for q in questions[:searches]:
            t = time.perf_counter()
            mem.search(q, user_id="u", limit=10)
            search_lat.append(time.perf_counter() - t)
        embed_lat = []
        for q in questions[:searches]:
            t = time.perf_counter()
            mem.embedder.embed([q])
            embed_lat.append(time.perf_counter() - t)
        stats = mem.stats()
        mem.close()
        return {
            "system": "mem0-mcp",
            "n": n,
            "embedder": stats.embedder,
            "ingest_batched": {"memories": n, "seconds": ingest_s, "per_second": n / ingest_s},
            "add": summary(add_lat),
            "search": summary(search_lat),
            "query_embedding": summary(embed_lat),
            "peak_rss_mb": peak_rss_mb(),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_peer(python: str, n: int, searches: int) -> dict | None:
    if not Path(python).exists():
        print(f"peer skipped: {python} not found (see {PEER} for its set-up)", file=sys.stderr)
        return None
    out = Path(tempfile.mkdtemp()) / "peer.json"
    cmd = [python, str(PEER), "scale", str(DATA), "--n", str(n), "--q", str(searches), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"peer failed: {proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(out.read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,10000")
    p.add_argument("--singles", type=int, default=200, help="one-at-a-time adds timed at each size")
    p.add_argument("--searches", type=int, default=200)
    p.add_argument("--peer", default=str(ROOT / ".peer-mem0" / "bin" / "python"))
    p.add_argument("--no-peer", action="store_true")
    p.add_argument("--out", default=str(RESULTS / "latency.json"))
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    texts, questions = corpus(DATA)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        ours = run_ours(n, texts, questions, singles=args.singles, searches=args.searches)
        peer = None if args.no_peer else run_peer(args.peer, n, args.searches)
        rows.append({"n": n, "ours": ours, "mem0": peer})
        print(json.dumps({"n": n, "ours": ours}), file=sys.stderr)
    print(
        f"\n{'N':>7} | {'search p50':>10} {'p95':>7} | {'add p50':>8} {'p95':>7} | {'ingest/s':>8} | "
        f"{'RSS MB':>7} | {'mem0 search p50':>15} {'mem0 add p50':>12} | ratio search / add"
    )
    for row in rows:
        o, m = row["ours"], row["mem0"]
        line = (
            f"{row['n']:>7} | {o['search']['p50_ms']:>10.2f} {o['search']['p95_ms']:>7.2f} | "
            f"{o['add']['p50_ms']:>8.2f} {o['add']['p95_ms']:>7.2f} | "
            f"{o['ingest_batched']['per_second']:>8.0f} | {o['peak_rss_mb']:>7.0f} | "
        )
        if m:
            line += (
                f"{m['search']['p50_ms']:>15.2f} {m['add']['p50_ms']:>12.2f} | "
                f"{m['search']['p50_ms'] / o['search']['p50_ms']:.1f}x faster / "
                f"{m['add']['p50_ms'] / o['add']['p50_ms']:.2f}x"
            )
        else:
            line += f"{'-':>15} {'-':>12} | -"
        print(line)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
