#!/usr/bin/env python3
"""Add and search latency of the engine at growing store sizes, with the real embedder.

For each size N (memories in one user's scope): batched ingest (memories/s), one-at-a-time
verbatim adds (p50/p95), searches (p50/p95, query embedding included), recall@10 of the dense
retrieval against an exact scan (1.0 until the ANN index takes over past
`ann_index_threshold`), peak RSS of the process so far. With `--peer`, runs
../shared/bench/mem0_peer.py (mem0ai in its own venv) on the same workload and prints our/mem0
ratios from the same run.

Texts: LoCoMo turns (numbered so repeats stay distinct) below `--facts-from` memories, synthetic
one-line facts ("Dana adopted a grey cat in Lisbon (#123)") from there on. From `--random-from`
memories, a stand-in replaces the embedder: unit vectors drawn around 4,096 random centres, so
that neighbours exist as they do among real embeddings (uniform noise has none); the output
says so. Each size runs in its own process, so peak RSS is per size.

    python benchmarks/latency.py [--sizes 1000,10000,100000,1000000] [--peer .peer-mem0/bin/python]
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
from typing import Any

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


def numbered(texts: list[str], count: int) -> list[str]:
    """``count`` memories cycling through ``texts``, numbered so that repeated LoCoMo turns stay
    distinct memories (as in the peer run)."""
    return [f"{texts[i % len(texts)]} (#{i})" for i in range(count)]


def summary(lat: list[float]) -> dict[str, float]:
    lat = sorted(lat)
    return {
        "n": len(lat),
        "p50_ms": statistics.median(lat) * 1000,
        "p95_ms": lat[min(len(lat) - 1, int(0.95 * len(lat)))] * 1000,
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


NAMES = ["Dana", "Ravi", "Mei", "Tomas", "Aisha", "Jonas", "Lucia", "Kenji", "Nora", "Omar"]
VERBS = [
    "adopted",
    "bought",
    "painted",
    "visited",
    "cooked",
    "repaired",
    "sold",
    "photographed",
    "borrowed",
    "planted",
]
THINGS = [
    "a grey cat",
    "an old bicycle",
    "a lemon tree",
    "the lighthouse",
    "a sourdough loaf",
    "a canoe",
    "a chess set",
    "a violin",
    "the garden shed",
    "a pair of skis",
    "a telescope",
    "a quilt",
]
PLACES = [
    "Lisbon",
    "Osaka",
    "the lake house",
    "Denver",
    "the market",
    "Nairobi",
    "Oslo",
    "the office",
    "Valparaiso",
    "Quebec",
    "the farm",
    "Hanoi",
    "Krakow",
]
WHEN = [
    "last spring",
    "in May 2023",
    "on Sunday",
    "after work",
    "during the holidays",
    "years ago",
    "this morning",
]


def facts(n: int) -> list[str]:
    """Short memory-like facts, the kind an extraction step stores, numbered to stay distinct."""
    out = []
    for i in range(n):
        out.append(
            f"{NAMES[i % 10]} {VERBS[(i // 10) % 10]} {THINGS[(i // 100) % 12]} in "
            f"{PLACES[(i * 7) % 13]} {WHEN[(i * 3) % 7]} (#{i})"
        )
    return out


class StandInEmbedder:
    """Unit vectors around 4,096 random centres, seeded by the text: a stand-in at 1M memories,
    where embedding a million texts with the real model would take the better part of an hour."""

    name = "stand-in: random unit vectors around 4096 centres"
    dimension = 384

    def __init__(self) -> None:
        import numpy as np

        self._np = np
        self._centres = np.random.default_rng(0).standard_normal((4096, 384)).astype(np.float32)

    def embed(self, texts: list[str]) -> Any:
        np = self._np
        out = np.empty((len(texts), 384), dtype=np.float32)
        for i, text in enumerate(texts):
            rng = np.random.default_rng(abs(hash(text)) % (2**63))
            out[i] = self._centres[rng.integers(4096)] + 0.6 * rng.standard_normal(384)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def run_ours(
    n: int,
    texts: list[str],
    questions: list[str],
    *,
    singles: int,
    searches: int,
    use_facts: bool,
    stand_in: bool,
    batch: int,
) -> dict:
    import numpy as np

    from mem0_mcp.config import Settings
    from mem0_mcp.engine.memory import Memory

    workdir = Path(tempfile.mkdtemp(prefix="mem0mcp-bench-"))
    try:
        # The one-time model conversion is shared between runs: it is not part of any figure.
        settings = Settings(data_dir=workdir, llm_provider="none", model_cache_dir=MODEL_CACHE)  # type: ignore[call-arg]
        mem = Memory(settings, embedder=StandInEmbedder() if stand_in else None)
        mem.embedder.embed(["warm up"])  # the model load is not an add's cost
        pool = facts(n + singles) if use_facts else numbered(texts, n + singles)
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            msgs = [{"role": "user", "content": t} for t in pool[start : min(n, start + batch)]]
            mem.add(msgs, user_id="u")
            if (start // batch) % 20 == 19:
                done = start + len(msgs)
                print(f"  {n}: {done} ingested, {done / (time.perf_counter() - t0):.0f}/s", file=sys.stderr)
        ingest_s = time.perf_counter() - t0
        mem.optimize()
        # Past the ANN threshold the IVF lists train in the background after the ingest (minutes
        # of CPU at 1M): the adds and searches below are timed in the steady state after it.
        t = time.perf_counter()
        mem.storage.vectors.wait_for_index()
        index_wait_s = time.perf_counter() - t
        add_lat = []
        for text in pool[n : n + singles]:
            t = time.perf_counter()
            mem.add(text, user_id="u")
            add_lat.append(time.perf_counter() - t)
        mem.optimize()
        mem.storage.vectors.wait_for_index()
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
        # How much of the exact top 10 the dense retrieval finds (ANN index past the threshold).
        scope = {"user_id": "u", "agent_id": None, "run_id": None}
        recall = []
        dense_lat, exact_lat = [], []
        for vector in mem.embedder.embed(questions[:searches]):
            t = time.perf_counter()
            approx = mem.storage.vectors.dense_search(
                vector, 10, scope, include_superseded=False, columns=("id",)
            )
            dense_lat.append(time.perf_counter() - t)
            t = time.perf_counter()
            exact = mem.storage.vectors.dense_search(
                vector, 10, scope, include_superseded=False, columns=("id",), exact=True
            )
            exact_lat.append(time.perf_counter() - t)
            if approx is not None and exact is not None:
                recall.append(len({h["id"] for h in approx} & {h["id"] for h in exact}) / max(1, len(exact)))
        # Another process writing the same data dir (a second client's server): the first search
        # here after each of its adds pays for taking its rows into the in-process copy.
        foreign_lat: list[float] = []
        if n <= 100_000:
            other = Memory(
                Settings(
                    data_dir=workdir, llm_provider="none", model_cache_dir=MODEL_CACHE, dense_cache_rows=0
                ),  # type: ignore[call-arg]
                embedder=mem.embedder,
            )
            for i, q in enumerate(questions[:20]):
                other.add(f"{pool[i]} (from another process)", user_id="u")
                other.flush()
                t = time.perf_counter()
                mem.search(q, user_id="u", limit=10)
                foreign_lat.append(time.perf_counter() - t)
            other.close()
        stats = mem.stats()
        peak_rss = peak_rss_mb()  # before the load below holds a second copy
        # What a process opening this store (or seeing another process's write) pays, in the
        # background, before its searches move from LanceDB to the in-process copy.
        copy_load_s = mem.storage.vectors.load_copy()
        mem.close()
        return {
            "system": "mem0-mcp",
            "n": n,
            "texts": "synthetic facts" if use_facts else "LoCoMo turns",
            "embedder": stats.embedder,
            "stand_in_vectors": stand_in,
            "ingest_batched": {
                "memories": n,
                "batch": batch,
                "seconds": ingest_s,
                "per_second": n / ingest_s,
            },
            "add": summary(add_lat),
            "search": summary(search_lat),
            "query_embedding": summary(embed_lat),
            "search_after_foreign_add": summary(foreign_lat) if foreign_lat else None,
            "dense_retrieval": summary(dense_lat),
            "dense_exact_scan": summary(exact_lat),
            "ann_index": stats.ann_index,
            "ann_recall_at_10": float(np.mean(recall)) if recall else None,
            "copy_load_seconds": copy_load_s,
            "index_wait_seconds": index_wait_s,
            "peak_rss_mb": peak_rss,
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_size_in_subprocess(n: int, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--one",
        str(n),
        "--singles",
        str(args.singles),
        "--searches",
        str(args.searches),
        "--facts-from",
        str(args.facts_from),
        "--random-from",
        str(args.random_from),
        "--batch",
        str(args.batch),
    ]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"size {n} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


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
    p.add_argument("--batch", type=int, default=500, help="messages per batched add")
    p.add_argument("--facts-from", type=int, default=100_000, help="synthetic facts from this size on")
    p.add_argument("--random-from", type=int, default=1_000_000, help="stand-in vectors from this size on")
    p.add_argument("--peer", default=str(ROOT / ".peer-mem0" / "bin" / "python"))
    p.add_argument("--no-peer", action="store_true")
    p.add_argument("--out", default=str(RESULTS / "latency.json"))
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one size, JSON on stdout
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    texts, questions = corpus(DATA)
    if args.one:
        n = args.one
        row = run_ours(
            n,
            texts,
            questions,
            singles=args.singles,
            searches=args.searches,
            use_facts=n >= args.facts_from,
            stand_in=n >= args.random_from,
            batch=args.batch,
        )
        print(json.dumps(row))
        return
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        ours = run_size_in_subprocess(n, args)
        peer = None if args.no_peer or n >= args.facts_from else run_peer(args.peer, n, args.searches)
        rows.append({"n": n, "ours": ours, "mem0": peer})
        print(json.dumps({"n": n, "ours": ours}), file=sys.stderr)
    print(
        f"\n{'N':>8} | {'texts':<15} | {'search p50':>10} {'p95':>6} | {'add p50':>7} {'p95':>6} | "
        f"{'ingest/s':>8} | {'ANN':>3} {'recall@10':>9} | {'RSS MB':>6} | mem0 search / add p50 | ratio"
    )
    for row in rows:
        o, m = row["ours"], row["mem0"]
        recall = o.get("ann_recall_at_10")
        line = (
            f"{row['n']:>8} | {o.get('texts', ''):<15} | {o['search']['p50_ms']:>10.2f} "
            f"{o['search']['p95_ms']:>6.2f} | {o['add']['p50_ms']:>7.2f} {o['add']['p95_ms']:>6.2f} | "
            f"{o['ingest_batched']['per_second']:>8.0f} | {'yes' if o.get('ann_index') else 'no':>3} "
            f"{recall if recall is None else round(recall, 3)!s:>9} | {o['peak_rss_mb']:>6.0f} | "
        )
        if m:
            line += (
                f"{m['search']['p50_ms']:>8.2f} / {m['add']['p50_ms']:>6.2f} | "
                f"search {m['search']['p50_ms'] / o['search']['p50_ms']:.1f}x faster, "
                f"add {m['add']['p50_ms'] / o['add']['p50_ms']:.2f}x"
            )
        else:
            line += "-"
        print(line + ("   (stand-in vectors)" if o.get("stand_in_vectors") else ""))
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
