#!/usr/bin/env python3
"""Add and search latency on an emulated S3 store beside the local data dir, and cross-node lag.

One run, the same data on both stores: ``--memories`` (default 2,000) verbatim memories in one
user scope, written in batches of 64 messages, then ``--adds`` one-at-a-time adds and
``--searches`` searches (p50/p95), through the engine (``Memory``) with the tests' FakeEmbedder
(a hashing bag of words: the embedder is not what is measured). The S3 store is the moto emulator
in a process of its own on 127.0.0.1 (tests/support/nodes.py ``s3_process``), so its figures are
the object-store path's cost on this machine (no network), not a cloud bucket's.

Cross-node visibility: a second engine ("node B", its own data dir, the same store URI) polls
``get`` and ``search`` every 10 ms after each add of node A; the seconds until the memory shows
(p50 / max) against the staleness bound ``--refresh`` (``store_refresh_seconds``).

    python benchmarks/object_store.py [--memories 2000] [--adds 60] [--searches 100]

Writes benchmarks/results/object_store.json. The machine is shared and noisy: quote the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mem0_mcp.config import Settings  # noqa: E402
from mem0_mcp.engine.memory import Memory  # noqa: E402
from tests.support.engine import FakeEmbedder, make_settings  # noqa: E402
from tests.support.nodes import s3_process  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
WORDS = [
    *("garden", "coffee", "train", "museum", "violin", "recipe", "hiking", "budget", "sister"),
    *("meeting", "deadline", "novel", "bicycle", "allergy", "airport", "kitten", "piano", "lunch"),
    *("invoice", "passport", "ocean", "mountain", "birthday", "report"),
]
BATCH = 64


def percentiles(xs: list[float]) -> dict[str, float]:
    """n, p50, p95 and max in ms (nearest rank)."""
    s = sorted(xs)

    def at(q: float) -> float:
        return s[min(len(s) - 1, max(0, round(q * len(s)) - 1))] * 1000 if s else 0.0

    return {"n": len(s), "p50_ms": at(0.5), "p95_ms": at(0.95), "max_ms": (s[-1] * 1000 if s else 0.0)}


def fact(rng: random.Random, i: int) -> str:
    return f"note {i}: " + " ".join(rng.choice(WORDS) for _ in range(8))


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def engine(data_dir: Path, **overrides: Any) -> Memory:
    settings: Settings = make_settings(data_dir, graph_enabled="false", **overrides)
    return Memory(settings, embedder=FakeEmbedder())


def measure(memory: Memory, args: argparse.Namespace) -> dict[str, Any]:
    """Fill ``memory`` with ``args.memories`` memories, then time single adds and searches."""
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    for start in range(0, args.memories, BATCH):
        batch = range(start, min(args.memories, start + BATCH))
        memory.add([{"role": "user", "content": fact(rng, i)} for i in batch], user_id="u")
    memory.flush()
    fill_s = time.perf_counter() - t0
    queries = [" ".join(rng.sample(WORDS, 3)) for _ in range(args.searches + 10)]
    for q in queries[:10]:  # warm: the in-process copy loads on the first search
        memory.search(q, user_id="u", limit=10)
    search = [timed(lambda q=q: memory.search(q, user_id="u", limit=10)) for q in queries[10:]]
    add = [timed(lambda i=i: memory.add(fact(rng, args.memories + i), user_id="u")) for i in range(args.adds)]
    ids = [r.id for r in memory.get_all(user_id="u", limit=args.searches).results]
    get = [timed(lambda i=i: memory.get(i)) for i in ids]
    memory.flush()
    return {
        "fill_s": fill_s,
        "fill_per_s": args.memories / fill_s,
        "add": percentiles(add),
        "search": percentiles(search),
        "get": percentiles(get),
    }


def cross_node_lag(a: Memory, b: Memory, rounds: int) -> dict[str, Any]:
    """Seconds from node A's add returning until node B's get / search shows the memory."""
    lag_get: list[float] = []
    lag_search: list[float] = []
    for n in range(rounds):
        marker = f"lagmark{n}x"
        mid = a.add(f"node A wrote {marker}", user_id="lag").results[0].id
        at = time.perf_counter()
        got = searched = None
        while got is None or searched is None:
            now = time.perf_counter()
            if got is None and b.storage.vectors.get(mid) is not None:
                got = now - at
            if searched is None and mid in [h.id for h in b.search(marker, user_id="lag", limit=5).results]:
                searched = now - at
            if now - at > 30:
                raise RuntimeError(f"node B did not see {mid} in 30 s")
            time.sleep(0.01)
        lag_get.append(got)
        lag_search.append(searched)
        time.sleep(random.random() * 0.5)  # land anywhere in B's refresh period
    return {"get": percentiles(lag_get), "search": percentiles(lag_search)}


@contextmanager
def provider_env(env: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    local = engine(tmp / "local")
    try:
        local_figures = measure(local, args)
    finally:
        local.close()
    # The local default journals an add in SQLite (write-behind) and commits it to the table
    # later; object storage has no journal: an add commits there. This run commits locally too.
    direct = engine(tmp / "direct", write_behind=False)
    try:
        direct_figures = measure(direct, args)
    finally:
        direct.close()
    with s3_process() as bucket, provider_env(bucket.env):
        uri = bucket.uri("bench")
        a = engine(tmp / "a", store_uri=uri, store_refresh_seconds=args.refresh)
        try:
            s3_figures = measure(a, args)
            b = engine(tmp / "b", store_uri=uri, store_refresh_seconds=args.refresh)
            try:
                b.search("warm up", user_id="lag")
                lag = cross_node_lag(a, b, args.lag_rounds)
            finally:
                b.close()
        finally:
            a.close()
    ratios = {
        f"{op} vs {name}": s3_figures[op]["p50_ms"] / base[op]["p50_ms"] if base[op]["p50_ms"] else None
        for op in ("add", "search", "get")
        for name, base in (("local", local_figures), ("local_no_write_behind", direct_figures))
    }
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "embedder": "FakeEmbedder (hashing bag of words; the embedder is not measured)",
        "s3": "moto server in its own process on 127.0.0.1 (no network)",
        "memories": args.memories,
        "local": local_figures,
        "local_no_write_behind": direct_figures,
        "s3_emulated": s3_figures,
        "p50_ratio_s3_over_local": ratios,
        "refresh_seconds": args.refresh,
        "cross_node_lag": lag,
    }


def report(result: dict[str, Any]) -> None:
    print(f"\n{result['memories']} memories, FakeEmbedder; local data dir vs S3 emulator (moto)")
    print("p50 / p95 in ms; local: the default (adds journaled), direct: write_behind off")
    names = ("local", "local_no_write_behind", "s3_emulated")
    print(f"{'op':<8}{'local':>18}{'direct':>18}{'s3':>18}")
    for op in ("add", "search", "get"):
        cells = [f"{result[n][op]['p50_ms']:.2f} / {result[n][op]['p95_ms']:.2f}" for n in names]
        print(f"{op:<8}" + "".join(f"{c:>18}" for c in cells))
    fill = "  ".join(f"{n} {result[n]['fill_per_s']:.0f}/s" for n in names)
    print(f"fill (batches of {BATCH}): {fill}")
    for kind, p in result["cross_node_lag"].items():
        print(
            f"cross-node lag ({kind}, bound {result['refresh_seconds']} s): p50 {p['p50_ms'] / 1000:.2f} s, "
            f"max {p['max_ms'] / 1000:.2f} s over {p['n']}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--memories", type=int, default=2000)
    p.add_argument("--adds", type=int, default=60)
    p.add_argument("--searches", type=int, default=100)
    p.add_argument("--lag-rounds", type=int, default=20)
    p.add_argument("--refresh", type=float, default=1.0, help="store_refresh_seconds (the bound)")
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--out", type=Path, default=RESULTS / "object_store.json")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mem0-objstore-"))
    try:
        result = run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    report(result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
