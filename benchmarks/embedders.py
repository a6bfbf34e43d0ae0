"""ONNX Runtime vs sentence-transformers for the configured model, measured in one run.

Import and load times are taken in fresh subprocesses (a warm process would hide them); query
latency, batch throughput and vector agreement in this process, both backends on the same texts
with the same thread count.

  python -m benchmarks.embedders [--queries 200] [--batch 1000] [--threads 0] [--out JSON]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "embedders.json"

_SUBJECTS = ["My sister Ana", "The user", "Caroline", "Our team lead", "My landlord", "Dr. Patel", "Melanie"]
_FACTS = [
    "prefers green tea over coffee in the morning",
    "is allergic to peanuts and shellfish",
    "moved to Lisbon in March and works remotely for a Berlin startup",
    "wants the weekly report every Friday before noon, as a PDF",
    "has been training for a half marathon and runs three times a week",
    "adopted a rescue dog named Biscuit who is afraid of thunderstorms",
    "uses vim keybindings everywhere and dislikes dark mode in documents",
    "is planning a two-week trip to Japan in October with her partner",
    "asked me to remind him about the dentist appointment on the 14th",
    "said the kitchen sink has been leaking since last Tuesday",
]
_TAILS = [
    "",
    " She mentioned it twice during our call.",
    " This came up while we were discussing the budget for next quarter and who would own it.",
    " Apparently it started years ago, after a long conversation with an old friend from university "
    "who had gone through something similar and recommended a different approach entirely.",
]
_QUERIES = [
    "what does my sister drink in the morning",
    "food allergies",
    "where does the user live",
    "when is the report due",
    "exercise habits",
    "pet",
    "editor preferences",
    "travel plans this autumn",
    "upcoming appointments",
    "problems in the apartment",
]


def corpus(n: int, seed: int = 7) -> list[str]:
    """Memory-like texts from a few words to about a hundred tokens, in a fixed order."""
    rng = random.Random(seed)
    return [f"{rng.choice(_SUBJECTS)} {rng.choice(_FACTS)}.{rng.choice(_TAILS)}" for _ in range(n)]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def run_child(code: str, env_extra: dict[str, str] | None = None) -> dict[str, Any]:
    """Runs ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEM0_MCP_")}
    env.update(env_extra or {})
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


IMPORT_ONNX = """
import json, time
t = time.perf_counter()
import onnxruntime, tokenizers
import mem0_mcp.embedding.onnx_runtime
print(json.dumps({"seconds": time.perf_counter() - t}))
"""

IMPORT_ST = """
import json, time
t = time.perf_counter()
import sentence_transformers
print(json.dumps({"seconds": time.perf_counter() - t}))
"""

# Start-to-ready: import plus model load (plus the export when the cache is empty), as the server
# pays it in its background loader.
LOAD_ONNX = """
import json, sys, time
from pathlib import Path
t = time.perf_counter()
from mem0_mcp.config import Settings
from mem0_mcp.embedding.factory import build_onnx_embedder
e = build_onnx_embedder(Settings(data_dir=Path({data_dir!r}), embedder_threads={threads}))
e.embed(["warm up"])
print(json.dumps({{"seconds": time.perf_counter() - t, "export_seconds": e.export_seconds,
                  "session_seconds": e.load_seconds, "torch_imported": "torch" in sys.modules}}))
"""

LOAD_ST = """
import json, time
t = time.perf_counter()
from mem0_mcp.config import DEFAULT_EMBEDDER_MODEL
from mem0_mcp.embedding.sentence_transformers import SentenceTransformerEmbedder
e = SentenceTransformerEmbedder(DEFAULT_EMBEDDER_MODEL, threads={threads})
e.embed(["warm up"])
print(json.dumps({{"seconds": time.perf_counter() - t}}))
"""


def latency(embedders: dict[str, Any], queries: int) -> dict[str, dict[str, float]]:
    """Per-query wall and process-CPU time, the backends interleaved so both see the same load.

    CPU time sums every thread of the process, so it is the figure that survives a busy machine.
    """
    for embedder in embedders.values():
        for q in _QUERIES[:3]:
            embedder.embed([q])
    wall: dict[str, list[float]] = {k: [] for k in embedders}
    cpu: dict[str, list[float]] = {k: [] for k in embedders}
    for i in range(queries):
        text = _QUERIES[i % len(_QUERIES)]
        for key, embedder in embedders.items():
            c0, t0 = time.process_time(), time.perf_counter()
            embedder.embed([text])
            wall[key].append(time.perf_counter() - t0)
            cpu[key].append(time.process_time() - c0)
    return {
        key: {
            "p50_ms": pct(wall[key], 50),
            "p95_ms": pct(wall[key], 95),
            "mean_ms": float(np.mean(wall[key])) * 1000,
            "cpu_mean_ms": float(np.mean(cpu[key])) * 1000,
        }
        for key in embedders
    }


def throughput(embedder: Any, texts: list[str]) -> tuple[dict[str, float], np.ndarray]:
    c0, t0 = time.process_time(), time.perf_counter()
    vectors = embedder.embed(texts)
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return {"seconds": seconds, "cpu_seconds": cpu, "texts_per_second": len(texts) / seconds}, vectors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=200, help="single-text calls timed per backend")
    ap.add_argument("--batch", type=int, default=1000, help="texts in the throughput batch")
    ap.add_argument("--batch-size", type=int, default=64, help="embedding_batch_size for both")
    ap.add_argument("--threads", type=int, default=0, help="embedder_threads (0: the backends' defaults)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)

    from mem0_mcp.config import DEFAULT_EMBEDDER_MODEL, Settings
    from mem0_mcp.embedding.factory import build_onnx_embedder
    from mem0_mcp.embedding.onnx_runtime import OnnxEmbedder

    results: dict[str, Any] = {
        "model": DEFAULT_EMBEDDER_MODEL,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "settings": {"batch_size": args.batch_size, "threads": args.threads, "queries": args.queries},
    }

    with tempfile.TemporaryDirectory(prefix="mem0-bench-emb-") as data_dir:
        print("import times ...", file=sys.stderr)
        imports = {
            "onnx": min(run_child(IMPORT_ONNX)["seconds"] for _ in range(2)),
            "sentence_transformers": min(run_child(IMPORT_ST)["seconds"] for _ in range(2)),
        }
        print("load: ONNX first start (export) ...", file=sys.stderr)
        first = run_child(LOAD_ONNX.format(data_dir=data_dir, threads=args.threads))
        print("load: ONNX cached start ...", file=sys.stderr)
        cached = run_child(LOAD_ONNX.format(data_dir=data_dir, threads=args.threads))
        print("load: sentence-transformers ...", file=sys.stderr)
        st_load = run_child(LOAD_ST.format(threads=args.threads))
        results["import_seconds"] = imports
        results["start_to_ready_seconds"] = {
            "onnx_first_start_with_export": first["seconds"],
            "onnx_export_only": first["export_seconds"],
            "onnx_cached_start": cached["seconds"],
            "onnx_cached_session_create": cached["session_seconds"],
            "onnx_cached_start_imported_torch": cached["torch_imported"],
            "sentence_transformers": st_load["seconds"],
        }

        print("query latency and batch throughput ...", file=sys.stderr)
        settings = Settings(
            data_dir=Path(data_dir), embedding_batch_size=args.batch_size, embedder_threads=args.threads
        )
        onnx = build_onnx_embedder(settings)
        from mem0_mcp.embedding.sentence_transformers import SentenceTransformerEmbedder

        st = SentenceTransformerEmbedder(
            DEFAULT_EMBEDDER_MODEL, batch_size=args.batch_size, threads=args.threads
        )
        texts = corpus(args.batch)
        onnx_batch, onnx_vectors = throughput(onnx, texts)
        st_batch, st_vectors = throughput(st, texts)
        cos = np.sum(onnx_vectors * st_vectors, axis=1)
        results["onnx_threads"] = onnx.threads
        contenders: dict[str, Any] = {"onnx": onnx, "sentence_transformers": st}
        if onnx.threads != 1:
            # Shows whether the default thread count pays off for single queries on this machine.
            contenders["onnx_1_thread"] = OnnxEmbedder(onnx.folder, name=onnx.name, threads=1)
        results["query_latency"] = latency(contenders, args.queries)
        results["batch"] = {"texts": len(texts), "onnx": onnx_batch, "sentence_transformers": st_batch}
        results["cosine_onnx_vs_st"] = {
            "min": float(cos.min()),
            "mean": float(cos.mean()),
            "texts": len(texts),
        }
        results["machine"]["load_average_at_end"] = (
            list(os.getloadavg()) if hasattr(os, "getloadavg") else None
        )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(format_table(results))
    print(f"\nwritten to {args.out}")
    return 0


def format_table(r: dict[str, Any]) -> str:
    s = r["start_to_ready_seconds"]
    q = r["query_latency"]
    b = r["batch"]
    rows = [
        ("import (s)", r["import_seconds"]["onnx"], r["import_seconds"]["sentence_transformers"]),
        ("start to ready, cached (s)", s["onnx_cached_start"], s["sentence_transformers"]),
        ("start to ready, first start incl. export (s)", s["onnx_first_start_with_export"], None),
        ("  of which export (s)", s["onnx_export_only"], None),
        ("query p50 (ms)", q["onnx"]["p50_ms"], q["sentence_transformers"]["p50_ms"]),
        ("query p95 (ms)", q["onnx"]["p95_ms"], q["sentence_transformers"]["p95_ms"]),
        (
            "query CPU time, all threads (ms)",
            q["onnx"]["cpu_mean_ms"],
            q["sentence_transformers"]["cpu_mean_ms"],
        ),
        (
            f"batch of {b['texts']} (texts/s)",
            b["onnx"]["texts_per_second"],
            b["sentence_transformers"]["texts_per_second"],
        ),
        (
            f"batch of {b['texts']} CPU time (s)",
            b["onnx"]["cpu_seconds"],
            b["sentence_transformers"]["cpu_seconds"],
        ),
    ]
    lines = [f"{'':46} {'onnx':>10} {'sent-trans':>10}"]
    for label, a, c in rows:
        right = f"{c:10.2f}" if c is not None else f"{'-':>10}"
        lines.append(f"{label:46} {a:10.2f} {right}")
    if "onnx_1_thread" in q:
        one = q["onnx_1_thread"]
        lines.append(
            f"ONNX on 1 thread instead of {r['onnx_threads']}: query p50 {one['p50_ms']:.2f} ms, "
            f"p95 {one['p95_ms']:.2f} ms, CPU {one['cpu_mean_ms']:.2f} ms"
        )
    cos = r["cosine_onnx_vs_st"]
    lines.append(f"cosine ONNX vs sentence-transformers: min {cos['min']:.6f}, mean {cos['mean']:.6f}")
    m = r["machine"]
    lines.append(f"cpus {m['cpus']}, load average {m['load_average_at_start']} -> {m['load_average_at_end']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
