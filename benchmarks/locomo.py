"""LoCoMo turn-level evidence recall of the product's own search, beside BM25 / MiniLM / RRF baselines.

Each conversation is its own user; each session is one verbatim add of its turns (speaker as the
message ``name``, ``{"dia_id": ...}`` as message metadata, the session date as ``timestamp``),
through the public engine API, or with --via-mcp through the MCP tools. Every question of
categories 1-4 is searched in its user's scope (limit 20) and scored by benchmarks.locomo_scorer.

  python -m benchmarks.locomo ../shared/data/locomo_dev.json [--out JSON] [--rankings-out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.locomo_baselines import run_baselines, score_baselines
from benchmarks.locomo_data import Conversation, Session, load
from benchmarks.locomo_scorer import estimate_tokens, format_table, score

DEPTH = 20
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "locomo.json"


def session_messages(session: Session) -> list[dict[str, Any]]:
    msgs = []
    for t in session.turns:
        # The caption is what the speaker showed; without it "look at this!" carries no content.
        content = f"{t.text} [shared an image: {t.caption}]" if t.caption else t.text
        msgs.append({"role": "user", "content": content, "name": t.speaker, "metadata": {"dia_id": t.dia_id}})
    return msgs


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


class EngineClient:
    """Direct calls into mem0_mcp.engine.memory.Memory."""

    def __init__(self, settings: Any, embedder: Any) -> None:
        from mem0_mcp.engine.memory import Memory

        self.memory = Memory(settings, embedder=embedder)

    def add(self, messages: list[dict], user_id: str, timestamp: str | None) -> None:
        self.memory.add(messages, user_id=user_id, timestamp=timestamp, infer=False)

    def settle(self) -> None:
        # What the engine's background compaction does every few hundred writes: without it the
        # last adds sit in small unmerged fragments and latency reflects ingest, not search.
        self.memory.optimize()

    def search(self, query: str, user_id: str, limit: int) -> list[dict[str, Any]]:
        res = self.memory.search(query, user_id=user_id, limit=limit)
        return [r.model_dump() for r in res.results]

    def close(self) -> None:
        self.memory.close()


class McpClient:
    """The same workload through the MCP tools, on an in-memory client session.

    Called from a worker thread (see ``run_via_mcp``) while the session lives in the event loop.
    """

    def __init__(self, client: Any, has_timestamp: bool) -> None:
        self._client = client
        self.has_timestamp = has_timestamp

    def _call(self, tool: str, args: dict[str, Any]) -> Any:
        import anyio.from_thread

        result = anyio.from_thread.run(self._client.call_tool, tool, args)
        if result.is_error:
            raise RuntimeError(f"{tool} failed: {result.content}")
        return result.structured_content

    def add(self, messages: list[dict], user_id: str, timestamp: str | None) -> None:
        args: dict[str, Any] = {"messages": messages, "user_id": user_id, "infer": False}
        if timestamp and self.has_timestamp:
            args["timestamp"] = timestamp
        self._call("add_memory", args)

    def search(self, query: str, user_id: str, limit: int) -> list[dict[str, Any]]:
        return self._call("search_memory", {"query": query, "user_id": user_id, "limit": limit})["results"]


def run_via_mcp(conversations: Sequence[Conversation], settings: Any, embedder: Any, **kw: Any) -> dict:
    import anyio
    from mcp.client import Client

    from mem0_mcp.engine.memory import Memory
    from mem0_mcp.server.app import create_server

    async def go() -> dict:
        server = create_server(settings, memory_factory=lambda s: Memory(s, embedder=embedder))
        async with Client(server) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            has_ts = "timestamp" in (tools["add_memory"].input_schema.get("properties") or {})
            if not has_ts:
                print("add_memory takes no timestamp yet: sessions are stored undated", file=sys.stderr)
            return await anyio.to_thread.run_sync(
                lambda: run_engine(conversations, McpClient(client, has_ts), **kw)
            )

    return anyio.run(go)


def run_engine(conversations: Sequence[Conversation], client: Any, *, ingest: bool = True) -> dict[str, Any]:
    t0 = time.perf_counter()
    if ingest:
        for conv in conversations:
            for session in conv.sessions:
                stamp = session.date.isoformat() if session.date else None
                client.add(session_messages(session), conv.sample_id, stamp)
    ingest_s = time.perf_counter() - t0
    if hasattr(client, "settle"):
        client.settle()
    # One unscored query loads lazily-opened indexes so the first timed search is not an outlier.
    client.search("warm up", conversations[0].sample_id, DEPTH)
    rankings: dict[str, dict[int, list[str | None]]] = {}
    texts: dict[str, dict[str, str]] = {}
    latencies: list[float] = []
    for conv in conversations:
        ranks = rankings.setdefault(conv.sample_id, {})
        seen = texts.setdefault(conv.sample_id, {})
        for q in conv.questions:
            t = time.perf_counter()
            hits = client.search(q.question, conv.sample_id, DEPTH)
            latencies.append(time.perf_counter() - t)
            ids = []
            for h in hits:
                dia = (h.get("metadata") or {}).get("dia_id")
                ids.append(dia)
                if dia:
                    # What the agent reads: the memory and who said it.
                    seen[dia] = f"{h.get('name')}: {h['memory']}" if h.get("name") else h["memory"]
            ranks[q.qa_index] = ids
    return {
        "rankings": rankings,
        "texts": texts,
        "ingest_seconds": ingest_s,
        "turns": sum(len(s.turns) for c in conversations for s in c.sessions),
        "search": {
            "n": len(latencies),
            "p50_ms": statistics.median(latencies) * 1000,
            "p95_ms": pct(latencies, 0.95),
        },
    }


def measure(args: argparse.Namespace, conversations: list[Conversation], embedder: Any) -> tuple[dict, dict]:
    """(the engine's run, every system's scores), all inside one data dir.

    A temporary data dir (the default) lives until the baselines are done too: the embedder
    built for it keeps its ONNX export there.
    """
    from mem0_mcp.config import Settings
    from mem0_mcp.embedding import build_embedder

    with contextlib.ExitStack() as stack:
        if args.data_dir:
            data_dir = Path(args.data_dir)
        else:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="locomo-")))
        settings = Settings(data_dir=data_dir, llm_provider="none")
        if embedder is None:
            t = time.perf_counter()
            embedder = build_embedder(settings)
            loaded = time.perf_counter() - t
            print(f"embedder {type(embedder).__name__} loaded in {loaded:.1f}s", file=sys.stderr)
        if args.via_mcp:
            run = run_via_mcp(conversations, settings, embedder, ingest=not args.skip_ingest)
        else:
            client = EngineClient(settings, embedder)
            try:
                run = run_engine(conversations, client, ingest=not args.skip_ingest)
            finally:
                client.close()
        results: dict[str, dict] = {}
        if not args.no_baselines:
            t = time.perf_counter()
            results.update(score_baselines(conversations, run_baselines(conversations, embedder)))
            print(f"baselines in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    run["embedder"] = type(embedder).__name__
    texts = run["texts"]

    def ours_tokens(q: Any, k: int) -> float:
        ids = run["rankings"][q.sample_id].get(q.qa_index, [])[:k]
        return sum(estimate_tokens(texts[q.sample_id].get(d) or "") for d in ids if d)

    system = "mem0-mcp (mcp)" if args.via_mcp else "mem0-mcp"
    results[system] = score(conversations, run["rankings"], context_tokens=ours_tokens)
    return run, results


def main(argv: Sequence[str] | None = None, *, embedder: Any = None) -> int:
    """Run the benchmark; ``embedder`` (a mem0_mcp Embedder) replaces the configured model."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="LoCoMo-format JSON (e.g. ../shared/data/locomo_dev.json)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="figures as JSON (default: %(default)s)")
    p.add_argument("--rankings-out", help="raw rankings {sample_id: {qa_index: [dia_id, ...]}}")
    p.add_argument("--via-mcp", action="store_true", help="ingest and search through the MCP tools")
    p.add_argument("--no-baselines", action="store_true", help="skip BM25/MiniLM/RRF")
    p.add_argument("--data-dir", help="keep the store here (default: a temporary folder, removed)")
    p.add_argument("--skip-ingest", action="store_true", help="search a store --data-dir already holds")
    args = p.parse_args(argv)
    if args.skip_ingest and not args.data_dir:
        p.error("--skip-ingest needs --data-dir")

    conversations = load(args.file)
    run, results = measure(args, conversations, embedder)
    system = "mem0-mcp (mcp)" if args.via_mcp else "mem0-mcp"
    print(format_table(results))
    s = run["search"]
    print(
        f"{results[system]['questions']} questions "
        f"({results[system]['skipped']} skipped for empty evidence); "
        f"search p50 {s['p50_ms']:.1f} ms, p95 {s['p95_ms']:.1f} ms; ingest of {run['turns']} turns "
        f"{run['ingest_seconds']:.1f} s; tokens = len(text)/4"
    )
    out = {
        "file": os.path.basename(args.file),
        "via_mcp": args.via_mcp,
        "embedder": run["embedder"],
        "token_estimate": "len(text)/4",
        "search_latency": s,
        "ingest_seconds": run["ingest_seconds"],
        "turns": run["turns"],
        "systems": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    if args.rankings_out:
        Path(args.rankings_out).write_text(json.dumps(run["rankings"]) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
