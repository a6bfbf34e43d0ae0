#!/usr/bin/env python3
"""Graph memory costs: the in-memory graph that follows the shared log, against Kùzu opened per call.

Same data, same run, both stores:

- **before** (``KuzuGraphStore``): every operation opens Kùzu under a file lock (one process may
  hold it) and queries it; the figures are the open cost and search at scale.
- **after** (``LoggedGraphStore``, what the server uses): reads answer from an in-memory copy that
  follows the graph log (SQLite, shared by processes); writes append to the log; Kùzu is a view
  brought up to date in the background.

1. add() with vs without the graph: verbatim adds through ``Memory`` with a scripted LLM that
   answers the graph extraction instantly (LLM time excluded), fresh data dir.
2. N entities / M relations in the searched scope (default 10k / 50k, COPY-loaded into Kùzu, then
   moved into the log as an upgraded data dir would be): the move, a new process's first read
   (replaying the log), graph search p50/p95 through the engine (query embedding included) at
   depth 1 and 2, beside memory search on 10k memories in the same run and the Kùzu store.
3. Following another process: the first read after it wrote 20 relations; the Kùzu view's sync.
4. add() with the graph into the large scope (entity resolution against 10k entities).

    python benchmarks/graph.py [--entities 10000] [--relations 50000] [--memories 10000] [--fake-embedder]

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
from mem0_mcp.graph.store import open_graph_store  # noqa: E402
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


def search_bench(graph: GraphMemory, n: int, depth: int, n_entities: int) -> dict[str, float]:
    """Graph search through the engine's GraphMemory, query embedding included."""
    rng = np.random.default_rng(1)
    picks = rng.integers(0, n_entities, n)
    lat, found = [], []
    for i in picks:
        query = f"what about {name_of(int(i))}?"
        t = time.perf_counter()
        rels = graph.find_relations(query, SCOPE, 10) if depth == 1 else _search_depth(graph, query, depth)
        lat.append(time.perf_counter() - t)
        found.append(len(rels))
    return {"p50_ms": p50(lat), "p95_ms": p95(lat), "relations_returned_mean": float(np.mean(found))}


def _search_depth(graph: GraphMemory, query: str, depth: int) -> list[Any]:
    vector = np.asarray(graph._embed([query]), dtype=np.float32)[0]
    return graph.search(query, vector, SCOPE, 10, depth=depth)


def memory_search_bench(data_dir: Path, embedder: Any, n_memories: int, n: int) -> dict[str, Any]:
    """Memory search p50 on ``n_memories`` facts in one scope, the same embedder and run."""
    mem = Memory(make_settings(data_dir, graph_enabled=False), embedder=embedder)
    try:
        t = time.perf_counter()
        for start in range(0, n_memories, 256):
            batch = [
                f"{name_of(i)} works on project {i % 97} in {WORDS[i % 7]}"
                for i in range(start, min(n_memories, start + 256))
            ]
            mem.add([{"role": "user", "content": x} for x in batch], user_id="bench")
        ingest = time.perf_counter() - t
        mem.optimize()
        queries = [
            f"what does {name_of(int(i))} work on?"
            for i in np.random.default_rng(2).integers(0, n_memories, n)
        ]
        for q in queries[:5]:
            mem.search(q, user_id="bench", limit=10)
        lat = timed_each(lambda q: mem.search(q, user_id="bench", limit=10), queries)
    finally:
        mem.close()
    return {"memories": n_memories, "ingest_s": round(ingest, 1), "p50_ms": p50(lat), "p95_ms": p95(lat)}


def timed_each(fn: Callable[[str], Any], items: list[str]) -> list[float]:
    out = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - t)
    return out


def kuzu_search_bench(store: KuzuGraphStore, settings: Any, embedder: Any, n: int) -> dict[str, float]:
    """Before: the same search on Kùzu opened per call."""
    graph = GraphMemory(settings, store, embed=embedder.embed, llm=lambda: None)
    return {
        f"depth{d}_{k}": v
        for d in (1, 2)
        for k, v in search_bench(graph, n, d, 10_000).items()
        if k != "relations_returned_mean"
    }


def follow_bench(data_dir: Path, reader: Any, n_writes: int) -> dict[str, float]:
    """Another process (a second store on the same dir) writes; the reader's next read catches up."""
    other = open_graph_store(make_settings(data_dir))
    lat_write, lat_follow = [], []
    rng = np.random.default_rng(3)
    try:
        for i in range(n_writes):
            t = time.perf_counter()
            with other.burst(write=True):
                a = other.create_entity(
                    SCOPE,
                    f"visitor {i}",
                    f"visitor {i}",
                    "person",
                    rng.random(reader.copy.dimension or 384).astype(np.float32),
                    NOW,
                )
                other.create_relation(SCOPE, a.id, "knows", "e1", ["bench"], NOW)
            lat_write.append(time.perf_counter() - t)
            t = time.perf_counter()
            reader.counts()
            lat_follow.append(time.perf_counter() - t)
        t = time.perf_counter()
        synced = other.view.sync() if other.view is not None else 0
        sync_s = time.perf_counter() - t
    finally:
        other.close()
    return {
        "write_p50_ms": p50(lat_write),
        "first_read_after_it_p50_ms": p50(lat_follow),
        "kuzu_view_sync_rows": synced,
        "kuzu_view_sync_ms": round(sync_s * 1000, 1),
    }


def add_bench(
    data_dir: Path,
    embedder: Any,
    graph: bool,
    n: int,
    offset: int = 0,
    *,
    background: bool = True,
    llm_ms: float = 0.0,
) -> list[float]:
    """Verbatim adds; with ``graph``, each extracts 3 entities and 2 relations (scripted LLM). In
    ``background`` (the default setting) the add returns before its graph part is written: the
    run then waits for the writes and checks every relation is there."""

    def slow(reply: dict[str, Any]) -> Callable[[str], dict[str, Any]]:
        def answer(_system: str) -> dict[str, Any]:
            time.sleep(llm_ms / 1000)  # the model's own time
            return reply

        return answer

    llm = RoutingLLM(defaults={CONTRADICTION: slow({"invalidate": []})})
    settings = make_settings(
        data_dir, graph_enabled="true" if graph else "false", graph_background=background
    )
    mem = Memory(settings, embedder=embedder, llm=llm)
    lat = []
    try:
        if mem.graph is not None:
            mem.graph.store.counts()  # the graph is read in at start, in the background
        for i in range(offset, offset + n):
            a, b = name_of(i), name_of(i + 1)
            llm.push(
                EXTRACTION,
                slow(
                    {
                        "entities": [{"name": a, "type": "person"}, {"name": b, "type": "organization"}],
                        "relations": [
                            {"source": "I", "relation": "knows", "destination": a},
                            {"source": a, "relation": "works_at", "destination": b},
                        ],
                    }
                ),
            )
            t = time.perf_counter()
            r = mem.add(f"I know {a}, who works at {b} (note {i})", user_id="bench", infer=False)
            lat.append(time.perf_counter() - t)
            assert not r.warnings, r.warnings
            assert bool(r.relations or r.graph_pending) == graph
        if graph and mem.graph is not None:
            assert mem.graph.queue.settle(60)
            assert mem.graph.store.open_jobs() == []
            written = {(x.source, x.destination) for x in mem.graph.store.all_of(SCOPE)[1]}
            assert all((name_of(i), name_of(i + 1)) in written for i in range(offset, offset + n))
    finally:
        mem.close()
    return lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entities", type=int, default=10_000)
    ap.add_argument("--relations", type=int, default=50_000)
    ap.add_argument("--memories", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--adds", type=int, default=30)
    ap.add_argument(
        "--llm-ms", type=float, default=200.0, help="the scripted LLM's answer time (background adds)"
    )
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

    def show(key: str) -> None:
        print(f"{key}:", json.dumps(results[key]), flush=True)

    try:
        # --- 1. add with vs without graph on a fresh data dir (small graph).
        without = add_bench(tmp / "add-off", embedder, False, args.adds)
        with_graph = add_bench(tmp / "add-on", embedder, True, args.adds, llm_ms=args.llm_ms)
        inline = add_bench(tmp / "add-inline", embedder, True, args.adds, background=False)
        results["add_fresh"] = {
            "adds": args.adds,
            "without_graph_p50_ms": p50(without),
            "with_graph_p50_ms": p50(with_graph),
            "with_graph_p95_ms": p95(with_graph),
            "ratio_p50": round(p50(with_graph) / p50(without), 2),
            "with_graph_inline_p50_ms": p50(inline),
            "inline_ratio_p50": round(p50(inline) / p50(without), 2),
            "note": f"verbatim add; graph: 2 relations, 3 entities per add. with_graph: the graph "
            f"part written after the add returns (graph_background, the default), the scripted LLM "
            f"answering in {args.llm_ms:.0f} ms, every relation checked after; inline: within the "
            "add, the scripted LLM answering at once (the LLM's own time excluded)",
        }
        show("add_fresh")

        # --- 2. scale: Kùzu loaded by COPY (before), then moved into the log (after).
        big_dir = tmp / "big"
        kuzu = KuzuGraphStore(big_dir / "graph.kuzu", lock_path=big_dir / "graph.lock")
        t = time.perf_counter()
        bulk_load(kuzu, args.entities, args.relations, dim)
        load_s = time.perf_counter() - t
        results["kuzu_open_cost"] = open_costs(kuzu, 15)
        show("kuzu_open_cost")
        t = time.perf_counter()
        moved_store = open_graph_store(make_settings(big_dir))  # an upgraded data dir: Kùzu -> log
        import_s = time.perf_counter() - t
        moved = moved_store.log.head()
        moved_store.close()
        t = time.perf_counter()
        fresh = open_graph_store(make_settings(big_dir))
        counts = fresh.counts()
        first_read_s = time.perf_counter() - t
        fresh.close()
        results["scale"] = {
            "entities_in_scope": args.entities,
            "relations_in_scope": args.relations,
            "entities_total": counts["entities"],
            "relations_total": counts["relations"],
            "kuzu_copy_load_s": round(load_s, 2),
            "moved_into_log_rows": moved,
            "moved_into_log_s": round(import_s, 2),
            "new_process_first_read_s": round(first_read_s, 2),
            "log_mb": round((big_dir / "graph-log.sqlite3").stat().st_size / 2**20, 1),
        }
        show("scale")

        settings = make_settings(big_dir, graph_enabled=True)
        mem = Memory(settings, embedder=embedder)
        try:
            graph = mem.graph
            assert graph is not None
            search_bench(graph, 5, 1, args.entities)  # the first read replays the log
            results["search_depth1"] = search_bench(graph, args.queries, 1, args.entities)
            results["search_depth2"] = search_bench(graph, args.queries, 2, args.entities)
            show("search_depth1")
            show("search_depth2")
            reader = graph.store
            results["follow_other_process"] = follow_bench(big_dir, reader, 20)
            show("follow_other_process")
        finally:
            mem.close()
        results["before_kuzu_per_call"] = kuzu_search_bench(kuzu, make_settings(big_dir), embedder, 15)
        show("before_kuzu_per_call")
        results["memory_search_same_run"] = memory_search_bench(
            tmp / "mem10k", embedder, args.memories, args.queries
        )
        show("memory_search_same_run")

        # --- 4. add with graph into the large scope (entity resolution against 10k entities).
        shutil.copytree(tmp / "add-off", tmp / "big-mem", dirs_exist_ok=True)
        for path in big_dir.glob("graph*"):  # with their write-ahead logs
            shutil.copy2(path, tmp / "big-mem" / path.name)
        n_big = max(5, args.adds // 3)
        big_with = add_bench(
            tmp / "big-mem", embedder, True, n_big, offset=args.entities + 10, llm_ms=args.llm_ms
        )
        big_inline = add_bench(
            tmp / "big-mem", embedder, True, n_big, offset=args.entities + 100, background=False
        )
        results["add_into_large_scope"] = {
            "adds": n_big,
            "with_graph_p50_ms": p50(big_with),
            "with_graph_inline_p50_ms": p50(big_inline),
        }
        show("add_into_large_scope")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["total_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out} ({results['total_s']} s)")


if __name__ == "__main__":
    main()
