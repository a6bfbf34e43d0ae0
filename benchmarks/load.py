#!/usr/bin/env python3
"""Concurrent clients against one real server over streamable HTTP: latency, errors, lost writes.

Starts ``mem0-mcp serve --transport http`` (the CLI entry point, in its own process) on an
ephemeral 127.0.0.1 port with a temporary data dir and one bearer token per client. Then
``--clients`` (default 16) MCP client sessions, each its own asyncio task and its own principal,
so **each client works in its own user scope** (the server pins a token's calls to its principal),
run for ``--seconds`` (default 60) a weighted mix of tools, one call at a time each:

    add_memory 40 %, search_memory 30 %, list_memories 10 %, update_memory 10 %, delete_memory 10 %

Update and delete pick one of the client's live memories (an add instead while it has none); a
client holding ``--max-per-client`` live memories deletes instead of adding, so a run stays
bounded on disk (texts are ~100 bytes). Every acknowledged call is recorded. At the end the final
state is read back (every page of ``list_memories`` and ``get_memory`` of each deleted id),
through the running server and again after a restart of the server, and compared with the acks:

* lost: an acknowledged add missing (and not deleted since), a live memory whose text is not the
  one its last acknowledged add/update gave, or an acknowledged delete that is back;
* errors: tool calls that returned an error or raised.

Targets (issue #16, 2 cores): 0 errors, 0 lost, no tool's p50 above 3x the add p50.

``--embedder fake`` serves with a deterministic hashing embedder (bag of hashed words, the tests'
FakeEmbedder; the same serve path with the engine built by ``create_server(memory_factory=...)``,
since the settings have no such embedder) to measure the stores without the model's CPU.

    python benchmarks/load.py [--seconds 60] [--clients 16] [--embedder model|fake]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
MODEL_CACHE = Path("/work/main/.pytest_cache/mem0-mcp-models")
TOOLS = ("add_memory", "search_memory", "list_memories", "update_memory", "delete_memory")
MIX = {"add_memory": 40, "search_memory": 30, "list_memories": 10, "update_memory": 10, "delete_memory": 10}
WORDS = [
    *("garden", "coffee", "train", "museum", "violin", "recipe", "hiking", "budget", "sister"),
    *("meeting", "deadline", "novel", "bicycle", "allergy", "airport", "kitten", "piano", "lunch"),
    *("invoice", "passport", "ocean", "mountain", "birthday", "report"),
]


def percentiles(lat: list[float]) -> dict[str, float]:
    """n, p50, p95, p99 in ms (nearest rank)."""
    if not lat:
        return {"n": 0, "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0}
    s = sorted(lat)

    def at(q: float) -> float:
        return s[min(len(s) - 1, max(0, round(q * len(s)) - 1))] * 1000

    return {"n": len(s), "p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99)}


# ---------------------------------------------------------------------------- the server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def token_of(client: int) -> str:
    return f"load-token-{client:03d}-0123456789abcdef"


def start_server(data_dir: Path, port: int, clients: int, embedder: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEM0_MCP_")}
    env.update(
        PYTHONPATH=str(ROOT),  # this checkout's code, whatever is installed
        MEM0_MCP_DATA_DIR=str(data_dir),
        MEM0_MCP_LLM_PROVIDER="none",
        MEM0_MCP_LOG_LEVEL="WARNING",
        MEM0_MCP_AUTH_TOKENS=json.dumps({token_of(c): f"load-{c:03d}" for c in range(clients)}),
    )
    if MODEL_CACHE.is_dir():
        env["MEM0_MCP_MODEL_CACHE_DIR"] = str(MODEL_CACHE)  # skips the one-time ONNX export
    serve = ["serve", "--transport", "http", "--host", "127.0.0.1", "--port", str(port)]
    if embedder == "fake":
        cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-fake", *serve[1:]]
    else:
        cmd = [sys.executable, "-m", "mem0_mcp.cli.main", *serve]
    log = open(data_dir.parent / f"{data_dir.name}.server.log", "ab")  # noqa: SIM115 (the child owns it)
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)


def serve_fake(argv: list[str]) -> None:
    """The server process of ``--embedder fake``: the CLI's HTTP serve with a hashing embedder."""
    import anyio

    from mem0_mcp.cli.main import configure_logging
    from mem0_mcp.config import load_settings
    from mem0_mcp.engine.memory import Memory
    from mem0_mcp.server.app import create_server
    from mem0_mcp.server.http_app import serve_http
    from tests.support.engine import FakeEmbedder

    p = argparse.ArgumentParser()
    p.add_argument("--transport", default="http")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    settings = load_settings(transport=args.transport, host=args.host, port=args.port, search_threshold=0.0)
    configure_logging(settings.log_level)
    server = create_server(settings, memory_factory=lambda s: Memory(s, embedder=FakeEmbedder()))
    anyio.run(lambda: serve_http(server, transport=args.transport))
    sys.stderr.flush()
    os._exit(0)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} (see its .server.log)")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError("the server did not listen within the timeout")


# ---------------------------------------------------------------------------- the clients
@dataclass
class ClientLog:
    """What one client was told: its acknowledged writes and its latencies."""

    index: int
    live: dict[str, str] = field(default_factory=dict)  # id -> text last acknowledged
    deleted: set[str] = field(default_factory=set)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    counter: int = 0

    def text(self, rng: random.Random, kind: str) -> str:
        self.counter += 1
        words = " ".join(rng.choice(WORDS) for _ in range(8))
        return f"client {self.index} {kind} {self.counter}: {words}"


def _payload(result: Any) -> Any:
    if result.is_error:
        raise RuntimeError(" ".join(getattr(b, "text", "") for b in result.content)[:300])
    return result.structured_content


async def connect(stack: AsyncExitStack, base: str, client: int) -> Any:
    import httpx2
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client

    http = await stack.enter_async_context(
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token_of(client)}"}, timeout=300)
    )
    return await stack.enter_async_context(Client(streamable_http_client(f"{base}/mcp", http_client=http)))


def choose(rng: random.Random, log: ClientLog, cap: int) -> str:
    tool = rng.choices(list(MIX), weights=list(MIX.values()))[0]
    if tool in ("update_memory", "delete_memory") and not log.live:
        return "add_memory"
    if tool == "add_memory" and len(log.live) >= cap:
        return "delete_memory"
    return tool


async def call(session: Any, log: ClientLog, rng: random.Random, tool: str) -> None:
    """One tool call; records its latency, and its effect once acknowledged."""
    args: dict[str, Any]
    target = rng.choice(sorted(log.live)) if tool in ("update_memory", "delete_memory") else None
    if tool == "add_memory":
        args = {"text": log.text(rng, "note")}
    elif tool == "search_memory":
        args = {"query": " ".join(rng.choice(WORDS) for _ in range(3)), "limit": 10}
    elif tool == "list_memories":
        args = {"limit": 10}
    elif tool == "update_memory":
        args = {"memory_id": target, "text": log.text(rng, "revised")}
    else:
        args = {"memory_id": target}
    started = time.perf_counter()
    try:
        out = _payload(await session.call_tool(tool, args))
    except Exception as exc:
        log.errors.append(f"{tool}: {exc}"[:300])
        return
    log.latency[tool].append(time.perf_counter() - started)
    if tool == "add_memory":
        for event in out["results"]:
            if event["event"] == "ADD":
                log.live[event["id"]] = event["memory"]
            elif event["event"] != "NONE":
                log.errors.append(f"add_memory: unexpected event {event}")
    elif tool == "update_memory" and target is not None:
        log.live[target] = args["text"]
    elif tool == "delete_memory" and target is not None:
        del log.live[target]
        log.deleted.add(target)


async def run_client(base: str, log: ClientLog, seed: int, until: float, cap: int) -> None:
    rng = random.Random(seed)
    async with AsyncExitStack() as stack:
        session = await connect(stack, base, log.index)
        while time.monotonic() < until:
            await call(session, log, rng, choose(rng, log, cap))


async def warm_up(base: str) -> None:
    """One search per session before the clock starts: the engine (and model) load on the first."""
    async with AsyncExitStack() as stack:
        first = await connect(stack, base, 0)
        _payload(await first.call_tool("search_memory", {"query": "warm up"}))


# ---------------------------------------------------------------------------- the check
async def read_back(base: str, log: ClientLog) -> dict[str, Any]:
    """Compare what the server holds for one client's scope with the client's acks."""
    async with AsyncExitStack() as stack:
        session = await connect(stack, base, log.index)
        held: dict[str, str] = {}
        cursor: str | None = None
        while True:
            args: dict[str, Any] = {"limit": 100}
            if cursor is not None:
                args["cursor"] = cursor
            page = _payload(await session.call_tool("list_memories", args))
            held.update({m["id"]: m["memory"] for m in page["results"]})
            cursor = page.get("next_cursor")
            if cursor is None:
                break
        missing = [i for i in log.live if i not in held]
        stale = [i for i, text in log.live.items() if i in held and held[i] != text]
        back = [i for i in log.deleted if i in held]
        for memory_id in log.deleted:
            result = await session.call_tool("get_memory", {"memory_id": memory_id})
            if not result.is_error and memory_id not in back:
                back.append(memory_id)
        unacked = [i for i in held if i not in log.live]
    return {"missing": missing, "stale": stale, "deleted_back": back, "unacknowledged": len(unacked)}


async def verify(base: str, logs: list[ClientLog]) -> dict[str, Any]:
    checks = await asyncio.gather(*(read_back(base, log) for log in logs))
    out: dict[str, Any] = {k: sum(len(c[k]) for c in checks) for k in ("missing", "stale", "deleted_back")}
    out["unacknowledged"] = sum(c["unacknowledged"] for c in checks)
    out["lost"] = out["missing"] + out["stale"] + out["deleted_back"]
    out["examples"] = [
        f"{k}: {c[k][:3]}" for c in checks for k in ("missing", "stale", "deleted_back") if c[k]
    ][:10]
    return out


# ---------------------------------------------------------------------------- the run
async def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(data_dir, port, args.clients, args.embedder)
    try:
        t0 = time.perf_counter()
        await wait_ready(port, proc)
        await warm_up(base)
        ready_s = time.perf_counter() - t0
        logs = [ClientLog(c) for c in range(args.clients)]
        print(f"server ready in {ready_s:.1f} s; {args.clients} clients, {args.seconds} s", file=sys.stderr)
        started = time.monotonic()
        until = started + args.seconds
        await asyncio.gather(
            *(run_client(base, log, args.seed * 1000 + log.index, until, args.max_per_client) for log in logs)
        )
        elapsed = time.monotonic() - started
        live_check = await verify(base, logs)
    finally:
        stop_server(proc)
    # Again after a restart: what was acknowledged is on disk, not only in the process.
    proc = start_server(data_dir, port, args.clients, args.embedder)
    try:
        await wait_ready(port, proc)
        restart_check = await verify(base, logs)
    finally:
        stop_server(proc)

    calls = sum(len(v) for log in logs for v in log.latency.values())
    per_tool = {tool: percentiles([x for log in logs for x in log.latency.get(tool, [])]) for tool in TOOLS}
    errors = [e for log in logs for e in log.errors]
    add_p50 = per_tool["add_memory"]["p50_ms"]
    worst = max(TOOLS, key=lambda t: per_tool[t]["p50_ms"])
    ratio = per_tool[worst]["p50_ms"] / add_p50 if add_p50 else float("inf")
    lost = max(live_check["lost"], restart_check["lost"])
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "clients": args.clients,
        "scopes": "one user scope per client (one bearer token per client)",
        "seconds": elapsed,
        "embedder": args.embedder,
        "mix": MIX,
        "max_per_client": args.max_per_client,
        "server_ready_s": ready_s,
        "calls": calls,
        "throughput_per_s": calls / elapsed,
        "per_tool": per_tool,
        "acknowledged": {
            "live": sum(len(log.live) for log in logs),
            "deleted": sum(len(log.deleted) for log in logs),
        },
        "errors": len(errors),
        "error_examples": errors[:10],
        "check_live": live_check,
        "check_after_restart": restart_check,
        "lost": lost,
        "worst_p50_over_add": {"tool": worst, "ratio": ratio},
        "targets_met": not errors and lost == 0 and ratio <= 3.0,
    }


def report(result: dict[str, Any]) -> None:
    print(
        f"\n{result['clients']} clients x {result['seconds']:.0f} s over streamable HTTP, "
        f"embedder {result['embedder']}: {result['calls']} calls, {result['throughput_per_s']:.1f}/s"
    )
    print(f"{'tool':<16}{'n':>7}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}")
    for tool, p in result["per_tool"].items():
        print(f"{tool:<16}{p['n']:>7}{p['p50_ms']:>10.1f}{p['p95_ms']:>10.1f}{p['p99_ms']:>10.1f}")
    worst = result["worst_p50_over_add"]
    for name in ("check_live", "check_after_restart"):
        c = result[name]
        print(
            f"{name}: lost {c['lost']} (missing {c['missing']}, stale {c['stale']}, "
            f"deleted back {c['deleted_back']}), unacknowledged rows {c['unacknowledged']}"
        )
    print(
        f"errors {result['errors']}, lost {result['lost']}, worst p50 {worst['tool']} = "
        f"{worst['ratio']:.2f}x add -> targets {'met' if result['targets_met'] else 'NOT met'}"
    )
    for e in result["error_examples"] + result["check_live"]["examples"]:
        print(f"  {e}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-fake":
        serve_fake(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--embedder", choices=["model", "fake"], default="model")
    p.add_argument("--max-per-client", type=int, default=400, help="live memories a client keeps at most")
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--data-dir", type=Path, help="keep the data dir here (default: a temp dir, removed)")
    p.add_argument("--out", type=Path, default=RESULTS / "load.json")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="mem0-load-"))
    data_dir = args.data_dir or tmp / "data"
    try:
        result = asyncio.run(run(args, data_dir))
    finally:
        if args.data_dir is None:
            shutil.rmtree(tmp, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    report(result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
