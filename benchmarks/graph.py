#!/usr/bin/env python3
"""Graph memory costs on Kùzu: per-operation open, search at scale, add with vs without graph.

1. Open cost: the database is opened per operation (one process may hold it), so every graph
   read or write pays an open + close; measured on a small graph and on the large one. Writes
   close without a checkpoint; the write-ahead log (its size is reported) is replayed by opens.
2. Graph search p50 with N entities / M relations in the searched scope (default 10k / 50k,
   bulk-loaded with COPY), depth 1 and 2, query vector given (embedding excluded).
3. add() with graph vs without: verbatim adds through ``Memory`` with a scripted LLM that answers
   the graph extraction instantly (LLM time excluded), on a fresh data dir and into the large scope.

    python benchmarks/graph.py [--entities 10000] [--relations 50000] [--fake-embedder]

Prints a summary and writes benchmarks/results/graph.json.
"""

from __future__ import annotations

import argparse
import importlib.util  # noqa: F401  (Kùzu's Python scans look it up)
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"

from mem0_mcp.engine.memory import Memory  # noqa: E402
from mem0_mcp.graph.kuzu_store import KuzuGraphStore  # noqa: E402
from mem0_mcp.graph.memory import GraphMemory  # noqa: E402
from mem0_mcp.models import Scope  # noqa: E402
from tests.support.engine import FakeEmbedder, make_settings  # noqa: E402
from tests.support.graph_llm import CONTRADICTION, EXTRACTION, RoutingLLM  # noqa: E402

SCOPE = Scope(user_id="bench")
OTHER = Scope(user_id="someone-else")
NOW = "2026-01-01T00:00:00.000000Z"
WORDS = ("acme", "berlin", "anna", "project", "falcon", "garden", "python", "tokyo", "violin", "maria")
RELS = ("works_at", "lives_in", "knows", "likes", "manages", "located_in", "part_of", "owns", "uses")


def p50(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def p95(samples: list[float]) -> float:
    s = sorted(samples)
    return round(s[min(len(s) - 1, int(0.95 * len(s)))] * 1000, 2)


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def name_of(i: int) -> str:
    return f"{WORDS[i % len(WORDS)].title()} {i}"


def bulk_load(
    store: KuzuGraphStore, n_entities: int, n_relations: int, dim: int, seed: int = 0
) -> np.ndarray:
    """COPY n entities / m relations into SCOPE (plus a tenth as many into OTHER) in one write open."""
    rng = np.random.default_rng(seed)
    # The first entity goes through the store: it creates the schema and the FTS index.
    vectors = rng.standard_normal((n_entities, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    first = store.create_entity(SCOPE, name_of(0), name_of(0).casefold(), "thing", vectors[0], NOW)
    n_other = max(1, n_entities // 10)
    with store.burst(write=True):
        conn = store.db.connection
        ids = [first.id, *(f"e{i}" for i in range(1, n_entities))]
        other_ids = [f"o{i}" for i in range(n_other)]
        names = [name_of(i) for i in range(n_entities)] + [name_of(i) for i in range(n_other)]
        all_ids = ids[1:] + other_ids
        all_names = names[1:n_entities] + names[n_entities:]
        scope_users = ["bench"] * (n_entities - 1) + ["someone-else"] * n_other
        other_vecs = rng.standard_normal((n_other, dim)).astype(np.float32)
        vecs = np.concatenate([vectors[1:], other_vecs / np.linalg.norm(other_vecs, axis=1, keepdims=True)])
        empty = pa.array([""] * len(all_ids), type=pa.string())
        entities = pa.table(  # noqa: F841  (read by COPY ... FROM entities below)
            {
                "id": all_ids,
                "name": all_names,
                "norm": [n.casefold() for n in all_names],
                "type": ["thing"] * len(all_ids),
                "aliases": [[n.casefold()] for n in all_names],
                "user_id": scope_users,
                "agent_id": empty,
                "run_id": empty,
                "embedding": pa.array(list(vecs), type=pa.list_(pa.float32(), dim)),
                "created_at": [NOW] * len(all_ids),
            }
        )
        conn.execute("COPY Entity FROM entities")  # Kùzu scans the local pyarrow table by name
        src = rng.integers(0, n_entities, n_relations)
        dst = (src + rng.integers(1, n_entities, n_relations)) % n_entities
        n = n_relations
        empty_r = pa.array([""] * n, type=pa.string())
        relations = pa.table(  # noqa: F841  (read by COPY ... FROM relations below)
            {
                "from": [ids[i] for i in src],
                "to": [ids[i] for i in dst],
                "id": [f"r{i}" for i in range(n)],
                "relation": [RELS[i % len(RELS)] for i in range(n)],
                "user_id": ["bench"] * n,
                "agent_id": empty_r,
                "run_id": empty_r,
                "created_at": [NOW] * n,
                "valid_from": [NOW] * n,
                "invalidated_at": pa.array([None] * n, type=pa.string()),
                "invalidated_reason": pa.array([None] * n, type=pa.string()),
                "sources": [[f"m{i % 5000}"] for i in range(n)],
            }
        )
        conn.execute("COPY RELATES FROM relations")
    return vectors


def open_costs(store: KuzuGraphStore, n: int) -> dict[str, float]:
    some = store.named(SCOPE, name_of(0).casefold())[0]
    read = timed(lambda: store.counts(), n)
    write = timed(lambda: store.add_alias(some.id, "bench alias"), n)

    def bare_open() -> None:
        with store.burst():
            pass

    opened = timed(bare_open, n)
    wal = store.path.with_name(store.path.name + ".wal")
    return {
        "wal_kb_after": round(wal.stat().st_size / 1024, 1) if wal.exists() else 0.0,
        "open_close_ms_p50": p50(opened),
        "open_read_close_ms_p50": p50(read),
        "open_write_close_ms_p50": p50(write),
    }


def search_bench(graph: GraphMemory, vectors: np.ndarray, n: int, depth: int) -> dict[str, float]:
    rng = np.random.default_rng(1)
    picks = rng.integers(0, len(vectors), n)
    lat, found = [], []
    for i in picks:
        noisy = vectors[i] + 0.3 * rng.standard_normal(vectors.shape[1]).astype(np.float32)
        t = time.perf_counter()
        rels = graph.search(f"what about {name_of(int(i))}", noisy, SCOPE, 10, depth=depth)
        lat.append(time.perf_counter() - t)
        found.append(len(rels))
    return {"p50_ms": p50(lat), "p95_ms": p95(lat), "relations_returned_mean": float(np.mean(found))}


def add_bench(data_dir: Path, embedder: Any, graph: bool, n: int, offset: int = 0) -> list[float]:
    llm = RoutingLLM(defaults={CONTRADICTION: {"invalidate": []}})
    mem = Memory(make_settings(data_dir, graph_enabled=graph), embedder=embedder, llm=llm)
    lat = []
    try:
        for i in range(offset, offset + n):
            a, b = name_of(i), name_of(i + 1)
            llm.push(
                EXTRACTION,
                {
                    "entities": [{"name": a, "type": "person"}, {"name": b, "type": "organization"}],
                    "relations": [
                        {"source": "I", "relation": "knows", "destination": a},
                        {"source": a, "relation": "works_at", "destination": b},
                    ],
                },
            )
            t = time.perf_counter()
            r = mem.add(f"I know {a}, who works at {b} (note {i})", user_id="bench")
            lat.append(time.perf_counter() - t)
            assert not r.warnings, r.warnings
            assert bool(r.relations) == graph
    finally:
        mem.close()
    return lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entities", type=int, default=10_000)
    ap.add_argument("--relations", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--adds", type=int, default=30)
    ap.add_argument("--fake-embedder", action="store_true", help="hashed bag of words (384-d), no model")
    ap.add_argument("--out", type=Path, default=RESULTS / "graph.json")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="mem0-graph-bench-"))
    started = time.perf_counter()
    if args.fake_embedder:
        embedder: Any = FakeEmbedder(dimension=384)
    else:
        from mem0_mcp.embedding import BackgroundEmbedder

        embedder = BackgroundEmbedder.from_settings(make_settings(tmp / "probe"))
        embedder.embed(["warm up"])  # model load is not an add's cost
    dim = int(embedder.embed(["x"]).shape[1])
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        },
        "embedder": f"{embedder.name} ({type(embedder).__name__})",
        "dimension": dim,
    }
    try:
        # --- 3a. add with vs without graph on a fresh data dir (small graph).
        without = add_bench(tmp / "add-off", embedder, False, args.adds)
        with_graph = add_bench(tmp / "add-on", embedder, True, args.adds)
        results["add_fresh"] = {
            "adds": args.adds,
            "without_graph_p50_ms": p50(without),
            "with_graph_p50_ms": p50(with_graph),
            "with_graph_p95_ms": p95(with_graph),
            "note": "verbatim add, scripted LLM (0 ms); graph: 2 relations, 3 entities per add",
        }
        small = KuzuGraphStore(tmp / "add-on" / "graph.kuzu", lock_path=tmp / "add-on" / "graph.lock")
        results["open_cost_small_graph"] = {**open_costs(small, 15), **small.counts()}
        print(json.dumps(results["add_fresh"]), flush=True)
        print("open cost, small graph:", json.dumps(results["open_cost_small_graph"]), flush=True)

        # --- 2. search at scale.
        big_dir = tmp / "big"
        store = KuzuGraphStore(big_dir / "graph.kuzu", lock_path=big_dir / "graph.lock")
        t = time.perf_counter()
        vectors = bulk_load(store, args.entities, args.relations, dim)
        load_s = time.perf_counter() - t
        counts = store.counts()
        name_match_ok = bool(store.text_entities(SCOPE, name_of(args.entities - 1), 3))
        results["scale"] = {
            "entities_in_scope": args.entities,
            "relations_in_scope": args.relations,
            "entities_total": counts["entities"],
            "relations_total": counts["relations"],
            "bulk_load_s": round(load_s, 2),
            "name_match_finds_bulk_loaded_names": name_match_ok,
            "db_mb": round(sum(p.stat().st_size for p in big_dir.iterdir() if p.is_file()) / 2**20, 1),
        }
        print("scale:", json.dumps(results["scale"]), flush=True)
        results["open_cost_large_graph"] = open_costs(store, 15)
        print("open cost, large graph:", json.dumps(results["open_cost_large_graph"]), flush=True)
        settings = make_settings(big_dir)
        graph = GraphMemory(settings, store, embed=embedder.embed, llm=lambda: None)
        search_bench(graph, vectors, 3, 1)  # warm the page cache
        results["search_depth1"] = search_bench(graph, vectors, args.queries, 1)
        results["search_depth2"] = search_bench(graph, vectors, args.queries, 2)
        with store.burst():
            q = vectors[5]
            results["search_parts_in_one_open_ms_p50"] = {
                "vector_exact_scan": p50(timed(lambda: store.similar_entities(SCOPE, q, 5, exact=False), 15)),
                "name_words_match": p50(timed(lambda: store.text_entities(SCOPE, name_of(5), 5), 15)),
                "relations_1hop_5_seeds": p50(
                    timed(lambda: store.relations(SCOPE, ["e1", "e2", "e3", "e4", "e5"], depth=1), 15)
                ),
            }
        print("search depth 1:", json.dumps(results["search_depth1"]), flush=True)
        print("search depth 2:", json.dumps(results["search_depth2"]), flush=True)
        print("search parts:", json.dumps(results["search_parts_in_one_open_ms_p50"]), flush=True)

        # --- 3b. add with graph into the large scope (entity resolution scans 10k entities).
        shutil.copytree(tmp / "add-off", tmp / "big-mem", dirs_exist_ok=True)
        shutil.copy2(big_dir / "graph.kuzu", tmp / "big-mem" / "graph.kuzu")
        n_big = max(5, args.adds // 3)
        big_with = add_bench(tmp / "big-mem", embedder, True, n_big, offset=args.entities + 10)
        results["add_into_large_scope"] = {"adds": n_big, "with_graph_p50_ms": p50(big_with)}
        print("add into large scope:", json.dumps(results["add_into_large_scope"]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["total_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out} ({results['total_s']} s)")


if __name__ == "__main__":
    main()
