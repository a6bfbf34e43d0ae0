"""Why a verbatim add's `related` lookup reads every row of a scope past `ann_index_threshold`
(through the int8 rows, up to 8x the threshold) instead of the IVF lists a search reads.

A search wants a page of 10 and reads `ann_nprobe` (32) lists. `related` wants the 3 nearest
memories, and among them the one an agent must supersede: a stored fact the new one changes
("Works at Stripe" / "Started a new job at Anthropic"), often at a cosine of 0.3-0.5, far from the
new fact's own neighbourhood. One scope of N synthetic facts (as benchmarks/latency.py writes
them) that also holds the first fact of each same-thing pair of benchmarks/related_floor.py; for
each number of lists read, and for every row (what the lookup does now):

- recall@3: of the exact 3 nearest memories (cosine >= related_threshold) of each of 300 new
  facts, the share the lookup returns among its 3;
- pairs found: of the same-thing pairs whose first fact the exact lookup lists for the second,
  the share the lookup lists too.

    python benchmarks/related_ann.py [--n 100000] [--out benchmarks/results/related_ann.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.latency import facts  # noqa: E402
from benchmarks.related_floor import SAME_THING  # noqa: E402

NPROBES: tuple[int | None, ...] = (2, 4, 8, 16, 32, 64, None)  # None: what `related` reads (every row)
K = 4  # what an add of one message asks for: MAX_RELATED + its own row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="synthetic facts in the scope")
    p.add_argument("--adds", type=int, default=300, help="new facts whose neighbours are looked up")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "related_ann.json"))
    args = p.parse_args()

    from mem0_mcp.config import Settings
    from mem0_mcp.engine.memory import Memory
    from mem0_mcp.stores.ivf import list_count

    pool = facts(args.n + args.adds)
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="mem0mcp-related-")), llm_provider="none")  # type: ignore[call-arg]
    mem = Memory(settings)
    started = time.perf_counter()
    stored = pool[: args.n] + [old for old, _ in SAME_THING]
    for at in range(0, len(stored), 500):
        mem.add([{"role": "user", "content": t} for t in stored[at : at + 500]], user_id="u")
        if at % 20_000 == 0:
            print(f"  {at} ingested", file=sys.stderr)
    mem.optimize()
    mem.storage.vectors.wait_for_index()
    mem.search("warm up", user_id="u")  # the copy takes the ingest in
    ingest_s = time.perf_counter() - started
    copy = mem.storage.vectors.copy
    assert copy is not None and copy.ann_ready, "past ann_index_threshold the copy has IVF lists"
    scope = {"user_id": "u", "agent_id": None, "run_id": None}
    floor = settings.related_threshold
    columns = ("id", "memory")

    def lookup(vector, nprobe: int | None) -> list[dict]:
        if nprobe is not None:
            copy.nprobe = nprobe
        return copy.search(vector, K, scope, False, columns, exact=None if nprobe is None else False)

    def reference(vector) -> list[dict]:
        return copy.search(vector, K, scope, False, columns, exact=True)

    new_vectors = mem.embedder.embed(pool[args.n :])
    pair_vectors = mem.embedder.embed([new for _, new in SAME_THING])
    exact_new = [reference(v) for v in new_vectors]
    exact_pairs = [
        any(h["memory"] == old for h in reference(v) if 1 - h["_distance"] >= floor)
        for v, (old, _) in zip(pair_vectors, SAME_THING, strict=True)
    ]
    rows = []
    for nprobe in NPROBES:
        took, recall = [], []
        for v, exact in zip(new_vectors, exact_new, strict=True):
            t = time.perf_counter()
            hits = lookup(v, nprobe)
            took.append(time.perf_counter() - t)
            want = {h["id"] for h in exact[:3] if 1 - h["_distance"] >= floor}
            if want:
                recall.append(len(want & {h["id"] for h in hits[:3]}) / len(want))
        found = [
            any(h["memory"] == old for h in lookup(v, nprobe) if 1 - h["_distance"] >= floor)
            for v, (old, _), listed in zip(pair_vectors, SAME_THING, exact_pairs, strict=True)
            if listed
        ]
        rows.append(
            {
                "nprobe": nprobe,
                "recall_at_3": statistics.fmean(recall),
                "pairs_found": sum(found),
                "pairs_listed_exactly": len(found),
                "lookup_p50_ms": statistics.median(took) * 1e3,
            }
        )
    embedder = mem.stats().embedder
    mem.close()

    lists = list_count(len(stored))
    print(f"{args.n} facts (+{len(SAME_THING)} pair facts, ~{lists} IVF lists), ingested in {ingest_s:.0f} s")
    print(f"{'nprobe':>7} | {'recall@3':>8} | {'pairs found':>11} | {'lookup p50':>10}")
    for r in rows:
        pairs = f"{r['pairs_found']}/{r['pairs_listed_exactly']}"
        read = "related" if r["nprobe"] is None else r["nprobe"]
        print(f"{read:>7} | {r['recall_at_3']:>8.4f} | {pairs:>11} | {r['lookup_p50_ms']:>7.2f} ms")
    out = {
        "n": args.n,
        "adds": args.adds,
        "pairs": len(SAME_THING),
        "related_threshold": floor,
        "ann_nprobe": settings.ann_nprobe,
        "ivf_lists": lists,
        "embedder": embedder,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
